"""``pipeline run`` drives the runtime for a workspace and prints what it did."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

from pipelines.stream.aggregation import Aggregator
from pipelines_local.commands.run import register
from pipelines_local.workspace import Workspace, WorkspaceError
from tests.integration import runtime_handlers as handlers
from tests.integration.runtime_stack import RuntimeStack

pytestmark = pytest.mark.integration


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["run", *argv])


def test_run_until_drained_serves_the_workspace_functions(
    aws_client: Any, emulator: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    handlers.reset()
    stack = RuntimeStack(aws_client, emulator.endpoint_url, tmp_path)
    workspace = stack.prefix.rstrip("-")
    stream_arn = stack.stream()
    stack.function("succeed")
    stack.mapping(stream_arn, BatchSize=10)
    stack.function("succeed", name="not-in-the-workspace")  # named alike, not in the outputs
    stack.mapping(stream_arn, BatchSize=10)
    stack.put("a", "b", "c")
    # What `pipeline up` records: where the workspace is and Terraform's outputs.
    outputs = {"function_names": {"consumer": f"{stack.prefix}fn"}, "region": "us-east-1"}
    Workspace(workspace, emulator.endpoint_url, "us-east-1", outputs, state_dir=tmp_path).save()
    args = parse(
        "--workspace", workspace, "--until-drained", "--state-dir", str(tmp_path), "--json"
    )
    out = io.StringIO()

    code = args.func(args, stdout=out)

    summary = json.loads(out.getvalue())
    assert code == 0
    assert summary["drained"] is True
    assert summary["stats"]["records_succeeded"] == 3
    assert (tmp_path / "runtime" / workspace / "checkpoints.json").is_file()
    assert [call.payloads for call in handlers.CALLS] == [["a", "b", "c"]]  # only its function


def test_run_for_a_workspace_that_is_not_deployed_fails_with_a_clear_error(tmp_path: Path) -> None:
    args = parse("--workspace", "nope", "--until-drained", "--state-dir", str(tmp_path))
    with pytest.raises(WorkspaceError, match="'nope' is not deployed"):
        args.func(args, stdout=io.StringIO())


def test_run_counts_events_not_records_and_says_what_was_quarantined(
    aws_client: Any, emulator: Any, aws_env: dict[str, str], tmp_path: Path
) -> None:
    """Three events aggregated into one Kinesis record, and one poison record: the summary
    counts four events, says one was quarantined and where to look, and fits 80 columns."""
    handlers.reset()
    stack = RuntimeStack(aws_client, emulator.endpoint_url, tmp_path)
    workspace = stack.prefix.rstrip("-")
    stream_arn = stack.stream()
    stack.function("quarantine_poison", env={"POWERTOOLS_SERVICE_NAME": "consumer"})
    stack.mapping(stream_arn, BatchSize=10)
    aggregator = Aggregator()
    for payload in (b"one", b"two", b"three"):
        assert aggregator.add("k", payload)
    stack.kinesis.put_record(StreamName=stack.stream_name, Data=aggregator.seal(), PartitionKey="k")
    stack.put("poison")
    outputs = {
        "function_names": {"consumer": f"{stack.prefix}fn"},
        "name_prefix": workspace,
        "region": "us-east-1",
    }
    Workspace(workspace, emulator.endpoint_url, "us-east-1", outputs, state_dir=tmp_path).save()
    args = parse("--workspace", workspace, "--until-drained", "--state-dir", str(tmp_path))
    out = io.StringIO()

    assert args.func(args, stdout=out) == 0

    text = out.getvalue()
    lines = text.splitlines()
    assert all(len(line) < 80 for line in lines), text
    header, row = lines[0].split(), lines[1].split()
    assert header == ["consumer", "records", "events", "quarantined", "errors", "dead-lettered"]
    assert row == ["fn", "<-", "stream", "2", "4", "1", "0", "0"]
    assert "the producer aggregates many events into each" in text
    assert "1 poison event(s) quarantined" in text
    assert f"pipeline quarantine list --workspace {workspace}" in text

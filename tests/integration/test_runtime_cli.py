"""``pipeline run`` drives the runtime for a workspace and prints what it did."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path
from typing import Any

import pytest

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

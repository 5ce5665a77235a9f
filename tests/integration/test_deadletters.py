"""A dead-lettered batch is never only a note of where data used to be.

A consumer that fails every batch gives its records up to its on-failure destination, which
keeps only their coordinates; the archiver, on its own mapping of the same stream, archived
them. ``pipeline deadletters show`` turns the coordinates back into the events (and the
poison) from the archive, and from the stream when the archive does not hold them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipelines.stream.producer import Producer
from pipelines.stream.records import decode_stream_record
from pipelines_local.deadletters import (
    ARCHIVE,
    STREAM,
    destination_queues,
    failed_batches,
    recover,
)
from pipelines_local.workspace import Workspace
from tests.integration.runtime_stack import RuntimeStack
from tests.stack import DeployedStack
from tests.unit.test_lake_writer import sample_events

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARCHIVER = "functions.archiver.handler.lambda_handler"
POISON = b"neither an event nor base64-decodable trouble"


class GivenUpError(RuntimeError):
    """The consumer that fails every batch."""


def fail_every_batch(event: dict[str, Any], context: Any) -> Any:
    raise GivenUpError(f"gave up on {len(event['Records'])} records")


@pytest.fixture(scope="module")
def given_up(deployed: DeployedStack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A stream read by the archiver and by a consumer that fails; what each left behind."""
    stack = RuntimeStack(deployed.client, deployed.endpoint_url, tmp_path_factory.mktemp("dl"))
    stack.handler_module = None
    isolated = deployed.isolated("archiver", stack.prefix.rstrip("-"))
    stream_arn = stack.stream(shards=1)
    env = {**isolated.env, "POWERTOOLS_TRACE_DISABLED": "true"}
    stack.function(ARCHIVER, env=env, name="archiver")
    stack.mapping(
        stream_arn,
        BatchSize=1000,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=False,
    )
    queue_url, queue_arn = stack.queue("broken-dlq")
    stack.function(f"{__name__}.fail_every_batch", name="broken")
    stack.mapping(
        stream_arn,
        BatchSize=50,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        BisectBatchOnFunctionError=False,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    events = sample_events(30)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in deployed.workspace.env().items():
            monkeypatch.setenv(name, value)
        Producer(stack.kinesis, stack.stream_name).put_events(events)
        stack.kinesis.put_record(StreamName=stack.stream_name, Data=POISON, PartitionKey="p")
        result = stack.runtime().run(until_drained=True, max_seconds=60)
    assert result.drained, result.stats
    return {
        "stack": stack,
        "events": events,
        "queue_url": queue_url,
        "archive": isolated.buckets["archive"],
        "records_dead_lettered": result.stats.records_dead_lettered,
    }


@pytest.mark.needs("local_runtime")
def test_coordinates_on_the_destination_turn_back_into_events_from_the_archive(
    deployed: DeployedStack, given_up: dict[str, Any]
) -> None:
    stack = given_up["stack"]

    batches = failed_batches(stack.sqs, given_up["queue_url"])
    recovered = [
        recover(
            b, s3=deployed.client("s3"), archive_bucket=given_up["archive"], archive_prefix="events"
        )
        for b in batches
    ]

    assert batches and given_up["records_dead_lettered"] > 0
    assert all(b.condition == "RetryAttemptsExhausted" and b.batch_size for b in batches)
    records = [r for batch in recovered for r in batch.records]
    assert {r.source for r in records} == {ARCHIVE}
    assert all(batch.missing == 0 for batch in recovered)
    assert sorted(r.event_id for r in records if r.event_id) == sorted(
        e["metadata"]["event_id"] for e in given_up["events"]
    )
    events = {e["metadata"]["event_id"]: e["metadata"]["event_type"] for e in given_up["events"]}
    assert all(events[r.event_id] == r.event_type for r in records if r.event_id)
    (poison,) = [r for r in records if r.poison_code]
    assert (poison.partition_key, poison.size, poison.event_type) == ("p", len(POISON), None)
    assert failed_batches(stack.sqs, given_up["queue_url"]) == batches  # read, not consumed


@pytest.mark.needs("local_runtime")
def test_records_the_archive_does_not_hold_come_from_the_stream_while_it_holds_them(
    deployed: DeployedStack, given_up: dict[str, Any]
) -> None:
    stack = given_up["stack"]
    s3 = deployed.client("s3")
    empty = f"{given_up['archive'][:50]}-empty"
    s3.create_bucket(Bucket=empty)

    recovered = [
        recover(b, s3=s3, archive_bucket=empty, archive_prefix="events", kinesis=stack.kinesis)
        for b in failed_batches(stack.sqs, given_up["queue_url"])
    ]

    records = [r for batch in recovered for r in batch.records]
    assert {r.source for r in records} == {STREAM}
    assert len([r for r in records if r.event_id]) == len(given_up["events"])
    assert [r.poison_code for r in records if r.poison_code] == ["corrupt_record"]
    assert all(batch.missing == 0 for batch in recovered)


@pytest.mark.needs("local_runtime")
def test_pipeline_deadletters_show_prints_the_events_of_each_batch(
    deployed: DeployedStack, given_up: dict[str, Any]
) -> None:
    workspace = deployed.workspace
    common = ["--workspace", workspace.name, "--bucket", given_up["archive"]]

    shown = _pipeline(
        workspace, "deadletters", "show", "--queue", given_up["queue_url"], *common, "--json"
    )
    text = _pipeline(workspace, "deadletters", "show", "--queue", given_up["queue_url"], *common)

    documents = json.loads(shown)
    ids = [r["event_id"] for d in documents for r in d["records"] if r["event_id"]]
    assert sorted(ids) == sorted(e["metadata"]["event_id"] for e in given_up["events"])
    assert {r["source"] for d in documents for r in d["records"]} == {"archive"}
    assert all(event_id in text for event_id in ids)
    assert "corrupt_record" in text

    first = documents[0]
    one = json.loads(
        _pipeline(
            workspace,
            "deadletters",
            "show",
            "--shard",
            first["shard_id"],
            "--start",
            first["start_sequence_number"],
            "--end",
            first["end_sequence_number"],
            *common,
            "--no-stream",
            "--json",
        )
    )
    assert one[0]["records"] == first["records"]


def test_every_deployed_function_has_an_on_failure_queue_to_read(deployed: DeployedStack) -> None:
    functions = dict(deployed.workspace.output("function_names"))
    # The compactor is invoked by its schedule, not a mapping: the schedule's dead-letter
    # queue is where its failed invocations go (tests/integration/test_terraform_stack.py).
    functions.pop("lake-compactor")

    queues = destination_queues(deployed.client("lambda"), functions)

    assert set(queues) == set(functions) >= {"projector", "alerter", "lake-writer", "archiver"}
    assert all(arn.endswith(f"{functions[key]}-dlq") for key, arn in queues.items())


def _pipeline(workspace: Workspace, *args: str) -> str:
    """``pipeline ARGS`` in a fresh process, as a user runs it."""
    completed = subprocess.run(
        [sys.executable, "-m", "pipelines_local.cli", *args],
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "PIPELINE_STATE_DIR": str(workspace.state_dir),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def _replayed_on_stream(stack: RuntimeStack, replay_id: str) -> list[str]:
    """The event ids on the stack's stream carrying ``replay_id``, in stream order."""
    ids = []
    for shard in stack.kinesis.list_shards(StreamName=stack.stream_name)["Shards"]:
        iterator = stack.kinesis.get_shard_iterator(
            StreamName=stack.stream_name,
            ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
        while iterator:
            page = stack.kinesis.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                decoded = decode_stream_record(
                    bytes(record["Data"]),
                    partition_key=record["PartitionKey"],
                    sequence_number=record["SequenceNumber"],
                )
                for delivered in decoded.events:
                    if delivered.event.record["metadata"].get("replay_id") == replay_id:
                        ids.append(delivered.event.event_id)
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return ids


@pytest.mark.needs("local_runtime")
def test_pipeline_deadletters_redrive_puts_each_archived_event_back_once(
    deployed: DeployedStack, given_up: dict[str, Any]
) -> None:
    workspace = deployed.workspace
    stack = given_up["stack"]
    args = ["deadletters", "redrive", "--queue", given_up["queue_url"]]
    common = ["--workspace", workspace.name, "--bucket", given_up["archive"]]
    common += ["--stream", stack.stream_name, "--json"]
    sent = sorted(e["metadata"]["event_id"] for e in given_up["events"])

    preview = json.loads(_pipeline(workspace, *args, *common))
    assert preview["execute"] is False
    assert preview["events"] == len(sent) and preview["poison_skipped"] >= 1
    assert _replayed_on_stream(stack, preview["replay_id"]) == []

    done = json.loads(_pipeline(workspace, *args, *common, "--execute"))
    assert done["execute"] is True and done["events"] == len(sent)
    assert sorted(_replayed_on_stream(stack, done["replay_id"])) == sent  # each once

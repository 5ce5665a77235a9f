"""Failure semantics of the Kinesis and SQS mappings, each as AWS documents it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pipelines_local.runtime import CheckpointStore
from tests.integration import runtime_handlers as handlers
from tests.integration.runtime_stack import RuntimeStack

pytestmark = pytest.mark.integration

SAMPLE_DESTINATION = json.loads(
    (
        Path(__file__).resolve().parents[1] / "events" / "kinesisOnFailureDestination.json"
    ).read_text()
)


@pytest.fixture
def stack(aws_client: Any, emulator: Any, aws_env: dict[str, str], tmp_path: Path) -> RuntimeStack:
    handlers.reset()
    return RuntimeStack(aws_client, emulator.endpoint_url, tmp_path)


def delivered(calls: list[handlers.Call]) -> list[list[str]]:
    return [call.payloads for call in calls]


def checkpoint(stack: RuntimeStack, mapping_uuid: str) -> str | None:
    return CheckpointStore(stack.checkpoint_path).get(mapping_uuid, "shardId-000000000000")


def test_partial_failure_checkpoints_at_the_lowest_failed_record_and_redelivers_after_it(
    stack: RuntimeStack,
) -> None:
    stream_arn = stack.stream()
    stack.function("report_failing", env={"FAIL_DATA": "r4,r2", "FAIL_ONCE": "1"})
    uuid = stack.mapping(
        stream_arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]
    )
    sequence = stack.put("r0", "r1", "r2", "r3", "r4", "r5")
    runtime = stack.runtime()

    runtime.step()
    assert checkpoint(stack, uuid) == sequence[1]  # everything before the lowest failure
    result = runtime.run(until_drained=True, max_seconds=20)

    assert delivered(handlers.CALLS) == [
        ["r0", "r1", "r2", "r3", "r4", "r5"],
        ["r2", "r3", "r4", "r5"],  # from the lowest failed sequence number, r4 included
    ]
    assert checkpoint(stack, uuid) == sequence[-1]
    assert result.stats.partial_failures == 1
    assert result.stats.retries == 1
    assert result.stats.records_succeeded == 6


@pytest.mark.parametrize("handler", ["report_empty_identifier", "report_unknown_identifier"])
def test_malformed_item_identifier_fails_the_whole_batch(stack: RuntimeStack, handler: str) -> None:
    stream_arn = stack.stream()
    stack.function(handler)
    stack.mapping(stream_arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    stack.put("r0", "r1", "r2")

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert delivered(handlers.CALLS) == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]
    assert result.stats.records_succeeded == 3


def test_function_error_retries_the_whole_batch(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("raise_on_failing", env={"FAIL_DATA": "r1", "FAIL_ONCE": "1"})
    stack.mapping(stream_arn, BatchSize=10)
    stack.put("r0", "r1", "r2")

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert delivered(handlers.CALLS) == [["r0", "r1", "r2"], ["r0", "r1", "r2"]]
    assert result.stats.function_errors == 1
    assert result.stats.retries == 1


def test_bisect_isolates_the_failing_record(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    _, destination_arn = stack.queue("failures")
    destination_url = stack.sqs.get_queue_url(QueueName=f"{stack.prefix}failures")["QueueUrl"]
    stack.function("raise_on_failing", env={"FAIL_DATA": "r5"})
    uuid = stack.mapping(
        stream_arn,
        BatchSize=8,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": destination_arn}},
    )
    payloads = [f"r{i}" for i in range(8)]
    sequence = stack.put(*payloads)

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert delivered(handlers.CALLS) == [
        payloads,  # fails: split in halves
        ["r0", "r1", "r2", "r3"],
        ["r4", "r5", "r6", "r7"],  # fails: split
        ["r4", "r5"],  # fails: split
        ["r4"],
        ["r5"],  # fails: retried once (MaximumRetryAttempts 1), then given up on
        ["r5"],
        ["r6", "r7"],
    ]
    [message] = stack.destination_messages(destination_url)
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (sequence[5], sequence[5])
    assert info["batchSize"] == 1
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert checkpoint(stack, uuid) == sequence[-1]
    assert result.stats.bisections == 3
    assert result.stats.records_dead_lettered == 1
    assert result.stats.records_succeeded == 7


def test_exhausted_retries_send_the_batch_coordinates_to_the_on_failure_destination(
    stack: RuntimeStack,
) -> None:
    stream_arn = stack.stream()
    destination_url, destination_arn = stack.queue("failures")
    function_arn = stack.function("raise_on_failing", env={"FAIL_DATA": "r1"})
    uuid = stack.mapping(
        stream_arn,
        BatchSize=10,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": destination_arn}},
    )
    sequence = stack.put("r0", "r1", "r2")
    stack.put("r3")

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert delivered(handlers.CALLS)[:3] == [["r0", "r1", "r2", "r3"]] * 3  # 1 + 2 retries
    assert len(handlers.CALLS) == 3
    [message] = stack.destination_messages(destination_url)
    assert set(message) == set(SAMPLE_DESTINATION)
    for part in ("requestContext", "responseContext", "KinesisBatchInfo"):
        assert set(message[part]) == set(SAMPLE_DESTINATION[part])
    assert message["version"] == "1.0"
    assert message["requestContext"] == {
        "requestId": handlers.CALLS[-1].request_id,
        "functionArn": function_arn,
        "condition": "RetryAttemptsExhausted",
        "approximateInvokeCount": 3,
    }
    assert message["responseContext"]["functionError"] == "Unhandled"
    info = message["KinesisBatchInfo"]
    assert info["shardId"] == "shardId-000000000000"
    assert info["startSequenceNumber"] == sequence[0]
    assert info["batchSize"] == 4
    assert info["streamArn"] == stream_arn
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert checkpoint(stack, uuid) == info["endSequenceNumber"]  # the shard moved on
    assert result.stats.records_dead_lettered == 4


def test_records_older_than_the_maximum_age_are_not_delivered(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    destination_url, destination_arn = stack.queue("failures")
    stack.function("succeed")
    uuid = stack.mapping(
        stream_arn,
        BatchSize=10,
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": destination_arn}},
    )
    sequence = stack.put("old0", "old1")
    later = time.time() + 120  # two minutes on: both records are too old

    result = stack.runtime(clock=lambda: later).run(until_drained=True, max_seconds=20)

    assert handlers.CALLS == []
    [message] = stack.destination_messages(destination_url)
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    info = message["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == tuple(sequence)
    assert checkpoint(stack, uuid) == sequence[-1]
    assert result.stats.records_expired == 2


def test_sqs_partial_failure_deletes_only_the_messages_that_succeeded(
    stack: RuntimeStack,
) -> None:
    url, queue_arn = stack.queue("input", VisibilityTimeout="1")
    stack.function("report_failing", env={"FAIL_DATA": "m2", "FAIL_ONCE": "1"})
    stack.mapping(queue_arn, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"])
    for body in ("m0", "m1", "m2", "m3"):
        stack.sqs.send_message(QueueUrl=url, MessageBody=body)
    runtime = stack.runtime()

    assert runtime.step()
    counts = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        counts["ApproximateNumberOfMessages"],
        counts["ApproximateNumberOfMessagesNotVisible"],
    ) == (
        "0",
        "1",  # only m2 is left, invisible until its visibility timeout ends
    )
    result = runtime.run(until_drained=True, max_seconds=20)

    assert sorted(delivered(handlers.CALLS)[0]) == ["m0", "m1", "m2", "m3"]
    assert delivered(handlers.CALLS)[1:] == [["m2"]]
    redelivered = handlers.CALLS[1].event["Records"][0]
    assert redelivered["attributes"]["ApproximateReceiveCount"] == "2"
    assert result.stats.records_succeeded == 4


def test_sqs_function_error_leaves_every_message_for_redelivery(stack: RuntimeStack) -> None:
    url, queue_arn = stack.queue("input", VisibilityTimeout="1")
    stack.function("raise_on_failing", env={"FAIL_DATA": "m1", "FAIL_ONCE": "1"})
    stack.mapping(queue_arn, BatchSize=10)
    for body in ("m0", "m1"):
        stack.sqs.send_message(QueueUrl=url, MessageBody=body)

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    first, *again = delivered(handlers.CALLS)
    assert sorted(first) == ["m0", "m1"]
    # both come back once their visibility ends; SQS does not promise they share a batch
    assert sorted(body for payloads in again for body in payloads) == ["m0", "m1"]
    assert result.stats.function_errors == 1
    assert result.stats.records_succeeded == 2

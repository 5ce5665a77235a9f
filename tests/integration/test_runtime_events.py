"""Handlers get events shaped as AWS documents them, with a Lambda context and environment."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.integration import runtime_handlers as handlers
from tests.integration.runtime_stack import RuntimeStack

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[1] / "events"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def shape(value: Any) -> Any:
    """The keys (recursively) and value types of a JSON document, without its values."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


@pytest.fixture
def stack(aws_client: Any, emulator: Any, aws_env: dict[str, str], tmp_path: Path) -> RuntimeStack:
    handlers.reset()
    return RuntimeStack(aws_client, emulator.endpoint_url, tmp_path)


def test_kinesis_event_has_the_documented_shape(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("succeed")
    stack.mapping(stream_arn, BatchSize=10)
    sequence_numbers = stack.put("hello", "world", partition_key="user-1")

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert result.drained
    [call] = handlers.CALLS
    documented = sample("kinesisStreamEvent.json")
    assert shape(call.event) == shape(documented)
    first = call.event["Records"][0]
    assert first["eventSource"] == "aws:kinesis"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventVersion"] == "1.0"
    assert first["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert first["eventSourceARN"] == stream_arn
    assert first["awsRegion"] == "us-east-1"
    assert first["invokeIdentityArn"] == stack.role_arn
    assert first["kinesis"]["partitionKey"] == "user-1"
    assert [r["kinesis"]["sequenceNumber"] for r in call.event["Records"]] == sequence_numbers
    assert first["eventID"] == f"shardId-000000000000:{sequence_numbers[0]}"
    assert base64.b64decode(first["kinesis"]["data"]) == b"hello"


def test_sqs_event_has_the_documented_shape(stack: RuntimeStack) -> None:
    url, queue_arn = stack.queue("input")
    stack.function("succeed")
    stack.mapping(queue_arn, BatchSize=10)
    stack.sqs.send_message(
        QueueUrl=url,
        MessageBody="Test message.",
        MessageAttributes={"myAttribute": {"DataType": "String", "StringValue": "myValue"}},
    )
    stack.sqs.send_message(QueueUrl=url, MessageBody="Test message.")

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert result.drained
    records = [r for call in handlers.CALLS for r in call.event["Records"]]
    documented = {len(r["messageAttributes"]): r for r in sample("sqsEvent.json")["Records"]}
    by_attributes = {len(r["messageAttributes"]): r for r in records}
    with_attribute = dict(by_attributes[1])
    assert with_attribute.pop("md5OfMessageAttributes")  # present when there are attributes
    assert shape(with_attribute) == shape(documented[1])
    assert shape(by_attributes[0]) == shape(documented[0])
    assert with_attribute["messageAttributes"]["myAttribute"]["stringValue"] == "myValue"
    assert with_attribute["eventSource"] == "aws:sqs"
    assert with_attribute["eventSourceARN"] == queue_arn
    assert (
        stack.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]["ApproximateNumberOfMessages"]
        == "0"
    )


def test_handler_gets_a_lambda_context_and_the_function_environment(
    stack: RuntimeStack,
) -> None:
    stream_arn = stack.stream()
    stack.function("succeed", env={"TABLE_NAME": "users", "AWS_REGION": "eu-west-1"}, timeout=7)
    stack.mapping(stream_arn, BatchSize=1)
    stack.put("a", "b")

    stack.runtime().run(until_drained=True, max_seconds=20)

    first, second = handlers.CALLS
    assert first.function_name == stack.function_name
    assert first.request_id != second.request_id
    assert 0 < first.remaining_ms <= 7000
    assert first.env["TABLE_NAME"] == "users"
    assert first.env["AWS_LAMBDA_FUNCTION_NAME"] == stack.function_name
    assert first.env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert first.env["_HANDLER"] == f"{handlers.__name__}.succeed"
    assert first.env["AWS_REGION"] == "us-east-1"  # reserved: the function cannot override it
    assert first.env["AWS_ENDPOINT_URL"] == stack.endpoint_url
    assert "TABLE_NAME" not in os.environ  # restored after the invocation


def test_batch_size_is_honoured_and_order_kept(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("succeed")
    stack.mapping(stream_arn, BatchSize=10)
    payloads = [f"r{i}" for i in range(25)]
    stack.put(*payloads)

    result = stack.runtime().run(until_drained=True, max_seconds=20)

    assert [len(call.payloads) for call in handlers.CALLS] == [10, 10, 5]
    assert [p for call in handlers.CALLS for p in call.payloads] == payloads
    assert result.stats.batches == 3
    assert result.stats.records_delivered == result.stats.records_succeeded == 25


def test_batching_window_waits_for_a_fuller_batch(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("succeed")
    stack.mapping(stream_arn, BatchSize=10, MaximumBatchingWindowInSeconds=5)
    stack.put("a", "b")
    now = [1_000.0]
    runtime = stack.runtime(clock=lambda: now[0])

    assert not runtime.step()  # two records, window not over: keep gathering
    stack.put("c")
    now[0] += 2
    assert not runtime.step()
    now[0] += 3.5
    assert runtime.step()

    assert [call.payloads for call in handlers.CALLS] == [["a", "b", "c"]]


def test_latest_starting_position_skips_what_was_already_there(stack: RuntimeStack) -> None:
    stream_arn = stack.stream()
    stack.function("succeed")
    stack.mapping(stream_arn, BatchSize=10, StartingPosition="LATEST")
    stack.put("before")
    runtime = stack.runtime()
    runtime.step()
    stack.put("after")

    runtime.run(until_drained=True, max_seconds=20)

    assert [p for call in handlers.CALLS for p in call.payloads] == ["after"]

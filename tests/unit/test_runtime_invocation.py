"""Events, context, environment and invocation, without an emulator."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from pipelines_local.runtime.context import LambdaContext, function_environment
from pipelines_local.runtime.destinations import (
    RETRY_ATTEMPTS_EXHAUSTED,
    FailedBatch,
    invocation_record,
    iso_timestamp,
)
from pipelines_local.runtime.discovery import (
    INFINITE,
    FunctionConfig,
    MappingConfig,
    function_name_of,
    source_kind,
)
from pipelines_local.runtime.errors import RuntimeConfigError
from pipelines_local.runtime.events import StreamRecord, kinesis_event, sqs_event
from pipelines_local.runtime.invoker import Invoker

EVENTS = Path(__file__).resolve().parents[1] / "events"
FUNCTION = FunctionConfig(
    name="pipelines-local-projector",
    arn="arn:aws:lambda:us-east-2:123456789012:function:pipelines-local-projector",
    handler="json.dumps",
    role="arn:aws:iam::123456789012:role/lambda-role",
    timeout_seconds=5,
    environment={"TABLE": "users", "AWS_LAMBDA_FUNCTION_NAME": "spoofed"},
)
STREAM = "arn:aws:kinesis:us-east-2:123456789012:stream/lambda-stream"


def sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def mapping(**overrides: Any) -> MappingConfig:
    api = {"UUID": "u-1", "EventSourceArn": STREAM, "StartingPosition": "LATEST", **overrides}
    return MappingConfig.from_api(api, FUNCTION)


def test_kinesis_event_matches_the_documented_sample() -> None:
    documented = sample("kinesisStreamEvent.json")["Records"]
    records = [
        StreamRecord(
            "shardId-000000000006",
            r["kinesis"]["sequenceNumber"],
            r["kinesis"]["partitionKey"],
            base64.b64decode(r["kinesis"]["data"]),
            r["kinesis"]["approximateArrivalTimestamp"],
        )
        for r in documented
    ]
    assert kinesis_event(records, mapping()) == {"Records": documented}


def test_sqs_event_matches_the_documented_sample() -> None:
    documented = sample("sqsEvent.json")["Records"]
    messages = [
        {
            "MessageId": r["messageId"],
            "ReceiptHandle": r["receiptHandle"],
            "Body": r["body"],
            "Attributes": r["attributes"],
            "MD5OfBody": r["md5OfBody"],
            "MessageAttributes": {
                name: {"StringValue": a["stringValue"], "DataType": a["dataType"]}
                for name, a in r["messageAttributes"].items()
            },
        }
        for r in documented
    ]
    queue = mapping(EventSourceArn="arn:aws:sqs:us-east-2:123456789012:my-queue")
    assert sqs_event(messages, queue) == {"Records": documented}


def test_on_failure_record_has_the_documented_shape() -> None:
    documented = sample("kinesisOnFailureDestination.json")
    records = [
        StreamRecord("shardId-000000000001", "7", "k", b"x", 1573691884.835),
        StreamRecord("shardId-000000000001", "12", "k", b"y", 1573691885.580),
    ]
    failed = FailedBatch(records, RETRY_ATTEMPTS_EXHAUSTED, 1, "req-1", "Unhandled")
    document = invocation_record(failed, mapping(), now=1573691886.021)
    assert document.keys() == documented.keys()
    for part in ("requestContext", "responseContext", "KinesisBatchInfo"):
        assert document[part].keys() == documented[part].keys()
    assert document["timestamp"] == "2019-11-14T00:38:06.021Z"
    assert document["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == (
        "2019-11-14T00:38:04.835Z"
    )
    assert document["KinesisBatchInfo"]["startSequenceNumber"] == "7"
    assert document["KinesisBatchInfo"]["endSequenceNumber"] == "12"
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"


def test_mapping_defaults_are_aws_defaults() -> None:
    config = mapping()
    assert config.batch_size == 100
    assert config.maximum_retry_attempts == INFINITE
    assert config.maximum_record_age_seconds == INFINITE
    assert not config.bisect_on_error and not config.report_batch_item_failures
    assert config.on_failure_destination is None
    queue = mapping(EventSourceArn="arn:aws:sqs:us-east-2:123456789012:q")
    assert queue.batch_size == 10


def test_names_and_sources_from_arns() -> None:
    assert function_name_of(FUNCTION.arn + ":live") == "pipelines-local-projector"
    assert source_kind(STREAM) == "kinesis"
    with pytest.raises(RuntimeConfigError):
        source_kind("arn:aws:dynamodb:us-east-2:123456789012:table/t/stream/x")


def test_context_counts_down_to_the_timeout() -> None:
    now = [100.0]
    context = LambdaContext(FUNCTION, "req-1", clock=lambda: now[0])
    assert context.get_remaining_time_in_millis() == 5000
    now[0] += 1.25
    assert context.get_remaining_time_in_millis() == 3750
    now[0] += 10
    assert context.get_remaining_time_in_millis() == 0
    assert context.aws_request_id == "req-1"
    assert context.invoked_function_arn == FUNCTION.arn


def test_function_environment_is_set_then_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TABLE", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    with function_environment(FUNCTION, {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}) as env:
        assert os.environ["TABLE"] == "users"
        assert os.environ["AWS_LAMBDA_FUNCTION_NAME"] == FUNCTION.name  # reserved, not spoofed
        assert os.environ["AWS_REGION"] == "us-east-2"
        assert os.environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
        assert env["_HANDLER"] == "json.dumps"
    assert "TABLE" not in os.environ
    assert os.environ["AWS_REGION"] == "us-east-1"


def test_import_failures_and_unserialisable_results_are_function_errors() -> None:
    invoker = Invoker()
    missing = FunctionConfig("f", FUNCTION.arn, "no_such_module.handler", FUNCTION.role)
    outcome = invoker.invoke(missing, {"Records": []})
    assert outcome.function_error == "Unhandled"
    assert "no_such_module" in (outcome.error_message or "")

    unserialisable = FunctionConfig("f", FUNCTION.arn, f"{__name__}.returns_a_set", FUNCTION.role)
    assert invoker.invoke(unserialisable, {}).failed  # Lambda cannot serialise the response

    fine = FunctionConfig("f", FUNCTION.arn, f"{__name__}.returns_a_tuple", FUNCTION.role)
    outcome = invoker.invoke(fine, {})
    assert not outcome.failed
    assert outcome.response == {"batchItemFailures": [{"itemIdentifier": "1"}]}


def returns_a_set(event: dict[str, Any], context: LambdaContext) -> Any:
    return {"a", "b"}


def returns_a_tuple(event: dict[str, Any], context: LambdaContext) -> Any:
    return {"batchItemFailures": ({"itemIdentifier": "1"},)}  # a JSON array once serialised


def test_powertools_batch_processor_reads_our_events_and_we_read_its_response() -> None:
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    from pipelines_local.runtime.responses import read_batch_response

    records = [
        StreamRecord("shardId-000000000000", str(n), "k", b"%d" % n, 1.0) for n in (8, 9, 10)
    ]

    def handle(record: Any) -> None:
        if record.kinesis.data_as_bytes() == b"9":
            raise ValueError("poison")

    response = process_partial_response(
        event=kinesis_event(records, mapping()),
        record_handler=handle,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams),
        context=LambdaContext(FUNCTION),
    )
    outcome = read_batch_response(response, [r.sequence_number for r in records])
    assert outcome.failed_ids == {"9"}

"""The projector's Lambda handler against the embedded emulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.projector import handler
from pipelines.consumers.config import ProjectorSettings
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines_local.simulator import simulate
from tests.faults import HoldBack, Throttle
from tests.kinesis_events import (
    aggregated_record,
    kinesis_event,
    kinesis_record,
    plain_records,
    table_contents,
)
from tests.stack import FAST_WRITE_RETRIES, DeployedStack, Isolated

pytestmark = pytest.mark.integration

# The sample event of the Lambda developer guide ("Using Lambda with Kinesis"), as is:
# its data is not one of our events, so it must be quarantined, not crash the handler.
AWS_SAMPLE_EVENT = json.loads(
    (Path(__file__).parents[1] / "events/kinesis_stream_event.json").read_text()
)
# The deployed function, with quicker write retries than it has on AWS.
FAST_RETRIES = {
    "WRITE_MAX_ATTEMPTS": "3",
    "WRITE_BACKOFF_BASE_MS": "1",
    "WRITE_BACKOFF_MAX_MS": "2",
}


@pytest.fixture
def stores(
    deployed: DeployedStack, deployed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Isolated:
    """The projector's environment as Terraform set it, on copies of its tables and bucket."""
    isolated = deployed.isolated("projector")
    for name, value in {**isolated.env, **FAST_WRITE_RETRIES}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    handler.projector_for.cache_clear()
    return isolated


@pytest.fixture
def context(deployed: DeployedStack) -> Any:
    return deployed.context("projector")


@pytest.fixture
def dynamodb(deployed: DeployedStack) -> Any:
    return deployed.client("dynamodb")


@pytest.fixture
def s3(deployed: DeployedStack) -> Any:
    return deployed.client("s3")


def _invoke(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response: dict[str, Any] = handler.lambda_handler(event, context)
    return json.loads(json.dumps(response))  # as Lambda serialises it


def _handler_dynamodb_client() -> Any:
    """The handler's own client, to inject faults into (it is built on first use)."""
    return handler.projector_for(ProjectorSettings.from_env()).consumer.writer.client


def test_handler_accepts_the_documented_kinesis_event(
    stores: Isolated, context: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _invoke(AWS_SAMPLE_EVENT, context) == {"batchItemFailures": []}
    objects = s3.list_objects_v2(Bucket=stores.buckets["quarantine"])["Contents"]
    keys = sorted(o["Key"] for o in objects)
    seq = AWS_SAMPLE_EVENT["Records"][0]["kinesis"]["sequenceNumber"]
    assert keys == [
        f"projector/shardId-000000000006/{seq}-0.avro",
        f"projector/shardId-000000000006/{seq}-0.json",
    ]
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf, "no EMF metrics were printed"
    namespace = stores.env["POWERTOOLS_METRICS_NAMESPACE"]
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == namespace
    assert emf[-1]["EventsQuarantined"] in (1, [1])
    assert emf[-1]["EventsProjected"] in (0, [0])


def test_events_land_and_redelivery_changes_nothing(
    stores: Isolated, context: Any, dynamodb: Any
) -> None:
    events = simulate(600, seed=5).events
    records = [*plain_records(events[:100]), aggregated_record(events[100:], 500)]
    assert _invoke(kinesis_event(records), context) == {"batchItemFailures": []}
    first = table_contents(dynamodb, stores.tables)
    assert sum(len(items) for items in first.values()) > 400
    assert _invoke(kinesis_event(records), context) == {"batchItemFailures": []}
    assert table_contents(dynamodb, stores.tables) == first


def test_throttled_writes_are_reported_as_batch_item_failures(
    stores: Isolated, context: Any, dynamodb: Any
) -> None:
    Throttle(_handler_dynamodb_client(), "BatchWriteItem")
    activity = new_event(
        "UserActivityRecorded", {"user_id": "user-1", "activity_type": "login"}, producer="t"
    )
    records = plain_records([activity])
    response = _invoke(kinesis_event(records), context)
    assert response == {
        "batchItemFailures": [{"itemIdentifier": records[0]["kinesis"]["sequenceNumber"]}]
    }
    assert table_contents(dynamodb, stores.tables)["user_activities"] == []


def test_unprocessed_items_fail_their_record_and_its_key_not_the_rest(
    stores: Isolated, context: Any, dynamodb: Any
) -> None:
    def activity(user: str) -> dict[str, Any]:
        body = {"user_id": user, "activity_type": "login"}
        return new_event("UserActivityRecorded", body, producer="t")

    batch = [activity("user-a"), activity("user-b"), activity("user-a")]
    held = batch[0]["metadata"]["event_id"]
    HoldBack(_handler_dynamodb_client(), lambda item: item["event_id"]["S"] == held)
    records = plain_records(batch)
    response = _invoke(kinesis_event(records), context)
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert failed == [
        records[0]["kinesis"]["sequenceNumber"],
        records[2]["kinesis"]["sequenceNumber"],
    ]
    stored = {i["user_id"]["S"] for i in table_contents(dynamodb, stores.tables)["user_activities"]}
    assert stored == {"user-b"}


def test_poison_in_an_aggregate_is_quarantined_while_the_rest_lands(
    stores: Isolated, context: Any, dynamodb: Any, s3: Any
) -> None:
    events = simulate(50, seed=9).events
    items = [(e["metadata"]["aggregate_id"], encode_event(e)) for e in events]
    items.insert(10, ("host-x", b"\xc3\x01\x00\x01\x02\x03\x04\x05\x06\x07broken"))
    record = aggregated_record(items, 1)
    assert _invoke(kinesis_event([record]), context) == {"batchItemFailures": []}
    seq = record["kinesis"]["sequenceNumber"]
    report_key = f"projector/shardId-000000000006/{seq}-10.json"
    quarantine = stores.buckets["quarantine"]
    report = json.loads(s3.get_object(Bucket=quarantine, Key=report_key)["Body"].read())
    assert report["partition_key"] == "host-x"
    assert report["code"] == "unknown_schema"
    assert report["aggregated"] is True
    landed = sum(len(v) for v in table_contents(dynamodb, stores.tables).values())
    assert landed > 0


def test_a_record_that_is_not_base64_is_quarantined(
    stores: Isolated, context: Any, s3: Any
) -> None:
    record = kinesis_record(b"", "user-1", 1)
    record["kinesis"]["data"] = "not base64!"
    assert _invoke(kinesis_event([record]), context) == {"batchItemFailures": []}
    assert len(s3.list_objects_v2(Bucket=stores.buckets["quarantine"])["Contents"]) == 2


# --- one bad event loses no good one ------------------------------------------------------


def _activity(user: str, **body: Any) -> dict[str, Any]:
    return new_event(
        "UserActivityRecorded", {"user_id": user, "activity_type": "login", **body}, producer="t"
    )


def _requests_holding(client: Any, event_id: str) -> list[str]:
    """Records every write request to ``client`` that holds an item of ``event_id``."""
    seen: list[str] = []

    def inspect(params: dict[str, Any], event_name: str, **_: Any) -> None:
        if event_id in json.dumps(params, default=str):
            seen.append(event_name.rsplit(".", 1)[-1])

    for operation in ("BatchWriteItem", "PutItem", "UpdateItem"):
        client.meta.events.register(f"before-parameter-build.dynamodb.{operation}", inspect)
    return seen


def _emf(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics: dict[str, Any] = lines[-1]
    return metrics


def test_an_activity_over_400_kb_is_quarantined_and_the_100_good_ones_around_it_land(
    stores: Isolated, context: Any, dynamodb: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    good = [_activity(f"user-{n:03d}") for n in range(100)]
    big = _activity("user-big", details={"notes": "x" * 450_000})
    events = [*good[:40], big, *good[40:]]  # 40 good ones before it, 60 after
    sent = _requests_holding(_handler_dynamodb_client(), big["metadata"]["event_id"])
    records = plain_records(events)

    assert _invoke(kinesis_event(records), context) == {"batchItemFailures": []}

    stored = {
        i["event_id"]["S"] for i in table_contents(dynamodb, stores.tables)["user_activities"]
    }
    assert stored == {e["metadata"]["event_id"] for e in good}
    assert sent == []  # refused while planning: never sent to DynamoDB
    quarantine = stores.buckets["quarantine"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=quarantine)["Contents"])
    seq = records[40]["kinesis"]["sequenceNumber"]
    prefix = f"projector/shardId-000000000006/{seq}-0"
    assert keys == [f"{prefix}.avro", f"{prefix}.json"]
    raw = s3.get_object(Bucket=quarantine, Key=f"{prefix}.avro")["Body"].read()
    assert raw == encode_event(big)
    report = json.loads(s3.get_object(Bucket=quarantine, Key=f"{prefix}.json")["Body"].read())
    assert report["code"] == "invalid_event"
    assert "over DynamoDB's 400 KB item size limit" in report["reason"]
    assert "its largest attribute is details" in report["reason"]
    emf = _emf(capsys)
    assert emf["EventsQuarantined"] in (1, [1])
    assert emf["EventsProjected"] in (100, [100])
    assert emf["RecordsFailed"] in (0, [0])


def test_an_event_id_of_1100_characters_is_quarantined_not_retried(
    stores: Isolated, context: Any, dynamodb: Any, s3: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    long_id = new_event(
        "UserActivityRecorded",
        {"user_id": "user-1", "activity_type": "login"},
        producer="t",
        event_id="e" * 1_100,
    )
    good = [_activity("user-1"), _activity("user-2")]
    sent = _requests_holding(_handler_dynamodb_client(), "e" * 1_100)
    records = plain_records([good[0], long_id, good[1]])

    for _ in range(2):  # delivered again, it is quarantined again, over its own objects
        assert _invoke(kinesis_event(records), context) == {"batchItemFailures": []}
        assert _emf(capsys)["EventsQuarantined"] in (1, [1])

    assert sent == []
    stored = {
        i["event_id"]["S"] for i in table_contents(dynamodb, stores.tables)["user_activities"]
    }
    assert stored == {e["metadata"]["event_id"] for e in good}
    quarantine = stores.buckets["quarantine"]
    objects = s3.list_objects_v2(Bucket=quarantine)["Contents"]
    assert len(objects) == 2
    seq = records[1]["kinesis"]["sequenceNumber"]
    key = f"projector/shardId-000000000006/{seq}-0.json"
    report = json.loads(s3.get_object(Bucket=quarantine, Key=key)["Body"].read())
    # refused by the contract on decoding, or else by DynamoDB's 1,024-byte sort key limit
    assert "event_id" in report["reason"]

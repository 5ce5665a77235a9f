"""The projector on the batch kernel and the DynamoDB adapter, in-process and on the emulator."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.adapters.retry import RetryPolicy
from pipelines.consumers.batch import KeyOrderError, KinesisBatchKernel
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.projector.projector import build_projector
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines_local.simulator import simulate
from tests.contract.conftest import Backend
from tests.faults import HoldBack
from tests.kinesis_events import aggregated_record, kinesis_record, plain_records, table_contents
from tests.stack import Isolated

START = datetime(2026, 11, 1, tzinfo=UTC)


class Recorded:
    """A metrics sink that keeps what it is given."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def add_metric(self, name: str, unit: Any, value: float) -> None:
        self.values[name] = self.values.get(name, 0) + value


@pytest.fixture
def stores(backend: Backend) -> Isolated:
    """Copies of the projector's tables and bucket, as Terraform defined them."""
    return backend.isolated("projector")


@pytest.fixture
def clients(backend: Backend, stores: Isolated) -> tuple[Any, Any]:
    return backend.client("dynamodb"), backend.client("s3")


@pytest.fixture
def metrics() -> Recorded:
    return Recorded()


@pytest.fixture
def projector(clients: tuple[Any, Any], stores: Isolated, metrics: Recorded) -> KinesisBatchKernel:
    settings = ProjectorSettings.from_env(stores.env)
    settings = replace(settings, retry=RetryPolicy(max_attempts=2, base_delay=0.001))
    return build_projector(settings, *clients, metrics=metrics)


@pytest.fixture
def tables(stores: Isolated) -> dict[str, str]:
    return stores.tables


@pytest.fixture
def bucket(stores: Isolated) -> str:
    return stores.buckets["quarantine"]


def _user_events(user: str, versions: range) -> list[dict[str, Any]]:
    events = []
    for v in versions:
        at = START + timedelta(minutes=v)
        if v == 1:
            body = {"user_id": user, "email": f"{user}@example.com", "name": "First"}
            events.append(new_event("UserRegistered", body, producer="t", occurred_at=at))
        else:
            body = {"user_id": user, "name": f"Name v{v}"}
            events.append(
                new_event(
                    "UserProfileUpdated", body, producer="t", occurred_at=at, aggregate_version=v
                )
            )
        events[-1]["metadata"]["aggregate_version"] = v
    return events


def _activity(user: str, minute: int = 0) -> dict[str, Any]:
    body = {"user_id": user, "activity_type": "login"}
    at = START + timedelta(minutes=minute)
    return new_event("UserActivityRecorded", body, producer="t", occurred_at=at)


def _user(dynamodb: Any, tables: dict[str, str], user: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(
        TableName=tables["users"], Key={"user_id": {"S": user}}
    ).get("Item")
    return item


def _activities(dynamodb: Any, tables: dict[str, str], user: str) -> int:
    return int(
        dynamodb.query(
            TableName=tables["user_activities"],
            KeyConditionExpression="user_id = :u",
            ExpressionAttributeValues={":u": {"S": user}},
        )["Count"]
    )


def test_a_mixed_batch_lands_in_every_read_model(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    events = simulate(400, seed=7).events
    records = [*plain_records(events[:150]), aggregated_record(events[150:], 200)]
    errors = projector.process_batch(records).errors
    assert errors == [None] * len(records)
    contents = table_contents(clients[0], tables)
    expected_facts = {
        "user_activities": "UserActivityRecorded",
        "system_metrics": "MetricRecorded",
        "transactions": "TransactionRecorded",
    }
    for table, event_type in expected_facts.items():
        assert len(contents[table]) == sum(
            e["metadata"]["event_type"] == event_type for e in events
        )
    users = {e["user_id"] for e in events if e["metadata"]["event_type"] == "UserRegistered"}
    assert {i["user_id"]["S"] for i in contents["users"]} >= users


def test_redelivered_batch_changes_nothing(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    events = simulate(300, seed=11).events
    records = [*plain_records(events[:100]), aggregated_record(events[100:], 200)]
    projector.process_batch(records)
    before = table_contents(clients[0], tables)
    assert projector.process_batch(records).errors == [None] * len(records)
    assert table_contents(clients[0], tables) == before


def test_stale_and_duplicate_versions_are_skipped_not_failed(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    v1, v2, v3 = _user_events("user-1", range(1, 4))
    projector.process_batch(plain_records([v1, v3]))
    errors = projector.process_batch(plain_records([v2, v3], first=10)).errors
    assert errors == [None, None]
    user = _user(clients[0], tables, "user-1")
    assert user is not None
    assert user["aggregate_version"] == {"N": "3"}
    assert user["name"] == {"S": "Name v3"}
    assert user["email"] == {"S": "user-1@example.com"}  # not touched by the updates
    assert metrics.values["EventsSkippedStale"] == 1  # v2 after v3
    assert metrics.values["EventsSkippedDuplicate"] == 1  # v3 again


def test_an_event_repeated_in_one_batch_is_applied_once(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    activity = _activity("user-1")
    records = plain_records([activity, activity])
    assert projector.process_batch(records).errors == [None, None]
    assert _activities(clients[0], tables, "user-1") == 1
    assert metrics.values["EventsSkippedDuplicate"] == 1
    assert metrics.values["EventsProjected"] == 1


def test_unlanded_writes_fail_their_record_and_later_records_of_the_same_key(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    dynamodb = clients[0]
    first = _activity("user-a", 1)
    HoldBack(dynamodb, lambda item: item["event_id"]["S"] == first["metadata"]["event_id"])
    batch = [first, _activity("user-b", 2), _activity("user-a", 3), _activity("user-c", 4)]
    errors = projector.process_batch(plain_records(batch)).errors
    assert errors[0] is not None and errors[2] is not None
    assert isinstance(errors[2], KeyOrderError)
    assert errors[1] is None and errors[3] is None
    assert _activities(dynamodb, tables, "user-a") == 0  # the later user-a record was not applied
    assert _activities(dynamodb, tables, "user-b") == 1
    assert _activities(dynamodb, tables, "user-c") == 1
    assert metrics.values["RecordsFailed"] == 2
    assert metrics.values["RecordsBlockedByKeyOrder"] == 1


def test_a_failure_blocks_records_that_share_any_key_with_it(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb = clients[0]
    failing = _activity("user-a", 1)
    HoldBack(dynamodb, lambda item: item["event_id"]["S"] == failing["metadata"]["event_id"])
    records = [
        *plain_records([failing]),
        aggregated_record([_activity("user-a", 2), _activity("user-b", 2)], 10),
        *plain_records([_activity("user-b", 3), _activity("user-d", 3)], first=20),
    ]
    errors = projector.process_batch(records).errors
    # the aggregate meets user-a; then user-b is blocked because the aggregate failed
    assert [e is None for e in errors] == [False, False, False, True]
    assert _activities(dynamodb, tables, "user-b") == 0


def test_an_aggregate_fails_as_a_whole(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb = clients[0]
    events = [_activity(f"user-{n}", n) for n in range(40)]
    held = events[33]["metadata"]["event_id"]
    # held back for both attempts of the first delivery (the budget is 2), then it passes
    HoldBack(dynamodb, lambda item: item["event_id"]["S"] == held, times=2)
    errors = projector.process_batch([aggregated_record(events, 1)]).errors
    assert errors[0] is not None
    assert _activities(dynamodb, tables, "user-33") == 0
    # redelivered once the fault has passed, the whole aggregate lands exactly once
    assert projector.process_batch([aggregated_record(events, 1)]).errors == [None]
    assert sum(_activities(dynamodb, tables, f"user-{n}") for n in range(40)) == 40


def test_poison_record_is_quarantined_and_the_batch_goes_on(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    dynamodb, s3 = clients
    garbage = b"\xc3\x01not an event at all"
    good = _activity("user-1")
    records = [kinesis_record(garbage, "user-9", 1), *plain_records([good], first=2)]
    assert projector.process_batch(records).errors == [None, None]
    assert _activities(dynamodb, tables, "user-1") == 1
    prefix = "projector/shardId-000000000006/"
    seq = records[0]["kinesis"]["sequenceNumber"]
    raw = s3.get_object(Bucket=bucket, Key=f"{prefix}{seq}-0.avro")
    assert raw["Body"].read() == garbage
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}{seq}-0.json")["Body"].read())
    assert report["code"] == "unknown_schema"
    assert report["sequence_number"] == seq
    assert report["sub_sequence_number"] == 0
    assert report["shard_id"] == "shardId-000000000006"
    assert report["partition_key"] == "user-9"
    assert report["approximate_arrival"].startswith("2018-12-17T")
    assert metrics.values["EventsQuarantined"] == 1


def test_poison_inside_an_aggregate_is_quarantined_and_the_rest_lands(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb, s3 = clients
    good = [_activity("user-1", 1), _activity("user-2", 2)]
    items = [
        ("user-1", encode_event(good[0])),
        ("user-x", b"junk"),
        ("user-2", encode_event(good[1])),
    ]
    record = aggregated_record(items, 1)
    assert projector.process_batch([record]).errors == [None]
    assert _activities(dynamodb, tables, "user-1") == _activities(dynamodb, tables, "user-2") == 1
    seq = record["kinesis"]["sequenceNumber"]
    key = f"projector/shardId-000000000006/{seq}-1.avro"
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"junk"


def test_an_invalid_event_is_quarantined(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    body = {"user_id": "user-1", "name": "No version"}
    event = new_event("UserProfileUpdated", body, producer="t", occurred_at=START)
    assert projector.process_batch(plain_records([event])).errors == [None]
    objects = clients[1].list_objects_v2(Bucket=bucket)["Contents"]
    assert {o["Key"].rsplit(".", 1)[1] for o in objects} == {"avro", "json"}
    assert _user(clients[0], tables, "user-1") is None

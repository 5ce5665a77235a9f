"""The projector on the batch kernel and the DynamoDB adapter, in-process and on the emulator."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipelines.adapters.retry import RetryPolicy
from pipelines.consumers.batch import KeyOrderError, KinesisBatchKernel
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.projector.projector import build_projector
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.contract.timestamps import iso_millis
from pipelines_local.simulator import simulate
from tests.contract.conftest import Backend
from tests.faults import HoldBack, Reject
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


def _quarantined(s3: Any, bucket: str) -> list[tuple[bytes, dict[str, Any]]]:
    """Every quarantined record's bytes and report, in key order."""
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    out = []
    for key in keys:
        if key.endswith(".avro"):
            raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            report_key = key.removesuffix(".avro") + ".json"
            report = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())
            out.append((raw, report))
    return out


# --- a sink's rejection of one item is isolated to that item ----------------------------


def test_a_put_dynamodb_rejects_is_quarantined_and_the_rest_of_its_chunk_lands(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    dynamodb, s3 = clients
    events = [_activity(f"user-{n}", n) for n in range(60)]
    bad = events[30]["metadata"]["event_id"]
    Reject(dynamodb, lambda item: item.get("event_id", {}).get("S") == bad)
    records = plain_records(events)
    assert projector.process_batch(records).errors == [None] * 60
    landed = {n for n in range(60) if _activities(dynamodb, tables, f"user-{n}")}
    assert landed == set(range(60)) - {30}
    [(raw, report)] = _quarantined(s3, bucket)
    assert raw == encode_event(events[30])
    assert report["sequence_number"] == records[30]["kinesis"]["sequenceNumber"]
    assert report["code"] == "invalid_event"
    assert report["reason"] == (
        f"UserActivityRecorded: DynamoDB rejected the write to {tables['user_activities']} "
        f"(ValidationException): {Reject.MESSAGE}"
    )
    assert metrics.values["EventsProjected"] == 59
    assert metrics.values["EventsQuarantined"] == 1
    assert metrics.values["RecordsFailed"] == 0


def test_an_update_dynamodb_rejects_is_quarantined_and_later_updates_of_the_user_apply(
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    dynamodb, s3 = clients
    v1, v2, v3 = _user_events("user-1", range(1, 4))
    v1["name"] = "n" * 250_000
    del v2["name"]
    v2["phone"] = "p" * 250_000  # fits alone; with v1's name the item is over 400 KB
    del v3["name"]
    v3["email"] = "new@example.com"
    records = plain_records([v1, v2, v3])
    assert projector.process_batch(records).errors == [None, None, None]
    user = _user(dynamodb, tables, "user-1")
    assert user is not None
    assert user["email"] == {"S": "new@example.com"}
    assert "phone" not in user
    assert user["aggregate_version"] == {"N": "3"}
    [(raw, report)] = _quarantined(s3, bucket)
    assert raw == encode_event(v2)
    assert report["reason"].startswith(
        f"UserProfileUpdated: DynamoDB rejected the write to {tables['users']} "
        "(ValidationException): "
    )
    assert metrics.values["EventsProjected"] == 2
    assert metrics.values["RecordsFailed"] == 0


# --- profiles merge per field -----------------------------------------------------------


def _profile_events(user: str) -> list[dict[str, Any]]:
    """v1 registers, v2 sets the phone, v3 renames."""
    v1, v2, v3 = _user_events(user, range(1, 4))
    del v2["name"]
    v2["phone"] = "+44 20 7946 0000"
    v3["name"] = "Third"
    return [v1, v2, v3]


ORDERS = list(itertools.permutations(range(3)))


@pytest.mark.parametrize("delivery", ["a batch each", "one batch"])
@pytest.mark.parametrize("order", ORDERS, ids=lambda o: "-".join(f"v{i + 1}" for i in o))
def test_a_profile_ends_the_same_in_every_arrival_order_and_duplicates_change_nothing(
    order: tuple[int, ...],
    delivery: str,
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    dynamodb = clients[0]
    events = _profile_events("user-1")
    arriving = [events[i] for i in order]
    if delivery == "one batch":
        assert projector.process_batch(plain_records(arriving)).errors == [None] * 3
    else:
        for n, event in enumerate(arriving, start=1):
            assert projector.process_batch(plain_records([event], first=n)).errors == [None]
    user = _user(dynamodb, tables, "user-1")
    assert user is not None
    v1, _, v3 = (e["metadata"] for e in events)
    plain = {k: v for k, v in user.items() if k != "field_versions"}
    assert plain == {
        "user_id": {"S": "user-1"},
        "email": {"S": "user-1@example.com"},
        "name": {"S": "Third"},
        "phone": {"S": "+44 20 7946 0000"},
        "registered_at": {"S": iso_millis(v1["occurred_at"])},
        "updated_at": {"S": iso_millis(v3["occurred_at"])},
        "last_event_id": {"S": v3["event_id"]},
        "aggregate_version": {"N": "3"},
    }
    versions = {f: int(v["N"]) for f, v in user["field_versions"]["M"].items()}
    assert versions == {"email": 1, "name": 3, "registered_at": 1, "phone": 2}
    assert metrics.values["EventsProjected"] == 3  # each one set a field
    assert metrics.values["EventsSkippedStale"] == 0

    assert projector.process_batch(plain_records(arriving, first=10)).errors == [None] * 3
    assert _user(dynamodb, tables, "user-1") == user
    assert metrics.values["EventsSkippedDuplicate"] == 3
    assert metrics.values["EventsProjected"] == 3


def test_in_order_profile_events_take_one_write_each_and_out_of_order_ones_two(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb = clients[0]
    calls: list[str] = []
    dynamodb.meta.events.register(
        "before-call.dynamodb.UpdateItem", lambda **_: calls.append("UpdateItem")
    )
    dynamodb.meta.events.register(
        "before-call.dynamodb.GetItem", lambda **_: calls.append("GetItem")
    )
    in_order = _profile_events("user-a")
    projector.process_batch(plain_records(in_order))
    assert calls == ["UpdateItem"] * 3
    calls.clear()
    projector.process_batch(plain_records(in_order[::-1], first=10))  # duplicates
    assert calls == ["UpdateItem"] * 3  # each refused; the item it hands back says why
    calls.clear()
    projector.process_batch(plain_records(_profile_events("user-b")[::-1], first=20))
    assert calls == ["UpdateItem"] * 6  # each refused once, then merged into what it saw


def test_a_profile_written_before_field_versions_is_merged_into(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb = clients[0]
    dynamodb.put_item(
        TableName=tables["users"],
        Item={
            "user_id": {"S": "user-1"},
            "email": {"S": "old@example.com"},
            "name": {"S": "Old"},
            "aggregate_version": {"N": "2"},
        },
    )
    v1, _, v3 = _profile_events("user-1")
    assert projector.process_batch(plain_records([v3, v1])).errors == [None, None]
    user = _user(dynamodb, tables, "user-1")
    assert user is not None
    assert user["name"] == {"S": "Third"}
    assert user["email"] == {"S": "old@example.com"}  # set by v2 or earlier, newer than v1's
    assert "registered_at" in user
    versions = {f: int(v["N"]) for f, v in user["field_versions"]["M"].items()}
    assert versions == {"email": 2, "name": 3, "registered_at": 1}


# --- one transaction, several events ----------------------------------------------------


def _transaction(status: str, minute: int, version: int | None = None) -> dict[str, Any]:
    body = {
        "transaction_id": "txn-1",
        "user_id": "user-1",
        "amount": Decimal("12.5000"),
        "currency": "EUR",
        "merchant": "Shop",
        "category": "food",
        "status": status,
    }
    at = START + timedelta(minutes=minute)
    return new_event(
        "TransactionRecorded", body, producer="t", occurred_at=at, aggregate_version=version
    )


def _deliver(projector: KinesisBatchKernel, events: list[dict[str, Any]], delivery: str) -> None:
    if delivery == "a batch each":
        for n, event in enumerate(events, start=1):
            assert projector.process_batch(plain_records([event], first=n)).errors == [None]
    elif delivery == "one batch":
        assert projector.process_batch(plain_records(events)).errors == [None] * len(events)
    else:
        assert projector.process_batch([aggregated_record(events, 1)]).errors == [None]


def _stored_transaction(dynamodb: Any, tables: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=tables["transactions"], Key={"transaction_id": {"S": "txn-1"}}
    )["Item"]
    return item


@pytest.mark.parametrize("delivery", ["a batch each", "one batch", "one aggregate"])
@pytest.mark.parametrize("first", ["pending", "completed"])
def test_a_transaction_keeps_its_latest_event_whatever_the_arrival_order(
    first: str,
    delivery: str,
    projector: KinesisBatchKernel,
    clients: Any,
    tables: dict[str, str],
    bucket: str,
    metrics: Recorded,
) -> None:
    pending, completed = _transaction("pending", 1), _transaction("completed", 2)
    events = [pending, completed] if first == "pending" else [completed, pending]
    _deliver(projector, events, delivery)
    item = _stored_transaction(clients[0], tables)
    assert item["status"] == {"S": "completed"}
    assert item["event_id"] == {"S": completed["metadata"]["event_id"]}
    assert item["timestamp"] == {"S": iso_millis(completed["metadata"]["occurred_at"])}
    stale = 0 if first == "pending" else 1
    assert metrics.values["EventsSkippedStale"] == stale
    assert metrics.values["EventsProjected"] == 2 - stale
    by_user = clients[0].query(
        TableName=tables["transactions"],
        IndexName="UserTransactionsIndex",
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": "user-1"}},
    )
    assert by_user["Count"] == 1


@pytest.mark.parametrize("first", ["v1", "v2"])
def test_events_of_a_transaction_at_the_same_time_are_ordered_by_version(
    first: str, projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    v1, v2 = _transaction("pending", 1, version=1), _transaction("refunded", 1, version=2)
    _deliver(projector, [v1, v2] if first == "v1" else [v2, v1], "a batch each")
    assert _stored_transaction(clients[0], tables)["status"] == {"S": "refunded"}


def test_a_transaction_written_before_its_version_existed_yields_only_to_a_later_event(
    projector: KinesisBatchKernel, clients: Any, tables: dict[str, str], bucket: str
) -> None:
    dynamodb = clients[0]
    at = iso_millis(START + timedelta(minutes=2))
    dynamodb.put_item(
        TableName=tables["transactions"],
        Item={
            "transaction_id": {"S": "txn-1"},
            "user_id": {"S": "user-1"},
            "timestamp": {"S": at},
            "occurred_at": {"S": at},
            "status": {"S": "pending"},
        },
    )
    _deliver(projector, [_transaction("declined", 1)], "one batch")
    assert _stored_transaction(dynamodb, tables)["status"] == {"S": "pending"}
    _deliver(projector, [_transaction("completed", 3)], "one batch")
    assert _stored_transaction(dynamodb, tables)["status"] == {"S": "completed"}

"""Projections are pure: each event becomes one deterministic write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipelines.adapters.dynamo import MAX_ITEM_BYTES, item_size
from pipelines.consumers.projector.projections import (
    WIRE_BYTES_ALWAYS_FIT,
    ConditionalUpdate,
    FactPut,
    FieldMerge,
    Projections,
    iso_millis,
    written_item,
)
from pipelines.contract.codec import decode_event, encode_event
from pipelines.contract.events import new_event
from pipelines.errors import InvalidEventError
from tests.kinesis_events import TABLES

AT = datetime(2026, 11, 1, 12, 30, 5, 123000, tzinfo=UTC)
PROJECTIONS = Projections(TABLES, ttl_attribute="expires_at", ttl_seconds=30 * 86_400)


def _event(event_type: str, body: dict[str, Any], **meta: Any) -> Any:
    event = new_event(event_type, body, producer="test", occurred_at=AT, **meta)
    return decode_event(encode_event(event))


def _activity(**overrides: Any) -> Any:
    body = {
        "user_id": "user-1",
        "activity_type": "login",
        "details": {"device": "phone"},
        "session_id": None,
        "ip_address": None,
        "session_duration_ms": None,
    }
    return _event("UserActivityRecorded", {**body, **overrides})


def test_activity_sort_key_is_event_time_then_event_id() -> None:
    event = _activity()
    write = PROJECTIONS.write_for(event)
    assert isinstance(write, FactPut)
    assert write.table == TABLES.user_activities
    assert write.item["timestamp"] == {"S": f"2026-11-01T12:30:05.123Z#{event.event_id}"}
    assert write.key == ("user-1", f"2026-11-01T12:30:05.123Z#{event.event_id}")
    assert "session_id" not in write.item  # nulls are left out


def test_same_event_builds_the_same_write_every_time() -> None:
    event = new_event(
        "UserActivityRecorded",
        {"user_id": "user-1", "activity_type": "login"},
        producer="test",
        occurred_at=AT,
    )
    wire = encode_event(event)
    assert PROJECTIONS.write_for(decode_event(wire)) == PROJECTIONS.write_for(decode_event(wire))


def test_fact_expiry_is_event_time_plus_retention() -> None:
    write = PROJECTIONS.write_for(_activity())
    assert isinstance(write, FactPut)
    assert write.item["expires_at"] == {"N": str(int(AT.timestamp()) + 30 * 86_400)}


def test_metric_id_is_unique_per_event() -> None:
    body = {"metric_name": "cpu_usage", "value": 42.5, "source": "api-01", "tags": {}}
    first, second = (PROJECTIONS.write_for(_event("MetricRecorded", body)) for _ in range(2))
    assert isinstance(first, FactPut) and isinstance(second, FactPut)
    assert first.key != second.key
    assert first.item["metric_id"]["S"].startswith("api-01#cpu_usage#2026-11-01T12:30:05.123Z#")
    assert first.item["value"] == {"N": "42.5"}


def _transaction(**overrides: Any) -> Any:
    body = {
        "transaction_id": "txn-1",
        "user_id": "user-1",
        "amount": Decimal("1234567.8901"),
        "currency": "EUR",
        "merchant": "Shop",
        "category": "food",
        "status": "completed",
    }
    meta = {k: overrides.pop(k) for k in ("aggregate_version", "event_id") if k in overrides}
    return _event("TransactionRecorded", {**body, **overrides}, **meta)


def test_transaction_amount_is_stored_exactly() -> None:
    write = PROJECTIONS.write_for(_transaction())
    assert isinstance(write, ConditionalUpdate)
    assert write.table == TABLES.transactions
    item = written_item(write)
    assert item["amount"] == {"N": "1234567.8901"}
    assert item["timestamp"] == {"S": iso_millis(AT)}
    assert item["user_id"] == {"S": "user-1"}


def test_a_transaction_keeps_the_event_latest_by_time_then_version_then_event_id() -> None:
    event = _transaction(aggregate_version=7)
    write = PROJECTIONS.write_for(event)
    assert isinstance(write, ConditionalUpdate)
    assert write.key == {"transaction_id": {"S": "txn-1"}}
    assert write.version == {"S": f"2026-11-01T12:30:05.123Z#0000000000000000007#{event.event_id}"}
    assert "#v < :v" in write.condition  # a conditional write, not an unconditional put
    unversioned = PROJECTIONS.write_for(_transaction())
    assert unversioned.version["S"].split("#")[1] == "0" * 19  # type: ignore[union-attr]


def test_registration_sets_its_fields_and_expects_a_new_user() -> None:
    body = {"user_id": "user-1", "email": "a@example.com", "name": "A"}
    write = PROJECTIONS.write_for(_event("UserRegistered", body, aggregate_version=1))
    assert isinstance(write, FieldMerge)
    assert write.version == 1
    assert set(write.fields) == {"email", "name", "registered_at"}
    assert set(write.latest) == {"updated_at", "last_event_id"}
    first = write.first()
    key = next(p for p, name in first.names.items() if name == "user_id")
    assert first.condition == f"attribute_not_exists({key})"  # no user yet


def test_profile_update_sets_only_the_fields_it_carries() -> None:
    body = {
        "user_id": "user-1",
        "name": None,
        "email": "new@example.com",
        "phone": None,
        "preferences": None,
    }
    write = PROJECTIONS.write_for(_event("UserProfileUpdated", body, aggregate_version=3))
    assert isinstance(write, FieldMerge)
    assert set(write.fields) == {"email"}
    assert set(write.latest) == {"updated_at", "last_event_id"}
    assert write.version == 3
    item = write.item
    assert item["field_versions"] == {"M": {"email": {"N": "3"}}}
    assert set(item) == {
        "user_id", "email", "field_versions", "updated_at", "last_event_id", "aggregate_version"
    }  # fmt: skip


def test_profile_update_without_a_version_is_invalid() -> None:
    body = {"user_id": "user-1", "name": "B"}
    with pytest.raises(InvalidEventError):
        PROJECTIONS.write_for(_event("UserProfileUpdated", body))


def test_relabelled_image_keeps_the_latest_by_event_time() -> None:
    body = {"bucket": "uploads", "key": "a.jpg", "labels": [{"name": "Cat", "confidence": 91.14}]}
    event = _event("ImageLabeled", body)
    write = PROJECTIONS.write_for(event)
    assert isinstance(write, ConditionalUpdate)
    assert write.key == {"image_key": {"S": "a.jpg"}}
    assert write.condition == "attribute_not_exists(#k) OR #v < :v"
    assert write.version == {"S": f"2026-11-01T12:30:05.123Z#{event.event_id}"}
    labels = write.values[next(k for k, v in write.values.items() if "L" in v)]["L"]
    assert labels == [{"M": {"name": {"S": "Cat"}, "confidence": {"N": "91.14"}}}]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_metric_value_is_invalid(value: float) -> None:
    body = {"metric_name": "cpu_usage", "value": value, "source": "api-01", "tags": {}}
    with pytest.raises(InvalidEventError):
        PROJECTIONS.write_for(_event("MetricRecorded", body))


def test_empty_key_is_invalid() -> None:
    with pytest.raises(InvalidEventError):
        PROJECTIONS.write_for(_activity(user_id=""))


# --- DynamoDB's limits, checked before anything is written -------------------------------


def _invalid_reason(event: Any) -> str:
    with pytest.raises(InvalidEventError) as caught:
        PROJECTIONS.write_for(event)
    return caught.value.reason


def test_an_item_over_400_kb_is_invalid_and_the_reason_names_the_limit_and_attribute() -> None:
    reason = _invalid_reason(_activity(details={"blob": "x" * 450_000}))
    assert reason.startswith("UserActivityRecorded: the item is ")
    assert "over DynamoDB's 400 KB item size limit (409600 bytes)" in reason
    assert "its largest attribute is details" in reason


def test_an_item_just_under_400_kb_is_valid() -> None:
    write = PROJECTIONS.write_for(_activity(details={"blob": "x" * 409_000}))
    assert isinstance(write, FactPut)
    assert MAX_ITEM_BYTES - 1_000 < item_size(write.item) <= MAX_ITEM_BYTES


def test_a_sort_key_over_1024_bytes_is_invalid() -> None:
    event = _event(
        "UserActivityRecorded",
        {"user_id": "user-1", "activity_type": "login"},
        event_id="e" * 1_100,
    )
    reason = _invalid_reason(event)
    assert "timestamp (<occurred_at>#<event_id>) is 1125 bytes" in reason
    assert "over DynamoDB's 1024-byte sort key limit" in reason


def test_a_partition_key_may_be_up_to_2048_bytes_but_no_more() -> None:
    assert isinstance(PROJECTIONS.write_for(_activity(user_id="é" * 1_024)), FactPut)
    reason = _invalid_reason(_activity(user_id="é" * 1_025))
    assert reason == (
        "UserActivityRecorded: user_id is 2050 bytes, over DynamoDB's 2048-byte partition key limit"
    )


def test_every_key_of_every_table_is_checked() -> None:
    metric = {"metric_name": "cpu", "value": 1.0, "source": "s" * 2_100, "tags": {}}
    assert "metric_id (<source>#" in _invalid_reason(_event("MetricRecorded", metric))
    assert "transaction_id is" in _invalid_reason(_transaction(transaction_id="t" * 2_049))
    reason = _invalid_reason(_transaction(user_id="u" * 2_049))
    assert "user_id (UserTransactionsIndex) is 2049 bytes" in reason
    image = {"bucket": "b", "key": "k" * 2_049, "labels": []}
    assert "image_key (key) is 2049 bytes" in _invalid_reason(_event("ImageLabeled", image))
    user = {"user_id": "u" * 2_049, "email": "a@example.com", "name": "A"}
    assert "user_id is 2049 bytes" in _invalid_reason(_event("UserRegistered", user))


def test_a_profile_over_400_kb_is_invalid() -> None:
    body = {"user_id": "user-1", "preferences": {"k": "v" * 420_000}}
    reason = _invalid_reason(_event("UserProfileUpdated", body, aggregate_version=2))
    assert "its largest attribute is preferences" in reason


@pytest.mark.parametrize("value", [1e300, -1e126, 1e-200])
def test_a_metric_value_dynamodb_cannot_store_is_invalid(value: float) -> None:
    body = {"metric_name": "cpu_usage", "value": value, "source": "api-01", "tags": {}}
    assert "DynamoDB cannot store" in _invalid_reason(_event("MetricRecorded", body))


def _adversarial_events() -> list[Any]:
    """Events whose items grow most against their bytes on the wire, of every type."""
    many = 20_000
    return [
        _activity(details={str(i): "" for i in range(many)}),
        _event(
            "ImageLabeled",
            {"bucket": "", "key": "k", "labels": [{"name": "", "confidence": 0.0}] * (many // 2)},
        ),
        _event(
            "MetricRecorded",
            {
                "metric_name": "m" * 1_000,
                "value": 1.0,
                "source": "s",
                "tags": {str(i): "" for i in range(many)},
            },
        ),
        _event(
            "UserProfileUpdated",
            {"user_id": "u", "name": "", "preferences": {str(i): "" for i in range(many)}},
            aggregate_version=2,
        ),
        _event("UserRegistered", {"user_id": "u", "email": "", "name": ""}),
        _transaction(event_id="e" * 1_000, aggregate_version=2**63 - 1),
    ]


@pytest.mark.parametrize("event", _adversarial_events(), ids=lambda e: e.event_type)
def test_an_item_is_never_more_than_eight_times_its_wire_bytes_plus_4_kib(event: Any) -> None:
    wire = len(encode_event({**event.record, "metadata": event.record["metadata"]}))
    size = item_size(written_item(PROJECTIONS.write_for(event)))
    assert size <= 8 * wire + 4_096
    assert WIRE_BYTES_ALWAYS_FIT * 8 + 4_096 <= MAX_ITEM_BYTES


def test_with_its_wire_size_a_small_event_is_not_counted_but_a_large_one_is() -> None:
    event = _activity(details={"blob": "x" * 450_000})
    with pytest.raises(InvalidEventError):
        PROJECTIONS.write_for(event, wire_size=450_100)
    small = _activity()
    assert PROJECTIONS.write_for(small, wire_size=200) == PROJECTIONS.write_for(small)

"""Projections are pure: each event becomes one deterministic write."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pipelines.consumers.projector.projections import (
    ConditionalUpdate,
    FactPut,
    Projections,
    iso_millis,
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


def test_transaction_amount_is_stored_exactly() -> None:
    body = {
        "transaction_id": "txn-1",
        "user_id": "user-1",
        "amount": Decimal("1234567.8901"),
        "currency": "EUR",
        "merchant": "Shop",
        "category": "food",
        "status": "completed",
    }
    write = PROJECTIONS.write_for(_event("TransactionRecorded", body))
    assert isinstance(write, FactPut)
    assert write.table == TABLES.transactions
    assert write.item["amount"] == {"N": "1234567.8901"}
    assert write.item["timestamp"] == {"S": iso_millis(AT)}
    assert write.item["user_id"] == {"S": "user-1"}


def test_registration_applies_only_over_an_older_version() -> None:
    body = {"user_id": "user-1", "email": "a@example.com", "name": "A"}
    write = PROJECTIONS.write_for(_event("UserRegistered", body, aggregate_version=1))
    assert isinstance(write, ConditionalUpdate)
    assert write.condition == "attribute_not_exists(#k) OR #v < :v"
    assert write.names["#v"] == "aggregate_version"
    assert write.version == {"N": "1"}


def test_profile_update_sets_only_the_fields_it_carries() -> None:
    body = {
        "user_id": "user-1",
        "name": None,
        "email": "new@example.com",
        "phone": None,
        "preferences": None,
    }
    write = PROJECTIONS.write_for(_event("UserProfileUpdated", body, aggregate_version=3))
    assert isinstance(write, ConditionalUpdate)
    set_names = set(write.names.values()) - {"user_id"}
    assert set_names == {"email", "updated_at", "last_event_id", "aggregate_version"}
    assert write.version == {"N": "3"}


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

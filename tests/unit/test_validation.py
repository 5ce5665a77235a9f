"""The contract at the edge: events that decode but no consumer can apply are poison.

Every case is forged as a hostile producer would put it (:func:`tests.hostile.forge`) and
read through the one decode path, as every consumer reads it: the event is set aside as
poison with exactly the bytes that arrived and a reason naming the field, and the good
events beside it are untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipelines.consumers.metrics import EVENTS_QUARANTINED, EVENTS_SKIPPED_DUPLICATE
from pipelines.contract.codec import encode_event
from pipelines.contract.events import new_event
from pipelines.contract.schemas import default_registry
from pipelines.contract.validation import (
    CLOCK_SKEW,
    EVENT_TIME_FLOOR,
    MAX_AGGREGATE_VERSION,
    ContractViolationError,
)
from pipelines.errors import ConflictingDuplicateError
from pipelines.stream.records import decode_stream_record
from tests.hostile import forge
from tests.kinesis_events import aggregated_record, decoded_batch, kinesis_record

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
AT = NOW - timedelta(hours=1)
MS = timedelta(milliseconds=1)


def transaction(**changes: Any) -> dict[str, Any]:
    body = {
        "transaction_id": "t-1",
        "user_id": "u-1",
        "amount": Decimal("12.5000"),
        "currency": "EUR",
        "merchant": "m",
        "category": "grocery",
        "status": "completed",
    }
    body.update(changes)
    return new_event("TransactionRecorded", body, producer="t", occurred_at=AT)


def metric(value: float = 42.0) -> dict[str, Any]:
    body = {"metric_name": "cpu_usage", "value": value, "source": "host-1", "tags": {}}
    return new_event("MetricRecorded", body, producer="t", occurred_at=AT)


def image(confidence: float) -> dict[str, Any]:
    body = {
        "bucket": "b",
        "key": "uploads/a.jpg",
        "labels": [{"name": "Cat", "confidence": 99.0}, {"name": "Dog", "confidence": confidence}],
    }
    return new_event("ImageLabeled", body, producer="t", occurred_at=AT)


def profile(version: int) -> dict[str, Any]:
    body = {"user_id": "u-1", "name": "N", "email": None, "phone": None, "preferences": None}
    return new_event(
        "UserProfileUpdated", body, producer="t", occurred_at=AT, aggregate_version=version
    )


def with_metadata(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event["metadata"].update(changes)
    return event


def read(data: bytes, now: datetime = NOW) -> Any:
    return decode_stream_record(data, partition_key="k", sequence_number="1", now=now)


CASES: dict[str, tuple[Callable[[], dict[str, Any]], str]] = {
    "event id not a uuid": (
        lambda: with_metadata(transaction(), event_id="not-a-uuid"),
        "metadata.event_id",
    ),
    "event id of 1,100 characters": (
        lambda: with_metadata(transaction(), event_id="e" * 1100),
        "metadata.event_id",
    ),
    "aggregate id not the body's": (
        lambda: with_metadata(transaction(), aggregate_id="u-2"),
        "metadata.aggregate_id",
    ),
    "empty user id": (
        lambda: with_metadata(transaction(user_id=""), aggregate_id=""),
        "metadata.aggregate_id",
    ),
    "user id over 1,024 bytes": (
        lambda: with_metadata(transaction(user_id="ü" * 600), aggregate_id="ü" * 600),
        "metadata.aggregate_id",
    ),
    "dated before the floor": (
        lambda: with_metadata(transaction(), occurred_at=EVENT_TIME_FLOOR - MS),
        "metadata.occurred_at",
    ),
    "dated year 9999": (
        lambda: with_metadata(metric(), occurred_at=datetime(9999, 1, 1, tzinfo=UTC)),
        "metadata.occurred_at",
    ),
    "dated beyond the clock skew": (
        lambda: with_metadata(metric(), occurred_at=NOW + CLOCK_SKEW + timedelta(seconds=1)),
        "metadata.occurred_at",
    ),
    "version zero": (lambda: profile(0), "metadata.aggregate_version"),
    "version 2^63-1": (lambda: profile(2**63 - 1), "metadata.aggregate_version"),
    "decimal wider than (18,4)": (
        lambda: transaction(amount=Decimal("123456789012345678901234.5")),
        "amount",
    ),
    "decimal just over (18,4)": (lambda: transaction(amount=Decimal("100000000000000")), "amount"),
    "negative amount": (lambda: transaction(amount=Decimal("-1.0000")), "amount"),
    "unknown status": (lambda: transaction(status="stolen"), "status"),
    "infinite metric": (lambda: metric(math.inf), "value"),
    "negative infinite metric": (lambda: metric(-math.inf), "value"),
    "nan metric": (lambda: metric(math.nan), "value"),
    "confidence over 100": (lambda: image(101.0), "labels[1].confidence"),
    "nan confidence": (lambda: image(math.nan), "labels[1].confidence"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_event_that_breaks_the_contract_is_poison_with_its_bytes_and_the_field(
    case: str,
) -> None:
    build, field = CASES[case]
    data = forge(build())
    decoded = read(data)
    assert decoded.events == []
    [poisoned] = decoded.poison
    error = poisoned.error
    assert isinstance(error, ContractViolationError)
    assert error.code == "contract_violation"
    assert error.field == field
    assert field in error.reason
    assert error.raw == data
    assert poisoned.record.data == data


@pytest.mark.parametrize(
    "event",
    [
        transaction(),
        transaction(amount=Decimal("99999999999999.9999"), status="refunded"),
        transaction(amount=Decimal("0.0000"), status="declined"),
        metric(0.0),
        metric(-3.5),
        image(0.0),
        profile(MAX_AGGREGATE_VERSION),
        with_metadata(metric(), occurred_at=EVENT_TIME_FLOOR),
        with_metadata(metric(), occurred_at=NOW + CLOCK_SKEW),
        with_metadata(transaction(), event_id="0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"),
    ],
    ids=lambda e: e["metadata"]["event_type"],
)
def test_events_at_the_edges_of_the_contract_are_accepted(event: dict[str, Any]) -> None:
    decoded = read(forge(event))
    assert decoded.poison == []
    assert [d.event.event_id for d in decoded.events] == [event["metadata"]["event_id"]]


def test_the_amount_limit_is_the_schemas_precision_and_scale() -> None:
    fields = default_registry().current["TransactionRecorded"].resolved["fields"]
    [amount] = [f["type"] for f in fields if f["name"] == "amount"]
    assert (amount["precision"], amount["scale"]) == (18, 4)
    assert read(forge(transaction(amount=Decimal("99999999999999.9999")))).poison == []


def test_one_bad_event_in_an_aggregate_is_poison_alone_and_its_neighbours_decode() -> None:
    good = [transaction(transaction_id=f"t-{i}") for i in range(5)]
    bad = forge(transaction(amount=Decimal("123456789012345678901234.5")))
    items = [("u-1", encode_event(e)) for e in good[:2]]
    items += [("u-1", bad)]
    items += [("u-1", encode_event(e)) for e in good[2:]]
    batch = decoded_batch([aggregated_record(items, 1)])
    [record] = batch.records
    assert [d.event.event_id for d in record.events] == [e["metadata"]["event_id"] for e in good]
    assert record.decoded is not None
    [poisoned] = record.decoded.poison
    assert poisoned.record.data == bad
    assert poisoned.record.sub_sequence_number == 2
    assert isinstance(poisoned.error, ContractViolationError)


def test_the_wall_clock_is_the_default_now() -> None:
    soon = datetime.now(UTC) + CLOCK_SKEW / 2
    assert read(forge(with_metadata(metric(), occurred_at=soon)), now=None).poison == []  # type: ignore[arg-type]


# --- one event id, two events --------------------------------------------------------


def test_a_different_event_under_an_id_already_seen_in_the_batch_is_a_conflicting_duplicate() -> (
    None
):
    first = transaction(status="pending")
    second = transaction(status="completed")
    second["metadata"]["event_id"] = first["metadata"]["event_id"]
    records = [
        kinesis_record(encode_event(first), "u-1", 1),
        kinesis_record(encode_event(second), "u-1", 2),
    ]
    batch = decoded_batch(records)
    assert [d.event.record["status"] for d in batch.records[0].events] == ["pending"]
    assert batch.records[1].events == []
    assert batch.records[1].decoded is not None
    [poisoned] = batch.records[1].decoded.poison
    assert isinstance(poisoned.error, ConflictingDuplicateError)
    assert poisoned.record.data == encode_event(second)
    assert batch.counts.totals[EVENTS_SKIPPED_DUPLICATE] == 0


def test_the_same_event_again_or_replayed_is_a_duplicate_not_a_conflict() -> None:
    event = transaction()
    replayed = with_metadata(transaction(), replay_id="replay-1")
    replayed["metadata"]["event_id"] = event["metadata"]["event_id"]
    for key in ("transaction_id", "user_id", "amount", "currency", "merchant", "category"):
        replayed[key] = event[key]
    replayed["metadata"]["occurred_at"] = event["metadata"]["occurred_at"]
    records = [
        kinesis_record(encode_event(event), "u-1", 1),
        kinesis_record(encode_event(event), "u-1", 2),
        kinesis_record(encode_event(replayed), "u-1", 3),
    ]
    batch = decoded_batch(records)
    assert [len(r.events) for r in batch.records] == [1, 0, 0]
    assert all(r.decoded is not None and r.decoded.poison == [] for r in batch.records)
    assert batch.counts.totals[EVENTS_SKIPPED_DUPLICATE] == 2
    assert batch.counts.totals[EVENTS_QUARANTINED] == 0

"""The wire format: Avro single-object encoding, as the specification defines it."""

from __future__ import annotations

import io
import struct
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastavro import schemaless_writer
from fastavro.schema import to_parsing_canonical_form
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contract.codec import HEADER_SIZE, MAGIC, decode_event, encode_event
from pipelines.contract.events import event_from_json, new_event
from pipelines.contract.schemas import EVENT_TYPES, default_registry
from pipelines.errors import (
    CorruptRecordError,
    EventValidationError,
    InvalidEventError,
    PoisonRecordError,
    UnknownSchemaError,
)
from tests.strategies import events_of


def _normalised(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_event_type_round_trips(event_type: str, data: Any) -> None:
    event = data.draw(events_of(event_type))
    wire = encode_event(event)
    decoded = decode_event(wire)
    assert decoded.event_type == event_type
    assert _normalised(decoded.record) == _normalised(event)


def test_wire_format_is_marker_fingerprint_body() -> None:
    event = new_event(
        "UserRegistered", {"user_id": "u1", "email": "a@example.com", "name": "A"}, producer="t"
    )
    wire = encode_event(event)
    assert wire[:2] == b"\xc3\x01"
    assert wire[2:10] == default_registry().current["UserRegistered"].fingerprint


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_crc64_reference_matches_published_vectors() -> None:
    # Published fingerprints from the Avro project's schema normalization tests.
    assert _crc64_avro(b'"null"') == 7195948357588979594
    assert _crc64_avro(b'"int"') == 8247732601305521295


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fingerprint_is_crc64_avro_of_the_parsing_canonical_form(event_type: str) -> None:
    version = default_registry().current[event_type]
    canonical = to_parsing_canonical_form(version.resolved)
    expected = struct.pack("<Q", _crc64_avro(canonical.encode()))
    assert version.fingerprint == expected


def test_unknown_fingerprint_is_a_poison_record_with_its_bytes() -> None:
    wire = MAGIC + b"\x00" * 8 + b"\x02"
    with pytest.raises(UnknownSchemaError) as caught:
        decode_event(wire)
    assert caught.value.raw == wire
    assert "0000000000000000" in caught.value.reason


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda b: b[:5], id="shorter-than-header"),
        pytest.param(lambda b: b"\x00\x01" + b[2:], id="wrong-marker"),
        pytest.param(lambda b: b[: HEADER_SIZE + 10], id="truncated-body"),
        pytest.param(lambda b: b + b"\x00\x00", id="trailing-bytes"),
    ],
)
def test_truncated_or_corrupt_bytes_are_poison_records(mangle: Any) -> None:
    event = new_event(
        "MetricRecorded",
        {"metric_name": "cpu_usage", "value": 42.0, "source": "host-1", "tags": {"az": "a"}},
        producer="t",
    )
    bad = mangle(encode_event(event))
    with pytest.raises(CorruptRecordError) as caught:
        decode_event(bad)
    assert caught.value.raw == bad
    assert isinstance(caught.value, PoisonRecordError)


def test_a_record_whose_type_disagrees_with_its_schema_is_invalid() -> None:
    event = new_event(
        "UserRegistered", {"user_id": "u1", "email": "a@example.com", "name": "A"}, producer="t"
    )
    # Written with UserRegistered's schema, but claiming to be something else.
    version = default_registry().current["UserRegistered"]
    event["metadata"]["event_type"] = "UserDeleted"
    body = io.BytesIO()
    schemaless_writer(body, version.parsed, event)
    with pytest.raises(InvalidEventError) as caught:
        decode_event(MAGIC + version.fingerprint + body.getvalue())
    assert "UserDeleted" in caught.value.reason


def test_an_event_id_that_is_not_a_uuid_is_refused() -> None:
    with pytest.raises(EventValidationError, match="event_id is not a UUID"):
        event_from_json(
            "UserRegistered",
            {"user_id": "u1", "email": "a@b.c", "name": "A", "metadata": {"event_id": "nope"}},
            producer="t",
        )


def _transaction(amount: Any) -> dict[str, Any]:
    return new_event(
        "TransactionRecorded",
        {
            "transaction_id": "t1",
            "user_id": "u1",
            "amount": amount,
            "currency": "EUR",
            "merchant": "Acme",
            "category": "grocery",
            "status": "completed",
        },
        producer="t",
    )


@pytest.mark.parametrize(
    "amount", ["0.01", "-0.01", "99999999999999.9999", "-99999999999999.9999", "12345.6789"]
)
def test_money_keeps_every_cent(amount: str) -> None:
    decoded = decode_event(encode_event(_transaction(Decimal(amount))))
    assert decoded.record["amount"] == Decimal(amount)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (Decimal("0.00001"), "decimal places"),
        (Decimal("100000000000000"), "does not fit"),
        (Decimal("NaN"), "finite"),
        (12.5, "must be a Decimal"),
    ],
)
def test_money_that_would_lose_precision_is_refused(amount: Any, message: str) -> None:
    with pytest.raises(EventValidationError, match=message):
        encode_event(_transaction(amount))


def test_an_event_that_does_not_fit_its_schema_is_refused_on_encode() -> None:
    event = new_event(
        "UserRegistered", {"user_id": "u1", "email": "a@example.com", "name": "A"}, producer="t"
    )
    event["email"] = 42
    with pytest.raises(EventValidationError, match="UserRegistered"):
        encode_event(event)
    with pytest.raises(EventValidationError, match="known type"):
        encode_event({"metadata": {"event_type": "Nope"}})


def test_extreme_timestamps_round_trip() -> None:
    for moment in (datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999000, UTC)):
        event = new_event(
            "UserRegistered",
            {"user_id": "u1", "email": "a@example.com", "name": "A"},
            producer="t",
            occurred_at=moment,
        )
        assert decode_event(encode_event(event)).metadata["occurred_at"] == moment

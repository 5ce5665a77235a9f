"""From Kinesis records (as Lambda or GetRecords deliver them) to events.

A Kinesis record holds one event (plain) or many (KPL-aggregated). Each user
record is identified by the Kinesis record's sequence number and its
sub-sequence number within the aggregate. Anything that cannot be read
becomes a :class:`~pipelines.errors.PoisonRecordError` carrying its bytes;
nothing is dropped silently.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipelines.aggregation import SubRecord, deaggregate
from pipelines.codec import Codec, DecodedEvent, default_codec
from pipelines.errors import CorruptRecordError, PoisonRecordError


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One event's bytes with its stream coordinates."""

    shard_id: str | None
    sequence_number: str
    sub_sequence_number: int
    partition_key: str
    data: bytes
    approximate_arrival: float | None  # epoch seconds
    aggregated: bool


@dataclass(frozen=True, slots=True)
class DeliveredEvent:
    """A user record and either its decoded event or why it is poison."""

    record: UserRecord
    event: DecodedEvent | None
    error: PoisonRecordError | None


def shard_id_of(event_id: str | None) -> str | None:
    """The shard id in a Lambda ``eventID`` (``shardId-000000000000:<sequence>``)."""
    if not event_id or ":" not in event_id:
        return None
    return event_id.split(":", 1)[0]


def user_records(
    data: bytes,
    *,
    partition_key: str,
    sequence_number: str,
    shard_id: str | None = None,
    approximate_arrival: float | None = None,
) -> list[UserRecord]:
    """The user records inside one Kinesis record's data (deaggregated)."""
    return [
        UserRecord(
            shard_id,
            sequence_number,
            sub.sub_sequence_number,
            sub.partition_key,
            sub.data,
            approximate_arrival,
            sub.aggregated,
        )
        for sub in deaggregate(data, partition_key)
    ]


def user_record_of(record: Mapping[str, Any], sub: SubRecord) -> UserRecord:
    """The user record ``sub`` of a Lambda Kinesis record, with its stream coordinates."""
    kinesis = record["kinesis"]
    return UserRecord(
        shard_id_of(record.get("eventID")),
        str(kinesis["sequenceNumber"]),
        sub.sub_sequence_number,
        sub.partition_key,
        sub.data,
        kinesis.get("approximateArrivalTimestamp"),
        sub.aggregated,
    )


def lambda_user_records(record: Mapping[str, Any]) -> list[UserRecord]:
    """The user records of one record of a Lambda Kinesis event.

    ``record`` is an element of ``event["Records"]``: ``kinesis.data`` is
    base64. Raises a poison-record error when the data is not base64 or is
    an aggregate that fails its checksum.
    """
    kinesis = record["kinesis"]
    encoded = kinesis["data"]
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raw = encoded.encode() if isinstance(encoded, str) else bytes(encoded)
        raise CorruptRecordError(f"kinesis.data is not base64: {exc}", raw) from exc
    return user_records(
        data,
        partition_key=kinesis.get("partitionKey", ""),
        sequence_number=kinesis["sequenceNumber"],
        shard_id=shard_id_of(record.get("eventID")),
        approximate_arrival=kinesis.get("approximateArrivalTimestamp"),
    )


def decode_user_records(
    records: list[UserRecord], codec: Codec | None = None
) -> Iterator[DeliveredEvent]:
    """Decode each user record; a poison record is returned, never raised."""
    codec = codec or default_codec()
    for user_record in records:
        try:
            yield DeliveredEvent(user_record, codec.decode(user_record.data), None)
        except PoisonRecordError as error:
            yield DeliveredEvent(user_record, None, error)


def decode_lambda_record(
    record: Mapping[str, Any], codec: Codec | None = None
) -> list[DeliveredEvent]:
    """Every event in one Lambda Kinesis record, each decoded or poison.

    When the record as a whole cannot be read (bad base64, broken aggregate),
    the result is one poison entry holding the whole record's bytes.
    """
    try:
        records = lambda_user_records(record)
    except PoisonRecordError as error:
        kinesis = record.get("kinesis", {})
        whole = UserRecord(
            shard_id_of(record.get("eventID")),
            kinesis.get("sequenceNumber", ""),
            0,
            kinesis.get("partitionKey", ""),
            error.raw,
            kinesis.get("approximateArrivalTimestamp"),
            False,
        )
        return [DeliveredEvent(whole, None, error)]
    return list(decode_user_records(records, codec))

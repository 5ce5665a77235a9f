"""The one decode path: a Kinesis record's bytes to events, or to poison with its bytes.

Every consumer reads its batch through :func:`decode_lambda_record`, and anything that
reads the stream with ``GetRecords`` through :func:`decode_stream_record`; nothing else
decodes a record, and nothing decodes one twice::

    Lambda record -> base64 (validated) -> deaggregate (MD5 checked) -> codec -> contract
                -> event | poison

A Kinesis record holds one event (plain) or many (a KPL aggregate). Each user record is
identified by the Kinesis record's sequence number and its sub-sequence number within the
aggregate. What cannot be read becomes a :class:`Poisoned` entry carrying the bytes as they
arrived and a :class:`~pipelines.errors.PoisonRecordError` saying why: a record that is not
base64 or whose aggregate is broken is one poison entry with the whole record's bytes; an
undecodable user record inside a good aggregate is one entry with its own bytes; so is an
event that decodes but breaks the contract (:mod:`pipelines.contract.validation`: a bad
event id, an event time out of range, a decimal too wide, a number not finite, ...).
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from pipelines.contract.codec import Codec, DecodedEvent, default_codec
from pipelines.contract.validation import check, latest_accepted
from pipelines.errors import CorruptRecordError, PoisonRecordError
from pipelines.stream.aggregation import deaggregate

# Where a record came from when its Lambda ``eventID`` names no shard.
UNKNOWN_SHARD = "unknown-shard"


class UserRecord(NamedTuple):
    """One event's bytes with its stream coordinates."""

    shard_id: str | None
    sequence_number: str
    sub_sequence_number: int
    partition_key: str
    data: bytes
    approximate_arrival: float | None  # epoch seconds
    aggregated: bool


class Delivered(NamedTuple):
    """A decoded event, its bytes as they arrived, and its place in its Kinesis record."""

    sub_sequence_number: int
    data: bytes
    event: DecodedEvent


class Poisoned(NamedTuple):
    """Bytes that are not an event, with their coordinates and why."""

    record: UserRecord
    error: PoisonRecordError


@dataclass(slots=True)
class DecodedRecord:
    """One Kinesis record, read: its coordinates, its events in order, its poison."""

    sequence_number: str
    shard_id: str | None
    partition_key: str
    approximate_arrival: float | None
    aggregated: bool
    events: list[Delivered]
    poison: list[Poisoned]

    def user_record(self, delivered: Delivered) -> UserRecord:
        """The coordinates and bytes of one of this record's events."""
        return UserRecord(
            self.shard_id,
            self.sequence_number,
            delivered.sub_sequence_number,
            self.partition_key,
            delivered.data,
            self.approximate_arrival,
            self.aggregated,
        )

    def keys(self) -> frozenset[str]:
        """The ordering keys the record touches: its events' aggregate ids.

        Poison has no aggregate id that can be trusted; it counts under the partition key
        the Kinesis record (or its aggregate entry) carried.
        """
        keys = {d.event.record["metadata"]["aggregate_id"] for d in self.events}
        keys.update(p.record.partition_key for p in self.poison)
        return frozenset(keys) if keys else frozenset({self.partition_key})


def shard_id_of(event_id: str | None) -> str | None:
    """The shard id in a Lambda ``eventID`` (``shardId-000000000000:<sequence>``)."""
    if not event_id or ":" not in event_id:
        return None
    return event_id.split(":", 1)[0]


def decode_lambda_record(
    record: Mapping[str, Any], codec: Codec | None = None, *, now: datetime | None = None
) -> DecodedRecord:
    """One element of a Lambda Kinesis event's ``Records``, read.

    A record without the fields Lambda always sends (``kinesis.data``,
    ``kinesis.sequenceNumber``) raises ``KeyError``: that is not poison but a malformed
    invocation, and the caller fails the record rather than guess. ``now`` is the moment
    events are validated against (the wall clock unless given).
    """
    kinesis = record["kinesis"]
    encoded = kinesis["data"]
    sequence_number = str(kinesis["sequenceNumber"])
    partition_key = kinesis.get("partitionKey", "")
    shard_id = shard_id_of(record.get("eventID"))
    arrival = kinesis.get("approximateArrivalTimestamp")
    try:
        data = b64decode(encoded, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raw = encoded.encode() if isinstance(encoded, str) else bytes(encoded or b"")
        error = CorruptRecordError(f"kinesis.data is not base64: {exc}", raw)
        whole = UserRecord(shard_id, sequence_number, 0, partition_key, raw, arrival, False)
        return DecodedRecord(
            sequence_number, shard_id, partition_key, arrival, False, [], [Poisoned(whole, error)]
        )
    return decode_stream_record(
        data,
        partition_key=partition_key,
        sequence_number=sequence_number,
        shard_id=shard_id,
        approximate_arrival=arrival,
        codec=codec,
        now=now,
    )


def decode_stream_record(
    data: bytes,
    *,
    partition_key: str,
    sequence_number: str,
    shard_id: str | None = None,
    approximate_arrival: float | None = None,
    codec: Codec | None = None,
    now: datetime | None = None,
) -> DecodedRecord:
    """A Kinesis record's data (as ``GetRecords`` returns it), deaggregated, decoded, validated."""
    decode = (codec or default_codec()).decode
    latest = latest_accepted(now or datetime.now(UTC))
    try:
        subs = deaggregate(data, partition_key)
    except CorruptRecordError as error:
        whole = UserRecord(
            shard_id, sequence_number, 0, partition_key, data, approximate_arrival, False
        )
        return DecodedRecord(
            sequence_number,
            shard_id,
            partition_key,
            approximate_arrival,
            False,
            [],
            [Poisoned(whole, error)],
        )
    aggregated = len(subs) != 1 or subs[0].aggregated
    events: list[Delivered] = []
    poison: list[Poisoned] = []
    for sub in subs:
        try:
            event = decode(sub.data)
            check(event, latest)
            events.append(Delivered(sub.sub_sequence_number, sub.data, event))
        except PoisonRecordError as error:
            if not error.raw:
                error.raw = sub.data
            poison.append(
                Poisoned(
                    UserRecord(
                        shard_id,
                        sequence_number,
                        sub.sub_sequence_number,
                        sub.partition_key,
                        sub.data,
                        approximate_arrival,
                        aggregated,
                    ),
                    error,
                )
            )
    return DecodedRecord(
        sequence_number, shard_id, partition_key, approximate_arrival, aggregated, events, poison
    )

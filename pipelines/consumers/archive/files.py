"""Archive files: every record's exact bytes with its stream coordinates, in Avro files.

One Avro object container file per batch and arrival hour (UTC)::

    s3://<bucket>/<prefix>/dt=<yyyy-MM-dd>/hour=<HH>/<shard>-<first seq>.avro

named after the first record it holds (why: :mod:`pipelines.consumers.batch_keys`).

Each entry (:data:`ARCHIVE_SCHEMA`) holds the bytes of one user record as they arrived
(``data``) and where they came from: shard, sequence and sub-sequence numbers, partition
key and approximate arrival time (ms), and the type and id of the event they decoded to
(null when they did not). For poison (bytes that are not an event the contract accepts)
``poison_code`` says what kind of poison it is; the quarantine keeps the full reason. The
file is deterministic: its key comes from its first record and its sync marker from the
key, so a re-delivered batch of the same range writes the same objects, byte for byte, and
one of another range from the same first record overwrites them.
Events marked as replayed (``metadata.replay_id`` set) were archived when first produced and
are not archived again. This is what replay reads (:func:`read_archive`).

Schema history (a new version must read every file an earlier one wrote):

1. ``event_type`` and ``event_id`` were required strings: only events were archived.
2. ``event_type`` and ``event_id`` became nullable (default null) and ``poison_code`` was
   added (default null), so that poison is archived too. :func:`read_archive` reads files of
   either version with the current schema.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, NamedTuple, cast

from fastavro import parse_schema, reader, writer

from pipelines.consumers.batch_keys import object_stem
from pipelines.contract.codec import DecodedEvent
from pipelines.errors import PoisonRecordError
from pipelines.stream.records import UNKNOWN_SHARD, UserRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
CODEC = "deflate"
HOUR_FORMAT = "dt=%Y-%m-%d/hour=%H"  # the arrival-hour partition, in strftime's spelling

ARCHIVE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ArchivedEvent",
    "namespace": "pipelines.archive",
    "doc": "One record as it arrived on the stream: its exact bytes and coordinates.",
    "fields": [
        {"name": "shard_id", "type": "string"},
        {"name": "sequence_number", "type": "string"},
        {"name": "sub_sequence_number", "type": "long"},
        {"name": "partition_key", "type": "string"},
        {
            "name": "approximate_arrival",
            "type": ["null", {"type": "long", "logicalType": "timestamp-millis"}],
            "default": None,
        },
        {"name": "aggregated", "type": "boolean", "default": False},
        {
            "name": "event_type",
            "type": ["null", "string"],
            "default": None,
            "doc": "The event's type; null for bytes that did not decode.",
        },
        {
            "name": "event_id",
            "type": ["null", "string"],
            "default": None,
            "doc": "The event's id; null for bytes that did not decode.",
        },
        {"name": "data", "type": "bytes", "doc": "The bytes as they arrived."},
        {
            "name": "poison_code",
            "type": ["null", "string"],
            "default": None,
            "doc": "Why the bytes are not an event (corrupt_record, unknown_schema, ...); "
            "null for an event. The quarantine holds the full reason.",
        },
    ],
}
_PARSED = parse_schema(ARCHIVE_SCHEMA)


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """One entry read back from the archive: an event, or poison (``poison_code`` set).

    Poison that decoded (an event that breaks the contract, say) keeps its type and id.
    """

    record: UserRecord
    event_type: str | None
    event_id: str | None
    poison_code: str | None = None

    @property
    def is_poison(self) -> bool:
        return self.poison_code is not None


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One archive object: its key, its bytes and how many entries it holds."""

    key: str
    data: bytes
    events: int
    poison: int = 0


class Arrival(NamedTuple):
    """One user record to archive: its bytes and coordinates, and what it was read as."""

    record: UserRecord
    event: DecodedEvent | None = None  # None when the bytes did not decode
    poison: PoisonRecordError | None = None  # set for poison


def is_replayed(event: DecodedEvent) -> bool:
    """Whether the event was re-driven from the archive (``metadata.replay_id`` set)."""
    return event.record["metadata"].get("replay_id") is not None


def arrival_hour(record: UserRecord, event: DecodedEvent | None = None) -> str:
    """``dt=yyyy-MM-dd/hour=HH`` of the arrival time.

    When the arrival time is unknown (never for a record Lambda delivered), an event's time
    stands in for it, and poison goes to the first hour of 1970.
    """
    if record.approximate_arrival is not None:
        when = datetime.fromtimestamp(record.approximate_arrival, UTC)
    elif event is not None:
        when = event.record["metadata"]["occurred_at"].astimezone(UTC)
    else:
        when = _EPOCH
    return when.strftime(HOUR_FORMAT)


def _entry(arrival: Arrival) -> dict[str, Any]:
    record, event, poison = arrival
    arrived = record.approximate_arrival
    return {
        "shard_id": record.shard_id or UNKNOWN_SHARD,
        "sequence_number": record.sequence_number,
        "sub_sequence_number": record.sub_sequence_number,
        "partition_key": record.partition_key,
        "approximate_arrival": None if arrived is None else round(arrived * 1000),
        "aggregated": record.aggregated,
        "event_type": None if event is None else event.event_type,
        "event_id": None if event is None else event.event_id,
        "data": record.data,
        "poison_code": None if poison is None else poison.code,
    }


def archive_files(arrivals: Iterable[Arrival], prefix: str = "events") -> list[ArchiveFile]:
    """The archive files of a batch's records, one per arrival hour; replayed events left out.

    ``arrivals`` are in stream order; each file is named after its first record.
    """
    by_hour: dict[str, list[dict[str, Any]]] = {}
    stems: dict[str, str] = {}
    for arrival in arrivals:
        if arrival.event is not None and is_replayed(arrival.event):
            continue
        hour = arrival_hour(arrival.record, arrival.event)
        by_hour.setdefault(hour, []).append(_entry(arrival))
        record = arrival.record
        stems.setdefault(
            hour, object_stem(record.shard_id or UNKNOWN_SHARD, record.sequence_number)
        )
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    out = []
    for hour in sorted(by_hour):
        key = f"{base}{hour}/{stems[hour]}.avro"
        entries = by_hour[hour]
        poison = sum(1 for e in entries if e["poison_code"] is not None)
        out.append(ArchiveFile(key, encode_archive(entries, key), len(entries) - poison, poison))
    return out


def encode_archive(entries: list[dict[str, Any]], key: str) -> bytes:
    """An Avro object container file of ``entries``; the same inputs give the same bytes."""
    buffer = io.BytesIO()
    sync_marker = hashlib.sha256(key.encode()).digest()[:16]
    writer(buffer, _PARSED, entries, codec=CODEC, sync_marker=sync_marker)
    return buffer.getvalue()


def read_archive(source: bytes | IO[bytes]) -> Iterator[ArchivedEvent]:
    """The entries of one archive file, of any schema version, in the order they were written."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    for item in reader(stream, reader_schema=_PARSED):
        entry = cast(dict[str, Any], item)
        arrival = entry["approximate_arrival"]
        yield ArchivedEvent(
            UserRecord(
                entry["shard_id"],
                entry["sequence_number"],
                entry["sub_sequence_number"],
                entry["partition_key"],
                entry["data"],
                None if arrival is None else ((arrival - _EPOCH) // _MS) / 1000,
                entry["aggregated"],
            ),
            entry["event_type"],
            entry["event_id"],
            entry["poison_code"],
        )

"""The archive: every event's exact bytes with its stream coordinates, in Avro files.

One Avro object container file per batch and arrival hour (UTC)::

    s3://<bucket>/<prefix>/dt=<yyyy-MM-dd>/hour=<HH>/<shard>-<first seq>-<last seq>.avro

Each entry (:data:`ARCHIVE_SCHEMA`) holds the single-object encoded bytes as
they arrived (``data``) and where they came from: shard, sequence and
sub-sequence numbers, partition key and approximate arrival time (ms), plus the
event type and id read from them. The file is deterministic: its key comes from
the batch's shard and sequence range and its sync marker from the key, so a
re-delivered batch writes the same objects, byte for byte. Events marked as
replayed (``metadata.replay_id`` set) were archived when first produced and are
not archived again. This is what replay reads (:func:`read_archive`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any, cast

from fastavro import parse_schema, reader, writer

from pipelines.contract.codec import DecodedEvent
from pipelines.stream.records import UNKNOWN_SHARD, UserRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
CODEC = "deflate"

ARCHIVE_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "ArchivedEvent",
    "namespace": "pipelines.archive",
    "doc": "One event as it arrived on the stream: its exact bytes and coordinates.",
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
        {"name": "event_type", "type": "string"},
        {"name": "event_id", "type": "string"},
        {"name": "data", "type": "bytes", "doc": "Single-object encoded event, as produced."},
    ],
}
_PARSED = parse_schema(ARCHIVE_SCHEMA)


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """An event read back from the archive."""

    record: UserRecord
    event_type: str
    event_id: str


@dataclass(frozen=True, slots=True)
class ArchiveFile:
    """One archive object: its key, its bytes and how many events it holds."""

    key: str
    data: bytes
    events: int


def is_replayed(event: DecodedEvent) -> bool:
    """Whether the event was re-driven from the archive (``metadata.replay_id`` set)."""
    return event.record["metadata"].get("replay_id") is not None


def arrival_hour(record: UserRecord, event: DecodedEvent) -> str:
    """``dt=yyyy-MM-dd/hour=HH`` of the arrival time (event time when it is unknown)."""
    if record.approximate_arrival is not None:
        when = datetime.fromtimestamp(record.approximate_arrival, UTC)
    else:
        when = event.record["metadata"]["occurred_at"].astimezone(UTC)
    return when.strftime("dt=%Y-%m-%d/hour=%H")


def _entry(record: UserRecord, event: DecodedEvent) -> dict[str, Any]:
    arrival = record.approximate_arrival
    return {
        "shard_id": record.shard_id or UNKNOWN_SHARD,
        "sequence_number": record.sequence_number,
        "sub_sequence_number": record.sub_sequence_number,
        "partition_key": record.partition_key,
        "approximate_arrival": None if arrival is None else round(arrival * 1000),
        "aggregated": record.aggregated,
        "event_type": event.event_type,
        "event_id": event.event_id,
        "data": record.data,
    }


def archive_files(
    events: Iterable[tuple[UserRecord, DecodedEvent]], stem: str, prefix: str = "events"
) -> list[ArchiveFile]:
    """The archive files of a batch's events, one per arrival hour; replayed events left out."""
    by_hour: dict[str, list[dict[str, Any]]] = {}
    for record, event in events:
        if is_replayed(event):
            continue
        by_hour.setdefault(arrival_hour(record, event), []).append(_entry(record, event))
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    out = []
    for hour in sorted(by_hour):
        key = f"{base}{hour}/{stem}.avro"
        out.append(ArchiveFile(key, encode_archive(by_hour[hour], key), len(by_hour[hour])))
    return out


def encode_archive(entries: list[dict[str, Any]], key: str) -> bytes:
    """An Avro object container file of ``entries``; the same inputs give the same bytes."""
    buffer = io.BytesIO()
    sync_marker = hashlib.sha256(key.encode()).digest()[:16]
    writer(buffer, _PARSED, entries, codec=CODEC, sync_marker=sync_marker)
    return buffer.getvalue()


def read_archive(source: bytes | IO[bytes]) -> Iterator[ArchivedEvent]:
    """The events of one archive file, in the order they were written."""
    stream = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    for item in reader(stream):
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
        )

"""The archive: every record that reached the stream, its exact bytes and coordinates, once."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pyarrow.fs as pafs
import pytest

from pipelines.adapters.objects import ObjectStore
from pipelines.consumers.archive import (
    ARCHIVE_SCHEMA,
    ArchivedEvent,
    Arrival,
    archive_files,
    read_archive,
)
from pipelines.consumers.archive.archiver import Archiver
from pipelines.consumers.batch import KinesisBatchKernel
from pipelines.contract.codec import MAGIC, encode_event
from pipelines.errors import (
    CorruptRecordError,
    MisconfigurationError,
    TransientError,
    UnknownSchemaError,
)
from pipelines.stream.records import UserRecord, decode_lambda_record
from tests.kinesis_events import (
    SHARD_ID,
    aggregated_record,
    kinesis_record,
    plain_records,
    sequence_number,
)
from tests.unit.test_lake_writer import (
    FailingQuarantine,
    KeptRecords,
    mixed_batch,
    sample_events,
    too_wide_transaction,
    unchecked_bytes,
)

ARCHIVE = "archive"


def files_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# Version 1 of the archive's schema, as files written before poison was archived hold it.
ARCHIVE_SCHEMA_V1: dict[str, Any] = {
    "type": "record",
    "name": "ArchivedEvent",
    "namespace": "pipelines.archive",
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
        {"name": "data", "type": "bytes"},
    ],
}


def local_archiver(root: Path, quarantine: Any = None) -> tuple[KinesisBatchKernel, KeptRecords]:
    """The archiver on the batch kernel, writing under ``root``."""
    kept = quarantine or KeptRecords()
    store = ObjectStore(pafs.LocalFileSystem(), concurrency=1)
    return KinesisBatchKernel(Archiver(store, bucket=str(root / ARCHIVE)), kept), kept


def read_all(root: Path) -> list[ArchivedEvent]:
    return [
        e for p in sorted((root / ARCHIVE).rglob("*.avro")) for e in read_archive(p.read_bytes())
    ]


def replayed(event: dict[str, Any], replay_id: str = "replay-1") -> dict[str, Any]:
    return {**event, "metadata": {**event["metadata"], "replay_id": replay_id}}


def coordinates(entry: ArchivedEvent) -> tuple[str, int]:
    return entry.record.sequence_number, entry.record.sub_sequence_number


def test_every_event_is_archived_once_byte_for_byte_with_its_coordinates(tmp_path: Path) -> None:
    events = sample_events()
    batch = mixed_batch(events)
    delivered = {
        (r.sequence_number, r.sub_sequence_number): r
        for decoded in map(decode_lambda_record, batch)
        for r in map(decoded.user_record, decoded.events)
    }
    archiver, _ = local_archiver(tmp_path)

    result = archiver.process_batch(batch)
    archived = read_all(tmp_path)

    assert result.errors == [None] * len(batch)
    assert sorted(a.record.data for a in archived) == sorted(encode_event(e) for e in events)
    assert len(archived) == len(events)
    for entry in archived:
        original = delivered[coordinates(entry)]
        assert entry.record == original  # shard, sequence, sub-sequence, key, bytes, arrival
        assert entry.record.shard_id == SHARD_ID
        assert not entry.is_poison
    ids = {e["metadata"]["event_id"]: e["metadata"]["event_type"] for e in events}
    assert {a.event_id: a.event_type for a in archived} == ids
    assert result.counts["EventsArchived"] == len(events)


def test_archive_files_are_avro_containers_partitioned_by_arrival_hour(tmp_path: Path) -> None:
    events = sample_events(20)
    batch = plain_records(events)
    for n, record in enumerate(batch):  # arrivals spread over hours
        record["kinesis"]["approximateArrivalTimestamp"] = 1_793_487_000.25 + 300 * n
    archiver, _ = local_archiver(tmp_path)

    archiver.process_batch(batch)

    paths = sorted((tmp_path / ARCHIVE).rglob("*.avro"))
    hours = {str(p.parent.relative_to(tmp_path / ARCHIVE)) for p in paths}
    expected = {
        datetime.fromtimestamp(r["kinesis"]["approximateArrivalTimestamp"], UTC).strftime(
            "events/dt=%Y-%m-%d/hour=%H"
        )
        for r in batch
    }
    assert hours == expected and len(hours) > 1
    first_in_hour: dict[str, str] = {}  # each hour's file is named after its first record
    for r in batch:
        hour = datetime.fromtimestamp(r["kinesis"]["approximateArrivalTimestamp"], UTC)
        first_in_hour.setdefault(
            hour.strftime("events/dt=%Y-%m-%d/hour=%H"), r["kinesis"]["sequenceNumber"]
        )
    assert {str(p.relative_to(tmp_path / ARCHIVE)) for p in paths} == {
        f"{hour}/{SHARD_ID}-{first}.avro" for hour, first in first_in_hour.items()
    }
    for path in paths:
        with path.open("rb") as f:
            container = fastavro.reader(f)
            assert container.writer_schema["name"] == "pipelines.archive.ArchivedEvent"
            for entry in container:
                assert isinstance(entry, dict)
                arrival = entry["approximate_arrival"]
                assert (
                    arrival.strftime("dt=%Y-%m-%d/hour=%H")
                    == path.parent.relative_to(tmp_path / ARCHIVE / "events").as_posix()
                )


def test_archive_keys_and_bytes_are_stable_under_redelivery(tmp_path: Path) -> None:
    batch = [*mixed_batch(sample_events(60)), kinesis_record(b"junk", "pk", 90)]
    archiver, _ = local_archiver(tmp_path)

    archiver.process_batch(batch)
    first = files_under(tmp_path)
    other, _ = local_archiver(tmp_path)  # a fresh process: nothing shared but the input
    other.process_batch(batch)

    assert files_under(tmp_path) == first
    assert len(read_all(tmp_path)) == 61


def test_replayed_events_are_not_archived_again(tmp_path: Path) -> None:
    events = sample_events(20)
    batch = plain_records(events[:10]) + plain_records([replayed(e) for e in events[10:]], first=11)
    archiver, _ = local_archiver(tmp_path)

    result = archiver.process_batch(batch)

    assert sorted(str(a.event_id) for a in read_all(tmp_path)) == sorted(
        e["metadata"]["event_id"] for e in events[:10]
    )
    assert result.counts["EventsNotArchivedReplayed"] == 10
    assert result.counts["EventsArchived"] == 10


def test_a_batch_of_only_replayed_events_writes_no_archive_file(tmp_path: Path) -> None:
    archiver, _ = local_archiver(tmp_path)

    archiver.process_batch(plain_records([replayed(e) for e in sample_events(20)]))

    assert not (tmp_path / ARCHIVE).exists()


def test_poison_is_archived_as_it_arrived_and_quarantined(tmp_path: Path) -> None:
    events = sample_events(20)
    garbage = kinesis_record(b"not an event", "pk-garbage", 50)
    unknown = kinesis_record(MAGIC + b"\x00" * 8 + b"body", "pk-unknown", 51)
    truncated = kinesis_record(encode_event(events[0])[:-3], "pk-truncated", 52)
    not_base64 = kinesis_record(b"", "pk-not-base64", 53)
    not_base64["kinesis"]["data"] = "%%% not base64 %%%"
    inside = aggregated_record([events[1], ("pk-inside", b"\xc3\x01 bad"), events[2]], 54)
    batch = [*plain_records(events[3:]), garbage, unknown, truncated, not_base64, inside]
    archiver, kept = local_archiver(tmp_path)

    result = archiver.process_batch(batch)

    assert result.errors == [None] * len(batch)
    archived = {coordinates(a): a for a in read_all(tmp_path)}
    assert len(archived) == len(events) - 3 + 4 + 3
    poison = {k: a for k, a in archived.items() if a.is_poison}
    assert {
        k: (a.record.partition_key, a.record.data, a.poison_code) for k, a in poison.items()
    } == {
        (sequence_number(50), 0): ("pk-garbage", b"not an event", "corrupt_record"),
        (sequence_number(51), 0): ("pk-unknown", MAGIC + b"\x00" * 8 + b"body", "unknown_schema"),
        (sequence_number(52), 0): ("pk-truncated", encode_event(events[0])[:-3], "corrupt_record"),
        (sequence_number(53), 0): ("pk-not-base64", b"%%% not base64 %%%", "corrupt_record"),
        (sequence_number(54), 1): ("pk-inside", b"\xc3\x01 bad", "corrupt_record"),
    }
    assert all(a.event_type is None and a.event_id is None for a in poison.values())
    assert archived[(sequence_number(54), 2)].record.data == encode_event(events[2])
    assert sorted(r.data for r, _ in kept.kept) == sorted(a.record.data for a in poison.values())
    assert result.counts["PoisonArchived"] == 5
    assert result.counts["EventsArchived"] == len(events) - 3 + 2


def test_a_record_the_lake_refuses_is_archived_all_the_same(tmp_path: Path) -> None:
    events = sample_events(40)
    bad = too_wide_transaction()
    batch = [*plain_records(events), kinesis_record(unchecked_bytes(bad), "pk", 41)]
    archiver, _ = local_archiver(tmp_path)

    result = archiver.process_batch(batch)

    assert result.errors == [None] * 41
    archived = read_all(tmp_path)
    assert len(archived) == 41
    assert unchecked_bytes(bad) in {a.record.data for a in archived}


def test_poison_whose_quarantine_failed_is_archived_once_when_the_batch_is_retried(
    tmp_path: Path,
) -> None:
    batch = [*plain_records(sample_events(10)), kinesis_record(b"junk", "pk", 40)]
    failing, _ = local_archiver(tmp_path, FailingQuarantine())

    result = failing.process_batch(batch)

    assert all(isinstance(error, TransientError) for error in result.errors)
    assert not (tmp_path / ARCHIVE).exists()  # all or nothing: the retry archives it all
    working, kept = local_archiver(tmp_path)
    again = working.process_batch(batch)
    assert again.errors == [None] * len(batch)
    archived = read_all(tmp_path)
    assert len(archived) == 11
    assert [a.record.data for a in archived if a.is_poison] == [b"junk"]
    assert len(kept.kept) == 1


class BrokenStore(ObjectStore):
    def __init__(self, error: Exception) -> None:
        super().__init__(pafs.LocalFileSystem())
        self.error = error

    def put_all(self, writes: Any) -> None:
        raise self.error


def test_a_failed_write_fails_every_record_and_misconfiguration_fails_loudly() -> None:
    batch = plain_records(sample_events(10))
    transient = KinesisBatchKernel(
        Archiver(BrokenStore(TransientError("SlowDown")), bucket="a"), KeptRecords()
    )
    assert all(isinstance(e, TransientError) for e in transient.process_batch(batch).errors)

    denied = KinesisBatchKernel(
        Archiver(BrokenStore(MisconfigurationError("AccessDenied")), bucket="a"), KeptRecords()
    )
    with pytest.raises(MisconfigurationError):
        denied.process_batch(batch)


def test_poison_entries_round_trip_byte_for_byte() -> None:
    record = UserRecord("shardId-000000000001", "42", 3, "pk", b"\xc3\x01\xff\x00", 1.7e9, True)
    whole = UserRecord("shardId-000000000001", "43", 0, "pk2", b"%%%", None, False)
    arrivals = [
        Arrival(record, None, UnknownSchemaError("no schema", record.data)),
        Arrival(whole, None, CorruptRecordError("not base64", whole.data)),
    ]

    files = archive_files(arrivals)

    assert [f.key for f in files] == [
        "events/dt=1970-01-01/hour=00/shardId-000000000001-43.avro",  # arrival unknown
        "events/dt=2023-11-14/hour=22/shardId-000000000001-42.avro",
    ]
    back = [e for f in files for e in read_archive(f.data)]
    assert {e.record: e.poison_code for e in back} == {
        record: "unknown_schema",
        whole: "corrupt_record",
    }
    assert all(e.event_type is None and e.event_id is None for e in back)
    assert archive_files(arrivals) == files  # deterministic


def test_files_written_before_poison_was_archived_still_read() -> None:
    old = {
        "shard_id": "shardId-000000000000",
        "sequence_number": "7",
        "sub_sequence_number": 0,
        "partition_key": "user-1",
        "approximate_arrival": 1_700_000_000_123,
        "aggregated": False,
        "event_type": "UserRegistered",
        "event_id": "0b0f1a9e-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
        "data": b"\xc3\x01old bytes",
    }
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(ARCHIVE_SCHEMA_V1), [old], codec="deflate")

    (entry,) = read_archive(buffer.getvalue())

    assert entry.record == UserRecord(
        "shardId-000000000000", "7", 0, "user-1", b"\xc3\x01old bytes", 1_700_000_000.123, False
    )
    assert (entry.event_type, entry.event_id) == ("UserRegistered", old["event_id"])
    assert entry.poison_code is None and not entry.is_poison


def test_the_current_schema_reads_every_earlier_one() -> None:
    current = fastavro.parse_schema(ARCHIVE_SCHEMA)
    old = fastavro.parse_schema(ARCHIVE_SCHEMA_V1)
    added = {f["name"] for f in ARCHIVE_SCHEMA["fields"]} - {
        f["name"] for f in ARCHIVE_SCHEMA_V1["fields"]
    }
    assert added == {"poison_code"}
    assert all(
        "default" in f for f in ARCHIVE_SCHEMA["fields"] if f["name"] in added
    )  # new fields have defaults
    buffer = io.BytesIO()
    fastavro.schemaless_writer(
        buffer,
        old,
        {
            "shard_id": "s",
            "sequence_number": "1",
            "sub_sequence_number": 0,
            "partition_key": "k",
            "approximate_arrival": None,
            "aggregated": False,
            "event_type": "T",
            "event_id": "i",
            "data": b"d",
        },
    )
    buffer.seek(0)
    read = fastavro.schemaless_reader(buffer, old, current)
    assert isinstance(read, dict) and read["poison_code"] is None and read["event_type"] == "T"

"""The archive: every event's exact bytes and coordinates, once, in Avro files."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro

from pipelines.consumers.archive import ArchivedEvent, read_archive
from pipelines.contract.codec import encode_event
from pipelines.stream.records import decode_lambda_record
from tests.kinesis_events import SHARD_ID, kinesis_record, plain_records
from tests.unit.test_lake_writer import (
    ARCHIVE,
    files_under,
    local_writer,
    mixed_batch,
    sample_events,
)


def read_all(root: Path) -> list[ArchivedEvent]:
    return [
        e for p in sorted((root / ARCHIVE).rglob("*.avro")) for e in read_archive(p.read_bytes())
    ]


def replayed(event: dict[str, Any], replay_id: str = "replay-1") -> dict[str, Any]:
    return {**event, "metadata": {**event["metadata"], "replay_id": replay_id}}


def test_every_event_is_archived_once_byte_for_byte_with_its_coordinates(tmp_path: Path) -> None:
    events = sample_events()
    batch = mixed_batch(events)
    delivered = {
        (r.sequence_number, r.sub_sequence_number): r
        for decoded in map(decode_lambda_record, batch)
        for r in map(decoded.user_record, decoded.events)
    }
    writer, _ = local_writer(tmp_path)

    writer.process_batch(batch)
    archived = read_all(tmp_path)

    assert sorted(a.record.data for a in archived) == sorted(encode_event(e) for e in events)
    assert len(archived) == len(events)
    for entry in archived:
        original = delivered[(entry.record.sequence_number, entry.record.sub_sequence_number)]
        assert entry.record == original  # shard, sequence, sub-sequence, key, bytes, arrival
        assert entry.record.shard_id == SHARD_ID
    ids = {e["metadata"]["event_id"]: e["metadata"]["event_type"] for e in events}
    assert {a.event_id: a.event_type for a in archived} == ids


def test_archive_files_are_avro_containers_partitioned_by_arrival_hour(tmp_path: Path) -> None:
    events = sample_events(20)
    batch = plain_records(events)
    for n, record in enumerate(batch):  # arrivals spread over hours
        record["kinesis"]["approximateArrivalTimestamp"] = 1_793_487_000.25 + 300 * n
    writer, _ = local_writer(tmp_path)

    writer.process_batch(batch)

    paths = sorted((tmp_path / ARCHIVE).rglob("*.avro"))
    hours = {str(p.parent.relative_to(tmp_path / ARCHIVE)) for p in paths}
    expected = {
        datetime.fromtimestamp(r["kinesis"]["approximateArrivalTimestamp"], UTC).strftime(
            "events/dt=%Y-%m-%d/hour=%H"
        )
        for r in batch
    }
    assert hours == expected and len(hours) > 1
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
    batch = mixed_batch(sample_events(60))
    writer, _ = local_writer(tmp_path)

    writer.process_batch(batch)
    first = {k: v for k, v in files_under(tmp_path).items() if k.startswith(ARCHIVE)}
    other, _ = local_writer(tmp_path)  # a fresh process: nothing shared but the input
    other.process_batch(batch)
    second = {k: v for k, v in files_under(tmp_path).items() if k.startswith(ARCHIVE)}

    assert first == second
    assert len(read_all(tmp_path)) == 60


def test_replayed_events_are_not_archived_again(tmp_path: Path) -> None:
    events = sample_events(20)
    batch = plain_records(events[:10]) + plain_records([replayed(e) for e in events[10:]], first=11)
    writer, _ = local_writer(tmp_path)

    result = writer.process_batch(batch)

    assert sorted(a.event_id for a in read_all(tmp_path)) == sorted(
        e["metadata"]["event_id"] for e in events[:10]
    )
    assert result.counts["EventsNotArchivedReplayed"] == 10
    assert result.counts["EventsWrittenToLake"] == 20  # the lake still sees them, marked


def test_a_batch_of_only_replayed_events_writes_no_archive_file(tmp_path: Path) -> None:
    writer, _ = local_writer(tmp_path)

    writer.process_batch(plain_records([replayed(e) for e in sample_events(20)]))

    assert not (tmp_path / ARCHIVE).exists()


def test_poison_records_are_not_archived(tmp_path: Path) -> None:
    events = sample_events(20)
    junk = kinesis_record(b"junk", "pk", 30)
    writer, kept = local_writer(tmp_path)

    writer.process_batch([*plain_records(events), junk])

    assert len(read_all(tmp_path)) == len(events)
    assert [r.data for r, _ in kept.kept] == [base64.b64decode(junk["kinesis"]["data"])]

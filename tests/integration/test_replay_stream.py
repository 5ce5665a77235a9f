"""Replay onto a stream, on the emulator: what is selected, in what order, at what pace.

An archive of two hours of simulated events, written as the archiver writes it (Avro files
per shard, batch and arrival hour), is replayed onto a stream of its own; the stream is then
read back and deaggregated, as a consumer reads it.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.consumers.archive import Arrival, archive_files
from pipelines.contract.codec import Codec, DecodedEvent
from pipelines.stream.records import UserRecord, decode_stream_record
from pipelines_local.replay import (
    SHARD_BYTES_PER_SECOND,
    Pacer,
    ReplayRecord,
    ReplayStore,
    Selection,
    new_replay_id,
    plan,
    replay_to_stream,
)
from pipelines_local.simulator import simulate

pytestmark = pytest.mark.integration

PREFIX = "events"
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
SHARDS = ("shardId-000000000000", "shardId-000000000001")
EVENTS = 600
BATCH = 50


@dataclass
class Archive:
    bucket: str
    events: list[DecodedEvent]  # in stream order per shard
    arrivals: dict[str, datetime]  # event id -> arrival
    objects: int


def _archive(s3: Any, codec: Codec) -> Archive:
    """Two hours of arrivals over two shards, archived as the archiver archives batches."""
    bucket = f"archive-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    events = [codec.decode(codec.encode(e)) for e in simulate(EVENTS, seed=5).events]
    by_shard: dict[str, list[Arrival]] = defaultdict(list)
    arrivals = {}
    for i, event in enumerate(events):
        shard = SHARDS[_shard(event)]
        arrival = START + timedelta(seconds=i * 7200 / EVENTS)
        arrivals[event.event_id] = arrival
        sequence = f"{49_000_000_000_000_000_000 + i:056d}"
        record = UserRecord(
            shard, sequence, 0, event.metadata["aggregate_id"], codec.encode(event.record),
            arrival.timestamp(), False,
        )  # fmt: skip
        by_shard[shard].append(Arrival(record, event))
    objects = 0
    for arrivals_of_shard in by_shard.values():
        for i in range(0, len(arrivals_of_shard), BATCH):
            for file in archive_files(arrivals_of_shard[i : i + BATCH], PREFIX):
                s3.put_object(Bucket=bucket, Key=file.key, Body=file.data)
                objects += 1
    return Archive(bucket, events, arrivals, objects)


def _shard(event: DecodedEvent) -> int:
    return sum(event.metadata["aggregate_id"].encode()) % 2


def _stream(kinesis: Any) -> str:
    name = f"replay-{uuid.uuid4().hex[:8]}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name)
    return name


def _read_stream(kinesis: Any, name: str, codec: Codec) -> list[tuple[str, int, DecodedEvent]]:
    """Every event on the stream: (shard, position on it, event)."""
    out = []
    shards = kinesis.list_shards(StreamName=name)["Shards"]
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                decoded = decode_stream_record(
                    record["Data"],
                    partition_key=record["PartitionKey"],
                    sequence_number=record["SequenceNumber"],
                    codec=codec,
                )
                assert not decoded.poison
                out.extend((shard["ShardId"], len(out), d.event) for d in decoded.events)
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return out


@pytest.fixture(scope="module")
def codec() -> Codec:
    return Codec()


@pytest.fixture
def archive(aws_client: Callable[[str], Any], codec: Codec) -> Archive:
    return _archive(aws_client("s3"), codec)


def _run(
    aws_client: Callable[[str], Any],
    archive: Archive,
    stream: str,
    selection: Selection,
    store: ReplayStore,
    *,
    rate: float | None = None,
    progress: Callable[[int], None] | None = None,
    record: ReplayRecord | None = None,
) -> ReplayRecord:
    record = record or ReplayRecord(new_replay_id(), "stream", selection.to_dict(), rate=rate)
    return replay_to_stream(
        aws_client("s3"),
        aws_client("kinesis"),
        bucket=archive.bucket,
        prefix=PREFIX,
        stream_name=stream,
        record=record,
        store=store,
        pacer=Pacer(rate=rate, max_bytes_per_second=2 * SHARD_BYTES_PER_SECOND),
        progress=progress,
    )


def test_a_preview_counts_only_the_hour_selected_and_puts_nothing(
    aws_client: Callable[[str], Any], archive: Archive, codec: Codec
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis)
    hour = Selection(since=START + timedelta(hours=1), until=START + timedelta(hours=2))
    expected = [i for i, at in archive.arrivals.items() if hour.since <= at < hour.until]  # type: ignore[operator]

    preview = plan(aws_client("s3"), archive.bucket, PREFIX, hour, shards=2, rate=100)

    assert preview.events == len(expected) == EVENTS // 2
    assert 0 < preview.objects < archive.objects  # the other hour's objects were not read
    assert preview.estimated_seconds == pytest.approx(len(expected) / 100)
    assert sum(preview.by_type.values()) == preview.events
    assert _read_stream(kinesis, stream, codec) == []
    nothing = Selection(since=START - timedelta(days=3), until=START - timedelta(days=2))
    assert plan(aws_client("s3"), archive.bucket, PREFIX, nothing, shards=2).events == 0


def test_replayed_events_keep_their_ids_and_their_order_per_key_and_carry_the_replay_id(
    aws_client: Callable[[str], Any], archive: Archive, codec: Codec, tmp_path: Path
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis)

    done = _run(aws_client, archive, stream, Selection(), ReplayStore(tmp_path))

    assert done.state == "completed" and done.replayed_events == EVENTS
    on_stream = _read_stream(kinesis, stream, codec)
    assert sorted(e.event_id for _, _, e in on_stream) == sorted(e.event_id for e in archive.events)
    assert {e.metadata["replay_id"] for _, _, e in on_stream} == {done.replay_id}
    for _, _, event in on_stream:  # the same event but for replay_id
        metadata = {**event.metadata, "replay_id": None}
        original = next(e for e in archive.events if e.event_id == event.event_id)
        assert {**event.record, "metadata": metadata} == original.record
    per_key_archived: dict[str, list[str]] = defaultdict(list)
    for event in archive.events:
        per_key_archived[event.metadata["aggregate_id"]].append(event.event_id)
    per_key_replayed: dict[str, list[str]] = defaultdict(list)
    for _, _, event in on_stream:
        per_key_replayed[event.metadata["aggregate_id"]].append(event.event_id)
    assert per_key_replayed == per_key_archived
    assert any(len(ids) > 3 for ids in per_key_archived.values())


def test_an_interrupted_replay_resumes_after_its_checkpoint_and_puts_each_event_once(
    aws_client: Callable[[str], Any], archive: Archive, codec: Codec, tmp_path: Path
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis)
    store = ReplayStore(tmp_path)
    chunks = []

    def interrupt_after_three(n: int) -> None:
        chunks.append(n)
        if len(chunks) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(
            aws_client,
            archive,
            stream,
            Selection(),
            store,
            rate=1000,
            progress=interrupt_after_three,
        )
    (stopped,) = store.all()
    assert stopped.state == "cancelled"
    assert 0 < stopped.replayed_events == sum(chunks) < EVENTS
    assert stopped.checkpoint is not None

    done = _run(aws_client, archive, stream, Selection(), store, rate=1000, record=stopped)

    assert done.state == "completed" and done.replayed_events == EVENTS
    ids = [e.event_id for _, _, e in _read_stream(kinesis, stream, codec)]
    assert sorted(ids) == sorted(e.event_id for e in archive.events)  # each exactly once


def test_a_rate_is_kept_within_ten_percent_over_twenty_seconds(
    aws_client: Callable[[str], Any], archive: Archive, codec: Codec, tmp_path: Path
) -> None:
    kinesis = aws_client("kinesis")
    stream = _stream(kinesis)
    rate = 30.0  # 600 events: 20 s

    started = time.monotonic()
    done = _run(aws_client, archive, stream, Selection(), ReplayStore(tmp_path), rate=rate)
    elapsed = time.monotonic() - started

    assert done.replayed_events == EVENTS
    achieved = EVENTS / elapsed
    print(f"\nreplay at --rate {rate:g}: {achieved:.1f} events/s over {elapsed:.1f} s")
    assert abs(achieved - rate) / rate <= 0.10

"""Replay figures on the embedded emulator: planning in-process, and re-putting onto a stream.

An archive of 20,000 simulated events over two shards, written as the archiver writes it
(one Avro file per 500-record batch and arrival hour), is put in a bucket on an emulator.
Then:

* **plan**: list, read, decode and select every archived event, as `pipeline replay`
  without `--execute` does. The figure is the CPU time of the replaying process (boto3
  included, the emulator's own process not), in events per second per core;
* **to the stream**: the same events re-put unpaced onto a two-shard stream through the
  producer, in wall-clock events per second.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from pipelines.consumers.archive import Arrival, archive_files
from pipelines.contract.codec import Codec
from pipelines.stream.records import UserRecord
from pipelines_local.emulator import start_emulator
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

N_EVENTS = 20_000
BATCH = 500
SHARDS = ("shardId-000000000000", "shardId-000000000001")


def _archive(s3: Any, bucket: str, codec: Codec) -> int:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    by_shard: dict[str, list[Arrival]] = defaultdict(list)
    for i, raw in enumerate(simulate(N_EVENTS, seed=3).events):
        data = codec.encode(raw)
        event = codec.decode(data)
        key = event.metadata["aggregate_id"]
        shard = SHARDS[sum(key.encode()) % 2]
        arrival = (start + timedelta(seconds=i * 7200 / N_EVENTS)).timestamp()
        record = UserRecord(shard, f"{49 * 10**20 + i:056d}", 0, key, data, arrival, False)
        by_shard[shard].append(Arrival(record, event))
    objects = 0
    for arrivals in by_shard.values():
        for i in range(0, len(arrivals), BATCH):
            for file in archive_files(arrivals[i : i + BATCH]):
                s3.put_object(Bucket=bucket, Key=file.key, Body=file.data)
                objects += 1
    return objects


def main() -> None:
    codec = Codec()
    with start_emulator() as emulator:
        env = emulator.env()

        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=emulator.endpoint_url,
                region_name=env["AWS_DEFAULT_REGION"],
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            )

        s3, kinesis = client("s3"), client("kinesis")
        bucket = f"bench-archive-{uuid.uuid4().hex[:6]}"
        s3.create_bucket(Bucket=bucket)
        objects = _archive(s3, bucket, codec)
        stream = f"bench-replay-{uuid.uuid4().hex[:6]}"
        kinesis.create_stream(StreamName=stream, ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(StreamName=stream)

        cpu = time.process_time()
        preview = plan(s3, bucket, "events", Selection(), shards=2)
        cpu = time.process_time() - cpu
        print(
            f"plan: {preview.events:,} events in {objects} objects ({preview.object_bytes:,} "
            f"bytes) read, decoded and selected in {cpu:.2f} s of CPU: "
            f"{preview.events / cpu:,.0f} events/s per core"
        )
        with tempfile.TemporaryDirectory() as state:
            record = ReplayRecord(new_replay_id(), "stream", Selection().to_dict())
            wall = time.perf_counter()
            done = replay_to_stream(
                s3,
                kinesis,
                bucket=bucket,
                prefix="events",
                stream_name=stream,
                record=record,
                store=ReplayStore(Path(state)),
                pacer=Pacer(max_bytes_per_second=2 * SHARD_BYTES_PER_SECOND),
            )
            wall = time.perf_counter() - wall
        print(
            f"to the stream (unpaced, 2 shards, emulator): {done.replayed_events:,} events in "
            f"{wall:.1f} s: {done.replayed_events / wall:,.0f} events/s "
            f"({preview.event_bytes / wall / 1024 / 1024:.2f} MiB/s of event bytes)"
        )


if __name__ == "__main__":
    main()

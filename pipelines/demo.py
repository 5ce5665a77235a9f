"""The main job: the whole pipeline on the embedded emulator, with a summary.

Brings the ``local`` workspace up (emulator started, Terraform applied),
produces a seeded workload through the producer, reads the stream back to
check that every event landed exactly once, and tears everything down unless
asked to keep it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3

from pipelines.codec import default_codec
from pipelines.emulator import emulator_env
from pipelines.infra import stack
from pipelines.producer import Producer
from pipelines.records import user_records
from pipelines.simulator import simulate

# Progress callback: (step, done, total); total None for a step without a count.
Progress = Callable[[str, int, int | None], None]
CHUNK = 10_000


@dataclass
class DemoReport:
    workspace: str
    endpoint_url: str
    stream_name: str
    events: int
    seed: int
    produced: dict[str, int] = field(default_factory=dict)
    on_stream: dict[str, int] = field(default_factory=dict)
    shards: dict[str, int] = field(default_factory=dict)
    kinesis_records: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    kept: bool = False

    @property
    def events_per_second(self) -> float:
        produce = self.seconds.get("produce", 0.0)
        return round(self.events / produce, 1) if produce else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "endpoint_url": self.endpoint_url if self.kept else None,
            "stream_name": self.stream_name,
            "events": self.events,
            "seed": self.seed,
            "produced": self.produced,
            "on_stream": self.on_stream,
            "shards": self.shards,
            "kinesis_records": self.kinesis_records,
            "events_per_second": self.events_per_second,
            "seconds": self.seconds,
            "kept": self.kept,
        }


@contextmanager
def _timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[step] = round(time.perf_counter() - start, 2)


def _client(service: str, endpoint_url: str) -> Any:
    env = emulator_env(endpoint_url)
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _count_stream(kinesis: Any, stream: str, report: DemoReport) -> None:
    codec = default_codec()
    seen: Counter[str] = Counter()
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        shard_id = shard["ShardId"]
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                report.kinesis_records += 1
                for user in user_records(
                    record["Data"],
                    partition_key=record["PartitionKey"],
                    sequence_number=record["SequenceNumber"],
                ):
                    decoded = codec.decode(user.data)
                    seen[decoded.event_type] += 1
                    report.shards[shard_id] = report.shards.get(shard_id, 0) + 1
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    report.on_stream = dict(sorted(seen.items()))


def run_demo(
    events: int = 5_000,
    seed: int = 1,
    *,
    workspace: str = stack.DEFAULT_WORKSPACE,
    keep: bool = False,
    progress: Progress | None = None,
) -> DemoReport:
    """Run the whole story once; see the module docstring."""
    notify = progress or (lambda step, done, total: None)
    seconds: dict[str, float] = {}
    notify("deploying (emulator + terraform apply)", 0, None)
    with _timed(seconds, "deploy"):
        up = stack.up(workspace)
    stream = str(up.outputs["stream_name"])
    report = DemoReport(workspace, up.endpoint_url, stream, events, seed, seconds=seconds)
    try:
        workload = simulate(events, seed).events
        report.produced = dict(
            sorted(Counter(e["metadata"]["event_type"] for e in workload).items())
        )
        kinesis = _client("kinesis", up.endpoint_url)
        producer = Producer(kinesis, stream)
        with _timed(seconds, "produce"):
            for start in range(0, len(workload), CHUNK):
                producer.put_events(workload[start : start + CHUNK])
                notify("producing", min(start + CHUNK, len(workload)), len(workload))
        notify("reading the stream back", 0, None)
        with _timed(seconds, "read_back"):
            _count_stream(kinesis, stream, report)
    finally:
        if keep:
            report.kept = True
        else:
            notify("tearing down (terraform destroy)", 0, None)
            with _timed(seconds, "teardown"):
                stack.down(workspace)
    return report

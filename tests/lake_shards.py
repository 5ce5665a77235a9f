"""Test helpers: several shards' lake writers committing to one Iceberg table at once.

Each shard has a lake catalog of its own (as each shard's Lambda instance has), built on the
emulator's Glue and S3, and commits its batches in order through
:class:`~pipelines.consumers.lake.IcebergCommitter`; the shards run on threads started together.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipelines.consumers.lake import Commit, IcebergCommitter, LakeCatalog, LakeTables, glue_catalog
from pipelines.errors import TransientError
from pipelines_local.emulator import EmulatorProcess
from pipelines_local.simulator import simulate

EVENT_TYPE = "MetricRecorded"


@dataclass(frozen=True)
class ShardBatch:
    """One batch of one shard: its rows (with ``dt``), their sequence numbers, the last one."""

    rows: pa.Table
    sequences: list[int]
    last_sequence: int


def shard_id(index: int) -> str:
    return f"shardId-{index:012d}"


def shard_batches(
    shards: int, batches: int, rows_per_batch: int, *, seed: int = 5
) -> dict[str, list[ShardBatch]]:
    """Every shard's batches of distinct ``MetricRecorded`` events, sequence numbers from 1."""
    tables = LakeTables()
    wanted = shards * batches * rows_per_batch
    events: list[dict[str, Any]] = []
    n = wanted * 4
    while len(events) < wanted:
        events = [e for e in simulate(n, seed).events if e["metadata"]["event_type"] == EVENT_TYPE]
        n *= 2
    out: dict[str, list[ShardBatch]] = {}
    for shard in range(shards):
        own = events[shard * batches * rows_per_batch : (shard + 1) * batches * rows_per_batch]
        out[shard_id(shard)] = [
            ShardBatch(
                tables.rows(EVENT_TYPE, own[b * rows_per_batch : (b + 1) * rows_per_batch]),
                list(range(b * rows_per_batch + 1, (b + 1) * rows_per_batch + 1)),
                (b + 1) * rows_per_batch,
            )
            for b in range(batches)
        ]
    return out


def lake_on(
    emulator: EmulatorProcess, make_client: Callable[[str], Any]
) -> Callable[[], LakeCatalog]:
    """A fresh Glue database and lake bucket on ``emulator``; a factory of catalogs over them."""
    suffix = uuid.uuid4().hex[:8]
    database, bucket = f"lake_{suffix}", f"lake-{suffix}"
    make_client("glue").create_database(DatabaseInput={"Name": database})
    make_client("s3").create_bucket(Bucket=bucket)
    env = emulator.env()

    def catalog() -> LakeCatalog:
        glue = glue_catalog(
            env["AWS_REGION"],
            emulator.endpoint_url,
            access_key=env["AWS_ACCESS_KEY_ID"],
            secret_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        return LakeCatalog(glue, database, bucket, LakeTables())

    return catalog


@dataclass
class ShardRun:
    """What one shard's commits did, and how many batches were redelivered after a commit
    gave up (:class:`~pipelines.errors.TransientError`: it kept losing races)."""

    commits: list[Commit] = field(default_factory=list)
    redeliveries: int = 0


def commit_concurrently(
    catalog: Callable[[], LakeCatalog],
    batches: dict[str, list[ShardBatch]],
    committer: Callable[[LakeCatalog], IcebergCommitter] = IcebergCommitter,
) -> dict[str, ShardRun]:
    """Every shard's batches committed in order, all shards at once; what each shard did.

    The table is created first, so that the shards race on commits, not on creation. A
    commit that gives up fails its batch, and the batch is delivered again, as Lambda does
    (the watermark makes that safe). Any other failure is raised once every shard has stopped.
    """
    catalog().table(EVENT_TYPE)
    committers = {shard: committer(catalog()) for shard in batches}
    start = threading.Barrier(len(batches))
    runs = {shard: ShardRun() for shard in batches}
    failures: list[BaseException] = []

    def run(shard: str) -> None:
        start.wait()
        try:
            for batch in batches[shard]:
                runs[shard].commits.append(_deliver(committers[shard], shard, batch, runs[shard]))
        except BaseException as exc:  # reported to the caller below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(shard,), name=shard) for shard in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return runs


def _deliver(committer: IcebergCommitter, shard: str, batch: ShardBatch, run: ShardRun) -> Commit:
    while True:
        try:
            return committer.commit(
                EVENT_TYPE, batch.rows, batch.sequences, shard, batch.last_sequence
            )
        except TransientError:
            run.redeliveries += 1

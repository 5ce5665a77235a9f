"""Iceberg commits racing on one table: four shards' lake writers at once on the embedded emulator.

Run: ``.venv/bin/python tests/benchmarks/bench_lake_commits.py [--shards 4] [--batches 50]``

Each shard commits ``--batches`` batches of ``--rows`` events, one after the other, through the
lake's own committer (:class:`~pipelines.consumers.lake.IcebergCommitter`, its default retry
policy), all shards at once, to the same table; a batch whose commit gives up is delivered
again, as Lambda does. It prints each commit's latency as the writer sees it (p50, p95, max:
retries and their back-off included), how many commits the writer retried after losing a
race (``Commit.attempts`` > 1, counted on the delivery that succeeded), how many batches were
delivered again because their committer gave up, and the rows the table ends with against
the rows sent. "moto as released" (``--variant``) leaves out the Glue
``VersionId`` check: no commit is refused there, and the table silently ends short.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence

import pyarrow.compute as pc

from pipelines.consumers.lake import watermark_of
from pipelines_local.emulator import start_emulator
from tests.conftest import client_factory
from tests.lake_shards import EVENT_TYPE, commit_concurrently, lake_on, shard_batches

VARIANTS = {
    "patched": (),
    "moto as released": ("glue_table_version_check",),
}


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--batches", type=int, default=50, help="commits per shard")
    parser.add_argument("--rows", type=int, default=5, help="events per batch")
    parser.add_argument("--variant", choices=sorted(VARIANTS), action="append")
    args = parser.parse_args(argv)

    batches = shard_batches(args.shards, args.batches, args.rows)
    expected = args.shards * args.batches * args.rows
    for name in args.variant or ["patched"]:
        with start_emulator(disabled_patches=VARIANTS[name]) as emulator:
            catalog = lake_on(emulator, client_factory(emulator))
            started = time.perf_counter()
            runs = commit_concurrently(catalog, batches)
            wall = time.perf_counter() - started
            table = catalog().table(EVENT_TYPE)
            ids = table.scan().to_arrow()["event_id"]
            marks = sum(
                watermark_of(table, shard) == sent[-1].last_sequence
                for shard, sent in batches.items()
            )
            snapshots = len(table.snapshots())
        commits = [c for run in runs.values() for c in run.commits]
        seconds = sorted(c.seconds for c in commits)
        p95 = statistics.quantiles(seconds, n=20)[18]
        retried = sum(c.attempts > 1 for c in commits)
        redelivered = sum(run.redeliveries for run in runs.values())
        print(
            f"\n{name}: {args.shards} shards x {args.batches} commits of {args.rows} events, "
            f"{wall:.1f} s ({len(commits) / wall:.1f} commits/s)"
        )
        print(
            f"  commit seconds: p50 {statistics.median(seconds):.2f}, p95 {p95:.2f}, "
            f"max {seconds[-1]:.2f}"
        )
        print(
            f"  commits the writer retried (Commit.attempts > 1): {retried} of {len(commits)} "
            f"(most attempts {max(c.attempts for c in commits)}); batches delivered again "
            f"after the committer gave up: {redelivered}"
        )
        print(
            f"  rows {len(ids):,} ({pc.count_distinct(ids).as_py():,} distinct event ids) "
            f"of {expected:,} sent; snapshots {snapshots} of {len(commits)} commits; "
            f"watermarks at the last batch {marks} of {args.shards}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])

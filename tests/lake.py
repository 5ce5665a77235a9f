"""Events committed to the lake's Iceberg tables as the lake writer commits them.

For tests and benchmarks that need a lake to read (queries, compaction) without a stream:
one shard, consecutive sequence numbers, one commit per table per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipelines.consumers.lake import IcebergCommitter, LakeCatalog
from pipelines.contract.codec import DecodedEvent

SHARD = "shardId-000000000000"


def commit_events(
    lake: LakeCatalog,
    events: Sequence[DecodedEvent],
    *,
    batch: int = 500,
    shard: str = SHARD,
    first_sequence: int = 1,
) -> int:
    """Commit ``events`` in batches of ``batch``; the number of commits made."""
    committer = IcebergCommitter(lake)
    commits = 0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        sequences = [first_sequence + start + n for n in range(len(chunk))]
        built = lake.tables.build(list(chunk))
        assert not built.rejected, built.rejected
        for rows in built.rows:
            committer.commit(
                rows.event_type,
                rows.table,
                [sequences[p] for p in rows.positions],
                shard,
                sequences[-1],
            )
            commits += 1
    return commits

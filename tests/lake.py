"""A lake of Iceberg tables on the local disk, and events committed to it as the lake
writer commits them.

For tests and benchmarks that need a lake without an emulator (a SQLite catalog, a file://
warehouse: the same pyiceberg commit path as Glue and S3) or a lake to read (queries,
compaction) without a stream: one shard, consecutive sequence numbers, one commit per table
per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipelines.consumers.lake import IcebergCommitter, LakeCatalog, LakeTables
from pipelines.contract.codec import DecodedEvent

SHARD = "shardId-000000000000"
LAKE = "lake"


def local_lake(root: Path, tables: LakeTables | None = None) -> LakeCatalog:
    """The lake's Iceberg tables in a SQLite catalog with its warehouse under ``root``."""
    from pyiceberg.catalog.sql import SqlCatalog

    (root / LAKE).mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        "local", uri=f"sqlite:///{root / 'catalog.db'}", warehouse=f"file://{root / LAKE}"
    )
    catalog.create_namespace_if_not_exists(LAKE)
    return LakeCatalog(
        catalog, LAKE, LAKE, tables or LakeTables(), warehouse=f"file://{root / LAKE}"
    )


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

"""Compaction of the lake's closed partitions: one atomic rewrite each, every event once.

The lake writer appends a file per table per batch, so a day's partition (``dt``) gathers
many small files. Once the day is closed (``dt`` before a cutoff, by default today's UTC
date) compaction rewrites it:

**Which partitions.** A closed partition holding more than one data file, written by more
than one commit (files of one commit were already bin-packed by pyiceberg to the table's
``write.target-file-size-bytes``, so a partition compacted once is left alone until a late
event lands in it). A partition larger on disk than ``max_partition_bytes`` (it is rewritten
in memory) or holding delete files (written by another engine) is skipped, and reported.

**Every event once.** The partition is read at one snapshot, file by file in commit order:
by the data file's sequence number (the commit that added the rows; a rewrite keeps it),
then by file path for files of one commit, then by row position within the file. Of the
rows sharing an ``event_id`` the first in that order is kept: the copy committed first.

**Atomic.** The deduplicated rows replace the partition in one Iceberg transaction
(``overwrite`` filtered on ``dt``: a delete and an append snapshot, one catalog commit), so
a reader sees the partition before or after, never both, never neither. pyiceberg writes
the new files to the table's target file size. Table properties are not touched: the
commit carries only snapshot updates, applied by the catalog onto the table as it is, so
the writers' ``pipelines.watermark.<shard>`` properties stay whatever they are.

**Conflicts.** The overwrite's snapshot producer requires the branch to still be at the
snapshot that was read (``AssertRefSnapshotId``), and the lake's tables set
``commit.retry.num-retries`` to 0: a writer's commit landing between the read and the
commit makes the catalog reject ours (``CommitFailedException``). Were pyiceberg's retries
on, its serializable validation rejects a concurrent append into the partition instead
(``ValidationException``). Either way the rewrite is redone here, with backoff, from a fresh
read that includes the writer's rows; nothing a writer committed is dropped. The files a
rejected attempt wrote are left to orphan removal (:mod:`.retention`).

After the partitions, the table's expired snapshots are removed and its orphan files
deleted (:mod:`.retention`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.consumers.lake.iceberg import EVENT_ID_COLUMN, PARTITION_COLUMN
from pipelines.consumers.lake.retention import (
    Orphans,
    Retention,
    delete_orphans,
    expire_snapshots,
)
from pipelines.errors import TransientError

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import FileScanTask, Table

    from pipelines.adapters.stored_files import StoredFiles

logger = logging.getLogger(__name__)

# Set in the summary of the snapshots a compaction commits: the partition rewritten.
COMPACTED_PARTITION = "pipelines.compacted-partition"
MAX_PARTITION_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class PartitionFiles:
    """A partition's live files at one snapshot: each data file's data sequence number (by
    path), the rows and bytes they hold, and how many delete files apply to them."""

    dt: str
    sequence_numbers: dict[str, int] = field(default_factory=dict)
    rows: int = 0
    bytes: int = 0
    delete_files: int = 0

    @property
    def files(self) -> int:
        return len(self.sequence_numbers)

    @property
    def commits(self) -> int:
        return len(set(self.sequence_numbers.values()))


@dataclass(frozen=True, slots=True)
class PartitionCompaction:
    """What compacting one partition did."""

    dt: str
    files_before: int
    files_after: int
    rows_before: int
    rows_after: int
    attempts: int = 1

    @property
    def duplicates_removed(self) -> int:
        return self.rows_before - self.rows_after


@dataclass(frozen=True, slots=True)
class SkippedPartition:
    dt: str
    reason: str


@dataclass(frozen=True, slots=True)
class TableCompaction:
    """What one compaction run did to one table."""

    table: str
    partitions: tuple[PartitionCompaction, ...] = ()
    skipped: tuple[SkippedPartition, ...] = ()
    snapshots_expired: int = 0
    orphans: Orphans = field(default_factory=Orphans)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for partition, compacted in zip(out["partitions"], self.partitions, strict=True):
            partition["duplicates_removed"] = compacted.duplicates_removed
        return out


def partition_files(table: Table) -> dict[str, PartitionFiles]:
    """Every partition's live files at the table's current snapshot, by ``dt``."""
    from pyiceberg.manifest import ManifestContent

    snapshot = table.current_snapshot()
    if snapshot is None:
        return {}
    specs = table.specs()
    out: dict[str, PartitionFiles] = {}
    for manifest in snapshot.manifests(table.io):
        position = _dt_position(specs[manifest.partition_spec_id])
        for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True):
            data_file = entry.data_file
            dt = str(data_file.partition[position])
            files = out.setdefault(dt, PartitionFiles(dt))
            if manifest.content != ManifestContent.DATA:
                files.delete_files += 1
                continue
            files.sequence_numbers[data_file.file_path] = int(entry.sequence_number or 0)
            files.rows += data_file.record_count
            files.bytes += data_file.file_size_in_bytes
    return out


def first_copies(rows: pa.Table) -> pa.Table:
    """``rows`` less every row whose ``event_id`` an earlier row has, in order."""
    if not len(rows):
        return rows
    order = pa.array(range(len(rows)), pa.int64())
    numbered = pa.table({EVENT_ID_COLUMN: rows[EVENT_ID_COLUMN], "order": order})
    firsts = (
        numbered.group_by(EVENT_ID_COLUMN, use_threads=False)
        .aggregate([("order", "min")])
        .column("order_min")
    )
    if len(firsts) == len(rows):
        return rows
    return rows.filter(pc.is_in(order, value_set=firsts))


class Compactor:
    """Compacts a table's closed partitions, then expires its history and orphans."""

    def __init__(
        self,
        catalog: Catalog,
        *,
        files: Callable[[str], StoredFiles] | None = None,
        retention: Retention | None = None,
        max_partition_bytes: int = MAX_PARTITION_BYTES,
        max_attempts: int = 8,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        before_commit: Callable[[Table, str], None] | None = None,
    ) -> None:
        self.catalog = catalog
        self.files = files  # the storage of a table's location; None: no orphan removal
        self.retention = retention or Retention()
        self.max_partition_bytes = max_partition_bytes
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.jitter = jitter
        self.clock = clock
        self.before_commit = before_commit  # called between a rewrite's read and its commit

    def run(
        self, identifier: tuple[str, str], *, before: date | None = None, expire: bool = True
    ) -> TableCompaction:
        """Compact the closed partitions of the table, then (``expire``) remove its expired
        snapshots and, with ``files``, its orphan files."""
        started = time.perf_counter()
        compacted, skipped = self.compact_partitions(identifier, before=before)
        expired, orphans = 0, Orphans()
        if expire:
            now = self.clock()
            table, expired = expire_snapshots(
                lambda: self.catalog.load_table(identifier), now, self.retention, sleep=self.sleep
            )
            if self.files is not None:
                orphans = delete_orphans(table, self.files(table.location()), now, self.retention)
        return TableCompaction(
            ".".join(identifier),
            tuple(compacted),
            tuple(skipped),
            expired,
            orphans,
            time.perf_counter() - started,
        )

    def compact_partitions(
        self, identifier: tuple[str, str], *, before: date | None = None
    ) -> tuple[list[PartitionCompaction], list[SkippedPartition]]:
        """Rewrite every closed partition that needs it (module docstring)."""
        cutoff = (before or self.clock().astimezone(UTC).date()).isoformat()
        table = self.catalog.load_table(identifier)
        compacted: list[PartitionCompaction] = []
        skipped: list[SkippedPartition] = []
        for dt, files in sorted(partition_files(table).items()):
            if dt >= cutoff or not _needs_compaction(files):
                continue
            reason = self._refusal(files)
            if reason:
                skipped.append(SkippedPartition(dt, reason))
                continue
            done = self.compact_partition(identifier, dt)
            if done is not None:
                compacted.append(done)
        return compacted, skipped

    def compact_partition(self, identifier: tuple[str, str], dt: str) -> PartitionCompaction | None:
        """Rewrite partition ``dt`` in one commit, its duplicates dropped; redone from a fresh
        read when another commit got in first. None if it no longer needs it."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        for attempt in range(1, self.max_attempts + 1):
            table = self.catalog.load_table(identifier)
            files = partition_files(table).get(dt)
            if files is None or not _needs_compaction(files) or self._refusal(files):
                return None
            rows = _read_in_commit_order(table, dt, files)
            kept = first_copies(rows)
            if self.before_commit is not None:
                self.before_commit(table, dt)
            try:
                with table.transaction() as tx:
                    tx.overwrite(
                        kept,
                        overwrite_filter=_equal_to(PARTITION_COLUMN, dt),
                        snapshot_properties={COMPACTED_PARTITION: dt},
                    )
            except (CommitFailedException, ValidationException) as exc:
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
                logger.info(
                    "compaction of %s dt=%s lost a race (attempt %d): %s",
                    table.name(),
                    dt,
                    attempt,
                    exc,
                )
                self.sleep(self.jitter(delay / 2, delay))
                continue
            after = partition_files(table).get(dt, PartitionFiles(dt))
            return PartitionCompaction(dt, files.files, after.files, len(rows), len(kept), attempt)
        raise TransientError(
            f"compaction of {'.'.join(identifier)} dt={dt} kept losing races: "
            f"{self.max_attempts} attempts"
        )

    def _refusal(self, files: PartitionFiles) -> str | None:
        if files.delete_files:
            return f"{files.delete_files} delete files (written by another engine)"
        if files.bytes > self.max_partition_bytes:
            return f"{files.bytes} bytes, more than {self.max_partition_bytes} to rewrite at once"
        return None


def _needs_compaction(files: PartitionFiles) -> bool:
    return files.files > 1 and files.commits > 1


def _read_in_commit_order(table: Table, dt: str, files: PartitionFiles) -> pa.Table:
    """The partition's rows at the table's current snapshot, file by file in commit order
    (sequence number, then path), each file's rows in their order."""
    from pyiceberg.expressions import AlwaysTrue
    from pyiceberg.io.pyarrow import ArrowScan

    snapshot = table.current_snapshot()
    assert snapshot is not None  # the partition has files
    scan = table.scan(row_filter=_equal_to(PARTITION_COLUMN, dt), snapshot_id=snapshot.snapshot_id)
    schema = table.schema()  # the current one: a column added since the snapshot reads null

    def order(task: FileScanTask) -> tuple[int, str]:
        path = task.file.file_path
        return (files.sequence_numbers.get(path, 0), path)

    reader = ArrowScan(table.metadata, table.io, schema, AlwaysTrue())
    parts = [reader.to_table([task]) for task in sorted(scan.plan_files(), key=order)]
    return pa.concat_tables(parts) if parts else schema.as_arrow().empty_table()


def _equal_to(column: str, value: str) -> Any:
    from pyiceberg import expressions

    EqualTo: Any = expressions.EqualTo  # pyiceberg's pydantic models confuse type checkers
    return EqualTo(column, value)


def _dt_position(spec: Any) -> int:
    names = [f.name for f in spec.fields]
    return names.index(PARTITION_COLUMN)

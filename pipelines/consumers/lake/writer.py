"""What only the lake writer does with a batch: the lake and the archive, all or nothing.

The lake writer is one consumer with two sinks, fed by the kernel's one decode pass:

* the **archive** gets every event's exact bytes and coordinates
  (:mod:`pipelines.consumers.archive`), except replayed events;
* the **lake** gets every event as a typed Parquet row (:mod:`.parquet`).

An event the lake cannot hold (dated before the lake's first partition, a value its column
refuses) is poison of the lake's own: it is quarantined with its bytes and the reason, and
the rest of the batch is written.

Object keys come from the batch's shard and sequence range, so the batch is all or
nothing: when any record fails (a write, or a poison record the quarantine did not take),
every record is reported failed, Lambda re-delivers the batch from its first record, and
the retry overwrites the same objects. The mapping has bisection off so that a retry sees
the same range.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.adapters.objects import ObjectStore, ObjectWrite
from pipelines.consumers.archive import archive_files
from pipelines.consumers.batch import Batch, BatchRecord, KinesisBatchKernel, QuarantineSink
from pipelines.consumers.config import LakeWriterSettings
from pipelines.consumers.lake.parquet import LakeTables
from pipelines.consumers.metrics import (
    EVENTS_ARCHIVED,
    EVENTS_NOT_ARCHIVED_REPLAYED,
    EVENTS_WRITTEN,
    MetricsSink,
)
from pipelines.errors import InvalidEventError, MisconfigurationError
from pipelines.stream.records import UNKNOWN_SHARD, Delivered

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_log = logging.getLogger(__name__)


def batch_stem(batch: Batch) -> str:
    """``<shard>-<first sequence>-<last sequence>`` of a batch: the stem of its object keys."""
    first, last = batch.records[0], batch.records[-1]
    shard = (first.decoded.shard_id if first.decoded else None) or UNKNOWN_SHARD
    return f"{shard}-{first.sequence_number}-{last.sequence_number}"


class LakeWriter:
    """Writes decoded batches to the lake and the archive."""

    metric_names = (EVENTS_WRITTEN, EVENTS_ARCHIVED, EVENTS_NOT_ARCHIVED_REPLAYED)

    def __init__(
        self,
        store: ObjectStore,
        *,
        lake_bucket: str,
        archive_bucket: str,
        archive_prefix: str = "events",
        tables: LakeTables | None = None,
        logger: logging.Logger | Any = None,
    ) -> None:
        self.store = store
        self.lake_bucket = lake_bucket
        self.archive_bucket = archive_bucket
        self.archive_prefix = archive_prefix
        self.tables = tables or LakeTables()
        self.logger = logger or _log

    def consume(self, batch: Batch) -> list[str]:
        """Write the batch; returns ``bucket/key`` of every object written."""
        if not batch.records:
            return []
        failed = next((r.error for r in batch.records if r.error is not None), None)
        if failed is not None:  # all or nothing: the retry must see the same range
            self._fail(batch, failed)
            return []
        events: list[tuple[BatchRecord, Delivered]] = [
            (record, delivered) for record in batch.records for delivered in record.events
        ]
        try:
            stem = batch_stem(batch)
            built = self.tables.build([d.event for _, d in events], stem)
            for row in built.rejected:  # the lake's own poison: kept with its bytes and why
                record, delivered = events[row.position]
                batch.quarantine(record, delivered, InvalidEventError(row.reason, b""))
            failed = next((r.error for r in batch.records if r.error is not None), None)
            if failed is not None:  # poison the quarantine did not take
                self._fail(batch, failed)
                return []
            writes: list[ObjectWrite] = []
            archived = 0
            pairs = [(r.decoded.user_record(d), d.event) for r, d in events if r.decoded]
            for archive in archive_files(pairs, stem, self.archive_prefix):
                writes.append((self.archive_bucket, archive.key, archive.data))
                archived += archive.events
            for lake_file in built.files:
                writes.append((self.lake_bucket, lake_file.key, lake_file.data))
            self.store.put_all(writes)
        except MisconfigurationError:
            raise
        except Exception as exc:  # all or nothing: the retry rewrites the same keys
            self._fail(batch, exc)
            return []
        batch.counts.add(EVENTS_ARCHIVED, archived)
        batch.counts.add(EVENTS_NOT_ARCHIVED_REPLAYED, len(events) - archived)
        batch.counts.add(EVENTS_WRITTEN, sum(f.events for f in built.files))
        return [f"{bucket}/{key}" for bucket, key, _ in writes]

    def _fail(self, batch: Batch, error: BaseException) -> None:
        self.logger.warning(
            "batch failed; every record reported for re-delivery",
            extra={
                "first_sequence_number": batch.records[0].sequence_number,
                "records": len(batch.records),
                "error": f"{type(error).__name__}: {error}",
            },
        )
        batch.fail_all(error)


def build_lake_writer(
    settings: LakeWriterSettings,
    filesystem: pafs.FileSystem,
    quarantine: QuarantineSink,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The lake writer on the batch kernel, for ``settings``'s buckets."""
    writer = LakeWriter(
        ObjectStore(filesystem, concurrency=settings.write_concurrency),
        lake_bucket=settings.lake_bucket,
        archive_bucket=settings.archive_bucket,
        archive_prefix=settings.archive_prefix,
        tables=LakeTables(compression=settings.compression),
        logger=logger,
    )
    return KinesisBatchKernel(writer, quarantine, logger=logger, metrics=metrics)

"""What only the lake writer does with a batch: every event as a typed Parquet row, all or nothing.

The kernel has decoded the batch, quarantined its poison and set its duplicates aside; the
lake writer turns the events into Parquet files (:mod:`.parquet`) and writes them. An event
the lake cannot hold (dated before the lake's first partition, a value its column refuses)
is poison of the lake's own: it is quarantined with its bytes and the reason, and the rest
of the batch is written. The archive is not the lake writer's: the archiver keeps every
record with its own event source mapping (:mod:`pipelines.consumers.archive`).

Object keys come from the batch's shard and sequence range, so the batch is all or
nothing: when any record fails (a write, or poison the quarantine did not take), every
record is reported failed, Lambda re-delivers the batch from its first record, and the
retry overwrites the same objects. The mapping has bisection off so that a retry sees the
same range.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pipelines.adapters.objects import ObjectStore
from pipelines.consumers.batch import Batch, BatchRecord, KinesisBatchKernel, QuarantineSink
from pipelines.consumers.batch_keys import batch_stem
from pipelines.consumers.config import LakeWriterSettings
from pipelines.consumers.lake.parquet import LakeTables
from pipelines.consumers.metrics import EVENTS_WRITTEN, MetricsSink
from pipelines.errors import InvalidEventError, MisconfigurationError
from pipelines.stream.records import Delivered

if TYPE_CHECKING:
    import pyarrow.fs as pafs


class LakeWriter:
    """Writes decoded batches to the lake."""

    metric_names = (EVENTS_WRITTEN,)

    def __init__(
        self,
        store: ObjectStore,
        *,
        lake_bucket: str,
        tables: LakeTables | None = None,
    ) -> None:
        self.store = store
        self.lake_bucket = lake_bucket
        self.tables = tables or LakeTables()

    def consume(self, batch: Batch) -> list[str]:
        """Write the batch; returns ``bucket/key`` of every object written."""
        if not batch.records:
            return []
        failed = batch.first_error()
        if failed is not None:  # all or nothing: the retry must see the same range
            batch.fail_all(failed)
            return []
        events: list[tuple[BatchRecord, Delivered]] = [
            (record, delivered) for record in batch.records for delivered in record.events
        ]
        try:
            built = self.tables.build([d.event for _, d in events], batch_stem(batch))
            for row in built.rejected:  # the lake's own poison: kept with its bytes and why
                record, delivered = events[row.position]
                batch.quarantine(record, delivered, InvalidEventError(row.reason, b""))
            failed = batch.first_error()
            if failed is not None:  # poison the quarantine did not take
                batch.fail_all(failed)
                return []
            writes = [(self.lake_bucket, f.key, f.data) for f in built.files]
            self.store.put_all(writes)
        except MisconfigurationError:
            raise
        except Exception as exc:  # all or nothing: the retry rewrites the same keys
            batch.fail_all(exc)
            return []
        batch.counts.add(EVENTS_WRITTEN, sum(f.events for f in built.files))
        return [f"{bucket}/{key}" for bucket, key, _ in writes]


def build_lake_writer(
    settings: LakeWriterSettings,
    filesystem: pafs.FileSystem,
    quarantine: QuarantineSink,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The lake writer on the batch kernel, for ``settings``'s bucket."""
    writer = LakeWriter(
        ObjectStore(filesystem, concurrency=settings.write_concurrency),
        lake_bucket=settings.lake_bucket,
        tables=LakeTables(compression=settings.compression),
    )
    return KinesisBatchKernel(writer, quarantine, logger=logger, metrics=metrics)

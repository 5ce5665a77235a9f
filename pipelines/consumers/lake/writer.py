"""What only the lake writer does with a batch: every event as a row of its Iceberg table, once.

The kernel has decoded the batch, quarantined its poison and set its duplicates aside; the
lake writer turns the events into one Arrow table per event type (:mod:`.parquet`) and
commits each to its Iceberg table (:mod:`.iceberg`): each commit appends only the records
above the shard's watermark and the events the table does not already hold, and raises the
watermark, in one transaction. So a batch is committed table by table and every retry, of
any range, adds nothing twice: a crash between two tables' commits leaves the first one's
watermark raised, and the retry skips it there.

An event the lake cannot hold (dated before the lake's first partition, a value its column
refuses) is poison of the lake's own: it is quarantined with its bytes and the reason, and
the rest of the batch is written. Any other failure fails the whole batch (Lambda
re-delivers it from its first record; the watermarks make that safe). The archive is not
the lake writer's: the archiver keeps every record with its own event source mapping
(:mod:`pipelines.consumers.archive`).
"""

from __future__ import annotations

import logging
from typing import Any

from pipelines.consumers.batch import Batch, BatchRecord, KinesisBatchKernel, QuarantineSink
from pipelines.consumers.batch_keys import batch_shard
from pipelines.consumers.config import LakeWriterSettings
from pipelines.consumers.lake.iceberg import (
    Commit,
    IcebergCommitter,
    LakeCatalog,
    glue_catalog,
)
from pipelines.consumers.lake.parquet import CONVERSION_ERRORS, LakeRows, LakeTables
from pipelines.consumers.metrics import (
    EVENTS_WRITTEN,
    LAKE_COMMIT_RETRIES,
    LAKE_DUPLICATES_DROPPED,
    MetricsSink,
)
from pipelines.errors import InvalidEventError, MisconfigurationError
from pipelines.stream.records import Delivered

logger = logging.getLogger(__name__)


class LakeWriter:
    """Commits decoded batches to the lake's Iceberg tables."""

    metric_names = (EVENTS_WRITTEN, LAKE_DUPLICATES_DROPPED, LAKE_COMMIT_RETRIES)

    def __init__(self, catalog: LakeCatalog, committer: IcebergCommitter | None = None) -> None:
        self.catalog = catalog
        self.tables: LakeTables = catalog.tables
        self.committer = committer or IcebergCommitter(catalog)

    def consume(self, batch: Batch) -> list[Commit]:
        """Commit the batch, table by table; what each commit did."""
        if not batch.records:
            return []
        failed = batch.first_error()
        if failed is not None:  # all or nothing: the watermark covers the whole batch
            batch.fail_all(failed)
            return []
        events: list[tuple[BatchRecord, Delivered]] = [
            (record, delivered) for record in batch.records for delivered in record.events
        ]
        decoded = [d.event for _, d in events]
        shard_id = batch_shard(batch)
        last_sequence = int(batch.records[-1].sequence_number)
        commits: list[Commit] = []
        try:
            built = self.tables.build(decoded)
            if not self._quarantine(batch, events, built.rejected):
                return []
            for rows in built.rows:
                commit = self._commit(batch, events, rows, shard_id, last_sequence)
                if commit is None:
                    return []
                commits.append(commit)
        except MisconfigurationError:
            raise
        except Exception as exc:  # the retry re-commits only what is not in yet
            batch.fail_all(exc)
            return []
        for commit in commits:
            batch.counts.add(EVENTS_WRITTEN, commit.appended)
            batch.counts.add(LAKE_DUPLICATES_DROPPED, commit.duplicates)
            batch.counts.add(LAKE_COMMIT_RETRIES, commit.attempts - 1)
        return commits

    def _commit(
        self,
        batch: Batch,
        events: list[tuple[BatchRecord, Delivered]],
        rows: LakeRows,
        shard_id: str,
        last_sequence: int,
    ) -> Commit | None:
        sequences = [int(events[p][0].sequence_number) for p in rows.positions]
        try:
            return self.committer.commit(
                rows.event_type, rows.table, sequences, shard_id, last_sequence
            )
        except CONVERSION_ERRORS as exc:
            refused = self.tables.refusals(rows, [d.event for _, d in events])
            if not refused:
                raise
            logger.info("%d rows of %s refused by Parquet: %s", len(refused), rows.event_type, exc)
        if not self._quarantine(batch, events, refused):
            return None
        kept = sorted(set(rows.positions) - {r.position for r in refused})
        table = self.tables.rows(rows.event_type, [events[p][1].event.record for p in kept])
        sequences = [int(events[p][0].sequence_number) for p in kept]
        return self.committer.commit(rows.event_type, table, sequences, shard_id, last_sequence)

    @staticmethod
    def _quarantine(
        batch: Batch, events: list[tuple[BatchRecord, Delivered]], rejected: list[Any]
    ) -> bool:
        """Quarantine the lake's own poison; False (batch failed) if the quarantine did not
        take it."""
        for row in rejected:
            record, delivered = events[row.position]
            batch.quarantine(record, delivered, InvalidEventError(row.reason, b""))
        failed = batch.first_error()
        if failed is not None:
            batch.fail_all(failed)
            return False
        return True


def build_lake_writer(
    settings: LakeWriterSettings,
    quarantine: QuarantineSink,
    *,
    catalog: Any = None,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The lake writer on the batch kernel, for ``settings``'s database and bucket."""
    lake = LakeCatalog(
        catalog if catalog is not None else glue_catalog(settings.region, settings.endpoint_url),
        settings.glue_database,
        settings.lake_bucket,
        LakeTables(compression=settings.compression),
    )
    return KinesisBatchKernel(LakeWriter(lake), quarantine, logger=logger, metrics=metrics)

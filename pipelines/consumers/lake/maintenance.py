"""The lake's maintenance run: every table's closed partitions compacted, its history expired.

What the scheduled compactor (``functions/lake_compactor``) and ``pipeline lake compact``
run: :class:`~pipelines.consumers.lake.compaction.Compactor` over each of the lake's tables
(one per event type) that exists, with the retention the deployment sets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pipelines.adapters.stored_files import stored_files_for
from pipelines.consumers.config import LakeCompactorSettings
from pipelines.consumers.lake.compaction import Compactor, TableCompaction
from pipelines.consumers.lake.iceberg import LakeCatalog, glue_catalog
from pipelines.consumers.lake.parquet import LakeTables
from pipelines.consumers.lake.retention import Retention
from pipelines.consumers.metrics import (
    LAKE_COMPACTION_RETRIES,
    LAKE_DUPLICATES_REMOVED,
    LAKE_FILES_COMPACTED_AWAY,
    LAKE_ORPHAN_FILES_DELETED,
    LAKE_PARTITIONS_COMPACTED,
    LAKE_SNAPSHOTS_EXPIRED,
)
from pipelines.errors import PipelineError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from pyiceberg.catalog import Catalog

logger = logging.getLogger(__name__)


class UnknownLakeTableError(PipelineError):
    """A table asked for is not one of the lake's."""


def table_identifiers(
    lake: LakeCatalog, names: Iterable[str] | None = None
) -> list[tuple[str, str]]:
    """The identifiers of the lake's tables, or of those ``names`` (table names, like
    ``transaction_recorded``, or event types, like ``TransactionRecorded``)."""
    by_name: dict[str, tuple[str, str]] = {}
    for event_type in lake.tables.event_types:
        identifier = lake.identifier(event_type)
        by_name[event_type] = by_name[identifier[1]] = identifier
    if names is None:
        return sorted(set(by_name.values()))
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        known = sorted(i[1] for i in set(by_name.values()))
        raise UnknownLakeTableError(
            f"no lake table {', '.join(unknown)} (the lake has {', '.join(known)})"
        )
    return sorted({by_name[name] for name in names})


def compact_lake(
    lake: LakeCatalog,
    compactor: Compactor,
    *,
    tables: Iterable[str] | None = None,
    before: date | None = None,
    expire: bool = True,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[TableCompaction]:
    """Compact the lake's tables (or ``tables``) that exist; a missing one is skipped.

    ``progress(done, total, table)`` hears of each table as its compaction starts.
    """
    from pyiceberg.exceptions import NoSuchTableError

    reports = []
    identifiers = list(table_identifiers(lake, tables))
    for done, identifier in enumerate(identifiers):
        if progress is not None:
            progress(done, len(identifiers), ".".join(identifier))
        try:
            reports.append(compactor.run(identifier, before=before, expire=expire))
        except NoSuchTableError:
            logger.info("no lake table %s yet: nothing to compact", ".".join(identifier))
    return reports


def build_lake_compactor(
    settings: LakeCompactorSettings, s3_client: S3Client | None, *, catalog: Catalog | None = None
) -> tuple[LakeCatalog, Compactor]:
    """The lake of ``settings`` and its compactor, orphan files listed through ``s3_client``."""
    lake = LakeCatalog(
        catalog if catalog is not None else glue_catalog(settings.region, settings.endpoint_url),
        settings.glue_database,
        settings.lake_bucket,
        LakeTables(),
    )
    retention = Retention(
        snapshot_age=timedelta(days=settings.snapshot_retention_days),
        snapshots_kept=settings.snapshots_kept,
        orphan_age=timedelta(hours=settings.orphan_min_age_hours),
    )
    compactor = Compactor(
        lake.catalog,
        files=lambda location: stored_files_for(location, s3_client),
        retention=retention,
    )
    return lake, compactor


def compaction_counts(reports: Iterable[TableCompaction]) -> dict[str, int]:
    """A run's totals, by metric name."""
    counts = dict.fromkeys(
        (
            LAKE_PARTITIONS_COMPACTED,
            LAKE_FILES_COMPACTED_AWAY,
            LAKE_DUPLICATES_REMOVED,
            LAKE_COMPACTION_RETRIES,
            LAKE_SNAPSHOTS_EXPIRED,
            LAKE_ORPHAN_FILES_DELETED,
        ),
        0,
    )
    for report in reports:
        for p in report.partitions:
            counts[LAKE_PARTITIONS_COMPACTED] += 1
            counts[LAKE_FILES_COMPACTED_AWAY] += p.files_before - p.files_after
            counts[LAKE_DUPLICATES_REMOVED] += p.duplicates_removed
            counts[LAKE_COMPACTION_RETRIES] += p.attempts - 1
        counts[LAKE_SNAPSHOTS_EXPIRED] += report.snapshots_expired
        counts[LAKE_ORPHAN_FILES_DELETED] += report.orphans.files
    return counts

"""Writing one Lambda batch of Kinesis records to the lake and the archive.

The lake writer is one consumer with two sinks, fed by one decode pass:

* the **archive** gets every event's exact bytes and coordinates
  (:mod:`pipelines.archive`), except replayed events;
* the **lake** gets every event as a typed Parquet row (:mod:`pipelines.lake.parquet`).

Poison records go to the quarantine and the batch goes on. An event id seen
earlier in the batch is a duplicate and written once. Object keys come from the
batch's shard and sequence range, so the batch is all or nothing: when any
write fails, every record is reported failed, Lambda re-delivers the batch from
its first record, and the retry overwrites the same objects.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.archive import UNKNOWN_SHARD, archive_files
from pipelines.codec import Codec, DecodedEvent, default_codec
from pipelines.errors import PoisonRecordError
from pipelines.lake.parquet import LakeTables
from pipelines.lake.store import ObjectStore, ObjectWrite
from pipelines.lake_settings import LakeSettings
from pipelines.records import UserRecord, decode_lambda_record, shard_id_of

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_log = logging.getLogger(__name__)

# Metric names (unit Count), emitted once per batch.
EVENTS_WRITTEN = "EventsWrittenToLake"
EVENTS_ARCHIVED = "EventsArchived"
EVENTS_SKIPPED_REPLAYED = "EventsNotArchivedReplayed"
EVENTS_SKIPPED_DUPLICATE = "EventsSkippedDuplicate"
EVENTS_QUARANTINED = "EventsQuarantined"
RECORDS_FAILED = "RecordsFailed"


class QuarantineSink(Protocol):
    """What the lake writer needs of :class:`pipelines.quarantine.Quarantine`."""

    def keep(self, record: UserRecord, error: PoisonRecordError) -> str: ...


class MetricsSink(Protocol):
    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


@dataclass(slots=True)
class LakeBatchResult:
    """One outcome per record (``None`` = success), the objects written and the counts."""

    errors: list[BaseException | None]
    keys: list[str] = field(default_factory=list)  # bucket/key of every object written
    counts: Counter[str] = field(default_factory=Counter)


def batch_stem(records: Sequence[Mapping[str, Any]]) -> str:
    """``<shard>-<first sequence>-<last sequence>`` of a batch: the stem of its object keys."""
    shard = shard_id_of(records[0].get("eventID")) or UNKNOWN_SHARD
    first = records[0]["kinesis"]["sequenceNumber"]
    last = records[-1]["kinesis"]["sequenceNumber"]
    return f"{shard}-{first}-{last}"


class LakeWriter:
    """Writes Lambda batches of Kinesis records to the lake and the archive."""

    def __init__(
        self,
        store: ObjectStore,
        quarantine: QuarantineSink,
        *,
        lake_bucket: str,
        archive_bucket: str,
        archive_prefix: str = "events",
        tables: LakeTables | None = None,
        codec: Codec | None = None,
        logger: logging.Logger | Any = None,
        metrics: MetricsSink | None = None,
    ) -> None:
        self.store = store
        self.quarantine = quarantine
        self.lake_bucket = lake_bucket
        self.archive_bucket = archive_bucket
        self.archive_prefix = archive_prefix
        self.tables = tables or LakeTables()
        self.codec = codec or default_codec()
        self.logger = logger or _log
        self.metrics = metrics

    def write_records(self, records: Sequence[Mapping[str, Any]]) -> list[BaseException | None]:
        """Write ``event["Records"]``; one error (or ``None``) per record."""
        result = self.write(records)
        if self.metrics is not None:
            for name, value in result.counts.items():
                self.metrics.add_metric(name=name, unit="Count", value=value)
        return result.errors

    def write(self, records: Sequence[Mapping[str, Any]]) -> LakeBatchResult:
        if not records:
            return LakeBatchResult([])
        counts: Counter[str] = Counter()
        try:
            stem = batch_stem(records)
            events = self._events(records, counts)
            writes: list[ObjectWrite] = []
            for archived in archive_files(events, stem, self.archive_prefix):
                writes.append((self.archive_bucket, archived.key, archived.data))
                counts[EVENTS_ARCHIVED] += archived.events
            counts[EVENTS_SKIPPED_REPLAYED] = len(events) - counts[EVENTS_ARCHIVED]
            for lake_file in self.tables.files((event for _, event in events), stem):
                writes.append((self.lake_bucket, lake_file.key, lake_file.data))
            counts[EVENTS_WRITTEN] = len(events)
            self.store.put_all(writes)
        except Exception as exc:  # all or nothing: the retry rewrites the same keys
            self.logger.warning(
                "batch failed; every record reported for re-delivery",
                extra={
                    "first_sequence_number": records[0].get("kinesis", {}).get("sequenceNumber"),
                    "records": len(records),
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )
            failed = Counter({RECORDS_FAILED: len(records)})
            return LakeBatchResult([exc] * len(records), counts=failed)
        keys = [f"{bucket}/{key}" for bucket, key, _ in writes]
        return LakeBatchResult([None] * len(records), keys, counts)

    def _events(
        self, records: Sequence[Mapping[str, Any]], counts: Counter[str]
    ) -> list[tuple[UserRecord, DecodedEvent]]:
        """The batch's events in order, duplicates dropped, poison records quarantined."""
        seen: set[str] = set()
        events: list[tuple[UserRecord, DecodedEvent]] = []
        for record in records:
            for delivered in decode_lambda_record(record, self.codec):
                event = delivered.event
                if event is None:
                    self._quarantine(delivered.record, delivered.error)
                    counts[EVENTS_QUARANTINED] += 1
                    continue
                event_id = event.event_id
                if event_id in seen:
                    counts[EVENTS_SKIPPED_DUPLICATE] += 1
                    continue
                seen.add(event_id)
                events.append((delivered.record, event))
        return events

    def _quarantine(self, record: UserRecord, error: PoisonRecordError | None) -> None:
        error = error or PoisonRecordError("unreadable record", record.data)
        key = self.quarantine.keep(record, error)
        self.logger.warning(
            "poison record quarantined",
            extra={
                "correlation_id": f"{record.sequence_number}-{record.sub_sequence_number}",
                "code": error.code,
                "reason": error.reason,
                "shard_id": record.shard_id,
                "partition_key": record.partition_key,
                "quarantine_key": key,
            },
        )


def build_lake_writer(
    settings: LakeSettings,
    filesystem: pafs.FileSystem,
    quarantine: QuarantineSink,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> LakeWriter:
    """A lake writer for ``settings``'s buckets, on the given filesystem and quarantine."""
    return LakeWriter(
        ObjectStore(filesystem, concurrency=settings.write_concurrency),
        quarantine,
        lake_bucket=settings.lake_bucket,
        archive_bucket=settings.archive_bucket,
        archive_prefix=settings.archive_prefix,
        tables=LakeTables(compression=settings.compression),
        logger=logger,
        metrics=metrics,
    )

"""What only the archiver does with a batch: archive every record that reached the stream.

The archiver is a consumer of its own, with its own event source mapping, so that the
archive is independent of every other sink: whatever the lake, the projections or the alerts
do with a record, its exact bytes and coordinates are archived (:mod:`.files`). Poison is
archived too, as it arrived (the kernel has quarantined it with its reason); events marked as
replayed are not, since they were archived when first produced.

Object keys come from the shard and the first record of each object, so the batch is all or
nothing: when any record has failed (poison the quarantine did not take, a malformed Lambda
record) or a write fails, every record is reported failed, Lambda re-delivers the batch from
its first record, and the retry writes the same keys again, whatever its length. The mapping
has bisection off so that a retry starts where the batch did; each record is thus archived
once, under one key (:mod:`pipelines.consumers.batch_keys`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.adapters.quarantine import Quarantine
from pipelines.adapters.s3_objects import ObjectWrite, S3Objects
from pipelines.consumers.archive.files import Arrival, archive_files
from pipelines.consumers.batch import Batch, KinesisBatchKernel
from pipelines.consumers.config import ArchiverSettings
from pipelines.consumers.metrics import (
    EVENTS_ARCHIVED,
    EVENTS_NOT_ARCHIVED_REPLAYED,
    POISON_ARCHIVED,
    MetricsSink,
)
from pipelines.errors import MisconfigurationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class ObjectSink(Protocol):
    """What the archiver needs of an object store (:class:`S3Objects`, or a local folder)."""

    def put_all(self, writes: Sequence[ObjectWrite]) -> None: ...


def batch_arrivals(batch: Batch) -> list[Arrival]:
    """Every user record of the batch, in stream order: events, duplicates and poison alike.

    A record is identified by its sequence and sub-sequence numbers; one read both as an
    event and as poison (an event the batch found it cannot accept) is archived once, as
    poison that keeps its event's type and id.
    """
    out: list[Arrival] = []
    for record in batch.records:
        decoded = record.decoded
        if decoded is None:
            continue
        by_sub: dict[int, Arrival] = {}
        for delivered in decoded.events:
            by_sub[delivered.sub_sequence_number] = Arrival(
                decoded.user_record(delivered), delivered.event
            )
        for poisoned in decoded.poison:
            sub = poisoned.record.sub_sequence_number
            known = by_sub.get(sub)
            by_sub[sub] = Arrival(
                poisoned.record, None if known is None else known.event, poisoned.error
            )
        out.extend(by_sub[sub] for sub in sorted(by_sub))
    return out


class Archiver:
    """Writes each decoded batch to the archive, all or nothing."""

    metric_names = (EVENTS_ARCHIVED, POISON_ARCHIVED, EVENTS_NOT_ARCHIVED_REPLAYED)

    def __init__(
        self,
        store: ObjectSink,
        *,
        bucket: str,
        prefix: str = "events",
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.prefix = prefix

    def consume(self, batch: Batch) -> list[str]:
        """Archive the batch; returns ``bucket/key`` of every object written."""
        if not batch.records:
            return []
        failed = batch.first_error()
        if failed is not None:  # all or nothing: the retry must see the same range
            batch.fail_all(failed)
            return []
        arrivals = batch_arrivals(batch)
        try:
            files = archive_files(arrivals, self.prefix)
            writes = [(self.bucket, f.key, f.data) for f in files]
            self.store.put_all(writes)
        except MisconfigurationError:
            raise
        except Exception as exc:  # all or nothing: the retry rewrites the same keys
            batch.fail_all(exc)
            return []
        events = sum(f.events for f in files)
        batch.counts.add(EVENTS_ARCHIVED, events)
        batch.counts.add(POISON_ARCHIVED, sum(f.poison for f in files))
        decoded = sum(1 for a in arrivals if a.event is not None and a.poison is None)
        batch.counts.add(EVENTS_NOT_ARCHIVED_REPLAYED, decoded - events)
        return [f"{bucket}/{key}" for bucket, key, _ in writes]


def build_archiver(
    settings: ArchiverSettings,
    s3: S3Client,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The archiver on the batch kernel, for ``settings``'s buckets."""
    archiver = Archiver(
        S3Objects(s3), bucket=settings.archive_bucket, prefix=settings.archive_prefix
    )
    quarantine = Quarantine(s3, settings.quarantine_bucket, settings.service_name)
    return KinesisBatchKernel(archiver, quarantine, logger=logger, metrics=metrics)

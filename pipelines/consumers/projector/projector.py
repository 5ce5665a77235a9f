"""What only the projector does with a batch: write every event into the read models.

The batch kernel (:mod:`pipelines.consumers.batch`) has decoded the batch, quarantined its
poison and set its duplicates aside. The projector then:

1. **plans** (pure, no I/O): every event becomes its write (:mod:`.projections`); an event
   its projection cannot express is set aside to be quarantined;
2. **applies**, in *waves*: consecutive records whose ordering keys do not overlap are
   written together - state updates first (items in parallel, each item's in order), then
   every fact of the wave through ``BatchWriteItem`` 25 at a time. A record whose writes
   did not land (after the adapter's retries) fails, and the kernel keeps every later
   record of its keys from being applied.

Every write is idempotent (facts by event id, state by version), so Lambda's re-delivery
from the lowest failed record repairs it without duplicating anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.adapters.dynamo import (
    DynamoWriter,
    UnprocessedItemsError,
    UpdateOutcome,
    WriteRejectedError,
)
from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.batch import Batch, BatchRecord, KinesisBatchKernel
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.metrics import (
    EVENT_TYPE,
    EVENTS_PROJECTED,
    EVENTS_SKIPPED_DUPLICATE,
    EVENTS_SKIPPED_STALE,
    MetricsSink,
)
from pipelines.consumers.projector.projections import ConditionalUpdate, FactPut, Projections
from pipelines.errors import InvalidEventError, MisconfigurationError
from pipelines.stream.records import Delivered

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_log = logging.getLogger(__name__)

# (event id, event type, write) of one conditional update.
Update = tuple[str, str, ConditionalUpdate]


@dataclass(slots=True)
class RecordWrites:
    """The writes one Kinesis record makes, ready to apply."""

    record: BatchRecord
    facts: list[FactPut] = field(default_factory=list)
    fact_types: list[str] = field(default_factory=list)  # the event type of each fact
    updates: list[Update] = field(default_factory=list)
    invalid: list[tuple[Delivered, InvalidEventError]] = field(default_factory=list)


class Projector:
    """Applies decoded batches to the read models."""

    metric_names = (EVENTS_PROJECTED, EVENTS_SKIPPED_STALE)

    def __init__(
        self,
        projections: Projections,
        writer: DynamoWriter,
        *,
        logger: logging.Logger | Any = None,
        write_concurrency: int = 8,
    ) -> None:
        self.projections = projections
        self.writer = writer
        self.logger = logger or _log
        self.write_concurrency = write_concurrency
        self._pool: ThreadPoolExecutor | None = None

    def consume(self, batch: Batch) -> None:
        plans = self.plan(batch)
        wave: list[RecordWrites] = []
        wave_keys: set[str] = set()
        for plan in plans:
            keys = plan.record.keys
            if keys & wave_keys:
                self._apply_wave(batch, wave)
                wave, wave_keys = [], set()
            if batch.admit(plan.record):
                wave.append(plan)
                wave_keys |= keys
        self._apply_wave(batch, wave)

    # --- phase 1: plan (pure) ---------------------------------------------------------

    def plan(self, batch: Batch) -> list[RecordWrites]:
        """Every record's writes, without I/O."""
        return [self._plan_record(batch, record) for record in batch.records]

    def _plan_record(self, batch: Batch, record: BatchRecord) -> RecordWrites:
        plan = RecordWrites(record)
        if record.error is not None:
            return plan
        write_for = self.projections.write_for
        facts, fact_types, updates = plan.facts, plan.fact_types, plan.updates
        for delivered in record.events:
            event = delivered.event
            try:
                write = write_for(event)
            except InvalidEventError as exc:
                plan.invalid.append((delivered, exc))
                continue
            except Exception as exc:  # a projection bug must fail the record, not the batch
                batch.fail(record, exc)
                return plan
            if type(write) is FactPut:
                facts.append(write)
                fact_types.append(event.event_type)
            else:
                updates.append((event.record["metadata"]["event_id"], event.event_type, write))  # type: ignore[arg-type]
        return plan

    # --- phase 2: apply ---------------------------------------------------------------

    def _apply_wave(self, batch: Batch, wave: list[RecordWrites]) -> None:
        for plan in wave:
            for delivered, error in plan.invalid:
                if not batch.quarantine(plan.record, delivered, error):
                    break
        self._update_all(batch, [p for p in wave if p.record.error is None])
        owners: dict[tuple[str, tuple[str, ...]], list[BatchRecord]] = {}
        type_of: dict[tuple[str, tuple[str, ...]], str] = {}
        puts: list[FactPut] = []
        for plan in wave:
            if plan.record.error is not None:
                continue
            for put, event_type in zip(plan.facts, plan.fact_types, strict=True):
                owners.setdefault((put.table, put.key), []).append(plan.record)
                type_of.setdefault((put.table, put.key), event_type)
                puts.append(put)
        if not puts:
            return
        landed: Counter[str] = Counter()
        try:
            self.writer.put_facts(puts)
            landed.update(type_of.values())
        except (UnprocessedItemsError, WriteRejectedError) as exc:
            unwritten = {(p.table, p.key) for p in exc.unwritten}
            landed.update(t for k, t in type_of.items() if k not in unwritten)
            for table_key in unwritten:
                for record in owners[table_key]:
                    batch.fail(record, exc)
        except MisconfigurationError:
            raise
        except Exception as exc:  # unknown fate: fail every record of the wave with facts
            for records in owners.values():
                for record in records:
                    batch.fail(record, exc)
        for event_type, n in landed.items():
            batch.counts.add(EVENTS_PROJECTED, n, dimension=EVENT_TYPE, of=event_type)

    def _update_all(self, batch: Batch, plans: list[RecordWrites]) -> None:
        """Apply the plans' conditional updates, items in parallel, each item's in order.

        Updates of one item (table and key) run one after another in batch order, and stop
        at the first that fails; different items are independent and run concurrently,
        since each update is a round trip to DynamoDB. A failure fails its record.
        """
        groups: dict[tuple[str, str], list[tuple[BatchRecord, Update]]] = {}
        for plan in plans:
            for update in plan.updates:
                write = update[2]
                item = (write.table, repr(sorted(write.key.items())))
                groups.setdefault(item, []).append((plan.record, update))
        if not groups:
            return
        if len(groups) == 1 or self.write_concurrency == 1:
            outcomes = [self._update_item(group) for group in groups.values()]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.write_concurrency, "projector-write")
            outcomes = list(self._pool.map(self._update_item, groups.values()))
        counts = batch.counts
        for results in outcomes:
            for record, (event_id, event_type, write), outcome in results:
                if isinstance(outcome, MisconfigurationError):
                    raise outcome
                if isinstance(outcome, BaseException):
                    batch.fail(record, outcome)
                    continue
                if outcome is UpdateOutcome.APPLIED:
                    counts.add(EVENTS_PROJECTED, dimension=EVENT_TYPE, of=event_type)
                    continue
                name = (
                    EVENTS_SKIPPED_STALE
                    if outcome is UpdateOutcome.STALE
                    else EVENTS_SKIPPED_DUPLICATE
                )
                counts.add(name, dimension=EVENT_TYPE, of=event_type)
                self.logger.debug(
                    f"event skipped as {outcome.value}",
                    extra={"correlation_id": event_id, "table": write.table},
                )

    def _update_item(
        self, group: list[tuple[BatchRecord, Update]]
    ) -> list[tuple[BatchRecord, Update, UpdateOutcome | BaseException]]:
        results: list[tuple[BatchRecord, Update, UpdateOutcome | BaseException]] = []
        for record, update in group:
            try:
                outcome: UpdateOutcome | BaseException = self.writer.update(update[2])
            except Exception as exc:  # fails its record; later updates of the item wait
                results.append((record, update, exc))
                break
            results.append((record, update, outcome))
        return results


def build_projector(
    settings: ProjectorSettings,
    dynamodb: DynamoDBClient,
    s3: S3Client,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The projector on the batch kernel, for ``settings``'s tables and bucket."""
    projector = Projector(
        Projections.from_settings(settings),
        DynamoWriter(dynamodb, settings.retry),
        logger=logger,
        write_concurrency=settings.write_concurrency,
    )
    return KinesisBatchKernel(
        projector,
        Quarantine(s3, settings.quarantine_bucket, settings.service_name),
        logger=logger,
        metrics=metrics,
    )

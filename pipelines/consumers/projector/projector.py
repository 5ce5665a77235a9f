"""What only the projector does with a batch: write every event into the read models.

The batch kernel (:mod:`pipelines.consumers.batch`) has decoded the batch, quarantined its
poison and set its duplicates aside. The projector then:

1. **plans** (pure, no I/O): every event becomes its write (:mod:`.projections`); an event
   its projection cannot express, or whose item DynamoDB could never take (over 400 KB, a
   key over its byte limit), is set aside to be quarantined before anything is written;
2. **applies**, in *waves*: consecutive records whose ordering keys do not overlap are
   written together - state updates first (items in parallel, each item's in order), then
   every fact of the wave through ``BatchWriteItem`` 25 at a time.

What DynamoDB does with each write decides its record's fate, one event at a time:

* landed, or skipped as stale or duplicate: counted;
* **rejected** (a ``ValidationException``: the merged item grew past 400 KB, say): the
  event is poison. It is quarantined with DynamoDB's message as the reason, and nothing
  else is held up: a rejected put does not take its ``BatchWriteItem`` chunk with it (the
  adapter isolates it), a rejected update does not stop the later updates of its item;
* **not landed** after the adapter's retries (throttling, unprocessed items): its record
  fails, and the kernel keeps every later record of its keys from being applied; later
  updates of the same item in the batch fail with it;
* a **misconfiguration** (a missing table, access denied) fails the invocation.

Every write is idempotent (facts by event id, state by version), so Lambda's re-delivery
from the lowest failed record repairs it without duplicating anything.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.adapters.dynamo import DynamoWriter, UpdateOutcome, WriteRejectedError
from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.batch import Batch, BatchRecord, KeyOrderError, KinesisBatchKernel
from pipelines.consumers.config import ProjectorSettings
from pipelines.consumers.metrics import (
    EVENT_TYPE,
    EVENTS_PROJECTED,
    EVENTS_SKIPPED_DUPLICATE,
    EVENTS_SKIPPED_STALE,
    MetricsSink,
)
from pipelines.consumers.projector.projections import (
    FactPut,
    FieldMerge,
    Projections,
    StateWrite,
)
from pipelines.errors import InvalidEventError, MisconfigurationError
from pipelines.stream.records import Delivered

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_log = logging.getLogger(__name__)

# One state write of a record's event, and what became of it.
Update = tuple[BatchRecord, Delivered, StateWrite]
UpdateResult = tuple[BatchRecord, Delivered, StateWrite, UpdateOutcome | BaseException]


@dataclass(slots=True)
class RecordWrites:
    """The writes one Kinesis record makes, ready to apply."""

    record: BatchRecord
    facts: list[FactPut] = field(default_factory=list)
    fact_events: list[Delivered] = field(default_factory=list)  # the event of each fact
    updates: list[tuple[Delivered, StateWrite]] = field(default_factory=list)
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
        facts, fact_events, updates = plan.facts, plan.fact_events, plan.updates
        for delivered in record.events:
            try:
                write = write_for(delivered.event, len(delivered.data))
            except InvalidEventError as exc:
                plan.invalid.append((delivered, exc))
                continue
            except Exception as exc:  # a projection bug must fail the record, not the batch
                batch.fail(record, exc)
                return plan
            if type(write) is FactPut:
                facts.append(write)
                fact_events.append(delivered)
            else:
                updates.append((delivered, write))  # type: ignore[arg-type]
        return plan

    # --- phase 2: apply ---------------------------------------------------------------

    def _apply_wave(self, batch: Batch, wave: list[RecordWrites]) -> None:
        for plan in wave:
            for delivered, error in plan.invalid:
                if not batch.quarantine(plan.record, delivered, error):
                    break
        self._update_all(batch, [p for p in wave if p.record.error is None])
        self._put_all(batch, [p for p in wave if p.record.error is None])

    def _put_all(self, batch: Batch, plans: list[RecordWrites]) -> None:
        """Put the plans' facts; a rejected put is quarantined, an unlanded one fails."""
        owners: dict[tuple[str, tuple[str, ...]], list[tuple[BatchRecord, Delivered]]] = {}
        puts: list[FactPut] = []
        for plan in plans:
            for put, delivered in zip(plan.facts, plan.fact_events, strict=True):
                owners.setdefault((put.table, put.key), []).append((plan.record, delivered))
                puts.append(put)
        if not puts:
            return
        try:
            written = self.writer.write_facts(puts)
        except MisconfigurationError:
            raise
        except Exception as exc:  # unknown fate: fail every record of the wave with facts
            for owned in owners.values():
                for record, _ in owned:
                    batch.fail(record, exc)
            return
        landed: Counter[str] = Counter()
        for put in written.landed:
            landed[owners[(put.table, put.key)][0][1].event.event_type] += 1
        for put, rejection in written.rejected:
            for record, delivered in owners[(put.table, put.key)]:
                self._quarantine_rejected(batch, record, delivered, put.table, rejection)
        for put in written.unwritten:
            for record, _ in owners[(put.table, put.key)]:
                batch.fail(record, written.error or RuntimeError("put did not land"))
        for event_type, n in landed.items():
            batch.counts.add(EVENTS_PROJECTED, n, dimension=EVENT_TYPE, of=event_type)

    def _quarantine_rejected(
        self,
        batch: Batch,
        record: BatchRecord,
        delivered: Delivered,
        table: str,
        rejection: WriteRejectedError,
    ) -> None:
        """An event whose write DynamoDB refused is poison: quarantined with DynamoDB's reason."""
        reason = (
            f"{delivered.event.event_type}: DynamoDB rejected the write to {table} "
            f"({rejection.code}): {rejection.reason}"
        )
        batch.quarantine(record, delivered, InvalidEventError(reason, b""))

    def _update_all(self, batch: Batch, plans: list[RecordWrites]) -> None:
        """Apply the plans' conditional updates, items in parallel, each item's in order.

        Updates of one item (table and key) run one after another in batch order;
        different items are independent and run concurrently, since each update is a
        round trip to DynamoDB. A rejected update is quarantined and the item's next
        update goes on; an update that did not land fails its record, and every later
        update of the item fails too (it must not overtake it).
        """
        groups: dict[tuple[str, str], list[Update]] = {}
        for plan in plans:
            for delivered, write in plan.updates:
                item = (write.table, repr(sorted(write.key.items())))
                groups.setdefault(item, []).append((plan.record, delivered, write))
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
            for record, delivered, write, outcome in results:
                event_type = delivered.event.event_type
                if isinstance(outcome, MisconfigurationError):
                    raise outcome
                if isinstance(outcome, WriteRejectedError):
                    self._quarantine_rejected(batch, record, delivered, write.table, outcome)
                    continue
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
                    extra={"correlation_id": delivered.event.event_id, "table": write.table},
                )

    def _update_item(self, group: list[Update]) -> list[UpdateResult]:
        results: list[UpdateResult] = []
        failed: BaseException | None = None
        for record, delivered, write in group:
            outcome: UpdateOutcome | BaseException
            if failed is not None:
                outcome = KeyOrderError(
                    f"{delivered.event.event_type} {delivered.event.event_id} not applied: "
                    f"an earlier update of its {write.table} item failed ({failed})"
                )
            else:
                try:
                    if isinstance(write, FieldMerge):
                        outcome = self.writer.merge(write)
                    else:
                        outcome = self.writer.update(write)
                except WriteRejectedError as exc:  # poison: the item's next update goes on
                    outcome = exc
                except Exception as exc:  # fails its record and the item's later updates
                    outcome = failed = exc
            results.append((record, delivered, write, outcome))
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

"""Projecting one Lambda batch of Kinesis records into the DynamoDB read models.

The unit of delivery is a Kinesis record (possibly a KPL aggregate of thousands
of events): it succeeds or fails as a whole and is reported by its sequence
number. A batch is handled in two phases:

1. **plan** (pure, no I/O): deaggregate, decode and turn every event into its
   write (:mod:`pipelines.projections`); poison user records are set aside for
   the quarantine, and an event seen earlier in the batch is a duplicate.
2. **apply**, in *waves*: consecutive records whose partition keys do not
   overlap are written together - state updates in order, then every fact of
   the wave through ``BatchWriteItem`` 25 at a time. A record whose write did
   not land (after the adapter's retries) fails; so does every later record
   whose keys meet the keys of a failed one, without being applied (per-key
   order, Powertools issue 2850). A record's keys are the partition keys of
   its user records.

Lambda re-delivers from the lowest failed sequence number, and every write is
idempotent (facts by event id, state by version), so re-delivery repairs a
failed record without duplicating anything.
"""

from __future__ import annotations

import binascii
import gc
import logging
from base64 import b64decode
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

from pipelines.aggregation import deaggregate
from pipelines.codec import Codec, default_codec
from pipelines.dynamo import DynamoWriter, UnprocessedItemsError, UpdateOutcome, WriteRejectedError
from pipelines.errors import InvalidEventError, PoisonRecordError, TransientError
from pipelines.projections import ConditionalUpdate, FactPut, Projections
from pipelines.quarantine import Quarantine
from pipelines.records import UserRecord, decode_lambda_record, user_record_of
from pipelines.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client

_log = logging.getLogger(__name__)

# Metric names (unit Count), emitted once per batch.
EVENTS_PROJECTED = "EventsProjected"
EVENTS_SKIPPED_STALE = "EventsSkippedStale"
EVENTS_SKIPPED_DUPLICATE = "EventsSkippedDuplicate"
EVENTS_QUARANTINED = "EventsQuarantined"
RECORDS_FAILED = "RecordsFailed"
RECORDS_BLOCKED = "RecordsBlockedByKeyOrder"
# The event type of a record that did not decode.
UNKNOWN_TYPE = "unknown"


class MetricsSink(Protocol):
    """What the projector needs of Powertools' ``Metrics``."""

    def add_metric(self, name: str, unit: Any, value: float) -> None: ...


class KeyOrderError(TransientError):
    """Not applied: an earlier record in this batch with an overlapping partition key failed."""


@dataclass(slots=True)
class RecordPlan:
    """The writes one Kinesis record makes, ready to apply."""

    index: int
    sequence_number: str
    keys: frozenset[str]
    facts: list[FactPut] = field(default_factory=list)
    fact_types: list[str] = field(default_factory=list)  # the event type of each fact
    # (event id, event type, write)
    updates: list[tuple[str, str, ConditionalUpdate]] = field(default_factory=list)
    # (user record, error, event type or UNKNOWN_TYPE when it did not decode)
    poison: list[tuple[UserRecord, PoisonRecordError, str]] = field(default_factory=list)
    duplicates: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None  # set when planning or applying fails


@dataclass(slots=True)
class BatchCounts:
    """Event counts by event type (``UNKNOWN_TYPE`` for undecodable records)."""

    projected: Counter[str] = field(default_factory=Counter)
    stale: Counter[str] = field(default_factory=Counter)
    duplicate: Counter[str] = field(default_factory=Counter)
    quarantined: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    blocked: int = 0

    def as_metrics(self) -> dict[str, int]:
        """Totals, one per metric name."""
        return {
            EVENTS_PROJECTED: self.projected.total(),
            EVENTS_SKIPPED_STALE: self.stale.total(),
            EVENTS_SKIPPED_DUPLICATE: self.duplicate.total(),
            EVENTS_QUARANTINED: self.quarantined.total(),
            RECORDS_FAILED: self.failed,
            RECORDS_BLOCKED: self.blocked,
        }

    def by_event_type(self) -> dict[str, dict[str, int]]:
        """Event metrics broken down by event type: {metric name: {event type: count}}."""
        return {
            EVENTS_PROJECTED: dict(self.projected),
            EVENTS_SKIPPED_STALE: dict(self.stale),
            EVENTS_SKIPPED_DUPLICATE: dict(self.duplicate),
            EVENTS_QUARANTINED: dict(self.quarantined),
        }


@dataclass(slots=True)
class BatchResult:
    """One outcome per record, in batch order (``None`` = success), and the counts."""

    errors: list[BaseException | None]
    counts: BatchCounts


class Projector:
    """Applies Lambda batches of Kinesis records to the read models."""

    def __init__(
        self,
        projections: Projections,
        writer: DynamoWriter,
        quarantine: Quarantine,
        *,
        codec: Codec | None = None,
        logger: logging.Logger | Any = None,
        metrics: MetricsSink | None = None,
        write_concurrency: int = 8,
    ) -> None:
        self.projections = projections
        self.write_concurrency = write_concurrency
        self._pool: ThreadPoolExecutor | None = None
        self.writer = writer
        self.quarantine = quarantine
        self.codec = codec or default_codec()
        self.logger = logger or _log
        self.metrics = metrics

    # --- the batch --------------------------------------------------------------

    def project_records(self, records: Sequence[Mapping[str, Any]]) -> list[BaseException | None]:
        """Project ``event["Records"]``; one error (or ``None``) per record."""
        result = self.project(records)
        if self.metrics is not None:
            for name, value in result.counts.as_metrics().items():
                self.metrics.add_metric(name=name, unit="Count", value=value)
            namespace = getattr(self.metrics, "namespace", None)
            if namespace:  # a Powertools Metrics sink: also break the counts down by type
                _emit_by_event_type(result.counts, namespace)
        return result.errors

    def project(self, records: Sequence[Mapping[str, Any]]) -> BatchResult:
        counts = BatchCounts()
        plans = self.plan(records)
        failed_keys: set[str] = set()
        wave: list[RecordPlan] = []
        wave_keys: set[str] = set()
        for plan in plans:
            if plan.keys & wave_keys:
                self._apply_wave(wave, counts, failed_keys)
                wave, wave_keys = [], set()
            if plan.error is None and plan.keys & failed_keys:
                plan.error = KeyOrderError(
                    f"record {plan.sequence_number} not applied: an earlier record with "
                    f"partition key(s) {sorted(plan.keys & failed_keys)[:5]} failed"
                )
                counts.blocked += 1
            if plan.error is not None:
                failed_keys |= plan.keys
                continue
            wave.append(plan)
            wave_keys |= plan.keys
        self._apply_wave(wave, counts, failed_keys)
        for plan in plans:
            counts.duplicate.update(plan.duplicates)
            if plan.error is not None:
                counts.failed += 1
                self._log_failure(plan)
        return BatchResult([plan.error for plan in plans], counts)

    # --- phase 1: plan (pure) ---------------------------------------------------------

    def plan(self, records: Sequence[Mapping[str, Any]]) -> list[RecordPlan]:
        """Deaggregate, decode and build every write, without I/O."""
        seen: set[str] = set()
        with _gc_paused():
            return [self._plan_record(i, record, seen) for i, record in enumerate(records)]

    def _plan_record(self, index: int, record: Mapping[str, Any], seen: set[str]) -> RecordPlan:
        kinesis = record.get("kinesis") or {}
        sequence_number = str(kinesis.get("sequenceNumber", ""))
        try:
            subs = deaggregate(b64decode(kinesis["data"]), kinesis.get("partitionKey", ""))
        except (binascii.Error, ValueError, TypeError, PoisonRecordError):
            return self._plan_unreadable(index, record, sequence_number)
        except Exception as exc:  # a malformed Lambda record: fail it, do not guess
            plan = RecordPlan(index, sequence_number, frozenset({kinesis.get("partitionKey", "")}))
            plan.error = exc
            return plan
        plan = RecordPlan(index, sequence_number, frozenset([s.partition_key for s in subs]))
        decode = self.codec.decode
        write_for = self.projections.write_for
        facts, fact_types, updates = plan.facts, plan.fact_types, plan.updates
        for sub in subs:
            try:
                event = decode(sub.data)
            except PoisonRecordError as error:
                plan.poison.append((user_record_of(record, sub), error, UNKNOWN_TYPE))
                continue
            event_id = str(event.record["metadata"]["event_id"])
            if event_id in seen:
                plan.duplicates[event.event_type] += 1
                continue
            seen.add(event_id)
            try:
                write = write_for(event)
            except InvalidEventError as exc:
                poison = InvalidEventError(exc.reason, sub.data)
                plan.poison.append((user_record_of(record, sub), poison, event.event_type))
                continue
            except Exception as exc:  # a projection bug must fail the record, not the batch
                plan.error = exc
                return plan
            if type(write) is FactPut:
                facts.append(write)
                fact_types.append(event.event_type)
            else:
                updates.append((event_id, event.event_type, write))  # type: ignore[arg-type]
        return plan

    def _plan_unreadable(
        self, index: int, record: Mapping[str, Any], sequence_number: str
    ) -> RecordPlan:
        """Not base64, or a broken aggregate: the whole record is one poison entry."""
        (delivered,) = decode_lambda_record(record, self.codec)
        plan = RecordPlan(index, sequence_number, frozenset({delivered.record.partition_key}))
        error = delivered.error or PoisonRecordError("unreadable record", delivered.record.data)
        plan.poison.append((delivered.record, error, UNKNOWN_TYPE))
        return plan

    # --- phase 2: apply ---------------------------------------------------------------

    def _apply_wave(
        self, wave: list[RecordPlan], counts: BatchCounts, failed_keys: set[str]
    ) -> None:
        for plan in wave:
            try:
                self._quarantine(plan, counts)
            except Exception as exc:  # any fault fails this record only, as Powertools does
                plan.error = exc
        self._update_all([plan for plan in wave if plan.error is None], counts)
        live = [plan for plan in wave if plan.error is None]
        owners: dict[tuple[str, tuple[str, ...]], list[RecordPlan]] = {}
        type_of: dict[tuple[str, tuple[str, ...]], str] = {}
        puts: list[FactPut] = []
        for plan in live:
            for put, event_type in zip(plan.facts, plan.fact_types, strict=True):
                owners.setdefault((put.table, put.key), []).append(plan)
                type_of.setdefault((put.table, put.key), event_type)
                puts.append(put)
        if puts:
            try:
                self.writer.put_facts(puts)
                counts.projected.update(type_of.values())
            except (UnprocessedItemsError, WriteRejectedError) as exc:
                unwritten = {(p.table, p.key) for p in exc.unwritten}
                counts.projected.update(t for k, t in type_of.items() if k not in unwritten)
                for table_key in unwritten:
                    for plan in owners[table_key]:
                        plan.error = plan.error or exc
            except Exception as exc:  # unknown fate: fail every record of the wave with facts
                for plans in owners.values():
                    for plan in plans:
                        plan.error = plan.error or exc
        for plan in wave:
            if plan.error is not None:
                failed_keys |= plan.keys

    def _quarantine(self, plan: RecordPlan, counts: BatchCounts) -> None:
        for user_record, error, event_type in plan.poison:
            key = self.quarantine.keep(user_record, error)
            where = f"{user_record.sequence_number}-{user_record.sub_sequence_number}"
            counts.quarantined[event_type] += 1
            self.logger.warning(
                "poison record quarantined",
                extra={
                    "correlation_id": where,
                    "code": error.code,
                    "reason": error.reason,
                    "shard_id": user_record.shard_id,
                    "partition_key": user_record.partition_key,
                    "quarantine_key": key,
                },
            )

    def _update_all(self, plans: list[RecordPlan], counts: BatchCounts) -> None:
        """Apply the plans' conditional updates, items in parallel, each item's in order.

        Updates of one item (table and key) run one after another in batch order, and stop
        at the first that fails; different items are independent and run concurrently,
        since each update is a round trip to DynamoDB. A failure fails its record.
        """
        groups: dict[tuple[str, str], list[tuple[RecordPlan, str, str, ConditionalUpdate]]] = {}
        for plan in plans:
            for event_id, event_type, update in plan.updates:
                item = (update.table, repr(sorted(update.key.items())))
                groups.setdefault(item, []).append((plan, event_id, event_type, update))
        if not groups:
            return
        if len(groups) == 1 or self.write_concurrency == 1:
            outcomes = [self._update_item(group) for group in groups.values()]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.write_concurrency, "projector-write")
            outcomes = list(self._pool.map(self._update_item, groups.values()))
        for results in outcomes:
            for plan, event_id, event_type, update, outcome in results:
                if isinstance(outcome, BaseException):
                    plan.error = plan.error or outcome
                    continue
                if outcome is UpdateOutcome.APPLIED:
                    counts.projected[event_type] += 1
                    continue
                if outcome is UpdateOutcome.STALE:
                    counts.stale[event_type] += 1
                else:
                    counts.duplicate[event_type] += 1
                self.logger.debug(
                    f"event skipped as {outcome.value}",
                    extra={"correlation_id": event_id, "table": update.table},
                )

    def _update_item(
        self, group: list[tuple[RecordPlan, str, str, ConditionalUpdate]]
    ) -> list[tuple[RecordPlan, str, str, ConditionalUpdate, UpdateOutcome | BaseException]]:
        results: list[
            tuple[RecordPlan, str, str, ConditionalUpdate, UpdateOutcome | BaseException]
        ] = []
        for plan, event_id, event_type, update in group:
            try:
                outcome: UpdateOutcome | BaseException = self.writer.update(update)
            except Exception as exc:  # fails its record; later updates of the item wait
                results.append((plan, event_id, event_type, update, exc))
                break
            results.append((plan, event_id, event_type, update, outcome))
        return results

    def _log_failure(self, plan: RecordPlan) -> None:
        error = plan.error
        self.logger.warning(
            "record failed; reported for re-delivery",
            extra={
                "correlation_id": plan.sequence_number,
                "sequence_number": plan.sequence_number,
                "error": f"{type(error).__name__}: {error}",
            },
        )


def _emit_by_event_type(counts: BatchCounts, namespace: str) -> None:
    """One EMF metric per event metric and event type, with an ``EventType`` dimension."""
    for name, by_type in counts.by_event_type().items():
        for event_type, value in by_type.items():
            if value:
                with single_metric(
                    name=name,
                    unit=MetricUnit.Count,
                    value=value,
                    namespace=namespace,
                    default_dimensions={"EventType": event_type},
                ):
                    pass


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while planning.

    Planning allocates a few hundred thousand small, acyclic dicts (reference
    counting frees them); without the pause the collector rescans the growing
    heap many times over and costs about a third of the planning time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class KinesisBatchProcessor(BatchProcessor):
    """Powertools' ``BatchProcessor`` for Kinesis, handing the handler the whole batch.

    The record handler given to ``process_partial_response`` receives the list
    of raw records and returns one error (or ``None``) per record, so records
    can be written together and per-key order kept across them (see
    :class:`Projector`). Failures are reported through Powertools as usual; the
    response is always a partial one (never an exception for an all-failed batch),
    so Lambda reads exactly which records to re-deliver.
    """

    def __init__(self) -> None:
        super().__init__(EventType.KinesisDataStreams, raise_on_entire_batch_failure=False)

    def process(self) -> list[tuple]:
        handler: Callable[[list[dict]], list[BaseException | None]] = self.handler
        errors = handler(self.records)
        if len(errors) != len(self.records):
            raise ValueError(f"{len(errors)} outcomes for {len(self.records)} records")
        results: list[tuple] = []
        for record, error in zip(self.records, errors, strict=True):
            if error is None:
                results.append(self.success_handler(record=record, result=None))
            else:
                data = self._to_batch_type(record=record, event_type=self.event_type)
                info = (type(error), error, error.__traceback__)
                results.append(self.failure_handler(record=data, exception=info))
        return results


__all__ = [
    "EVENTS_PROJECTED",
    "EVENTS_QUARANTINED",
    "EVENTS_SKIPPED_DUPLICATE",
    "EVENTS_SKIPPED_STALE",
    "RECORDS_BLOCKED",
    "RECORDS_FAILED",
    "BatchResult",
    "KeyOrderError",
    "KinesisBatchProcessor",
    "Projector",
    "build_projector",
]


def build_projector(
    settings: Settings,
    dynamodb: DynamoDBClient,
    s3: S3Client,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> Projector:
    """A projector for ``settings``'s tables and bucket, on the given clients."""
    return Projector(
        Projections.from_settings(settings),
        DynamoWriter(dynamodb, settings.retry),
        Quarantine(s3, settings.quarantine_bucket, settings.service_name),
        logger=logger,
        metrics=metrics,
        write_concurrency=settings.write_concurrency,
    )

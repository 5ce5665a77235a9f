"""Raising alerts for one Lambda batch of Kinesis records.

A Kinesis record (possibly a KPL aggregate) succeeds or fails as a whole. A batch
goes through:

1. **plan** (pure, :mod:`pipelines.alerts.planning`): decode; set poison records aside
   for the quarantine; skip replayed events (``metadata.replay_id`` set: they raise
   nothing and touch no state) and events seen earlier in the batch.
2. **state**: write the batch's transactions to ``recent_transactions`` (idempotent
   puts), then read every user's window (one ``Query`` per user, concurrently) and
   every series' baseline (``BatchGetItem``).
3. **evaluate** (pure): :mod:`pipelines.alerts.rules` over the plans.
4. **publish**, record by record in batch order: :class:`AlertPublisher` (once per
   event and rule).
5. **save baselines**, merged by event id with the samples of the records that
   succeeded.

A record that fails fails every later record sharing one of its partition keys,
which is then not published (per-key order, as the projector does). Every step is
idempotent, so Lambda's re-delivery from the lowest failed record repairs it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from pipelines.alerts.planning import AlertPlan, BatchState, evaluate, plan_batch
from pipelines.alerts.publisher import AlertPublisher, PublishOutcome
from pipelines.alerts.rules import (
    FRAUD_WINDOW_MS,
    MetricSample,
    TxEntry,
)
from pipelines.alerts.state import BaselineStore, RecentTransactions, Series
from pipelines.codec import Codec, default_codec
from pipelines.dynamo import UnprocessedItemsError, WriteRejectedError
from pipelines.errors import TransientError
from pipelines.projector import KeyOrderError, MetricsSink
from pipelines.quarantine import Quarantine

_log = logging.getLogger(__name__)

ALERTS_RAISED = "AlertsRaised"
ALERTS_DUPLICATE = "AlertsSkippedDuplicate"
EVENTS_EVALUATED = "EventsEvaluated"
EVENTS_SKIPPED_REPLAY = "EventsSkippedReplay"
EVENTS_QUARANTINED = "EventsQuarantined"
RECORDS_FAILED = "RecordsFailed"
RECORDS_BLOCKED = "RecordsBlockedByKeyOrder"


@dataclass(slots=True)
class AlertCounts:
    raised: Counter[str] = field(default_factory=Counter)  # by rule
    duplicate: int = 0
    evaluated: int = 0
    replayed: int = 0
    quarantined: int = 0
    failed: int = 0
    blocked: int = 0

    def as_metrics(self) -> dict[str, int]:
        return {
            ALERTS_RAISED: self.raised.total(),
            ALERTS_DUPLICATE: self.duplicate,
            EVENTS_EVALUATED: self.evaluated,
            EVENTS_SKIPPED_REPLAY: self.replayed,
            EVENTS_QUARANTINED: self.quarantined,
            RECORDS_FAILED: self.failed,
            RECORDS_BLOCKED: self.blocked,
        }


@dataclass(slots=True)
class AlertBatchResult:
    errors: list[BaseException | None]
    counts: AlertCounts


class Alerter:
    """Evaluates the alert rules over Lambda batches and publishes what they raise."""

    def __init__(
        self,
        baselines: BaselineStore,
        transactions: RecentTransactions,
        publisher: AlertPublisher,
        quarantine: Quarantine,
        *,
        codec: Codec | None = None,
        logger: logging.Logger | Any = None,
        metrics: MetricsSink | None = None,
        concurrency: int = 8,
    ) -> None:
        self.baselines = baselines
        self.transactions = transactions
        self.publisher = publisher
        self.quarantine = quarantine
        self.codec = codec or default_codec()
        self.logger = logger or _log
        self.metrics = metrics
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def alert_records(self, records: Sequence[Mapping[str, Any]]) -> list[BaseException | None]:
        """The record handler: one error (or ``None``) per record of ``event["Records"]``."""
        result = self.run(records)
        if self.metrics is not None:
            for name, value in result.counts.as_metrics().items():
                self.metrics.add_metric(name=name, unit="Count", value=value)
            namespace = getattr(self.metrics, "namespace", None)
            if namespace:  # a Powertools Metrics sink: also break alerts down by rule
                _emit_by_rule(result.counts.raised, namespace)
        return result.errors

    def run(self, records: Sequence[Mapping[str, Any]]) -> AlertBatchResult:
        counts = AlertCounts()
        plans = plan_batch(records, self.codec)
        counts.replayed = sum(p.replayed for p in plans)
        for plan in plans:
            self._quarantine(plan, counts)
        _block_after_failures(plans, counts)
        self._record_transactions(_live(plans))
        _block_after_failures(plans, counts)
        state = self._load_state(_live(plans))
        _block_after_failures(plans, counts)
        evaluate(_live(plans), state)
        self._publish(plans, counts)
        self._save_baselines(plans, state)
        _block_after_failures(plans, counts)
        for plan in plans:
            if plan.error is None:
                counts.evaluated += len(plan.samples) + len(plan.transactions)
            else:
                counts.failed += 1
                self.logger.warning(
                    "record failed; reported for re-delivery",
                    extra={
                        "correlation_id": plan.sequence_number,
                        "error": f"{type(plan.error).__name__}: {plan.error}",
                    },
                )
        return AlertBatchResult([plan.error for plan in plans], counts)

    # --- steps with I/O ---------------------------------------------------------------

    def _quarantine(self, plan: AlertPlan, counts: AlertCounts) -> None:
        for user_record, error in plan.poison:
            try:
                key = self.quarantine.keep(user_record, error)
            except Exception as exc:  # fails this record only
                plan.error = plan.error or exc
                return
            counts.quarantined += 1
            self.logger.warning(
                "poison record quarantined",
                extra={"code": error.code, "reason": error.reason, "quarantine_key": key},
            )

    def _record_transactions(self, plans: list[AlertPlan]) -> None:
        owners: dict[tuple[str, ...], list[AlertPlan]] = {}
        puts = []
        for plan in plans:
            for tx in plan.transactions:
                put = self.transactions.put_for(tx)
                owners.setdefault(put.key, []).append(plan)
                puts.append(put)
        try:
            self.transactions.record(puts)
        except (UnprocessedItemsError, WriteRejectedError) as exc:
            for put in exc.unwritten:
                for plan in owners.get(put.key, []):
                    plan.error = plan.error or exc
        except Exception as exc:  # unknown fate: fail every record with transactions
            for owned in owners.values():
                for plan in owned:
                    plan.error = plan.error or exc

    def _load_state(self, plans: list[AlertPlan]) -> BatchState:
        state = BatchState()
        spans: dict[str, list[int]] = {}
        series: dict[Series, None] = {}
        for plan in plans:
            for tx in plan.transactions:
                span = spans.setdefault(tx.user_id, [tx.occurred_at_ms, tx.occurred_at_ms])
                span[0] = min(span[0], tx.occurred_at_ms)
                span[1] = max(span[1], tx.occurred_at_ms)
            for sample in plan.samples:
                series[sample.series] = None
        # A transaction's previous one matters only within the window: two windows back.
        jobs = [(user, lo - 2 * FRAUD_WINDOW_MS, hi) for user, (lo, hi) in spans.items()]
        results = self._map(lambda job: self._history(*job), jobs)
        failed_users: dict[str, BaseException] = {}
        for (user, _, _), result in zip(jobs, results, strict=True):
            if isinstance(result, BaseException):
                failed_users[user] = result
            else:
                state.histories[user] = result
        try:
            state.baselines = self.baselines.load(series)
        except TransientError as exc:
            for plan in plans:
                if plan.samples:
                    plan.error = plan.error or exc
        for plan in plans:
            for tx in plan.transactions:
                if tx.user_id in failed_users:
                    plan.error = plan.error or failed_users[tx.user_id]
        return state

    def _history(self, user: str, lo: int, hi: int) -> list[TxEntry] | BaseException:
        try:
            return self.transactions.history(user, lo, hi)
        except Exception as exc:  # reported per user
            return exc

    def _publish(self, plans: list[AlertPlan], counts: AlertCounts) -> None:
        failed_keys: set[str] = set()
        for plan in plans:
            if plan.error is None and plan.keys & failed_keys:
                plan.error = KeyOrderError(
                    f"record {plan.sequence_number} not published: an earlier record "
                    "with the same partition key failed"
                )
                counts.blocked += 1
            if plan.error is not None:
                failed_keys |= plan.keys
                continue
            for alert in plan.alerts:
                try:
                    outcome = self.publisher.publish(alert)
                except Exception as exc:  # fails this record; later ones of its keys wait
                    plan.error = exc
                    failed_keys |= plan.keys
                    break
                if outcome is PublishOutcome.DUPLICATE:
                    counts.duplicate += 1
                else:
                    counts.raised[alert.rule] += 1
                    self.logger.info(
                        "alert raised",
                        extra={
                            "correlation_id": alert.event_id,
                            "alert_id": alert.alert_id,
                            "severity": alert.severity,
                            "outcome": outcome.value,
                        },
                    )

    def _save_baselines(self, plans: list[AlertPlan], state: BatchState) -> None:
        applied: dict[Series, list[MetricSample]] = {}
        holders: dict[Series, list[AlertPlan]] = {}
        for plan in plans:
            for sample in plan.samples:
                holders.setdefault(sample.series, []).append(plan)
                if plan.error is None:
                    applied.setdefault(sample.series, []).append(sample)
        jobs = list(applied.items())

        def save(job: tuple[Series, list[MetricSample]]) -> BaseException | None:
            try:
                self.baselines.save(job[0], state.baselines[job[0]], job[1])
            except Exception as exc:  # fails the records holding the series' samples
                return exc
            return None

        for (series, _), error in zip(jobs, self._map(save, jobs), strict=True):
            if error is not None:
                for plan in holders[series]:
                    plan.error = plan.error or error

    def _map(self, fn: Any, jobs: list[Any]) -> list[Any]:
        if len(jobs) <= 1 or self.concurrency == 1:
            return [fn(job) for job in jobs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, "alerter-state")
        return list(self._pool.map(fn, jobs))


def _emit_by_rule(raised: Counter[str], namespace: str) -> None:
    """One EMF metric ``AlertsRaised`` per rule, with a ``Rule`` dimension."""
    for rule, value in raised.items():
        with single_metric(
            name=ALERTS_RAISED,
            unit=MetricUnit.Count,
            value=value,
            namespace=namespace,
            default_dimensions={"Rule": rule},
        ):
            pass


def _live(plans: list[AlertPlan]) -> list[AlertPlan]:
    return [plan for plan in plans if plan.error is None]


def _block_after_failures(plans: list[AlertPlan], counts: AlertCounts) -> None:
    """Fail every record after a failed one that shares a partition key with it."""
    failed_keys: set[str] = set()
    for plan in plans:
        if plan.error is None and plan.keys & failed_keys:
            plan.error = KeyOrderError(
                f"record {plan.sequence_number} not applied: an earlier record with "
                f"partition key(s) {sorted(plan.keys & failed_keys)[:5]} failed"
            )
            counts.blocked += 1
        if plan.error is not None:
            failed_keys |= plan.keys

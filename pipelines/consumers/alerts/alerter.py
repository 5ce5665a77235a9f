"""What only the alerter does with a batch: evaluate the rules, publish what they raise.

The batch kernel (:mod:`pipelines.consumers.batch`) has decoded the batch, quarantined its
poison and set its duplicates aside. The alerter then goes through:

1. **plan** (pure, :mod:`.planning`): the metric samples and transactions the rules read;
   replayed events (``metadata.replay_id`` set) raise nothing and touch no state, and an
   event whose values the state cannot hold is quarantined.
2. **state**: write the batch's transactions to ``recent_transactions`` (idempotent
   puts), then read every user's window (one ``Query`` per user, concurrently) and
   every series' baseline (``BatchGetItem``).
3. **evaluate** (pure): :mod:`.rules` over the plans.
4. **publish**, record by record in batch order: :class:`AlertPublisher` (once per
   event and rule).
5. **save baselines**, merged by event id with the samples of the records that
   succeeded. A baseline DynamoDB rejects for what a sample holds (a
   ``ValidationException``) quarantines that sample's event, found by saving the series'
   samples one at a time; the others are saved and the batch moves on.

A record that fails fails every later record sharing one of its keys, which is then not
published (the kernel's per-key order). Every step is idempotent, so Lambda's re-delivery
from the lowest failed record repairs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pipelines.adapters.alert_publisher import AlertPublisher, PublishOutcome
from pipelines.adapters.alert_state import BaselineStore, RecentTransactions, Series, StoredBaseline
from pipelines.adapters.dynamo import DynamoWriter, UnprocessedItemsError, WriteRejectedError
from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.alerts.planning import AlertPlan, BatchState, evaluate, plan_batch
from pipelines.consumers.alerts.rules import (
    FRAUD_ALERT,
    FRAUD_WINDOW_MS,
    METRIC_ANOMALY,
    MetricSample,
    TxEntry,
)
from pipelines.consumers.batch import Batch, KinesisBatchKernel
from pipelines.consumers.config import AlerterSettings
from pipelines.consumers.metrics import (
    ALERTS_RAISED,
    ALERTS_SKIPPED_DUPLICATE,
    EVENTS_EVALUATED,
    EVENTS_SKIPPED_REPLAY,
    RULE,
    MetricsSink,
)
from pipelines.errors import InvalidEventError, MisconfigurationError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

_log = logging.getLogger(__name__)


class Alerter:
    """Evaluates the alert rules over decoded batches and publishes what they raise."""

    metric_names = (
        ALERTS_RAISED,
        ALERTS_SKIPPED_DUPLICATE,
        EVENTS_EVALUATED,
        EVENTS_SKIPPED_REPLAY,
    )

    def __init__(
        self,
        baselines: BaselineStore,
        transactions: RecentTransactions,
        publisher: AlertPublisher,
        *,
        logger: logging.Logger | Any = None,
        concurrency: int = 8,
    ) -> None:
        self.baselines = baselines
        self.transactions = transactions
        self.publisher = publisher
        self.logger = logger or _log
        self.concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None

    def consume(self, batch: Batch) -> None:
        plans = plan_batch(batch)
        batch.counts.add(EVENTS_SKIPPED_REPLAY, sum(p.replayed for p in plans))
        self._quarantine_invalid(batch, plans)

        def live() -> list[AlertPlan]:
            return [plan for plan in plans if plan.record.error is None]

        batch.block_after_failures()
        self._record_transactions(batch, live())
        batch.block_after_failures()
        state = self._load_state(batch, live())
        batch.block_after_failures()
        evaluate(plans, state)
        self._publish(batch, plans)
        self._save_baselines(batch, plans, state)
        batch.block_after_failures()
        evaluated = sum(len(p.samples) + len(p.transactions) for p in live())
        batch.counts.add(EVENTS_EVALUATED, evaluated)

    # --- failures -------------------------------------------------------------------

    def _quarantine_invalid(self, batch: Batch, plans: list[AlertPlan]) -> None:
        for plan in plans:
            for delivered, error in plan.invalid:
                if not batch.quarantine(plan.record, delivered, error):
                    break

    def _quarantine(self, batch: Batch, plan: AlertPlan, event_id: str, reason: str) -> None:
        """Quarantine one event of ``plan`` that a sink rejected; forget it in the plan."""
        delivered = plan.delivered.get(event_id)
        if delivered is None:  # not one of the plan's own events: nothing to set aside
            batch.fail(plan.record, TransientError(f"{reason} (event {event_id})"))
            return
        if batch.quarantine(plan.record, delivered, InvalidEventError(reason, b"")):
            plan.drop(event_id)

    # --- steps with I/O ---------------------------------------------------------------

    def _record_transactions(self, batch: Batch, plans: list[AlertPlan]) -> None:
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
                    batch.fail(plan.record, exc)
        except MisconfigurationError:
            raise
        except Exception as exc:  # unknown fate: fail every record with transactions
            for owned in owners.values():
                for plan in owned:
                    batch.fail(plan.record, exc)

    def _load_state(self, batch: Batch, plans: list[AlertPlan]) -> BatchState:
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
            if isinstance(result, MisconfigurationError):
                raise result
            if isinstance(result, BaseException):
                failed_users[user] = result
            else:
                state.histories[user] = result
        try:
            state.baselines = self.baselines.load(series)
        except TransientError as exc:
            for plan in plans:
                if plan.samples:
                    batch.fail(plan.record, exc)
        for plan in plans:
            for tx in plan.transactions:
                if tx.user_id in failed_users:
                    batch.fail(plan.record, failed_users[tx.user_id])
        return state

    def _history(self, user: str, lo: int, hi: int) -> list[TxEntry] | BaseException:
        try:
            return self.transactions.history(user, lo, hi)
        except Exception as exc:  # reported per user
            return exc

    def _publish(self, batch: Batch, plans: list[AlertPlan]) -> None:
        counts = batch.counts
        for plan in plans:
            if not batch.admit(plan.record):
                continue
            for alert in plan.alerts:
                try:
                    outcome = self.publisher.publish(alert)
                except MisconfigurationError:
                    raise
                except Exception as exc:  # fails this record; later ones of its keys wait
                    batch.fail(plan.record, exc)
                    break
                if outcome is PublishOutcome.DUPLICATE:
                    counts.add(ALERTS_SKIPPED_DUPLICATE)
                    continue
                counts.add(ALERTS_RAISED, dimension=RULE, of=alert.rule)
                self.logger.info(
                    "alert raised",
                    extra={
                        "correlation_id": alert.event_id,
                        "alert_id": alert.alert_id,
                        "severity": alert.severity,
                        "outcome": outcome.value,
                    },
                )

    def _save_baselines(self, batch: Batch, plans: list[AlertPlan], state: BatchState) -> None:
        applied: dict[Series, list[MetricSample]] = {}
        holders: dict[Series, list[AlertPlan]] = {}
        plan_of: dict[str, AlertPlan] = {}
        for plan in plans:
            for sample in plan.samples:
                holders.setdefault(sample.series, []).append(plan)
                if plan.record.error is None:
                    applied.setdefault(sample.series, []).append(sample)
                    plan_of[sample.event_id] = plan
        jobs = [(s, state.baselines[s], samples) for s, samples in applied.items()]
        for (series, _, _), result in zip(jobs, self._map(self._save_series, jobs), strict=True):
            if isinstance(result, MisconfigurationError):
                raise result
            if isinstance(result, BaseException):
                for plan in holders[series]:
                    batch.fail(plan.record, result)
                continue
            for sample, error in result:
                reason = (
                    f"MetricRecorded: metric_baselines rejected the baseline with its value "
                    f"({error.code}): {error}"
                )
                self._quarantine(batch, plan_of[sample.event_id], sample.event_id, reason)

    def _save_series(
        self, job: tuple[Series, StoredBaseline, list[MetricSample]]
    ) -> list[tuple[MetricSample, WriteRejectedError]] | BaseException:
        """Save one series; the samples DynamoDB rejects, found one at a time."""
        series, stored, samples = job
        try:
            self.baselines.save(series, stored, samples)
            return []
        except WriteRejectedError:
            pass
        except Exception as exc:  # fails the records holding the series' samples
            return exc
        rejected = []
        for sample in samples:
            try:
                stored = self.baselines.save(series, stored, [sample])
            except WriteRejectedError as exc:
                rejected.append((sample, exc))
            except Exception as exc:
                return exc
        return rejected

    def _map(self, fn: Callable[[Any], Any], jobs: list[Any]) -> list[Any]:
        if len(jobs) <= 1 or self.concurrency == 1:
            return [fn(job) for job in jobs]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, "alerter-state")
        return list(self._pool.map(fn, jobs))


def build_alerter(
    settings: AlerterSettings,
    dynamodb: DynamoDBClient,
    sns: SNSClient,
    s3: S3Client,
    *,
    logger: logging.Logger | Any = None,
    metrics: MetricsSink | None = None,
) -> KinesisBatchKernel:
    """The alerter on the batch kernel, for ``settings``'s tables, topics and bucket."""
    writer = DynamoWriter(dynamodb, settings.retry)
    alerter = Alerter(
        BaselineStore(dynamodb, settings.metric_baselines_table),
        RecentTransactions(
            writer,
            settings.recent_transactions_table,
            ttl_seconds=settings.recent_transactions_ttl_hours * 3600,
            ttl_attribute=settings.ttl_attribute,
        ),
        AlertPublisher(
            dynamodb,
            sns,
            settings.alerts_table,
            {METRIC_ANOMALY: settings.anomaly_topic_arn, FRAUD_ALERT: settings.fraud_topic_arn},
            ttl_seconds=settings.alert_ttl_days * 86_400,
            ttl_attribute=settings.ttl_attribute,
        ),
        logger=logger,
        concurrency=settings.state_concurrency,
    )
    return KinesisBatchKernel(
        alerter,
        Quarantine(s3, settings.quarantine_bucket, settings.service_name),
        logger=logger,
        metrics=metrics,
    )

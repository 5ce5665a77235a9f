"""What only the alerter does with a batch: evaluate the rules, publish what they raise.

The batch kernel (:mod:`pipelines.consumers.batch`) has decoded the batch, quarantined its
poison and set its duplicates aside. The alerter then goes through:

1. **plan** (pure, :mod:`.planning`): the metric samples and transactions the rules read;
   replayed events (``metadata.replay_id`` set) raise nothing and touch no state, and an
   event whose values the state cannot hold is quarantined.
2. **state**: write the batch's transactions to ``recent_transactions`` (idempotent
   puts of each event and of each transaction's events), then read every user's events
   and marks around the batch's (one ``Query`` per user, concurrently), the transactions
   they belong to, and every series' baseline (``BatchGetItem``).
3. **evaluate** (pure): :mod:`.rules` and :mod:`.windows` over the plans, event by event.
4. **publish**, record by record in batch order: :class:`AlertPublisher` (once per
   alert id).
5. **mark** the over-limit transactions of the bursts alerted (or joined) by the records
   that published, and **save baselines**, merged by event id with the samples of the
   records that succeeded.

Failures are isolated: a write DynamoDB rejects for what one event holds (a
``ValidationException``) quarantines that event, found by writing the batch's items in
halves down to the one refused, and the batch moves on; a transient fault fails the
records concerned; a misconfiguration fails the invocation. A record that fails fails
every later record sharing one of its keys, a user or a series with it, which is then not
applied (the kernel's per-key order, and the state's). Every step is idempotent, so
Lambda's re-delivery from the lowest failed record repairs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from pipelines.adapters.alert_publisher import AlertPublisher, AlertRejectedError, PublishOutcome
from pipelines.adapters.alert_state import (
    BaselineStore,
    RecentTransactions,
    Series,
    StoredBaseline,
    TransactionHistory,
    TransactionKey,
    largest_text,
)
from pipelines.adapters.dynamo import (
    DynamoWriter,
    FactPut,
    UnprocessedItemsError,
    WriteRejectedError,
)
from pipelines.adapters.quarantine import Quarantine
from pipelines.consumers.alerts.planning import AlertPlan, BatchState, evaluate, plan_batch
from pipelines.consumers.alerts.rules import (
    FRAUD_ALERT,
    METRIC_ANOMALY,
    MetricSample,
    Transaction,
)
from pipelines.consumers.alerts.windows import TxEvent, history_span, tx_event
from pipelines.consumers.batch import Batch, KeyOrderError, KinesisBatchKernel
from pipelines.consumers.config import AlerterSettings
from pipelines.consumers.metrics import (
    ALERTS_RAISED,
    ALERTS_SKIPPED_DUPLICATE,
    EVENTS_EVALUATED,
    EVENTS_SKIPPED_REPLAY,
    RECORDS_BLOCKED,
    RULE,
    MetricsSink,
)
from pipelines.errors import InvalidEventError, MisconfigurationError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

_log = logging.getLogger(__name__)
Known = dict[TransactionKey, list[TxEvent]]


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
        self._block(batch, plans)
        known = self._record_transactions(batch, plans)
        self._block(batch, plans)
        state = self._load_state(batch, plans, known)
        self._block(batch, plans)
        evaluate(plans, state)
        self._publish(batch, plans)
        self._block(batch, plans)
        self._save_marks(batch, plans)
        self._save_baselines(batch, plans, state)
        self._block(batch, plans)
        live = [p for p in plans if p.record.error is None]
        batch.counts.add(EVENTS_EVALUATED, sum(len(p.samples) + len(p.transactions) for p in live))

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

    @staticmethod
    def _block(batch: Batch, plans: list[AlertPlan]) -> None:
        """Fail the records after a failed one that share a key, a user or a series with it."""
        batch.block_after_failures()
        failed = _FailedState()
        for plan in plans:
            failed.check(batch, plan)
        batch.block_after_failures()

    # --- steps with I/O ---------------------------------------------------------------

    def _record_transactions(self, batch: Batch, plans: list[AlertPlan]) -> Known:
        """Write the live transactions; what was known of their transactions before.

        Two steps: every event's own item first, isolating (and quarantining) an event whose
        item DynamoDB rejects; then each transaction's item, holding only the events whose
        own items landed, so a rejected event never counts in a window.
        """
        txs = [(p, tx) for p in plans if p.record.error is None for tx in p.transactions]
        if not txs:
            return {}
        holders: dict[TransactionKey, list[AlertPlan]] = {}
        for plan, tx in txs:
            holders.setdefault((tx.user_id, tx.transaction_id), []).append(plan)
        try:
            known = self.transactions.transactions(holders)
        except MisconfigurationError:
            raise
        except Exception as exc:  # fails every record with transactions
            for plan, _ in txs:
                batch.fail(plan.record, exc)
            return {}
        self._record_events(batch, txs)
        plans_with_txs = list({id(p): p for p, _ in txs}.values())
        landed = [
            (plan, tx)
            for plan in plans_with_txs
            if plan.record.error is None
            for tx in plan.transactions
        ]
        merged = {key: list(events) for key, events in known.items()}
        for _, tx in landed:
            merged[(tx.user_id, tx.transaction_id)].append(tx_event(tx))
        owners: dict[tuple[str, ...], list[AlertPlan]] = {}
        puts: list[FactPut] = []
        for key in dict.fromkeys((tx.user_id, tx.transaction_id) for _, tx in landed):
            put = self.transactions.transaction_put(*key, merged[key])
            owners[put.key] = holders[key]
            puts.append(put)
        self._write(batch, puts, owners)
        return known

    def _record_events(self, batch: Batch, txs: list[tuple[AlertPlan, Transaction]]) -> None:
        owners: dict[tuple[str, ...], list[AlertPlan]] = {}
        puts: list[FactPut] = []
        for plan, tx in txs:
            put = self.transactions.put_for(tx)
            owners.setdefault(put.key, []).append(plan)
            puts.append(put)
        if not self._write(batch, puts, owners, rejected_fails=False):
            self._record_apart(batch, txs)  # somewhere a value DynamoDB refuses: find it

    def _write(
        self,
        batch: Batch,
        puts: list[FactPut],
        owners: dict[tuple[str, ...], list[AlertPlan]],
        *,
        rejected_fails: bool = True,
    ) -> bool:
        """Write ``puts``; a put that did not land fails the records that own it.

        False, and nothing failed, when DynamoDB rejected a value and ``rejected_fails`` is
        off: the caller isolates the rejected ones.
        """
        try:
            self.transactions.record(puts)
        except WriteRejectedError as exc:
            if not rejected_fails:
                return False
            self._fail_owners(batch, exc.unwritten, owners, exc)
        except UnprocessedItemsError as exc:
            self._fail_owners(batch, exc.unwritten, owners, exc)
        except MisconfigurationError:
            raise
        except Exception as exc:  # unknown fate: fail every record that owns a put
            self._fail_owners(batch, puts, owners, exc)
        return True

    @staticmethod
    def _fail_owners(
        batch: Batch,
        puts: Sequence[FactPut],
        owners: dict[tuple[str, ...], list[AlertPlan]],
        error: BaseException,
    ) -> None:
        for put in puts:
            for plan in owners.get(put.key, []):
                batch.fail(plan.record, error)

    def _record_apart(self, batch: Batch, txs: list[tuple[AlertPlan, Transaction]]) -> None:
        """Write the events' own items in halves, and halves of halves, down to the events
        DynamoDB rejects alone, which are quarantined."""
        txs = [(plan, tx) for plan, tx in txs if plan.record.error is None]
        if not txs:
            return
        try:
            self.transactions.record([self.transactions.put_for(tx) for _, tx in txs])
        except WriteRejectedError as exc:
            if len(txs) > 1:
                half = len(txs) // 2
                self._record_apart(batch, txs[:half])
                self._record_apart(batch, txs[half:])
                return
            (plan, tx), code = txs[0], exc.code
            field, size = largest_text(tx)
            reason = (
                f"TransactionRecorded: recent_transactions rejected its items ({code}; its "
                f"largest field is {field}, {size} bytes): {exc}"
            )
            self._quarantine(batch, plan, tx.event_id, reason)
        except MisconfigurationError:
            raise
        except Exception as exc:  # these records fail; later ones of their users wait
            for plan, _ in txs:
                batch.fail(plan.record, exc)

    def _load_state(self, batch: Batch, plans: list[AlertPlan], known: Known) -> BatchState:
        state = BatchState()
        live = [p for p in plans if p.record.error is None]
        times: dict[str, list[int]] = {}
        series: dict[Series, None] = {}
        for plan in live:
            for tx in plan.transactions:
                times.setdefault(tx.user_id, []).append(tx.occurred_at_ms)
            for sample in plan.samples:
                series[sample.series] = None
        jobs = [(user, *history_span(ts)) for user, ts in times.items()]
        results = self._map(lambda job: self._history(*job), jobs)
        failed_users: dict[str, BaseException] = {}
        for (user, _, _), result in zip(jobs, results, strict=True):
            if isinstance(result, MisconfigurationError):
                raise result
            if isinstance(result, BaseException):
                failed_users[user] = result
            else:
                state.histories[user] = result
        self._add_transactions(state.histories, known, failed_users)
        try:
            state.baselines = self.baselines.load(series)
        except TransientError as exc:
            for plan in live:
                if plan.samples:
                    batch.fail(plan.record, exc)
        for plan in live:
            for user in plan.users & failed_users.keys():
                batch.fail(plan.record, failed_users[user])
        return state

    def _add_transactions(
        self,
        histories: dict[str, TransactionHistory],
        known: Known,
        failed_users: dict[str, BaseException],
    ) -> None:
        """Complete each history with every event of the transactions it holds."""
        wanted = {
            (user, event.transaction_id)
            for user, history in histories.items()
            for event in history.events
        }
        found = dict(known)
        try:
            found.update(self.transactions.transactions(wanted - known.keys()))
        except MisconfigurationError:
            raise
        except Exception as exc:  # every user read fails with it
            for user in list(histories):
                failed_users[user] = exc
                del histories[user]
            return
        for (user, _), events in found.items():
            history = histories.get(user)
            if history is not None:
                history.events.extend(events)

    def _history(self, user: str, lo: int, hi: int) -> TransactionHistory | BaseException:
        try:
            return self.transactions.history(user, lo, hi)
        except Exception as exc:  # reported per user
            return exc

    def _publish(self, batch: Batch, plans: list[AlertPlan]) -> None:
        counts = batch.counts
        failed = _FailedState()
        for plan in plans:
            failed.check(batch, plan)  # judged with the events of a record that failed since?
            if not batch.admit(plan.record):
                failed.check(batch, plan)
                continue
            for alert in plan.alerts:
                try:
                    outcome = self.publisher.publish(alert)
                except MisconfigurationError:
                    raise
                except AlertRejectedError as exc:  # poison for the event that raised it
                    self._quarantine(batch, plan, alert.raised_by_event, str(exc))
                    if plan.record.error is not None:
                        break
                    continue
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
                        "correlation_id": alert.raised_by_event,
                        "alert_id": alert.alert_id,
                        "severity": alert.severity,
                        "outcome": outcome.value,
                    },
                )
            failed.check(batch, plan)

    def _save_marks(self, batch: Batch, plans: list[AlertPlan]) -> None:
        """Mark the transactions of the bursts the published records alerted or joined."""
        owners: dict[tuple[str, ...], list[AlertPlan]] = {}
        puts: list[FactPut] = []
        for plan in plans:
            if plan.record.error is not None:
                continue
            for user, mark in plan.marks:
                put = self.transactions.mark_put(user, mark)
                owners.setdefault(put.key, []).append(plan)
                puts.append(put)
        self._write(batch, puts, owners)

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


class _FailedState:
    """The users and series of the records failed so far, walking a batch in order."""

    __slots__ = ("series", "users")

    def __init__(self) -> None:
        self.users: set[str] = set()
        self.series: set[Series] = set()

    def check(self, batch: Batch, plan: AlertPlan) -> None:
        """Fail ``plan`` if it holds a user or series of an earlier failed record; note its
        own when it has failed."""
        if plan.record.error is None and (plan.users & self.users or plan.series & self.series):
            batch.fail(
                plan.record,
                KeyOrderError(
                    f"record {plan.record.sequence_number} not applied: an earlier record "
                    "with a user or a metric series of its own failed"
                ),
            )
            batch.counts.add(RECORDS_BLOCKED)
        if plan.record.error is not None:
            self.users |= plan.users
            self.series |= plan.series


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

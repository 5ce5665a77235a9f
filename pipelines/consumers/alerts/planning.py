"""A decoded batch made ready for the alert rules, and the rules run over it - no I/O.

:func:`plan_batch` keeps, of every record the kernel decoded, the metric samples and
transactions the rules read; it skips replayed events (``metadata.replay_id`` set: they
raise nothing and touch no state) and sets aside, to be quarantined, an event whose values
the alert state cannot hold (:func:`~pipelines.adapters.alert_state.sample_problem`,
:func:`~pipelines.adapters.alert_state.transaction_problem`).

:func:`evaluate` runs :mod:`.rules` and :mod:`.windows` over the plans, event by event in
batch order, each against the state read for the batch *without the batch's own events*
(a re-delivery finds them stored already): so the alerts of an event do not depend on
how the stream was cut into batches, or on a batch being delivered again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.adapters.alert_state import (
    Series,
    StoredBaseline,
    TransactionHistory,
    sample_problem,
    transaction_problem,
)
from pipelines.consumers.alerts.rules import (
    Alert,
    Baseline,
    MetricSample,
    Transaction,
    metric_alerts,
    transaction_alerts,
)
from pipelines.consumers.alerts.windows import Mark, UserWindows, tx_event
from pipelines.consumers.batch import Batch, BatchRecord
from pipelines.contract.codec import DecodedEvent
from pipelines.errors import InvalidEventError
from pipelines.stream.records import Delivered


@dataclass(slots=True)
class AlertPlan:
    """What one Kinesis record brings to the rules, and the alerts it raised."""

    record: BatchRecord
    samples: list[MetricSample] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    marks: list[tuple[str, Mark]] = field(default_factory=list)  # (user id, mark)
    replayed: int = 0
    invalid: list[tuple[Delivered, InvalidEventError]] = field(default_factory=list)
    delivered: dict[str, Delivered] = field(default_factory=dict)  # by event id

    def drop(self, event_id: str) -> None:
        """Forget one event (quarantined): it raises nothing and touches no state."""
        self.samples = [s for s in self.samples if s.event_id != event_id]
        self.transactions = [t for t in self.transactions if t.event_id != event_id]

    @property
    def users(self) -> set[str]:
        return {tx.user_id for tx in self.transactions}

    @property
    def series(self) -> set[Series]:
        return {s.series for s in self.samples}


@dataclass(slots=True)
class BatchState:
    """What the rules read: baselines by series, transaction history by user."""

    baselines: dict[Series, StoredBaseline] = field(default_factory=dict)
    histories: dict[str, TransactionHistory] = field(default_factory=dict)


def plan_batch(batch: Batch) -> list[AlertPlan]:
    """What every record of a decoded batch brings to the rules. No I/O."""
    return [_plan_record(batch, record) for record in batch.records]


def evaluate(plans: Iterable[AlertPlan], state: BatchState) -> None:
    """Run the rules over the plans that have not failed, in batch order.

    Fills each plan's ``alerts`` and ``marks``. The state is taken as it was before every
    event of ``plans`` (failed ones too): those are added one by one.
    """
    plans = list(plans)
    own = {s.event_id for p in plans for s in p.samples}
    own.update(t.event_id for p in plans for t in p.transactions)
    baselines: dict[Series, Baseline] = {}
    windows: dict[str, UserWindows] = {}
    for plan in plans:
        plan.alerts.clear()
        plan.marks.clear()
        if plan.record.error is not None:
            continue
        alerts = plan.alerts
        for sample in plan.samples:
            baseline = baselines.get(sample.series)
            if baseline is None:
                stored = state.baselines.get(sample.series)
                baseline = Baseline() if stored is None else stored.baseline.without(own)
            alerts.extend(metric_alerts(sample, baseline.values_before(sample.order)))
            baselines[sample.series] = baseline.merged((sample,))
        for tx in plan.transactions:
            alerts.extend(transaction_alerts(tx))
            user = windows.get(tx.user_id)
            if user is None:
                user = windows[tx.user_id] = _windows_of(tx.user_id, state, own)
            outcome = user.add(tx_event(tx))
            alerts.extend(outcome.alerts)
            plan.marks.extend((tx.user_id, mark) for mark in outcome.marks)


def _windows_of(user_id: str, state: BatchState, own: set[str]) -> UserWindows:
    history = state.histories.get(user_id)
    if history is None:
        return UserWindows(user_id)
    known = (e for e in history.events if e.event_id not in own)
    return UserWindows(user_id, known, history.marks, history.span)


def _plan_record(batch: Batch, record: BatchRecord) -> AlertPlan:
    plan = AlertPlan(record)
    if record.error is not None:
        return plan
    for delivered in record.events:
        event = delivered.event
        metadata = event.record["metadata"]
        if metadata.get("replay_id"):
            plan.replayed += 1
            continue
        try:
            _add_event(plan, delivered, metadata)
        except InvalidEventError as exc:
            plan.invalid.append((delivered, exc))
        except Exception as exc:  # a planning bug must fail the record, not the batch
            batch.fail(record, exc)
            return plan
    return plan


def _add_event(plan: AlertPlan, delivered: Delivered, metadata: dict[str, Any]) -> None:
    event = delivered.event
    body = event.record
    event_id = metadata["event_id"]
    if event.event_type == "MetricRecorded":
        sample = MetricSample(
            event_id,
            body["source"],
            body["metric_name"],
            body["value"],
            _epoch_ms(metadata["occurred_at"]),
        )
        _check(event, sample_problem(sample))
        plan.samples.append(sample)
    elif event.event_type == "TransactionRecorded":
        tx = Transaction(
            event_id,
            body["user_id"],
            body["transaction_id"],
            body["amount"],
            body["currency"],
            body["status"],
            _epoch_ms(metadata["occurred_at"]),
            metadata.get("aggregate_version") or 0,
        )
        _check(event, transaction_problem(tx))
        plan.transactions.append(tx)
    else:
        return
    plan.delivered[event_id] = delivered


def _check(event: DecodedEvent, problem: str | None) -> None:
    if problem is not None:
        # the alerter attaches the record's bytes when it quarantines the event
        raise InvalidEventError(f"{event.event_type}: {problem}", b"")


def _epoch_ms(moment: Any) -> int:
    if isinstance(moment, int):
        return moment
    return round(moment.timestamp() * 1000)

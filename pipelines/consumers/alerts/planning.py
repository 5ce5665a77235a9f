"""A decoded batch made ready for the alert rules, and the rules run over it - no I/O.

:func:`plan_batch` keeps, of every record the kernel decoded, the metric samples and
transactions the rules read; it skips replayed events (``metadata.replay_id`` set: they
raise nothing and touch no state) and sets aside, to be quarantined, a sample whose values
a baseline cannot hold (:func:`~pipelines.adapters.alert_state.sample_problem`).

:func:`evaluate` runs :mod:`.rules` over the plans, given the state read for them; a
sample is judged against its series' baseline *without the batch's own samples* (a
re-delivery finds them stored already), as of its own event time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.adapters.alert_state import Series, StoredBaseline, sample_problem
from pipelines.consumers.alerts.rules import (
    Alert,
    Baseline,
    MetricSample,
    Transaction,
    TxEntry,
    fraud_rules_by_event,
    metric_alerts,
    transaction_alerts,
)
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
    histories: dict[str, list[TxEntry]] = field(default_factory=dict)


def plan_batch(batch: Batch) -> list[AlertPlan]:
    """What every record of a decoded batch brings to the rules. No I/O."""
    return [_plan_record(batch, record) for record in batch.records]


def evaluate(plans: Iterable[AlertPlan], state: BatchState) -> None:
    """Run the rules over the plans that have not failed (in batch order), filling each
    plan's ``alerts``. The baselines are taken as they were before every sample of
    ``plans`` (failed ones too)."""
    plans = list(plans)
    own = {s.event_id for p in plans for s in p.samples}
    window_rules: dict[str, list[str]] = {}
    for history in state.histories.values():
        window_rules.update(fraud_rules_by_event(history))
    baselines: dict[Series, Baseline] = {}
    for plan in plans:
        alerts = plan.alerts
        alerts.clear()
        if plan.record.error is not None:
            continue
        for sample in plan.samples:
            baseline = baselines.get(sample.series)
            if baseline is None:
                stored = state.baselines.get(sample.series)
                baseline = Baseline() if stored is None else stored.baseline.without(own)
            alerts.extend(metric_alerts(sample, baseline.values_before(sample.order)))
            baselines[sample.series] = baseline.merged((sample,))
        for tx in plan.transactions:
            alerts.extend(transaction_alerts(tx, window_rules.get(tx.event_id, ())))


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
            _add_event(plan, delivered, metadata["event_id"])
        except InvalidEventError as exc:
            plan.invalid.append((delivered, exc))
        except Exception as exc:  # a planning bug must fail the record, not the batch
            batch.fail(record, exc)
            return plan
    return plan


def _add_event(plan: AlertPlan, delivered: Delivered, event_id: str) -> None:
    event = delivered.event
    body = event.record
    plan.delivered[event_id] = delivered
    if event.event_type == "MetricRecorded":
        occurred = _epoch_ms(body["metadata"]["occurred_at"])
        sample = MetricSample(
            event_id, body["source"], body["metric_name"], body["value"], occurred
        )
        _check(event, sample_problem(sample))
        plan.samples.append(sample)
    elif event.event_type == "TransactionRecorded":
        occurred = _epoch_ms(body["metadata"]["occurred_at"])
        plan.transactions.append(
            Transaction(
                event_id,
                body["user_id"],
                body["transaction_id"],
                body["amount"],
                body["currency"],
                body["status"],
                occurred,
            )
        )


def _check(event: DecodedEvent, problem: str | None) -> None:
    if problem is not None:
        # the alerter attaches the record's bytes when it quarantines the event
        raise InvalidEventError(f"{event.event_type}: {problem}", b"")


def _epoch_ms(moment: Any) -> int:
    if isinstance(moment, int):
        return moment
    return round(moment.timestamp() * 1000)

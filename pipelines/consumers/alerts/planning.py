"""A decoded batch made ready for the alert rules, and the rules run over it - no I/O.

:func:`plan_batch` keeps, of every record the kernel decoded, the metric samples and
transactions the rules read, and skips replayed events (``metadata.replay_id`` set: they
raise nothing and touch no state). :func:`evaluate` runs :mod:`.rules` over the plans,
given the state read for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.adapters.alert_state import Series, StoredBaseline
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


@dataclass(slots=True)
class AlertPlan:
    """What one Kinesis record brings to the rules, and the alerts it raised."""

    record: BatchRecord
    samples: list[MetricSample] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    replayed: int = 0


@dataclass(slots=True)
class BatchState:
    """What the rules read: baselines by series, transaction history by user."""

    baselines: dict[Series, StoredBaseline] = field(default_factory=dict)
    histories: dict[str, list[TxEntry]] = field(default_factory=dict)


def plan_batch(batch: Batch) -> list[AlertPlan]:
    """What every record of a decoded batch brings to the rules. No I/O."""
    return [_plan_record(record) for record in batch.records]


def evaluate(plans: Iterable[AlertPlan], state: BatchState) -> None:
    """Run the rules over the plans (in batch order), filling each plan's ``alerts``."""
    plans = list(plans)
    window_rules: dict[str, list[str]] = {}
    for history in state.histories.values():
        window_rules.update(fraud_rules_by_event(history))
    live: dict[Series, Baseline] = {s: b.baseline for s, b in state.baselines.items()}
    for plan in plans:
        alerts = plan.alerts
        alerts.clear()
        for sample in plan.samples:
            baseline = live.get(sample.series, Baseline())
            alerts.extend(metric_alerts(sample, baseline.values_before(sample.order)))
            live[sample.series] = baseline.merged((sample,))
        for tx in plan.transactions:
            alerts.extend(transaction_alerts(tx, window_rules.get(tx.event_id, ())))


def _plan_record(record: BatchRecord) -> AlertPlan:
    plan = AlertPlan(record)
    for delivered in record.events:
        event = delivered.event
        metadata = event.record["metadata"]
        if metadata.get("replay_id"):
            plan.replayed += 1
            continue
        _add_event(plan, event, metadata["event_id"])
    return plan


def _add_event(plan: AlertPlan, event: DecodedEvent, event_id: str) -> None:
    body = event.record
    if event.event_type == "MetricRecorded":
        occurred = _epoch_ms(body["metadata"]["occurred_at"])
        plan.samples.append(
            MetricSample(event_id, body["source"], body["metric_name"], body["value"], occurred)
        )
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


def _epoch_ms(moment: Any) -> int:
    if isinstance(moment, int):
        return moment
    return round(moment.timestamp() * 1000)

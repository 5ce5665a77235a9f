"""A Lambda batch made ready for the alert rules, and the rules run over it - no I/O.

:func:`plan_batch` deaggregates and decodes every Kinesis record, keeping the metric
samples and transactions the rules read, setting poison records aside for the
quarantine, and skipping replayed events (``metadata.replay_id`` set: they raise
nothing and touch no state) and events seen earlier in the batch. :func:`evaluate`
runs :mod:`pipelines.alerts.rules` over the plans, given the state read for them.
"""

from __future__ import annotations

from base64 import b64decode
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.aggregation import deaggregate
from pipelines.alerts.rules import (
    Alert,
    Baseline,
    MetricSample,
    Transaction,
    TxEntry,
    fraud_rules_by_event,
    metric_alerts,
    transaction_alerts,
)
from pipelines.alerts.state import Series, StoredBaseline
from pipelines.codec import Codec, DecodedEvent
from pipelines.errors import PoisonRecordError
from pipelines.records import UserRecord, decode_lambda_record, user_record_of


@dataclass(slots=True)
class AlertPlan:
    """What one Kinesis record brings to the rules, and the alerts it raised."""

    index: int
    sequence_number: str
    keys: frozenset[str]
    samples: list[MetricSample] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)
    poison: list[tuple[UserRecord, PoisonRecordError]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    replayed: int = 0
    error: BaseException | None = None


@dataclass(slots=True)
class BatchState:
    """What the rules read: baselines by series, transaction history by user."""

    baselines: dict[Series, StoredBaseline] = field(default_factory=dict)
    histories: dict[str, list[TxEntry]] = field(default_factory=dict)


def plan_batch(records: Sequence[Mapping[str, Any]], codec: Codec) -> list[AlertPlan]:
    """Deaggregate and decode every record, keeping what the rules read. No I/O."""
    seen: set[str] = set()
    return [_plan_record(i, record, codec, seen) for i, record in enumerate(records)]


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


def _plan_record(index: int, record: Mapping[str, Any], codec: Codec, seen: set[str]) -> AlertPlan:
    kinesis = record.get("kinesis") or {}
    sequence_number = str(kinesis.get("sequenceNumber", ""))
    try:
        subs = deaggregate(b64decode(kinesis["data"]), kinesis.get("partitionKey", ""))
    except Exception:  # unreadable as a whole: one poison entry with the record's bytes
        (delivered,) = decode_lambda_record(record, codec)
        plan = AlertPlan(index, sequence_number, frozenset({delivered.record.partition_key}))
        error = delivered.error or PoisonRecordError("unreadable record", delivered.record.data)
        plan.poison.append((delivered.record, error))
        return plan
    plan = AlertPlan(index, sequence_number, frozenset(s.partition_key for s in subs))
    for sub in subs:
        try:
            event = codec.decode(sub.data)
        except PoisonRecordError as error:
            plan.poison.append((user_record_of(record, sub), error))
            continue
        metadata = event.record["metadata"]
        event_id = str(metadata["event_id"])
        if event_id in seen:
            continue
        seen.add(event_id)
        if metadata.get("replay_id"):
            plan.replayed += 1
            continue
        _add_event(plan, event, event_id)
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

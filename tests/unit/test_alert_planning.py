"""Planning a decoded batch for the alert rules: skip replays and duplicates; judge each
sample against its baseline as of its event time, batch after batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipelines.adapters.alert_state import StoredBaseline, sample_problem
from pipelines.consumers.alerts.planning import BatchState, evaluate, plan_batch
from pipelines.consumers.alerts.rules import METRIC_SPIKE, Alert, Baseline, MetricSample
from pipelines.contract.events import new_event
from tests.kinesis_events import aggregated_record, decoded_batch, plain_records

AT = datetime(2026, 11, 2, tzinfo=UTC)


def _payment(amount: str, user: str = "user-1") -> dict:
    body = {
        "transaction_id": "txn-1",
        "user_id": user,
        "amount": Decimal(amount),
        "currency": "USD",
        "merchant": "Shop",
        "category": "misc",
        "status": "completed",
    }
    return new_event("TransactionRecorded", body, producer="test", occurred_at=AT)


def test_replayed_events_are_not_evaluated() -> None:
    event = _payment("50000.00")
    event["metadata"]["replay_id"] = "replay-1"
    (plan,) = plan_batch(decoded_batch(plain_records([event])))
    assert (plan.transactions, plan.replayed) == ([], 1)


def test_an_event_delivered_twice_in_one_batch_is_evaluated_once() -> None:
    event = _payment("50000.00")
    plans = plan_batch(decoded_batch([aggregated_record([event, event], 1)]))
    evaluate(plans, BatchState())
    assert [a.alert_id for a in plans[0].alerts] == [
        f"fraud_amount#{event['metadata']['event_id']}"
    ]


def _metric(value: float, minute: float, *, name: str = "response_time") -> dict[str, Any]:
    body = {"metric_name": name, "value": value, "source": "db-01", "tags": {}}
    return new_event(
        "MetricRecorded", body, producer="test", occurred_at=AT + timedelta(minutes=minute)
    )


def _id(event: dict[str, Any]) -> str:
    event_id: str = event["metadata"]["event_id"]
    return event_id


class Store:
    """Baselines in memory, saved and read back as the alerter saves and reads them."""

    def __init__(self) -> None:
        self.baselines: dict[tuple[str, str], Baseline] = {}

    def deliver(self, records: list[dict[str, Any]]) -> list[Alert]:
        plans = plan_batch(decoded_batch(records))
        state = BatchState({s: StoredBaseline(b, 1) for s, b in self.baselines.items()})
        evaluate(plans, state)
        for plan in plans:
            for sample in plan.samples:
                stored = self.baselines.get(sample.series, Baseline())
                self.baselines[sample.series] = stored.merged([sample])
        return [alert for plan in plans for alert in plan.alerts]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"value": float("nan")}, "value"),
        ({"value": float("inf")}, "value"),
        ({"source": ""}, "source"),
        ({"metric_name": "m" * 1025}, "metric_name"),
    ],
)
def test_metric_values_dynamodb_would_reject_are_named(changes: dict[str, Any], field: str) -> None:
    sample = MetricSample("e-1", "db-01", "cpu_usage", 50.0, 1_793_620_800_000)
    assert sample_problem(sample) is None
    problem = sample_problem(sample._replace(**changes))
    assert problem is not None and field in problem


# --- metrics -------------------------------------------------------------------------------


def test_a_late_sample_counts_where_it_happened_for_the_samples_after_it() -> None:
    quiet = [_metric(10.0, m) for m in range(0, 40, 2)]
    late = [_metric(12.0, m) for m in range(1, 40, 2)]  # the odd minutes, a batch later
    spike = _metric(60.0, 41)
    store = Store()
    assert store.deliver(plain_records(quiet)) == []
    assert store.deliver(plain_records(late, 30)) == []
    (alert,) = store.deliver(plain_records([spike], 60))
    in_order = Store()
    in_order.deliver(
        plain_records(sorted([*quiet, *late], key=lambda e: e["metadata"]["occurred_at"]))
    )
    (expected,) = in_order.deliver(plain_records([spike], 60))
    assert alert.rule == METRIC_SPIKE
    assert alert.details == expected.details
    assert alert.details["baseline_mean"] == 11.0  # the last twenty by event time


def test_a_sample_added_twice_does_not_move_the_baseline() -> None:
    store = Store()
    records = plain_records([_metric(10.0 + i % 3, i) for i in range(25)])
    store.deliver(records)
    before = store.baselines.copy()
    store.deliver(records[3:])
    assert store.baselines == before


def test_a_redelivered_batch_judges_its_samples_without_their_own_later_arrivals() -> None:
    quiet = [_metric(10.0, m) for m in range(20)]
    spike = _metric(60.0, 30)
    late_giant = _metric(1000.0, 25)  # arrives after the spike, earlier in event time
    store = Store()
    store.deliver(plain_records(quiet))
    records = plain_records([spike, late_giant], 40)
    first = [a for a in store.deliver(records) if a.event_id == _id(spike)]
    again = [a for a in store.deliver(records) if a.event_id == _id(spike)]
    assert [a.rule for a in first] == [METRIC_SPIKE]  # the giant came after it
    assert [(a.alert_id, a.details) for a in again] == [(a.alert_id, a.details) for a in first]

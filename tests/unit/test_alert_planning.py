"""Planning a decoded batch for the alert rules: skip replays and duplicates."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pipelines.consumers.alerts.planning import BatchState, evaluate, plan_batch
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

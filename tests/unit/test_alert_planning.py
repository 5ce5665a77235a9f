"""Planning a batch for the alert rules: decode, skip replays and duplicates, keep poison."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal

from pipelines.alerts.planning import BatchState, evaluate, plan_batch
from pipelines.codec import Codec
from pipelines.events import new_event
from tests.kinesis_events import aggregated_record, kinesis_record, plain_records

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
    (plan,) = plan_batch(plain_records([event]), Codec())
    assert (plan.transactions, plan.replayed) == ([], 1)


def test_an_event_delivered_twice_in_one_batch_is_evaluated_once() -> None:
    event = _payment("50000.00")
    plans = plan_batch([aggregated_record([event, event], 1)], Codec())
    evaluate(plans, BatchState())
    assert [a.alert_id for a in plans[0].alerts] == [
        f"fraud_amount#{event['metadata']['event_id']}"
    ]


def test_unreadable_bytes_are_set_aside_for_the_quarantine() -> None:
    record = kinesis_record(b"not an event", "user-1", 1)
    bad_base64 = kinesis_record(b"", "user-2", 2)
    bad_base64["kinesis"]["data"] = "%%%"
    plans = plan_batch([record, bad_base64], Codec())
    assert [len(p.poison) for p in plans] == [1, 1]
    assert base64.b64encode(plans[0].poison[0][0].data) == record["kinesis"]["data"].encode()

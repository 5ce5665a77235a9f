"""Planning and evaluating batches for the alert rules, batch after batch, without I/O.

:class:`Store` keeps the alert state in memory the way the DynamoDB adapters keep it (every
transaction event, every transaction's events, marks, baselines) and reads it back the way
the alerter does (a user's events and marks in the span around the batch, the transactions
they belong to): so these tests see what batch boundaries, late events and re-deliveries
do to the alerts.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from pipelines.adapters.alert_state import (
    StoredBaseline,
    TransactionHistory,
    sample_problem,
    transaction_problem,
)
from pipelines.consumers.alerts.planning import BatchState, evaluate, plan_batch
from pipelines.consumers.alerts.rules import (
    FRAUD_CARD_TESTING,
    FRAUD_VELOCITY,
    METRIC_SPIKE,
    Alert,
    Baseline,
    MetricSample,
    Transaction,
)
from pipelines.consumers.alerts.windows import Marked, TxEvent, history_span, tx_event
from pipelines.contract.events import new_event
from tests.kinesis_events import aggregated_record, decoded_batch, plain_records

AT = datetime(2026, 11, 2, tzinfo=UTC)
MINUTE = 60


def _payment(
    amount: str = "20.00",
    second: float = 0,
    *,
    user: str = "user-1",
    status: str = "completed",
    transaction: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    body = {
        "transaction_id": transaction or f"txn-{user}-{second}",
        "user_id": user,
        "amount": Decimal(amount),
        "currency": "USD",
        "merchant": "Shop",
        "category": "misc",
        "status": status,
    }
    return new_event(
        "TransactionRecorded",
        body,
        producer="test",
        occurred_at=AT + timedelta(seconds=second),
        aggregate_version=version,
    )


def _metric(value: float, minute: float, *, name: str = "response_time") -> dict[str, Any]:
    body = {"metric_name": name, "value": value, "source": "db-01", "tags": {}}
    return new_event(
        "MetricRecorded", body, producer="test", occurred_at=AT + timedelta(minutes=minute)
    )


def _id(event: dict[str, Any]) -> str:
    event_id: str = event["metadata"]["event_id"]
    return event_id


class Store:
    """The alert state in memory, kept and read back as the alerter keeps and reads it."""

    def __init__(self) -> None:
        self.events: dict[str, dict[str, TxEvent]] = {}  # user -> event id -> event
        self.marks: dict[str, dict[tuple[str, str], tuple[int, Marked]]] = {}
        self.baselines: dict[tuple[str, str], Baseline] = {}

    def deliver(self, records: list[dict[str, Any]], *, mark: bool = True) -> list[Alert]:
        """One invocation: plan, write, read, evaluate; persist marks (unless a crash)."""
        plans = plan_batch(decoded_batch(records))
        for plan in plans:
            for tx in plan.transactions:
                self.events.setdefault(tx.user_id, {})[tx.event_id] = tx_event(tx)
        state = BatchState(
            baselines={s: StoredBaseline(b, 1) for s, b in self.baselines.items()},
            histories=self._histories(p.transactions for p in plans),
        )
        evaluate(plans, state)
        for plan in plans:
            if mark:
                for user, m in plan.marks:
                    marked = Marked(m.rule, m.event.transaction_id, m.event.event_id, m.alert_id)
                    self.marks.setdefault(user, {})[(m.rule, m.event.event_id)] = (
                        m.event.occurred_at_ms,
                        marked,
                    )
            for sample in plan.samples:
                stored = self.baselines.get(sample.series, Baseline())
                self.baselines[sample.series] = stored.merged([sample])
        return [alert for plan in plans for alert in plan.alerts]

    def _histories(self, batches: Any) -> dict[str, TransactionHistory]:
        times: dict[str, list[int]] = {}
        for txs in batches:
            for tx in txs:
                times.setdefault(tx.user_id, []).append(tx.occurred_at_ms)
        histories = {}
        for user, ts in times.items():
            lo, hi = history_span(ts)
            everything = self.events.get(user, {}).values()
            in_span = [e for e in everything if lo <= e.occurred_at_ms <= hi]
            transactions = {e.transaction_id for e in in_span}
            siblings = [e for e in everything if e.transaction_id in transactions]
            marks = [m for ms, m in self.marks.get(user, {}).values() if lo <= ms <= hi]
            histories[user] = TransactionHistory(in_span + siblings, marks, (lo, hi))
        return histories


def _deliver_in_batches(events: Sequence[dict[str, Any]], cuts: Sequence[int]) -> list[Alert]:
    """``events`` in this order, cut into batches before each index of ``cuts``."""
    store = Store()
    records = plain_records(events)
    alerts: list[Alert] = []
    bounds = [0, *sorted(set(cuts)), len(records)]
    for lo, hi in itertools.pairwise(bounds):
        if lo < hi:
            alerts.extend(store.deliver(records[lo:hi]))
    return alerts


def _ids(alerts: Sequence[Alert], rule: str | None = None) -> list[str]:
    return sorted(a.alert_id for a in alerts if rule is None or a.rule == rule)


# --- planning ------------------------------------------------------------------------------


def test_replayed_events_are_not_evaluated() -> None:
    event = _payment("50000.00")
    event["metadata"]["replay_id"] = "replay-1"
    (plan,) = plan_batch(decoded_batch(plain_records([event])))
    assert (plan.transactions, plan.replayed) == ([], 1)


def test_an_event_delivered_twice_in_one_batch_is_evaluated_once() -> None:
    event = _payment("50000.00")
    plans = plan_batch(decoded_batch([aggregated_record([event, event], 1)]))
    evaluate(plans, BatchState())
    assert [a.alert_id for a in plans[0].alerts] == [f"fraud_amount#{_id(event)}"]


def test_an_event_the_state_cannot_hold_is_set_aside_naming_its_field() -> None:
    good = _payment("5.00", 1)
    bad = _payment("5.00", 2, transaction="t" * 1100)
    (plan,) = plan_batch(decoded_batch([aggregated_record([good, bad], 1)]))
    assert [t.event_id for t in plan.transactions] == [_id(good)]
    ((delivered, error),) = plan.invalid
    assert _id(delivered.event.record) == _id(bad)
    assert "transaction_id" in error.reason


def _tx(**changes: Any) -> Transaction:
    tx = Transaction("e-1", "user-1", "t-1", Decimal("5.00"), "USD", "completed", 1_793_620_800_000)
    return tx._replace(**changes)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u" * 2049}, "user_id"),
        ({"event_id": "e" * 1000}, "event_id"),
        ({"transaction_id": "t" * 1021}, "transaction_id"),
        ({"amount": Decimal("NaN")}, "amount"),
        ({"amount": Decimal("1E+130")}, "amount"),
        ({"amount": Decimal("1.000000000000000000000000000000000000001")}, "amount"),
        ({"occurred_at_ms": -1}, "occurred_at"),
    ],
)
def test_transaction_values_dynamodb_would_reject_are_named(
    changes: dict[str, Any], field: str
) -> None:
    assert transaction_problem(_tx()) is None
    problem = transaction_problem(_tx(**changes))
    assert problem is not None and field in problem


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


# --- windows across batches --------------------------------------------------------------


def _six_with_one_late() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Six payments a minute apart; in arrival order the one at minute 2 comes last."""
    payments = [_payment(second=MINUTE * i) for i in range(6)]
    return payments, [*payments[:2], *payments[3:], payments[2]]


def test_a_late_event_that_completes_a_window_raises_exactly_one_alert() -> None:
    payments, arrival = _six_with_one_late()
    store = Store()
    earlier = [store.deliver(plain_records([p], n)) for n, p in enumerate(arrival[:-1], start=1)]
    assert earlier == [[]] * 5
    (alert,) = store.deliver(plain_records(arrival[-1:], 6))
    assert alert.rule == FRAUD_VELOCITY
    assert alert.event_id == _id(payments[5])  # the sixth by event time takes the user over
    assert alert.raised_by == _id(payments[2])  # raised when the late one arrived
    assert alert.details["transactions_in_window"] == 6


def test_the_same_events_in_one_batch_raise_the_same_alerts() -> None:
    payments, arrival = _six_with_one_late()
    late = _deliver_in_batches(arrival, range(1, 6))
    together = _deliver_in_batches(arrival, [])
    in_time_order = _deliver_in_batches(payments, [])
    assert _ids(late) == _ids(together) == _ids(in_time_order)
    assert _ids(late) == [f"{FRAUD_VELOCITY}#{_id(payments[5])}"]
    aggregated = Store().deliver([aggregated_record(arrival, 1)])
    assert _ids(aggregated) == _ids(late)


def test_a_burst_split_across_batches_in_every_order_raises_one_alert() -> None:
    burst = [_payment(second=40 * i) for i in range(6)]  # six within four minutes
    rng = random.Random(7)
    for order in itertools.permutations(burst):
        cuts = rng.sample(range(1, 6), rng.randint(0, 5))
        alerts = _deliver_in_batches(order, cuts)
        assert _ids(alerts) == _ids(_deliver_in_batches(order, [])), (order, cuts)
        assert len(alerts) == 1 and alerts[0].rule == FRAUD_VELOCITY


def test_two_bursts_raise_one_alert_each_in_any_order_and_batching() -> None:
    first = [_payment(second=30 * i) for i in range(7)]
    second = [_payment(second=40 * MINUTE + 30 * i) for i in range(7)]
    rng = random.Random(3)
    for _ in range(40):
        order = [*first, *second]
        rng.shuffle(order)
        cuts = rng.sample(range(1, 14), rng.randint(0, 6))
        alerts = _deliver_in_batches(order, cuts)
        assert _ids(alerts) == _ids(_deliver_in_batches(order, []))
        split = round((AT + timedelta(minutes=20)).timestamp() * 1000)
        assert sorted(a.occurred_at_ms > split for a in alerts) == [False, True]


def test_a_late_event_before_an_alerted_burst_raises_nothing_more() -> None:
    payments = [_payment(second=MINUTE * i) for i in range(6)]
    store = Store()
    (alert,) = store.deliver(plain_records(payments))
    early = _payment(second=-30)  # now the fifth payment is the sixth of its window
    assert store.deliver(plain_records([early], 7)) == []
    more = [_payment(second=MINUTE * 6 + i) for i in range(3)]  # the burst goes on
    assert store.deliver(plain_records(more, 8)) == []
    assert alert.event_id == _id(payments[5])


def test_card_testing_raises_once_per_burst_of_declines() -> None:
    declines = [_payment("1.00", 30 * i, status="declined") for i in range(5)]
    arrival = [declines[4], declines[0], declines[3], declines[1], declines[2]]
    alerts = _deliver_in_batches(arrival, [1, 2, 3, 4])
    assert [a.rule for a in alerts] == [FRAUD_CARD_TESTING]
    assert _ids(alerts) == _ids(_deliver_in_batches(arrival, []))


def test_a_redelivered_batch_raises_the_same_alerts_until_they_are_marked() -> None:
    _, arrival = _six_with_one_late()
    store = Store()
    records = plain_records(arrival)
    first = store.deliver(records, mark=False)  # published, then the invocation died
    again = store.deliver(records)
    assert _ids(first) == _ids(again) != []
    assert [a for a in store.deliver(records) if a.rule == FRAUD_VELOCITY] == []


def test_a_history_read_around_each_batch_gives_what_the_whole_history_gives() -> None:
    """Random users' streams, some events late, cut into random batches: the alerts equal
    those of every event evaluated in one pass with the whole history at hand."""
    rng = random.Random(11)
    for _ in range(25):
        events = []
        for user in ("user-a", "user-b"):
            t = 0.0
            for _ in range(rng.randint(5, 40)):
                t += rng.expovariate(1 / 70)
                status = "declined" if rng.random() < 0.3 else "completed"
                events.append(_payment(second=round(t, 3), user=user, status=status))
        order = sorted(events, key=lambda e: e["metadata"]["occurred_at"])
        for i in range(len(order)):  # a few events arrive up to 15 minutes late
            if rng.random() < 0.2:
                j = min(len(order) - 1, i + rng.randint(1, 12))
                order.insert(j, order.pop(i))
        cuts = rng.sample(range(1, len(order)), rng.randint(0, min(10, len(order) - 1)))
        batched = _deliver_in_batches(order, cuts)
        whole = _deliver_in_batches(order, [])
        assert _ids(batched) == _ids(whole)


# --- one transaction, several events -------------------------------------------------------


def _pending_then_completed(n: int, *, user: str = "user-1") -> list[dict[str, Any]]:
    events = []
    for i in range(n):
        tid = f"txn-{i}"
        events.append(_payment(second=MINUTE * i, user=user, status="pending", transaction=tid))
        events.append(_payment(second=MINUTE * i + 20, user=user, transaction=tid))
    return events


def test_a_transaction_with_two_events_counts_once_however_they_arrive() -> None:
    five = _pending_then_completed(5)  # ten events, five transactions: no velocity
    completed_first = [e for pair in zip(five[1::2], five[::2], strict=True) for e in pair]
    for events in (five, completed_first):
        assert _deliver_in_batches(events, []) == []
        assert _deliver_in_batches(events, range(1, 10)) == []
        assert Store().deliver([aggregated_record(events, 1)]) == []
    six = _pending_then_completed(6)
    (alert,) = _deliver_in_batches(six, range(1, 12, 3))
    # the sixth transaction took the user over the limit where its first event put it;
    # its completion a little later moves it within the burst already alerted
    assert alert.event_id == _id(six[10])


@pytest.mark.parametrize("arrival", list(itertools.permutations(range(2))))
def test_events_of_one_transaction_resolve_by_time_then_version(arrival: tuple[int, ...]) -> None:
    def transaction(i: int, statuses: tuple[str, str]) -> list[dict[str, Any]]:
        # two events at the same millisecond: the higher aggregate_version wins
        return [
            _payment("1.00", 30 * i, status=s, transaction=f"t-{i}", version=v)
            for v, s in zip((1, 2), statuses, strict=True)
        ]

    declined = [transaction(i, ("pending", "declined")) for i in range(3)]
    events = [pair[k] for pair in declined for k in arrival]
    assert [a.rule for a in _deliver_in_batches(events, [2, 4])] == [FRAUD_CARD_TESTING]
    undone = [transaction(i, ("declined", "completed")) for i in range(3)]
    events = [pair[k] for pair in undone for k in arrival]
    assert _deliver_in_batches(events, [3]) == []


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

"""The alert rules' state in DynamoDB: baselines and recent transactions, on every backend."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.adapters.alert_state import BaselineStore, RecentTransactions
from pipelines.adapters.dynamo import DynamoWriter, WriteRejectedError
from pipelines.consumers.alerts.rules import FRAUD_VELOCITY, MetricSample, Transaction
from pipelines.consumers.alerts.windows import Mark, Marked, TxEvent, tx_event
from pipelines.errors import MisconfigurationError
from tests.contract.conftest import Backend
from tests.stack import Isolated

T0 = 1_793_620_800_000  # 2026-11-02T12:00:00Z
SERIES = ("db-01", "response_time")


@pytest.fixture
def stores(backend: Backend) -> Isolated:
    return backend.isolated("alerter")


def samples(values: list[float], start: int = 0) -> list[MetricSample]:
    return [
        MetricSample(f"e-{start + i:03d}", *SERIES, v, T0 + (start + i) * 1000)
        for i, v in enumerate(values)
    ]


def test_a_baseline_saved_twice_with_the_same_samples_moves_once(
    backend: Backend, stores: Isolated
) -> None:
    baselines = BaselineStore(backend.client("dynamodb"), stores.tables["metric_baselines"])
    first = samples([10.0, 11.0, 12.0])

    baselines.save(SERIES, baselines.load([SERIES])[SERIES], first)
    stored = baselines.load([SERIES])[SERIES]
    baselines.save(SERIES, stored, first)  # a re-delivery: nothing new

    again = baselines.load([SERIES])[SERIES]
    assert [s[2] for s in again.baseline.samples] == [10.0, 11.0, 12.0]
    assert again.revision == stored.revision == 1


def test_a_writer_that_saved_in_between_is_merged_with_not_overwritten(
    backend: Backend, stores: Isolated
) -> None:
    baselines = BaselineStore(backend.client("dynamodb"), stores.tables["metric_baselines"])
    stale = baselines.load([SERIES])[SERIES]  # read before the other writer saved
    baselines.save(SERIES, stale, samples([1.0, 2.0]))

    baselines.save(SERIES, stale, samples([3.0], start=2))

    merged = baselines.load([SERIES])[SERIES]
    assert [s[2] for s in merged.baseline.samples] == [1.0, 2.0, 3.0]
    assert merged.revision == 2


def test_a_users_window_is_read_by_event_time_whatever_order_it_was_written_in(
    backend: Backend, stores: Isolated
) -> None:
    writer = DynamoWriter(backend.client("dynamodb"))
    recent = RecentTransactions(writer, stores.tables["recent_transactions"])
    txs = [
        Transaction(f"e-{i}", "user-1", f"t-{i}", Decimal("5.00"), "USD", status, T0 + ms)
        for i, (ms, status) in enumerate(
            [(60_000, "completed"), (0, "declined"), (30_000, "completed")]
        )
    ]
    recent.record([recent.put_for(tx) for tx in txs])
    recent.record([recent.put_for(txs[0])])  # re-delivered: the same item

    history = recent.history("user-1", T0, T0 + 60_000)

    assert [(e.occurred_at_ms - T0, e.event_id, e.status) for e in history.events] == [
        (0, "e-1", "declined"),
        (30_000, "e-2", "completed"),
        (60_000, "e-0", "completed"),
    ]
    assert history.events[0] == tx_event(txs[1])
    assert recent.history("user-1", T0 + 1, T0 + 29_999).events == []


def test_every_event_of_a_transaction_and_the_marks_are_read_back(
    backend: Backend, stores: Isolated
) -> None:
    recent = RecentTransactions(
        DynamoWriter(backend.client("dynamodb")), stores.tables["recent_transactions"]
    )
    pending = TxEvent(T0, "e-1", "t-1", "pending", 0, "5.00", "USD")
    completed = TxEvent(T0 + 3 * 3_600_000, "e-2", "t-1", "completed", 0, "5.00", "USD")
    mark = Mark(FRAUD_VELOCITY, pending, "fraud_velocity#e-9")
    recent.record(
        [
            recent.transaction_put("user-1", "t-1", [completed, pending, completed]),
            recent.mark_put("user-1", mark),
        ]
    )

    found = recent.transactions([("user-1", "t-1"), ("user-1", "t-never")])
    history = recent.history("user-1", T0 - 1, T0 + 1)

    assert found == {
        ("user-1", "t-1"): [e._replace(amount="", currency="") for e in (pending, completed)],
        ("user-1", "t-never"): [],
    }
    assert history.events == []  # the transaction's own item is not an event in time
    assert history.marks == [Marked(FRAUD_VELOCITY, "t-1", "e-1", "fraud_velocity#e-9")]


def test_an_item_too_large_is_rejected_with_what_did_not_land(
    backend: Backend, stores: Isolated
) -> None:
    recent = RecentTransactions(
        DynamoWriter(backend.client("dynamodb")), stores.tables["recent_transactions"]
    )
    huge = Transaction("e-1", "user-1", "t-1", Decimal("5.00"), "X" * 420_000, "completed", T0)
    fine = huge._replace(event_id="e-2", transaction_id="t-2", currency="USD")
    with pytest.raises(WriteRejectedError) as rejected:
        recent.record([recent.put_for(fine), recent.put_for(huge)])
    assert {put.key for put in rejected.value.unwritten} >= {recent.put_for(huge).key}
    recent.record([recent.put_for(fine)])


def test_a_baseline_dynamodb_cannot_hold_is_rejected_not_retried(
    backend: Backend, stores: Isolated
) -> None:
    baselines = BaselineStore(backend.client("dynamodb"), stores.tables["metric_baselines"])
    series = ("db-01", "m" * 1100)  # over the sort key's 1,024 bytes
    sample = MetricSample("e-1", *series, 1.0, T0)
    with pytest.raises(WriteRejectedError) as rejected:
        baselines.save(series, baselines.load([series])[series], [sample])
    assert rejected.value.code == "ValidationException"


def test_a_baseline_of_numbers_beyond_dynamodb_is_still_saved(
    backend: Backend, stores: Isolated
) -> None:
    baselines = BaselineStore(backend.client("dynamodb"), stores.tables["metric_baselines"])
    giant = [MetricSample(f"e-{i}", *SERIES, v, T0 + i) for i, v in enumerate([1e300, 1e-300, 5.0])]
    baselines.save(SERIES, baselines.load([SERIES])[SERIES], giant)
    stored = baselines.load([SERIES])[SERIES]
    assert [s[2] for s in stored.baseline.samples] == [1e300, 1e-300, 5.0]


def test_a_missing_table_is_a_misconfiguration(backend: Backend, stores: Isolated) -> None:
    baselines = BaselineStore(backend.client("dynamodb"), "no-such-table")
    with pytest.raises(MisconfigurationError):
        baselines.load([SERIES])

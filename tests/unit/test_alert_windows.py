"""The velocity and card-testing windows of one user, event by event, without any I/O."""

from __future__ import annotations

import itertools

from pipelines.consumers.alerts.rules import (
    FRAUD_CARD_TESTING,
    FRAUD_VELOCITY,
    FRAUD_WINDOW_MS,
)
from pipelines.consumers.alerts.windows import Marked, TxEvent, UserWindows, window_alerts

T0 = 1_793_000_000_000  # epoch ms
MINUTE = 60_000


def events(offsets_ms: list[int], status: str = "completed") -> list[TxEvent]:
    return [TxEvent(T0 + ms, f"e-{i:03d}", f"t-{i:03d}", status) for i, ms in enumerate(offsets_ms)]


def rules_by_event(arrival: list[TxEvent]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for alert in window_alerts("user-1", arrival):
        found.setdefault(alert.event_id, []).append(alert.rule)
    return found


def test_five_transactions_in_ten_minutes_are_fine_the_sixth_alerts_once() -> None:
    assert rules_by_event(events([i * MINUTE for i in range(5)])) == {}
    assert rules_by_event(events([i * MINUTE for i in range(8)])) == {"e-005": [FRAUD_VELOCITY]}


def test_the_velocity_window_excludes_a_transaction_exactly_ten_minutes_earlier() -> None:
    # Six transactions, the first exactly one window before the last: only five count.
    assert rules_by_event(events([0, 1, 2, 3, 4, FRAUD_WINDOW_MS])) == {}
    inside = events([1, 2, 3, 4, 5, FRAUD_WINDOW_MS])
    assert rules_by_event(inside) == {"e-005": [FRAUD_VELOCITY]}


def test_velocity_counts_by_event_time_not_by_arrival() -> None:
    late = events([5 * MINUTE, 0, MINUTE, 2 * MINUTE, 3 * MINUTE, 4 * MINUTE])
    assert rules_by_event(late) == {"e-000": [FRAUD_VELOCITY]}  # the latest by event time


def test_card_testing_needs_three_declines_within_the_window() -> None:
    assert rules_by_event(events([0, MINUTE], "declined")) == {}
    spread = events([0, 5 * MINUTE, 10 * MINUTE], "declined")
    assert rules_by_event(spread) == {}  # the first is exactly a window before the third
    burst = events([0, MINUTE, 2 * MINUTE, 3 * MINUTE], "declined")
    assert rules_by_event(burst) == {"e-002": [FRAUD_CARD_TESTING]}
    approved = [TxEvent(T0 + 30_000, "ok", "t-ok", "completed"), *events([0, MINUTE], "declined")]
    assert rules_by_event(approved) == {}


def test_a_late_event_that_completes_a_window_raises_the_alert_once() -> None:
    six = events([i * MINUTE for i in range(6)])
    arrival = [*six[:2], *six[3:], six[2]]
    windows = UserWindows("user-1")
    assert [windows.add(e).alerts for e in arrival[:-1]] == [[]] * 5
    (alert,) = windows.add(arrival[-1]).alerts
    assert (alert.rule, alert.event_id, alert.raised_by) == (FRAUD_VELOCITY, "e-005", "e-002")
    assert windows.add(TxEvent(T0 + 30_000, "e-late", "t-late", "completed")).alerts == []


def test_a_burst_raises_one_alert_in_every_arrival_order() -> None:
    burst = events([i * 30_000 for i in range(7)])  # seven within four minutes
    for arrival in itertools.permutations(burst):
        assert len(window_alerts("user-1", arrival)) == 1


def test_a_long_burst_arriving_backwards_raises_one_alert() -> None:
    steady = events([i * MINUTE for i in range(60)])  # an hour, one a minute
    assert [a.event_id for a in window_alerts("user-1", steady)] == ["e-005"]
    assert [a.event_id for a in window_alerts("user-1", steady[::-1])] == ["e-059"]


def test_bursts_alerted_apart_then_joined_by_a_late_event_keep_their_two_alerts() -> None:
    # Two bursts twelve minutes apart: the gap between them is longer than a window...
    first = events([i * 10_000 for i in range(6)])
    second = [e._replace(occurred_at_ms=e.occurred_at_ms + 12 * MINUTE) for e in first]
    second = [e._replace(event_id=f"s-{i}", transaction_id=f"ts-{i}") for i, e in enumerate(second)]
    windows = UserWindows("user-1")
    alerts = [a for e in [*first, *second] for a in windows.add(e).alerts]
    assert len(alerts) == 2
    # ...until late transactions in between put the two in one: nothing more is raised.
    between = [TxEvent(T0 + ms * MINUTE, f"b-{ms}", f"tb-{ms}", "completed") for ms in range(2, 11)]
    assert [a for e in between for a in windows.add(e).alerts] == []
    assert len(window_alerts("user-1", sorted([*first, *second, *between]))) == 1


def test_marks_read_back_keep_an_alerted_burst_quiet() -> None:
    six = events([i * MINUTE for i in range(6)])
    (alert,) = window_alerts("user-1", six)
    marks = [Marked(FRAUD_VELOCITY, "t-005", "e-005", alert.alert_id)]
    windows = UserWindows("user-1", six, marks)
    early = TxEvent(T0 - 30_000, "e-early", "t-early", "completed")
    assert windows.add(early).alerts == []  # the fifth is now over the limit too
    fresh = UserWindows("user-1", six)  # no marks: the burst looks new
    assert [a.event_id for a in fresh.add(early).alerts] == ["e-004"]


def test_a_later_event_moves_its_transaction_and_an_earlier_one_does_not() -> None:
    pending = TxEvent(T0, "e-p", "t-1", "pending")
    declined = TxEvent(T0 + 5_000, "e-d", "t-1", "declined")
    others = events([MINUTE, 2 * MINUTE], "declined")
    for arrival in itertools.permutations([pending, declined, *others]):
        assert [a.rule for a in window_alerts("user-1", arrival)] == [FRAUD_CARD_TESTING]
    # completed after the decline: from the moment that is known, the decline does not count
    undone = TxEvent(T0 + 9_000, "e-c", "t-1", "completed")
    for arrival in itertools.permutations([pending, declined, undone, *others]):
        before_undone = arrival[: arrival.index(undone)]
        three_declines_seen = declined in before_undone and all(o in before_undone for o in others)
        rules = [a.rule for a in window_alerts("user-1", arrival)]
        assert rules == ([FRAUD_CARD_TESTING] if three_declines_seen else [])

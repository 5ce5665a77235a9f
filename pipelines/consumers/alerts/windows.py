"""One user's velocity and card-testing windows, evaluated event by event - no I/O.

:mod:`.rules` says what a window, a burst and a burst's alert are. :class:`UserWindows`
holds what is known of one user: the transactions of the persisted history (every event
of each, so that a transaction stands where its latest event says) and the marks of the
bursts already alerted. It then takes events one at a time, in arrival order:
:meth:`UserWindows.add` returns the alerts the event raises and the over-limit
transactions it marks (to be persisted with it).

A new transaction can only take transactions *over* the limit (it adds to the windows
after it); a later event of a known transaction *moves* it to that event's time and
status, which can also take others back under. Marks belong to a transaction, by
transaction id, wherever it moves, so a burst stays alerted while its transactions
settle.

A history read around the events to add is partial: pass its ``span``, read as
:func:`history_span` says, and the windows are exact where the added events can reach.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from typing import NamedTuple

from pipelines.consumers.alerts.rules import (
    CARD_TESTING_DECLINES,
    DECLINED,
    FRAUD_ALERT,
    FRAUD_CARD_TESTING,
    FRAUD_VELOCITY,
    FRAUD_WINDOW_MS,
    HIGH,
    VELOCITY_MAX_TRANSACTIONS,
    Alert,
    Transaction,
)
from pipelines.contract.timestamps import iso_from_epoch_millis

W = FRAUD_WINDOW_MS
Key = tuple[int, str]  # (event time ms, event id): a transaction's place in the windows


class TxEvent(NamedTuple):
    """One event of a transaction, as the windows and ``recent_transactions`` hold it."""

    occurred_at_ms: int
    event_id: str
    transaction_id: str
    status: str
    aggregate_version: int = 0
    amount: str = ""
    currency: str = ""

    @property
    def order(self) -> tuple[int, int, str]:
        """Which event of a transaction wins: the latest by this order."""
        return (self.occurred_at_ms, self.aggregate_version, self.event_id)

    @property
    def key(self) -> Key:
        return (self.occurred_at_ms, self.event_id)


class Mark(NamedTuple):
    """An over-limit transaction of an alerted burst, where it stands when marked."""

    rule: str
    event: TxEvent
    alert_id: str


class Marked(NamedTuple):
    """A mark as persisted: the transaction, the event where it stood, the burst's alert."""

    rule: str
    transaction_id: str
    event_id: str
    alert_id: str


class WindowOutcome(NamedTuple):
    alerts: list[Alert]
    marks: list[Mark]


def tx_event(tx: Transaction) -> TxEvent:
    return TxEvent(
        tx.occurred_at_ms,
        tx.event_id,
        tx.transaction_id,
        tx.status,
        tx.aggregate_version,
        str(tx.amount),
        tx.currency,
    )


def history_span(times: Iterable[int]) -> tuple[int, int]:
    """The event-time range of history to read for adding events at ``times``.

    An event at ``t`` changes the windows in ``[t, t + W)``; a burst it touches is
    recognised by the over-limit transactions within a window of those, whose own windows
    reach one more window back.
    """
    ts = list(times)
    return (min(ts) - 2 * W, max(ts) + 2 * W)


class _Window:
    """One rule's window over one user's transactions: places, counts, over-limit set."""

    __slots__ = (
        "declines_only",
        "exact_from",
        "keys",
        "limit",
        "over",
        "over_ids",
        "rule",
        "times",
    )

    def __init__(self, rule: str, limit: int, declines_only: bool, exact_from: int | None) -> None:
        self.rule = rule
        self.limit = limit  # more than this many in a window is over the limit
        self.declines_only = declines_only
        self.exact_from = exact_from  # windows of transactions earlier than this are partial
        self.keys: list[Key] = []
        self.times: list[int] = []
        self.over: list[Key] = []  # sorted
        self.over_ids: set[str] = set()

    def counts(self, event: TxEvent) -> bool:
        return not self.declines_only or event.status == DECLINED

    def insert(self, key: Key) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            return
        self.keys.insert(i, key)
        self.times.insert(i, key[0])

    def remove(self, key: Key) -> None:
        i = bisect_left(self.keys, key)
        if i < len(self.keys) and self.keys[i] == key:
            del self.keys[i]
            del self.times[i]
        self._not_over(key)

    def count_at(self, i: int) -> int:
        """How many transactions the window of the ``i``-th holds, up to itself."""
        return i - bisect_right(self.times, self.times[i] - W) + 1

    def count_of(self, key: Key) -> int:
        return self.count_at(bisect_left(self.keys, key))

    def start(self) -> None:
        """The over-limit set of the transactions placed so far."""
        start = 0
        times, keys = self.times, self.keys
        for i, t in enumerate(times):
            while times[start] <= t - W:
                start += 1
            if i - start + 1 > self.limit and self._exact(t):
                self.over.append(keys[i])
                self.over_ids.add(keys[i][1])

    def settle(self, changed: Iterable[int]) -> list[Key]:
        """Recount the windows a change at each of ``changed`` reaches; the newly over."""
        newly: list[Key] = []
        for t in sorted(set(changed)):
            for i in range(bisect_left(self.times, t), bisect_left(self.times, t + W)):
                key = self.keys[i]
                if not self._exact(key[0]):
                    continue
                over = self.count_at(i) > self.limit
                if over and key[1] not in self.over_ids:
                    self.over.insert(bisect_left(self.over, key), key)
                    self.over_ids.add(key[1])
                    newly.append(key)
                elif not over and key[1] in self.over_ids:
                    self._not_over(key)
        return sorted(k for k in newly if k[1] in self.over_ids)

    def burst(self, key: Key, flag_of: Callable[[Key], str | None]) -> tuple[str | None, list[Key]]:
        """The alert id of ``key``'s burst (``None`` if not alerted) and its transactions
        walked: all of them when it has no alert, those up to the marked one when it has."""
        over = self.over
        pos = bisect_left(over, key)
        members = [key]
        for step in (-1, 1):
            i, previous = pos + step, key[0]
            while 0 <= i < len(over) and abs(previous - over[i][0]) < W:
                member = over[i]
                members.append(member)
                found = flag_of(member)
                if found is not None:
                    return found, members
                previous, i = member[0], i + step
        members.sort()
        return None, members

    def _exact(self, t: int) -> bool:
        return self.exact_from is None or t >= self.exact_from

    def _not_over(self, key: Key) -> None:
        if key[1] in self.over_ids:
            self.over_ids.discard(key[1])
            i = bisect_left(self.over, key)
            if i < len(self.over) and self.over[i] == key:
                del self.over[i]


_RULES = (
    (FRAUD_VELOCITY, VELOCITY_MAX_TRANSACTIONS, False),
    (FRAUD_CARD_TESTING, CARD_TESTING_DECLINES - 1, True),
)


class UserWindows:
    """One user's transactions and alerted bursts; events added one by one.

    ``known``: every known event of the user's transactions (any order, repeats ignored);
    ``marks``: the marks persisted by earlier events (:class:`Marked`); ``span``: the
    event-time range ``known`` was read for (``None``: everything).
    """

    def __init__(
        self,
        user_id: str,
        known: Iterable[TxEvent] = (),
        marks: Iterable[Marked] = (),
        span: tuple[int, int] | None = None,
    ) -> None:
        self.user_id = user_id
        self._span = span
        exact_from = None if span is None else span[0] + W
        self._windows = [_Window(r, limit, d, exact_from) for r, limit, d in _RULES]
        self._events: dict[str, dict[str, TxEvent]] = {}  # transaction id -> event id -> event
        self._winners: dict[str, TxEvent] = {}  # transaction id -> its latest event
        self._by_id: dict[str, TxEvent] = {}  # event id -> the events placed in the windows
        self._flags: dict[str, dict[str, str]] = {r: {} for r, _, _ in _RULES}
        self._marked: set[tuple[str, str]] = set()  # (rule, event id) marked where it stands
        for event in known:
            events = self._events.setdefault(event.transaction_id, {})
            events.setdefault(event.event_id, event)
        for transaction_id, events in self._events.items():
            winner = max(events.values(), key=_order)
            self._winners[transaction_id] = winner
            if self._inside(winner):
                self._by_id[winner.event_id] = winner
                for window in self._windows:
                    if window.counts(winner):
                        window.insert(winner.key)
        for mark in marks:
            if mark.rule in self._flags:
                self._flags[mark.rule].setdefault(mark.transaction_id, mark.alert_id)
                self._marked.add((mark.rule, mark.event_id))
        for window in self._windows:
            window.start()

    def add(self, event: TxEvent) -> WindowOutcome:
        """Add one event: the alerts it raises and the transactions it marks."""
        outcome = WindowOutcome([], [])
        events = self._events.setdefault(event.transaction_id, {})
        if event.event_id in events:
            return outcome  # known already: a repeat changes nothing
        events[event.event_id] = event
        before = self._winners.get(event.transaction_id)
        if before is not None and before.order >= event.order:
            return outcome  # an earlier event of a known transaction: it stays where it is
        self._winners[event.transaction_id] = event
        if before is not None:
            self._by_id.pop(before.event_id, None)
        if self._inside(event):
            self._by_id[event.event_id] = event
        for window in self._windows:
            changed = []
            if before is not None and window.counts(before) and self._inside(before):
                window.remove(before.key)
                changed.append(before.occurred_at_ms)
            if window.counts(event) and self._inside(event):
                window.insert(event.key)
                changed.append(event.occurred_at_ms)
            for key in window.settle(changed):
                self._resolve(window, key, event, outcome)
        return outcome

    def _resolve(self, window: _Window, key: Key, cause: TxEvent, outcome: WindowOutcome) -> None:
        """A transaction just went over the limit: alert its burst unless it was."""
        flags = self._flags[window.rule]

        def flag_of(k: Key) -> str | None:
            return flags.get(self._by_id[k[1]].transaction_id)

        alert_id = flag_of(key)
        members = [key]
        if alert_id is None:
            alert_id, members = window.burst(key, flag_of)
        if alert_id is None:
            first = self._by_id[members[0][1]]
            alert = _window_alert(window, first, self.user_id, cause)
            outcome.alerts.append(alert)
            alert_id = alert.alert_id
        for member in members:
            event = self._by_id[member[1]]
            flags.setdefault(event.transaction_id, alert_id)
            if (window.rule, event.event_id) not in self._marked:
                self._marked.add((window.rule, event.event_id))
                outcome.marks.append(Mark(window.rule, event, flags[event.transaction_id]))

    def _inside(self, event: TxEvent) -> bool:
        span = self._span
        return span is None or span[0] <= event.occurred_at_ms <= span[1]


def _order(event: TxEvent) -> tuple[int, int, str]:
    return event.order


def _window_alert(window: _Window, first: TxEvent, user_id: str, cause: TxEvent) -> Alert:
    count = window.count_of(first.key)
    details = {
        "user_id": user_id,
        "transaction_id": first.transaction_id,
        "amount": first.amount,
        "currency": first.currency,
        "status": first.status,
        "window_start": iso_from_epoch_millis(first.occurred_at_ms - W),
        "window_end": iso_from_epoch_millis(first.occurred_at_ms),
        ("declines_in_window" if window.declines_only else "transactions_in_window"): count,
    }
    raised_by = "" if cause.event_id == first.event_id else cause.event_id
    return Alert(
        window.rule,
        FRAUD_ALERT,
        HIGH,
        first.event_id,
        user_id,
        first.occurred_at_ms,
        details,
        raised_by,
    )


def window_alerts(user_id: str, events: Iterable[TxEvent]) -> list[Alert]:
    """Every window alert of one user's events arriving in this order, from no history."""
    windows = UserWindows(user_id)
    alerts: list[Alert] = []
    for event in events:
        alerts.extend(windows.add(event).alerts)
    return alerts

"""The alert rules, as pure functions: no I/O, no clock.

Metric anomalies (``alert_type = "metric_anomaly"``):

* **static thresholds** of the seed article - ``cpu_usage`` 90, ``memory_usage`` 85,
  ``disk_usage`` 90, ``response_time`` 5000 ms, ``error_rate`` 5 %. A value *above*
  the threshold alerts; a value exactly at it does not. The rule is named after the metric.
* **spike** (``metric_spike``) against the rolling baseline of the same source and
  metric *as of the sample's time*: the last :data:`BASELINE_WINDOW` samples before this
  one by event time (ties by event id), whatever order they arrived in. It alerts when
  the value is above ``SPIKE_FACTOR`` x the mean *and* above mean + ``SPIKE_SIGMAS``
  standard deviations, once the baseline holds at least :data:`BASELINE_WARMUP` samples.
  A sample that already tripped its static threshold does not also raise a spike (one
  anomaly alert per sample: the threshold is the calibrated, more specific rule).

  The persisted baseline (:class:`Baseline`) keeps the latest :data:`BASELINE_RETAINED`
  samples, more than a window, so that a sample arriving late still finds the window
  before it; it also remembers the newest sample it let go (its *horizon*). A sample so
  late that fewer than a window's samples before it are still kept, with older ones let
  go, has no known baseline: the spike rule stays silent for it rather than judge it
  against a partial one, and keeping it does not move the baseline of later samples
  (it is older than everything kept). Merging is keyed by event id: a sample added
  twice moves nothing.

Severity of a metric anomaly is the seed article's scale on the sample's value:
``critical`` for cpu/memory/error_rate above 95, else ``high`` above 90, ``medium``
above 80, ``low`` otherwise.

Fraud (``alert_type = "fraud_alert"``, severity ``high`` as in the seed article):

* ``fraud_amount``: amount above 10,000 (exactly 10,000 does not alert), once per event;
* ``fraud_velocity``: more than 5 transactions by one user within 10 minutes;
* ``fraud_card_testing``: 3 or more declined transactions by one user within 10 minutes.

**Windows, bursts and how a window alert is keyed** (:mod:`.windows` evaluates them).
The window of a transaction at event time ``t`` is ``(t - 10 min, t]``, ties at the same
millisecond ordered by event id; a transaction is *over the limit* when its window holds
more than the rule allows. A user's over-limit transactions, each less than one window
after the previous one, form a **burst**, and a burst raises **one alert**, however many
windows and events it spans. A transaction counts once: the events of one
``transaction_id`` (pending, then completed, say) resolve to the latest by event time,
then ``aggregate_version``, then event id, and the transaction stands where and as that
event says.

The alert's id is ``<rule>#<event id>`` of the burst's **first over-limit transaction**
(the one that took the user over the limit) as the history known when the burst first
appears determines it; the alert carries that transaction's event id and time.

Events are evaluated one by one in the order they arrive (the shard's order), each
against the persisted history of every event that arrived before it, as if it had come
alone: so batch boundaries, KPL aggregation and Lambda's re-deliveries change nothing,
and a late event that completes a window raises the alert itself, even when the window's
other transactions were processed long before. Every over-limit transaction of an alerted
burst is **marked** with the alert's id in the persisted history; a burst holding a marked
transaction has been alerted, so when a late event makes an earlier transaction the first
over the limit, extends the burst, or joins it to another, nothing is raised again. The one
way arrival order still shows: two bursts alerted separately, then joined by a late event,
keep their two alerts - an alert already sent cannot be taken back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

# Alert types (the ``alert_type`` message attribute) and the topic each goes to.
METRIC_ANOMALY = "metric_anomaly"
FRAUD_ALERT = "fraud_alert"

# Severities, most severe first.
CRITICAL, HIGH, MEDIUM, LOW = "critical", "high", "medium", "low"
SEVERITIES = (CRITICAL, HIGH, MEDIUM, LOW)

THRESHOLDS: Mapping[str, float] = {
    "cpu_usage": 90.0,
    "memory_usage": 85.0,
    "disk_usage": 90.0,
    "response_time": 5000.0,  # milliseconds
    "error_rate": 5.0,  # percent
}
CRITICAL_METRICS = frozenset({"cpu_usage", "memory_usage", "error_rate"})

METRIC_SPIKE = "metric_spike"
SPIKE_FACTOR = 2.5
SPIKE_SIGMAS = 5.0
BASELINE_WINDOW = 20  # samples a spike is judged against
BASELINE_WARMUP = 10  # samples needed before the spike rule speaks
BASELINE_RETAINED = 2 * BASELINE_WINDOW  # samples kept per source and metric

FRAUD_AMOUNT_RULE = "fraud_amount"
FRAUD_VELOCITY = "fraud_velocity"
FRAUD_CARD_TESTING = "fraud_card_testing"
FRAUD_AMOUNT = Decimal(10_000)
FRAUD_WINDOW_MS = 10 * 60_000
VELOCITY_MAX_TRANSACTIONS = 5  # more than this many in the window alerts
CARD_TESTING_DECLINES = 3  # this many declines in the window alerts
DECLINED = "declined"

RULES: tuple[str, ...] = (
    *THRESHOLDS,
    METRIC_SPIKE,
    FRAUD_AMOUNT_RULE,
    FRAUD_VELOCITY,
    FRAUD_CARD_TESTING,
)
WINDOW_RULES: tuple[str, ...] = (FRAUD_VELOCITY, FRAUD_CARD_TESTING)


@dataclass(frozen=True, slots=True)
class Alert:
    """One rule tripped: by one event, or by one burst of a user's transactions."""

    rule: str
    alert_type: str
    severity: str
    event_id: str  # the event the alert is about (a burst's first over-limit transaction)
    subject: str  # the metric source, or the user id
    occurred_at_ms: int
    details: Mapping[str, Any] = field(default_factory=dict)
    raised_by: str = ""  # the event whose arrival raised it, when not ``event_id``

    @property
    def alert_id(self) -> str:
        """The idempotency key: one alert per rule and event (per burst, for windows)."""
        return f"{self.rule}#{self.event_id}"

    @property
    def raised_by_event(self) -> str:
        return self.raised_by or self.event_id


class MetricSample(NamedTuple):
    event_id: str
    source: str
    metric_name: str
    value: float
    occurred_at_ms: int

    @property
    def series(self) -> tuple[str, str]:
        return (self.source, self.metric_name)

    @property
    def order(self) -> tuple[int, str]:
        return (self.occurred_at_ms, self.event_id)


class Transaction(NamedTuple):
    event_id: str
    user_id: str
    transaction_id: str
    amount: Decimal
    currency: str
    status: str
    occurred_at_ms: int
    aggregate_version: int = 0  # 0 when the event carries none


# --- metrics -------------------------------------------------------------------------


def anomaly_severity(metric_name: str, value: float) -> str:
    """The seed article's severity scale."""
    if metric_name in CRITICAL_METRICS and value > 95:
        return CRITICAL
    if value > 90:
        return HIGH
    if value > 80:
        return MEDIUM
    return LOW


def exceeds_threshold(metric_name: str, value: float) -> bool:
    threshold = THRESHOLDS.get(metric_name)
    return threshold is not None and value > threshold


_SQUARES_SAFE = 1e150  # below this magnitude, squares of differences cannot overflow


def mean_and_stddev(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation; finite for any finite values, 0 for none."""
    n = len(values)
    if not n:
        return 0.0, 0.0
    scale = max(abs(v) for v in values)
    if scale < _SQUARES_SAFE:
        mean = sum(values) / n
        return mean, math.sqrt(sum((x - mean) ** 2 for x in values) / n)
    # Huge values: work on values / scale (each within [-1, 1]), so nothing overflows.
    scaled = [v / scale for v in values]
    mean = sum(scaled) / n
    spread = math.sqrt(sum((x - mean) ** 2 for x in scaled) / n)
    return mean * scale, spread * scale


def is_spike(history: Sequence[float], value: float) -> bool:
    """``value`` is a spike against the samples before it (oldest first)."""
    window = history[-BASELINE_WINDOW:]
    if len(window) < BASELINE_WARMUP or not math.isfinite(value):
        return False
    mean, stddev = mean_and_stddev(window)
    return value > SPIKE_FACTOR * mean and value > mean + SPIKE_SIGMAS * stddev


BaselineSample = tuple[int, str, float]  # (event time ms, event id, value)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The latest samples of one source and metric, oldest first: ``(ms, event_id, value)``.

    ``horizon`` is the ``(ms, event id)`` of the newest sample let go to keep at most
    :data:`BASELINE_RETAINED`; ``None`` while none was. Merging is keyed by event id, so
    adding a sample twice does not move the baseline.
    """

    samples: tuple[BaselineSample, ...] = ()
    horizon: tuple[int, str] | None = None

    def values_before(self, order: tuple[int, str]) -> list[float] | None:
        """The last :data:`BASELINE_WINDOW` values strictly before ``order`` (event time,
        event id), oldest first; ``None`` when that window is no longer known (fewer are
        kept before ``order`` and older samples were let go)."""
        before = [v for ms, eid, v in self.samples if (ms, eid) < order]
        if len(before) < BASELINE_WINDOW and self.horizon is not None:
            return None
        return before[-BASELINE_WINDOW:]

    def merged(self, samples: Iterable[MetricSample]) -> Baseline:
        """This baseline with ``samples`` added (non-finite values are not), keeping the
        latest :data:`BASELINE_RETAINED`; ``self`` when that changes nothing."""
        known = {eid for _, eid, _ in self.samples}
        added = {
            s.event_id: (s.occurred_at_ms, s.event_id, float(s.value))
            for s in samples
            if s.event_id not in known and math.isfinite(s.value)
        }
        if not added:
            return self
        everything = sorted([*self.samples, *added.values()])
        kept = tuple(everything[-BASELINE_RETAINED:])
        horizon = self.horizon
        dropped = everything[: len(everything) - len(kept)]
        if dropped:
            newest = (dropped[-1][0], dropped[-1][1])
            horizon = newest if horizon is None else max(horizon, newest)
        if kept == self.samples and horizon == self.horizon:
            return self  # only samples older than everything kept: let go at once
        return Baseline(kept, horizon)

    def without(self, event_ids: Iterable[str]) -> Baseline:
        """This baseline without the samples of ``event_ids`` (what it was before them)."""
        gone = set(event_ids)
        if not gone or not any(eid in gone for _, eid, _ in self.samples):
            return self
        return Baseline(tuple(s for s in self.samples if s[1] not in gone), self.horizon)

    @property
    def mean(self) -> float:
        return mean_and_stddev([v for _, _, v in self.samples])[0]

    @property
    def stddev(self) -> float:
        return mean_and_stddev([v for _, _, v in self.samples])[1]


def metric_alerts(sample: MetricSample, history: Sequence[float] | None) -> list[Alert]:
    """The anomaly alerts of one sample, given the values before it (oldest first);
    ``history`` is ``None`` when the baseline as of the sample is not known."""
    name, value = sample.metric_name, sample.value
    if exceeds_threshold(name, value):
        rule, details = name, {"threshold": THRESHOLDS[name]}
    elif history is not None and is_spike(history, value):
        window = history[-BASELINE_WINDOW:]
        mean = mean_and_stddev(window)[0]
        rule, details = METRIC_SPIKE, {"baseline_mean": round(mean, 6), "samples": len(window)}
    else:
        return []
    return [
        Alert(
            rule,
            METRIC_ANOMALY,
            anomaly_severity(name, value),
            sample.event_id,
            sample.source,
            sample.occurred_at_ms,
            {"metric_name": name, "value": value, "source": sample.source, **details},
        )
    ]


# --- transactions ----------------------------------------------------------------------


def transaction_alerts(tx: Transaction) -> list[Alert]:
    """The alerts of one transaction event on its own: the amount rule.

    The window rules (velocity, card testing) are a user's, not an event's:
    :mod:`.windows`.
    """
    if not (tx.amount.is_finite() and tx.amount > FRAUD_AMOUNT):
        return []
    details = {
        "user_id": tx.user_id,
        "transaction_id": tx.transaction_id,
        "amount": str(tx.amount),
        "currency": tx.currency,
        "status": tx.status,
    }
    return [
        Alert(
            FRAUD_AMOUNT_RULE,
            FRAUD_ALERT,
            HIGH,
            tx.event_id,
            tx.user_id,
            tx.occurred_at_ms,
            details,
        )
    ]

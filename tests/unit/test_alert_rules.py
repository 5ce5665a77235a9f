"""The alert rules at their edges, and on a simulated workload, without any I/O."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from pipelines.consumers.alerts.rules import (
    BASELINE_RETAINED,
    BASELINE_WARMUP,
    CRITICAL,
    FRAUD_ALERT,
    HIGH,
    LOW,
    MEDIUM,
    METRIC_ANOMALY,
    METRIC_SPIKE,
    RULES,
    THRESHOLDS,
    Baseline,
    MetricSample,
    Transaction,
    anomaly_severity,
    is_spike,
    mean_and_stddev,
    metric_alerts,
    transaction_alerts,
)
from pipelines.consumers.alerts.windows import tx_event, window_alerts
from pipelines_local import simulator

T0 = 1_793_000_000_000  # epoch ms


def sample(name: str, value: float, n: int = 0, source: str = "web-01") -> MetricSample:
    return MetricSample(f"m-{n:04d}", source, name, value, T0 + n * 60_000)


def tx(amount: str, *, n: int = 0, status: str = "completed") -> Transaction:
    return Transaction(f"t-{n:04d}", "user-1", f"txn-{n}", Decimal(amount), "USD", status, T0)


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_a_value_exactly_at_the_threshold_raises_nothing(name: str) -> None:
    assert metric_alerts(sample(name, THRESHOLDS[name]), []) == []


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
def test_a_value_just_above_the_threshold_raises_the_metrics_rule(name: str) -> None:
    (alert,) = metric_alerts(sample(name, THRESHOLDS[name] + 0.001), [])
    assert (alert.rule, alert.alert_type) == (name, METRIC_ANOMALY)
    assert alert.alert_id == f"{name}#m-0000"


@pytest.mark.parametrize(
    ("name", "value", "severity"),
    [
        ("cpu_usage", 95.0, HIGH),
        ("cpu_usage", 95.01, CRITICAL),
        ("memory_usage", 90.0, MEDIUM),
        ("memory_usage", 90.5, HIGH),
        ("disk_usage", 99.0, HIGH),  # not among the seed's critical metrics
        ("error_rate", 80.0, LOW),
        ("error_rate", 96.0, CRITICAL),
        ("response_time", 5200.0, HIGH),
        ("anything", 80.01, MEDIUM),
    ],
)
def test_severity_follows_the_seed_articles_scale(name: str, value: float, severity: str) -> None:
    assert anomaly_severity(name, value) == severity


def test_the_spike_rule_waits_for_the_warm_up() -> None:
    assert not is_spike([10.0] * (BASELINE_WARMUP - 1), 1000.0)
    assert is_spike([10.0] * BASELINE_WARMUP, 1000.0)


def test_a_spike_must_clear_both_the_factor_and_the_sigmas() -> None:
    flat = [10.0] * 20
    assert not is_spike(flat, 25.0)  # exactly 2.5x the mean
    assert is_spike(flat, 25.001)
    noisy = [5.0, 15.0] * 10  # mean 10, sigma 5: mean + 5 sigma = 35
    assert not is_spike(noisy, 35.0)
    assert is_spike(noisy, 35.001)


def test_the_baseline_keeps_the_latest_samples_and_ignores_repeated_ones() -> None:
    baseline = Baseline().merged(sample("cpu_usage", float(i), i) for i in range(50))
    assert len(baseline.samples) == BASELINE_RETAINED
    assert baseline.samples[0][2] == 10.0
    assert baseline.horizon == (T0 + 9 * 60_000, "m-0009")
    assert baseline.merged([sample("cpu_usage", 49.0, 49)]) is baseline
    assert baseline.merged([sample("cpu_usage", 3.0, 3)]) is baseline  # let go already
    assert baseline.values_before((T0 + 45 * 60_000, "m-0045")) == [float(i) for i in range(25, 45)]


def test_a_spike_is_judged_against_the_window_before_it_by_event_time() -> None:
    quiet = [sample("response_time", 10.0, n) for n in range(0, 40, 2)]  # even minutes
    spike = sample("response_time", 60.0, 39)
    later = [sample("response_time", 10.0, n) for n in range(41, 45)]
    in_order = Baseline().merged(quiet)
    arrived_after = in_order.merged(later)  # the spike arrives after later samples
    assert in_order.values_before(spike.order) == arrived_after.values_before(spike.order)
    (alert,) = metric_alerts(spike, arrived_after.values_before(spike.order))
    assert alert.rule == METRIC_SPIKE
    with_spike = arrived_after.merged([spike])
    assert with_spike.values_before(later[0].order) == [*[10.0] * 19, 60.0]
    assert with_spike.values_before(later[-1].order)[-4:] == [60.0, 10.0, 10.0, 10.0]


def test_a_sample_older_than_every_kept_one_has_no_baseline_and_moves_nothing() -> None:
    baseline = Baseline().merged(sample("cpu_usage", 10.0, n) for n in range(100, 150))
    ancient = sample("cpu_usage", 80.0, 5)
    assert baseline.values_before(ancient.order) is None
    assert metric_alerts(ancient, None) == []  # no spike judged on a partial window
    assert baseline.merged([ancient]) is baseline


def test_a_baseline_of_huge_values_stays_finite_and_never_raises() -> None:
    huge = [1e308, -1e308, 1.5e308] * 7
    mean, stddev = mean_and_stddev(huge)
    assert math.isfinite(mean) and math.isfinite(stddev)
    assert not is_spike(huge, 1.7e308)
    assert is_spike([1e200] * 12, 1e203)
    baseline = Baseline().merged(sample("cpu_usage", v, n) for n, v in enumerate(huge))
    assert math.isfinite(baseline.mean) and math.isfinite(baseline.stddev)
    assert Baseline().merged([sample("cpu_usage", math.nan)]) == Baseline()


def test_a_spike_below_the_threshold_is_a_metric_spike() -> None:
    (alert,) = metric_alerts(sample("cpu_usage", 60.0), [10.0] * 12)
    assert (alert.rule, alert.severity) == (METRIC_SPIKE, LOW)


def test_an_over_threshold_sample_raises_the_threshold_rule_only() -> None:
    alerts = metric_alerts(sample("cpu_usage", 97.0), [10.0] * 12)
    assert [(a.rule, a.severity) for a in alerts] == [("cpu_usage", CRITICAL)]


def test_an_amount_of_exactly_ten_thousand_raises_nothing() -> None:
    assert transaction_alerts(tx("10000.00")) == []
    (alert,) = transaction_alerts(tx("10000.01"))
    assert (alert.rule, alert.alert_type, alert.severity) == ("fraud_amount", FRAUD_ALERT, HIGH)
    assert transaction_alerts(tx("NaN")) == []


def test_rules_raise_exactly_the_simulators_injected_cases() -> None:
    """Every injected case once, with its rule, and nothing on normal traffic."""
    workload = simulator.simulate(3000, seed=1)
    raised: dict[str, list[str]] = {rule: [] for rule in RULES}
    baselines: dict[tuple[str, str], Baseline] = {}
    by_user: dict[str, list[Transaction]] = {}
    for event in workload.events:
        meta = event["metadata"]
        ms = round(meta["occurred_at"].timestamp() * 1000)
        if meta["event_type"] == "MetricRecorded":
            s = MetricSample(
                meta["event_id"], event["source"], event["metric_name"], event["value"], ms
            )
            baseline = baselines.get(s.series, Baseline())
            for alert in metric_alerts(s, baseline.values_before(s.order)):
                raised[alert.rule].append(alert.event_id)
            baselines[s.series] = baseline.merged([s])
        elif meta["event_type"] == "TransactionRecorded":
            t = Transaction(
                meta["event_id"],
                event["user_id"],
                event["transaction_id"],
                event["amount"],
                event["currency"],
                event["status"],
                ms,
            )
            by_user.setdefault(t.user_id, []).append(t)
            for alert in transaction_alerts(t):
                raised[alert.rule].append(alert.event_id)
    for user, txs in by_user.items():
        for alert in window_alerts(user, [tx_event(t) for t in txs]):
            raised[alert.rule].append(alert.event_id)
    assert {r: sorted(ids) for r, ids in raised.items()} == {
        r: sorted(ids) for r, ids in workload.injected.items()
    }
    assert all(workload.injected[rule] for rule in ("fraud_velocity", "fraud_card_testing"))

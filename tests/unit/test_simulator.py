"""The workload simulator: shape, determinism, and the injected alert cases."""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import pytest

from pipelines.contract.codec import decode_event, encode_event
from pipelines_local.simulator import Workload, simulate

EVENT_TYPES = {
    "UserRegistered",
    "UserProfileUpdated",
    "UserActivityRecorded",
    "TransactionRecorded",
    "ImageLabeled",
    "MetricRecorded",
}
USER_TYPES = EVENT_TYPES - {"ImageLabeled", "MetricRecorded"}

# The alert rules, written out again here so that the test does not trust the module.
LIMITS = {
    "cpu_usage": 90,
    "memory_usage": 85,
    "disk_usage": 90,
    "response_time": 5000,
    "error_rate": 5,
}
WINDOW = timedelta(minutes=10)


@cache
def workload(n: int, seed: int) -> Workload:
    return simulate(n, seed)


def tripped(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Event ids that a straightforward alerter raises, per rule, in stream order."""
    trips: dict[str, list[str]] = defaultdict(list)
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    history: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for event in events:
        meta = event["metadata"]
        event_id, at = meta["event_id"], meta["occurred_at"]
        if meta["event_type"] == "MetricRecorded":
            name, value = event["metric_name"], event["value"]
            if value > LIMITS[name]:
                trips[name].append(event_id)
            window = series[(event["source"], name)][-20:]
            if len(window) >= 10:
                mean, sd = statistics.fmean(window), statistics.pstdev(window)
                if value > 2.5 * mean and value > mean + 5 * sd:
                    trips["metric_spike"].append(event_id)
            series[(event["source"], name)].append(value)
        elif meta["event_type"] == "TransactionRecorded":
            if event["amount"] > 10_000:
                trips["fraud_amount"].append(event_id)
            past = history[event["user_id"]]
            past.append((at, event["status"]))
            recent = [status for t, status in past if at - t <= WINDOW]
            if len(recent) > 5:
                trips["fraud_velocity"].append(event_id)
            if event["status"] == "declined" and recent.count("declined") >= 3:
                trips["fraud_card_testing"].append(event_id)
    return trips


def test_exact_count_and_every_type() -> None:
    for n in (0, 1, 6, 50, 999, 5000):
        events = simulate(n, 11).events
        assert len(events) == n
        if n >= 6:
            assert {e["metadata"]["event_type"] for e in events} == EVENT_TYPES


def test_mix_is_roughly_as_designed() -> None:
    counts = Counter(e["metadata"]["event_type"] for e in workload(5000, 1).events)
    assert counts["UserActivityRecorded"] == counts["MetricRecorded"] == 1250
    assert counts["TransactionRecorded"] == 1000
    assert counts["UserRegistered"] == counts["UserProfileUpdated"] == counts["ImageLabeled"] == 500


def test_deterministic_per_seed_and_start() -> None:
    assert simulate(2000, 3) == simulate(2000, 3)
    assert simulate(2000, 3).events != simulate(2000, 4).events
    start = datetime(2027, 3, 1, 12, tzinfo=UTC)
    moved = simulate(500, 3, start=start).events
    assert all(e["metadata"]["occurred_at"] >= start for e in moved)
    assert simulate(500, 3).events[0]["metadata"]["occurred_at"] >= datetime(
        2026, 11, 1, tzinfo=UTC
    )


def test_deterministic_across_processes() -> None:
    """String hashing is randomised per process; the workload must not depend on it."""
    script = (
        "import hashlib; from pipelines_local.simulator import simulate; "
        "print(hashlib.sha256(repr(simulate(3000, 5)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for hash_seed in (1, 2)
    }
    assert digests == {hashlib.sha256(repr(simulate(3000, 5)).encode()).hexdigest()}


def test_every_event_fits_its_schema() -> None:
    for event in workload(5000, 1).events:
        decoded = decode_event(encode_event(event))
        assert str(decoded.metadata["event_id"]) == event["metadata"]["event_id"]


def test_metadata() -> None:
    events = workload(5000, 1).events
    ids = [e["metadata"]["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 for i in ids)
    assert {e["metadata"]["producer"] for e in events} == {"simulator"}
    assert all(e["metadata"]["occurred_at"].utcoffset() == timedelta(0) for e in events)


def test_event_time_spans_several_days_and_is_ordered_per_aggregate() -> None:
    events = workload(5000, 1).events
    times = [e["metadata"]["occurred_at"] for e in events]
    assert max(times) - min(times) > timedelta(days=1)
    assert len({t.date() for t in times}) >= 3
    last: dict[str, datetime] = {}
    for event in events:
        meta = event["metadata"]
        assert meta["occurred_at"] >= last.get(meta["aggregate_id"], meta["occurred_at"])
        last[meta["aggregate_id"]] = meta["occurred_at"]


def test_users_register_first_and_versions_increase() -> None:
    versions: dict[str, list[int]] = defaultdict(list)
    for event in workload(5000, 1).events:
        meta = event["metadata"]
        if meta["event_type"] not in USER_TYPES:
            assert meta["aggregate_version"] is None
            continue
        user = event["user_id"]
        if meta["event_type"] == "UserRegistered":
            assert user not in versions
        else:
            assert versions[user], f"{meta['event_type']} before {user} registered"
        if meta["event_type"] in ("UserRegistered", "UserProfileUpdated"):
            versions[user].append(meta["aggregate_version"])
        else:
            assert meta["aggregate_version"] is None
    assert versions
    for seq in versions.values():
        assert seq == list(range(1, len(seq) + 1))
    assert any(len(seq) > 2 for seq in versions.values())


def test_bodies_look_real() -> None:
    events = workload(5000, 1).events
    sessions: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        kind = event["metadata"]["event_type"]
        if kind == "ImageLabeled":
            assert event["bucket"] == "uploads"
            assert event["key"].startswith("uploads/user-") and event["key"].endswith(".jpg")
            assert 1 <= len(event["labels"]) <= 5
            assert all(50 <= label["confidence"] <= 100 for label in event["labels"])
        elif kind == "TransactionRecorded":
            amount = event["amount"]
            assert isinstance(amount, Decimal) and amount > 0
            assert amount == amount.quantize(Decimal("0.01"))
            assert event["status"] in {"pending", "completed", "declined", "refunded"}
        elif kind == "UserProfileUpdated":
            changed = [f for f in ("name", "email", "phone", "preferences") if event[f] is not None]
            assert 1 <= len(changed) <= 3
        elif kind == "UserActivityRecorded":
            sessions[event["session_id"]].append(event)
    for activities in sessions.values():
        assert activities[0]["activity_type"] == "login"
        assert activities[0]["session_duration_ms"] == 0
        durations = [a["session_duration_ms"] for a in activities]
        assert durations == sorted(durations)
        assert len({a["metadata"]["correlation_id"] for a in activities}) == 1
    kinds = Counter(e["activity_type"] for s in sessions.values() for e in s)
    assert set(kinds) == {"login", "page_view", "add_to_cart", "purchase", "logout"}


@pytest.mark.parametrize("seed", [1, 2, 7])
def test_injected_cases_trip_their_rules_and_nothing_else_does(seed: int) -> None:
    work = workload(5000, seed)
    trips = tripped(work.events)
    by_id = {e["metadata"]["event_id"]: e for e in work.events}
    for rule in (*LIMITS, "fraud_amount"):
        assert work.injected[rule], rule
        assert trips[rule] == work.injected[rule], rule

    spikes = work.injected["metric_spike"]
    assert spikes
    over = {i for rule in LIMITS for i in work.injected[rule]}
    assert set(spikes) <= set(trips["metric_spike"])
    assert set(trips["metric_spike"]) - set(spikes) <= over
    for event_id in spikes:
        event = by_id[event_id]
        assert event["value"] < LIMITS[event["metric_name"]]

    # Bursts: the first tripping transaction of each burst is the injected one.
    for rule in ("fraud_velocity", "fraud_card_testing"):
        assert work.injected[rule], rule
        first: dict[str, str] = {}
        for event_id in trips[rule]:
            correlation = by_id[event_id]["metadata"]["correlation_id"]
            assert correlation is not None, f"{rule} tripped outside a burst"
            first.setdefault(correlation, event_id)
        assert sorted(first.values()) == sorted(work.injected[rule])


def test_injected_counts_grow_with_the_workload() -> None:
    small = {rule: len(ids) for rule, ids in workload(5000, 1).injected.items()}
    big = {rule: len(ids) for rule, ids in simulate(20_000, 1).injected.items()}
    assert all(big[rule] >= small[rule] >= 1 for rule in small)
    assert not any(simulate(50, 1).injected.values())

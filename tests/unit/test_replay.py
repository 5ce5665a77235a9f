"""Replay's selection, pacing and state, without any AWS (pipelines_local.replay)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines_local.cli import main
from pipelines_local.replay import (
    EVENT,
    Pacer,
    ReplayError,
    ReplayRecord,
    ReplayStore,
    Selection,
    day_prefixes,
    hour_in_range,
    new_replay_id,
    parse_time,
)

T0 = datetime(2026, 12, 4, 13, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-04", datetime(2026, 12, 4, tzinfo=UTC)),
        ("2026-12-04T13:30", datetime(2026, 12, 4, 13, 30, tzinfo=UTC)),
        ("2026-12-04T13:30:00Z", datetime(2026, 12, 4, 13, 30, tzinfo=UTC)),
        ("2026-12-04T14:30:00+01:00", datetime(2026, 12, 4, 13, 30, tzinfo=UTC)),
    ],
)
def test_times_are_iso_8601_and_utc_unless_they_say(text: str, expected: datetime) -> None:
    assert parse_time(text, "--since") == expected


def test_an_unparseable_time_is_a_clear_error() -> None:
    with pytest.raises(ReplayError, match=r"--since 'yesterday-ish' is not a time.*ISO 8601"):
        parse_time("yesterday-ish", "--since")


def test_a_range_that_ends_before_it_starts_is_a_clear_error() -> None:
    with pytest.raises(ReplayError, match="is not before --until"):
        Selection(since=T0, until=T0 - timedelta(hours=1))
    with pytest.raises(ReplayError, match="is not before --until"):
        Selection(since=T0, until=T0)


def test_a_bad_range_on_the_command_line_exits_2_before_reading_anything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))  # no workspace: nothing to read
    code = main(["replay", "--since", "2026-12-04T14:00", "--until", "2026-12-04T13:00"])
    assert code == 2
    assert "is not before --until" in capsys.readouterr().err


def test_an_arrival_range_reads_only_the_days_and_hours_it_covers() -> None:
    since, until = T0 + timedelta(minutes=30), T0 + timedelta(days=1, hours=2)
    assert day_prefixes("events", since, until) == [
        "events/dt=2026-12-04/",
        "events/dt=2026-12-05/",
    ]
    assert day_prefixes("events", None, until) == ["events/"]
    hours = [T0 + timedelta(hours=h) for h in range(-2, 30)]
    kept = [h for h in hours if hour_in_range(h, since, until)]
    assert kept[0] == T0  # 13:00 holds 13:30
    assert kept[-1] == T0 + timedelta(days=1, hours=1)  # 14:00 the next day; 15:00 is out
    assert len(kept) == 11 + 15


def test_an_event_time_range_reads_the_hours_its_events_can_have_arrived_in() -> None:
    selection = Selection(since=T0, until=T0 + timedelta(hours=1), by=EVENT)
    assert selection.arrival_bounds() == (T0 - timedelta(hours=1), T0 + timedelta(days=1, hours=1))


def test_a_rate_is_held_by_a_token_bucket() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(rate=100, max_bytes_per_second=1e9, clock=lambda: now[0], sleep=sleep)
    for _ in range(200):
        pacer.wait(10, 1000)
    assert now[0] == pytest.approx(20.0)


def test_the_shards_bytes_per_second_bound_every_pace() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(rate=1e6, max_bytes_per_second=1024 * 1024, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        pacer.wait(100, 1024 * 1024)
    assert now[0] == pytest.approx(10.0)


def test_a_speedup_follows_the_original_arrival_times() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    pacer = Pacer(speedup=60, max_bytes_per_second=1e9, clock=lambda: now[0], sleep=sleep)
    for minute in range(11):  # ten minutes of arrivals at 60x: ten seconds
        pacer.wait(1, 100, T0 + timedelta(minutes=minute))
    assert now[0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0}, "--rate must be above 0"),
        ({"speedup": -1}, "--speedup must be above 0"),
        ({"rate": 5, "speedup": 2}, "not both"),
    ],
)
def test_a_pace_that_cannot_be_kept_is_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ReplayError, match=message):
        Pacer(max_bytes_per_second=1.0, **kwargs)


def test_a_replay_record_keeps_its_state_and_checkpoint(tmp_path: Path) -> None:
    store = ReplayStore(tmp_path / "replays")
    selection = Selection(since=T0, event_types=("UserRegistered",))
    record = ReplayRecord(new_replay_id(), "stream", selection.to_dict(), rate=50.0)
    record.checkpoint = ("events/dt=2026-12-04/hour=13/shardId-0-1.avro", 7)
    store.save(record)

    loaded = store.load(record.replay_id)
    assert loaded == record
    assert Selection.from_dict(loaded.selection) == selection
    assert [r.replay_id for r in store.all()] == [record.replay_id]
    with pytest.raises(ReplayError, match="no replay rp-missing"):
        store.load("rp-missing")
    with pytest.raises(ReplayError, match="is not a replay id"):
        store.load("../etc")

"""``pipeline simulate`` puts a reproducible workload on a workspace's stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipelines_local.simulator import default_start, simulate
from tests.stack import DeployedStack

pytestmark = pytest.mark.integration


def test_simulate_produces_the_seeded_workload_to_the_workspace_stream(
    deployed: DeployedStack,
) -> None:
    workspace = deployed.workspace
    env = {**os.environ, "PIPELINE_STATE_DIR": str(workspace.state_dir)}
    command = [sys.executable, "-m", "pipelines_local.cli", "simulate", "--events", "800",
               "--seed", "3", "--workspace", workspace.name, "--json"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stream"] == workspace.stream_name
    assert sum(summary["produced"].values()) == 800
    assert len(summary["produced"]) == 6
    assert sum(summary["shards"].values()) == 800
    assert set(summary["shards"]) == {"shardId-000000000000", "shardId-000000000001"}


def test_simulate_into_a_workspace_that_is_not_deployed_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PIPELINE_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "pipelines_local.cli", "simulate", "--events", "10",
               "--workspace", "nope"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert "workspace 'nope' is not deployed" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulate_to_a_stream_that_does_not_exist_is_one_clear_line(
    deployed: DeployedStack,
) -> None:
    workspace = deployed.workspace
    env = {**os.environ, "PIPELINE_STATE_DIR": str(workspace.state_dir)}
    command = [sys.executable, "-m", "pipelines_local.cli", "simulate", "--events", "10",
               "--workspace", workspace.name, "--stream", "nope"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"pipeline simulate: no stream 'nope' at {workspace.endpoint_url}; workspace "
        f"{workspace.name!r} streams to {workspace.stream_name!r}"
    ]


def test_the_readme_path_simulate_run_query_gives_the_daily_analytics_rows(
    deployed: DeployedStack,
) -> None:
    """`pipeline simulate`, `pipeline run --until-drained`, then the named daily analytics:
    the simulated days are inside its seven, so every activity event is counted."""
    workspace = deployed.workspace
    env = {**os.environ, "PIPELINE_STATE_DIR": str(workspace.state_dir)}
    cli = [sys.executable, "-m", "pipelines_local.cli"]
    produced = subprocess.run(
        [*cli, "simulate", "--events", "600", "--seed", "23", "--workspace", workspace.name],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert produced.returncode == 0, produced.stderr
    assert "event time " in produced.stdout
    ran = subprocess.run(
        [*cli, "run", "--workspace", workspace.name, "--until-drained", "--max-seconds", "300"],
        capture_output=True, text=True, timeout=400, env=env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "drained after" in ran.stdout
    query = subprocess.run(
        [*cli, "query", "--named", "daily_analytics", "--workspace", workspace.name,
         "--format", "json"],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    rows = json.loads(query.stdout)
    start = default_start()
    activity = Counter(
        e["metadata"]["occurred_at"].strftime("%Y-%m-%d")
        for e in simulate(600, 23, start=start).events
        if e["metadata"]["event_type"] == "UserActivityRecorded"
    )
    by_date = {row["date"]: row["total_events"] for row in rows}
    assert activity and set(activity) <= set(by_date), (activity, by_date)
    assert all(by_date[day] >= n for day, n in activity.items())

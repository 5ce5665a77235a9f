"""``pipeline simulate`` puts a reproducible workload on a workspace's stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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

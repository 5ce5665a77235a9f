"""``pipeline simulate`` puts a reproducible workload on a workspace's stream."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from pipelines_local.emulator import EmulatorProcess

pytestmark = pytest.mark.integration


def test_simulate_produces_the_seeded_workload_to_the_stream(
    emulator: EmulatorProcess, aws_client: Any
) -> None:
    kinesis = aws_client("kinesis")
    kinesis.create_stream(StreamName="pipelines-simcli-events", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="pipelines-simcli-events")
    command = [sys.executable, "-m", "pipelines_local.cli", "simulate", "--events", "800",
               "--seed", "3", "--workspace", "simcli", "--endpoint", emulator.endpoint_url, "--json"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["stream"] == "pipelines-simcli-events"
    assert sum(summary["produced"].values()) == 800
    assert len(summary["produced"]) == 6
    assert sum(summary["shards"].values()) == 800
    assert set(summary["shards"]) == {"shardId-000000000000", "shardId-000000000001"}

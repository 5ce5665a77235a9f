"""``pipeline replay`` against the deployed pipeline: a replayed hour changes nothing.

A workload goes through the session workspace's stream and the functions Terraform
deployed (in the local runtime) until it drains; then what every sink holds is read: every
item of every DynamoDB table (read models, alerts and their state), every lake table's
``count(*)`` and ``count(DISTINCT event_id)``, every archive object. ``pipeline replay`` is
then run as a user runs it: a preview, which writes nothing; the workload's arrival range
replayed onto the stream and drained; the same replayed again. Each time every sink holds
exactly what it held.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelines.stream.producer import Producer
from pipelines_local.simulator import SPAN, simulate
from tests.stack import DeployedStack

pytestmark = pytest.mark.integration

RUN_SECONDS = 240
EVENTS = 300


@dataclass
class Sinks:
    tables: dict[str, list[dict[str, Any]]]
    lake: dict[str, tuple[int, int]]  # table -> (rows, distinct event ids)
    archive: dict[str, str]  # key -> ETag


def _sinks(deployed: DeployedStack) -> Sinks:
    workspace = deployed.workspace
    dynamodb = deployed.client("dynamodb")
    tables = {}
    for projection in sorted(workspace.output("table_names")):
        name = workspace.table(projection)
        items = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            items.extend(page["Items"])
        tables[projection] = sorted(items, key=lambda i: json.dumps(i, sort_keys=True))
    lake = {}
    catalog = workspace.lake_catalog()
    for event_type in catalog.tables.event_types:
        table = catalog.table(event_type, refresh=True)
        ids = (
            table.scan(selected_fields=("event_id",)).to_arrow().column("event_id").to_pylist()
            if table.current_snapshot() is not None
            else []
        )
        lake[event_type] = (len(ids), len(set(ids)))
    s3 = deployed.client("s3")
    archive = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=workspace.bucket("archive")):
        archive.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return Sinks(tables, lake, archive)


def _pipeline(deployed: DeployedStack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIPELINE_STATE_DIR": str(deployed.workspace.state_dir)}
    return subprocess.run(
        [sys.executable, "-m", "pipelines_local.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@dataclass
class Drained:
    before: Sinks
    since: str
    until: str
    produced: Counter[str]


@pytest.fixture(scope="module")
def drained(deployed: DeployedStack) -> Any:
    workspace = deployed.workspace
    now = datetime.now(UTC).replace(microsecond=0)
    events = simulate(EVENTS, seed=41, start=now - SPAN - timedelta(hours=1)).events
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in workspace.env().items():
            monkeypatch.setenv(name, value)
        runtime = workspace.runtime()
        runtime.run(until_drained=True, max_seconds=RUN_SECONDS)  # whatever came before
        since = datetime.now(UTC) - timedelta(seconds=1)
        Producer(deployed.client("kinesis"), workspace.stream_name).put_events(events)
        until = datetime.now(UTC) + timedelta(seconds=1)
        result = runtime.run(until_drained=True, max_seconds=RUN_SECONDS)
        assert result.drained

        def drain() -> dict[str, int]:
            """Records each mapping settled in a run until drained (only the busy ones)."""
            before = {p.mapping.label: p.stats.records_succeeded for p in runtime.pollers}
            run = runtime.run(until_drained=True, max_seconds=RUN_SECONDS)  # counts accumulate
            assert run.drained
            settled = {k: m.records_succeeded - before.get(k, 0) for k, m in run.mappings.items()}
            return {k: n for k, n in settled.items() if n}

        yield (
            Drained(
                before=_sinks(deployed),
                since=since.isoformat(),
                until=until.isoformat(),
                produced=Counter(e["metadata"]["event_type"] for e in events),
            ),
            drain,
        )


def _replay(deployed: DeployedStack, state: Drained, *extra: str) -> dict[str, Any]:
    args = ("replay", "--workspace", deployed.workspace.name, "--since", state.since)
    completed = _pipeline(deployed, *args, "--until", state.until, "--json", *extra)
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def test_a_preview_counts_the_workload_and_writes_nothing(
    deployed: DeployedStack, drained: Any
) -> None:
    state, drain = drained

    preview = _replay(deployed, state)

    assert preview["execute"] is False
    assert preview["events"] == EVENTS
    assert preview["by_type"] == dict(sorted(state.produced.items()))
    assert preview["objects"] > 0 and preview["estimated_seconds"] >= 0
    assert drain() == {}  # nothing was put on the stream
    assert _sinks(deployed) == state.before


def test_replaying_the_workload_onto_the_stream_twice_changes_no_sink(
    deployed: DeployedStack, drained: Any
) -> None:
    state, drain = drained
    for _ in range(2):
        done = _replay(deployed, state, "--execute")

        assert done["state"] == "completed"
        assert done["replayed_events"] == done["planned_events"] == EVENTS
        assert drain()
        after = _sinks(deployed)
        assert after.archive == state.before.archive  # replayed events are not archived again
        assert after.lake == state.before.lake
        assert all(rows == distinct for rows, distinct in after.lake.values())
        assert after.tables == state.before.tables  # read models and alerts alike

    status = _pipeline(
        deployed,
        "replay",
        "status",
        done["replay_id"],
        "--workspace",
        deployed.workspace.name,
        "--json",
    )
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["state"] == "completed"


def test_a_selection_matching_nothing_says_so_and_exits_0(deployed: DeployedStack) -> None:
    completed = _pipeline(
        deployed,
        "replay",
        "--workspace",
        deployed.workspace.name,
        "--since",
        "2025-01-01",
        "--until",
        "2025-01-02",
        "--execute",
    )
    assert completed.returncode == 0, completed.stderr
    assert "nothing to replay" in completed.stdout


def test_an_unparseable_time_is_a_clear_error(deployed: DeployedStack) -> None:
    completed = _pipeline(
        deployed, "replay", "--workspace", deployed.workspace.name, "--since", "last tuesday"
    )
    assert completed.returncode == 2
    assert "is not a time" in completed.stderr

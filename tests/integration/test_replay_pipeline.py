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
    users: list[str]  # the workload's registered user ids


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
                users=sorted(
                    e["metadata"]["aggregate_id"]
                    for e in events
                    if e["metadata"]["event_type"] == "UserRegistered"
                ),
            ),
            drain,
        )


def _replay(deployed: DeployedStack, state: Drained, *extra: str) -> dict[str, Any]:
    args = ("replay", "--workspace", deployed.workspace.name, "--since", state.since)
    completed = _pipeline(deployed, *args, "--until", state.until, "--json", *extra)
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


@pytest.mark.needs("local_runtime")
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


@pytest.mark.needs("local_runtime")
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


def _rebuild(deployed: DeployedStack) -> dict[str, Any]:
    completed = _pipeline(
        deployed,
        "replay",
        "--workspace",
        deployed.workspace.name,
        "--target",
        "projections",
        "--execute",
        "--json",
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


def _tables(deployed: DeployedStack) -> set[str]:
    names: set[str] = set()
    for page in deployed.client("dynamodb").get_paginator("list_tables").paginate():
        names.update(page["TableNames"])
    return names


@pytest.mark.needs("local_runtime")
def test_a_rebuild_of_the_projections_finds_the_item_changed_behind_its_back(
    deployed: DeployedStack, drained: Any
) -> None:
    state, drain = drained
    dynamodb = deployed.client("dynamodb")
    users = deployed.workspace.table("users")
    victim = {"user_id": {"S": state.users[0]}}
    original = dynamodb.get_item(TableName=users, Key=victim, ConsistentRead=True)["Item"]
    dynamodb.update_item(
        TableName=users,
        Key=victim,
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "name"},
        ExpressionAttributeValues={":v": {"S": "Mallory"}},
    )
    try:
        done = _rebuild(deployed)
    finally:
        dynamodb.put_item(TableName=users, Item=original)

    assert done["state"] == "completed" and done["target"] == "projections"
    assert done["result"]["cut"] == "the projector's checkpoints"
    assert done["result"]["events_applied"] >= EVENTS
    shadow = done["rebuild"]["shadow"]
    assert set(shadow) == {
        "users",
        "user_activities",
        "system_metrics",
        "transactions",
        "image_analysis",
    }
    assert all(t == f"{done['rebuild']['live'][p]}-{done['replay_id']}" for p, t in shadow.items())
    assert set(shadow.values()) <= _tables(deployed)
    table = done["result"]["tables"]["users"]
    assert table["differing"] >= 1
    (found,) = [d for d in table["sample"] if d["key"] == victim]
    assert found["kind"] == "differs" and found["attribute"] == "name"
    assert found["live"] == {"S": "Mallory"} and found["shadow"] == original["name"]
    # Every other user of the workload was rebuilt as the live projector built it.
    workload = {json.dumps({"user_id": {"S": u}}) for u in state.users[1:]}
    assert not [d for d in table["sample"] if json.dumps(d["key"]) in workload]
    # No stream, no side effects: nothing was put, no live sink changed.
    assert drain() == {}
    assert _sinks(deployed) == state.before

    discarded = _pipeline(
        deployed, "replay", "discard", done["replay_id"], "--workspace", deployed.workspace.name
    )
    assert discarded.returncode == 0, discarded.stderr
    assert not set(shadow.values()) & _tables(deployed)


@pytest.mark.needs("local_runtime")
def test_promoting_a_rebuild_puts_the_projector_on_its_tables(
    deployed: DeployedStack, drained: Any
) -> None:
    del drained  # the workload is in, and drained
    workspace = deployed.workspace
    lam = deployed.client("lambda")
    function = workspace.function("projector")
    before = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
    record = (workspace.state_dir / "workspaces" / f"{workspace.name}.json").read_text()
    tfvars = workspace.state_dir / "projections" / f"{workspace.name}.tfvars.json"
    done = _rebuild(deployed)
    shadow = done["rebuild"]["shadow"]
    try:
        assert done["result"]["tables"]["users"]["differing"] == 0
        promoted = _pipeline(
            deployed, "replay", "promote", done["replay_id"], "--workspace", workspace.name
        )
        assert promoted.returncode == 0, promoted.stderr

        now = lam.get_function_configuration(FunctionName=function)["Environment"]["Variables"]
        assert {p: now[f"{p.upper()}_TABLE"] for p in shadow} == shadow
        assert {k: v for k, v in now.items() if not k.endswith("_TABLE")} == {
            k: v for k, v in before.items() if not k.endswith("_TABLE")
        }
        assert json.loads(tfvars.read_text()) == {"projection_tables": shadow}
        reloaded = type(workspace).load(workspace.name, workspace.state_dir)
        assert reloaded.table("users") == shadow["users"]
        # The promoted tables are live: they are not discarded.
        refused = _pipeline(
            deployed, "replay", "discard", done["replay_id"], "--workspace", workspace.name
        )
        assert refused.returncode == 2 and "live tables" in refused.stderr
    finally:
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": before})
        lam.get_waiter("function_updated_v2").wait(FunctionName=function)
        tfvars.unlink(missing_ok=True)
        (workspace.state_dir / "workspaces" / f"{workspace.name}.json").write_text(record)
        dynamodb = deployed.client("dynamodb")
        for table in shadow.values():
            dynamodb.delete_table(TableName=table)


def test_a_rebuild_refuses_a_partial_selection(deployed: DeployedStack) -> None:
    completed = _pipeline(
        deployed,
        "replay",
        "--workspace",
        deployed.workspace.name,
        "--target",
        "projections",
        "--event-type",
        "UserRegistered",
    )
    assert completed.returncode == 2
    assert "whole archive" in completed.stderr


@pytest.mark.needs("glue", "local_runtime")
def test_a_lake_rebuild_appends_nothing_the_lake_holds(
    deployed: DeployedStack, drained: Any
) -> None:
    state, _ = drained
    args = ("--target", "lake", "--table", "transaction_recorded", "--execute")
    for _ in range(2):
        done = _replay(deployed, state, *args)

        assert done["state"] == "completed"
        assert done["replayed_events"] == state.produced["TransactionRecorded"]
        assert done["result"]["appended"] == 0
        assert done["result"]["already_held"] == state.produced["TransactionRecorded"]
    assert _sinks(deployed).lake == state.before.lake

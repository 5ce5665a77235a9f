"""``pipeline demo`` as a newcomer runs it: one command, the whole story, a summary.

It runs beside the session's deployed workspace, on the same embedded emulator, started in
the background as soon as that workspace is up (tests/session_stack.py): its own workspace
(``local``) goes up, runs and goes down, and must leave nothing of itself behind
while the session's workspace stays as it was. That is also the test of two workspaces side
by side and of ``pipeline down``.
"""

from __future__ import annotations

import json

import pytest

from pipelines_local.workspace import Workspace, WorkspaceError
from tests.session_stack import DEMO_ARGS, SessionStack
from tests.stack import DeployedStack, resources_named

pytestmark = pytest.mark.e2e

DEMO_EVENTS = int(DEMO_ARGS[DEMO_ARGS.index("--events") + 1])


@pytest.mark.needs("embedded_emulator")
def test_demo_accounts_for_every_event_and_leaves_nothing_of_its_workspace(
    deployed: DeployedStack, session_stack: SessionStack
) -> None:
    state_dir = deployed.workspace.state_dir
    result = session_stack.demo()  # started in the background once the session's stack was up
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert sum(report["produced"].values()) == DEMO_EVENTS
    assert len(report["produced"]) == 6
    assert report["on_stream"] == report["produced"]
    for key in ("projected", "duplicates_skipped", "quarantined", "dead_lettered"):
        assert isinstance(report[key], dict), key
    # Every event produced is accounted for, per type: projected or quarantined.
    for event_type, produced in report["produced"].items():
        accounted = report["projected"].get(event_type, 0) + report["quarantined"].get(
            event_type, 0
        )
        assert accounted == produced, event_type
    assert report["dead_lettered"] == {}
    # Every anomaly and fraud case the simulator injected raised exactly its alert.
    assert report["alerts"], "no alert rules were scored"
    for rule, score in report["alerts"].items():
        assert score["caught"] == score["injected"], rule
        assert score["missed"] == 0 and score["extra"] == 0, (rule, score)
    assert report["runtime"]["drained"]
    # The lake has a dataset per event type; the archive has every record of the stream.
    assert len(report["lake"]["datasets"]) == 6
    assert report["archive"]["objects"] > 0
    archived = report["archive"]["events"] + report["archive"]["poison"]
    assert archived == sum(report["on_stream"].values())
    assert report["archive"]["poison"] == report["on_stream"].get("unknown", 0)
    # The named daily analytics query, run locally, counts every activity event once.
    daily = report["daily_analytics"]
    assert daily, "the daily analytics query returned nothing"
    assert sum(row["total_events"] for row in daily) == report["produced"]["UserActivityRecorded"]
    # The workload's hour, replayed from the archive onto the stream, changed no sink.
    replay = report["replay"]
    assert replay["state"] == "completed" and replay["drained"]
    assert replay["events"] == report["archive"]["events"]  # every archived event, poison aside
    assert replay["changed"] == [] and replay["unchanged"]
    lake_counts = replay["sinks"]["lake"].values()
    assert all(c["rows"] == c["distinct_event_ids"] for c in lake_counts)
    # The read models, rebuilt from the archive into shadow tables, equal the live ones.
    rebuild = report["rebuild"]
    assert rebuild["same"], rebuild
    assert rebuild["events"] == report["archive"]["events"]
    assert all(
        t["live_items"] == t["shadow_items"] == t["identical"] for t in rebuild["tables"].values()
    )
    assert sum(t["identical"] for t in rebuild["tables"].values()) > 0
    assert report["events_per_second"] > 0
    assert not report["kept"]

    # Torn down: nothing named for the demo's workspace is left, nor its record ...
    left = resources_named(deployed.client, report["name_prefix"])
    assert left == {kind: [] for kind in left}
    with pytest.raises(WorkspaceError):
        Workspace.load(report["workspace"], state_dir)
    # ... while the workspace beside it, and the emulator holding it, are as they were.
    kept = resources_named(deployed.client, deployed.outputs["name_prefix"])
    assert all(kept.values())
    assert deployed.workspace.stream_name in kept["streams"]
    assert Workspace.load(deployed.workspace.name, state_dir).outputs == deployed.outputs

"""``pipeline status``, ``logs`` and ``alerts`` against the deployed pipeline, as a user runs them.

Every test leaves the session's stack as it found it: drained (events put here are consumed
by the local runtime before the test ends) and without the temporary queues and
subscriptions ``pipeline alerts`` makes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from pipelines.stream.producer import Producer
from pipelines_local.simulator import simulate
from tests.stack import DeployedStack

pytestmark = pytest.mark.integration

RUN_SECONDS = 240
EVENTS = 24


def _env(deployed: DeployedStack) -> dict[str, str]:
    return {**os.environ, "PIPELINE_STATE_DIR": str(deployed.workspace.state_dir)}


def _pipeline(deployed: DeployedStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipelines_local.cli", *args],
        capture_output=True,
        text=True,
        env=_env(deployed),
        timeout=300,
        check=False,
    )


def _status(deployed: DeployedStack) -> dict[str, Any]:
    completed = _pipeline(deployed, "status", "--workspace", deployed.workspace.name, "--json")
    assert completed.returncode == 0, completed.stderr[-3000:]
    document: dict[str, Any] = json.loads(completed.stdout)
    return document


@pytest.fixture(scope="module")
def drain(deployed: DeployedStack) -> Iterator[Callable[[], None]]:
    """Run the workspace's functions in the local runtime until every mapping has caught up."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for name, value in deployed.workspace.env().items():
            monkeypatch.setenv(name, value)
        runtime = deployed.workspace.runtime()

        def run() -> None:
            result = runtime.run(until_drained=True, max_seconds=RUN_SECONDS)
            assert result.drained, result.stats

        run()  # whatever earlier tests left
        yield run
        run()  # and whatever a failed test here left


def _behind(document: dict[str, Any]) -> dict[str, int | None]:
    return {c["consumer"]: c["records_behind"] for c in document["stream"]["consumers"]}


def test_a_drained_workspace_has_every_consumer_at_the_tip(
    deployed: DeployedStack, drain: Callable[[], None]
) -> None:
    document = _status(deployed)

    assert (document["version"], document["target"]) == (1, "embedded")
    assert document["endpoint"]["answers"] is True
    assert document["stream"]["checkpoints"] == "local-runtime"
    assert set(_behind(document)) == {"alerter", "archiver", "lake-writer", "projector"}
    assert set(_behind(document).values()) == {0}
    assert {c["age_seconds"] for c in document["stream"]["consumers"]} == {0.0}
    for shard in document["stream"]["shards"]:
        assert {c["records_behind"] for c in shard["consumers"]} == {0}
        assert {c["checkpoint"] for c in shard["consumers"]} <= {shard["latest_sequence_number"]}
    assert {t["table"] for t in document["lake"]["tables"]} >= {"transaction_recorded"}
    assert "error" not in document["dead_letters"] and "error" not in document["archive"]


def test_events_put_and_not_yet_consumed_are_lag_until_the_runtime_drains_them(
    deployed: DeployedStack, drain: Callable[[], None]
) -> None:
    workspace = deployed.workspace
    events = simulate(EVENTS, seed=73, start=datetime.now(UTC).replace(microsecond=0)).events
    producer = Producer(deployed.client("kinesis"), workspace.stream_name, aggregate=False)
    try:
        producer.put_events(events)

        lagging = _status(deployed)
        text = _pipeline(deployed, "status", "--workspace", workspace.name)
    finally:
        drain()
    drained = _status(deployed)

    assert set(_behind(lagging).values()) == {EVENTS}  # one Kinesis record per event
    for consumer in lagging["stream"]["consumers"]:
        assert consumer["oldest_unprocessed_arrival"] is not None
        assert consumer["age_seconds"] > 0 and consumer["age_of"] == "oldest-unprocessed-record"
    assert text.returncode == 0, text.stderr
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    assert "behind, oldest arrived" in text.stdout
    assert set(_behind(drained).values()) == {0}


def test_the_projectors_logs_are_printed_after_a_run(
    deployed: DeployedStack, drain: Callable[[], None]
) -> None:
    name = deployed.workspace.name
    full_name = deployed.workspace.function("projector")
    events = simulate(3, seed=79, start=datetime.now(UTC).replace(microsecond=0)).events
    Producer(deployed.client("kinesis"), deployed.workspace.stream_name).put_events(events)
    drain()

    by_key = _pipeline(deployed, "logs", "projector", "--workspace", name)
    by_name = _pipeline(deployed, "logs", full_name, "--workspace", name, "--since", "1d")
    unknown = _pipeline(deployed, "logs", "nope", "--workspace", name)

    assert by_key.returncode == 0, by_key.stderr
    assert by_key.stdout.strip()
    assert json.loads(by_key.stdout.splitlines()[-1])  # the function's own JSON lines
    assert by_name.returncode == 0 and by_name.stdout.strip()
    assert unknown.returncode == 2
    assert "projector" in unknown.stderr and "lake-writer" in unknown.stderr


def _watch(deployed: DeployedStack, *args: str) -> tuple[subprocess.Popen[str], str]:
    """``pipeline alerts`` started, once it says it listens; and its queue's name."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines_local.cli",
            "alerts",
            "--workspace",
            deployed.workspace.name,
            "--json",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(deployed),
    )
    assert process.stderr is not None
    line = process.stderr.readline()
    assert "listening to" in line, line + process.stderr.read()
    return process, line.split(" through ", 1)[1].split()[0]


def _publish(deployed: DeployedStack, severity: str, rule: str) -> None:
    message = {
        "alert_id": f"{rule}#status-test",
        "alert_type": "fraud_alert",
        "rule": rule,
        "severity": severity,
        "subject": "user-status-test",
    }
    deployed.client("sns").publish(
        TopicArn=deployed.workspace.topic("fraud_alerts"),
        Message=json.dumps(message),
        MessageAttributes={
            "severity": {"DataType": "String", "StringValue": severity},
            "alert_type": {"DataType": "String", "StringValue": "fraud_alert"},
            "rule": {"DataType": "String", "StringValue": rule},
        },
    )


def _left_behind(deployed: DeployedStack, queue: str) -> list[str]:
    """The queue, and any subscription to it, if still there."""
    sqs, sns = deployed.client("sqs"), deployed.client("sns")
    found = [u for u in sqs.list_queues(QueueNamePrefix=queue).get("QueueUrls", [])]
    for arn in deployed.workspace.output("topic_arns").values():
        for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=arn):
            found += [
                s["SubscriptionArn"]
                for s in page["Subscriptions"]
                if s["Endpoint"].endswith(f":{queue}")
            ]
    return found


def test_alerts_prints_what_the_topic_delivers_at_the_severity_asked_then_cleans_up(
    deployed: DeployedStack,
) -> None:
    process, queue = _watch(deployed, "--wait", "8", "--severity", "high")
    _publish(deployed, "low", "fraud_velocity")
    _publish(deployed, "high", "fraud_amount")
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    alerts = [json.loads(line) for line in stdout.splitlines()]
    assert [(a["topic"], a["severity"], a["rule"]) for a in alerts] == [
        ("fraud_alerts", "high", "fraud_amount")
    ]
    assert alerts[0]["message"]["subject"] == "user-status-test"
    assert "subscriptions and queue removed" in stderr
    assert _left_behind(deployed, queue) == []


def test_ctrl_c_stops_following_alerts_and_removes_the_queue(deployed: DeployedStack) -> None:
    process, queue = _watch(deployed, "--follow")
    assert _left_behind(deployed, queue)  # subscribed while it listens
    _publish(deployed, "critical", "fraud_amount")

    process.send_signal(signal.SIGINT)
    _stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert _left_behind(deployed, queue) == []


def test_an_unknown_workspace_says_how_to_create_it(deployed: DeployedStack) -> None:
    completed = _pipeline(deployed, "status", "--workspace", "nope")

    assert completed.returncode == 1
    assert completed.stderr.count("\n") == 1
    assert "pipeline up --workspace nope" in completed.stderr

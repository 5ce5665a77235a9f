"""What an operator reads: the summaries of ``up``, ``run``, ``demo`` and ``simulate``, and the
progress of long work, at 80 columns and piped."""

from __future__ import annotations

import io
import json
import socket
from datetime import UTC, datetime, timedelta

import pytest

from pipelines_local.cli import main
from pipelines_local.commands.demo import summary_lines
from pipelines_local.commands.infra import up_summary
from pipelines_local.commands.run import _print_summary, short_label
from pipelines_local.demo import DemoReport
from pipelines_local.infra.stack import StackError, UpResult, check_endpoint
from pipelines_local.infra.terraform import _ResourceTracker, human_output
from pipelines_local.progress import Progress
from pipelines_local.runtime import MappingStats, RunResult
from pipelines_local.simulator import SPAN, default_start, simulate

# --- simulate: event time a newcomer's query sees --------------------------------------------


def test_the_default_start_ends_the_events_at_todays_midnight() -> None:
    now = datetime(2026, 12, 4, 15, 30, tzinfo=UTC)
    start = default_start(now)
    assert start == datetime(2026, 12, 1, tzinfo=UTC) == datetime(2026, 12, 4, tzinfo=UTC) - SPAN
    events = simulate(500, 1, start=start).events
    times = [e["metadata"]["occurred_at"] for e in events]
    assert min(times) >= start and max(times) < datetime(2026, 12, 4, tzinfo=UTC)
    # Inside the daily analytics' seven days (dt >= current_date - 7 days).
    assert min(times).date() >= (now - timedelta(days=7)).date()


def test_another_start_is_another_workload_with_ids_of_its_own() -> None:
    """Simulating tomorrow must not resend today's event ids with other times (conflicting
    duplicates); the same day resends the same events (plain duplicates)."""
    monday, tuesday = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    ids = {e["metadata"]["event_id"] for e in simulate(300, 1, start=monday).events}
    again = {e["metadata"]["event_id"] for e in simulate(300, 1, start=monday).events}
    other = {e["metadata"]["event_id"] for e in simulate(300, 1, start=tuesday).events}
    assert ids == again
    assert not ids & other


def test_simulate_refuses_a_start_that_is_not_a_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "--events", "10", "--start", "yesterday"])
    assert exited.value.code == 2
    assert "'yesterday' is not an ISO 8601 time" in capsys.readouterr().err


# --- progress -------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_piped_progress_is_plain_lines_at_start_then_every_few_seconds() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress(out, terminal=False, every=10, clock=clock) as progress:
        progress.update("deploying", 0, None)
        for done in range(1, 98):
            clock.now = done * 0.5
            progress.update("terraform apply: resources", done, 97)
        clock.now = 60
        progress.update("consuming", 2_000, 2_000)
    lines = out.getvalue().splitlines()
    assert lines[0] == "[   0s] deploying"
    assert lines[1] == "[   0s] deploying: done"
    assert lines[2] == "[   0s] terraform apply: resources: 1/97"
    # one line per ten seconds of a step, not one per update
    assert [line for line in lines if "resources:" in line and "done" not in line] == [
        "[   0s] terraform apply: resources: 1/97",
        "[  10s] terraform apply: resources: 21/97",
        "[  20s] terraform apply: resources: 41/97",
        "[  30s] terraform apply: resources: 61/97",
        "[  40s] terraform apply: resources: 81/97",
    ]
    assert lines[-2:] == ["[  60s] consuming: 2,000/2,000", "[  60s] consuming: done"]
    assert all(len(line) < 80 for line in lines)


def test_progress_on_a_terminal_draws_no_plain_lines() -> None:
    out = io.StringIO()
    with Progress(out, terminal=True) as progress:
        progress.update("producing", 10, 100)
    assert "[   0s]" not in out.getvalue()


# --- terraform's resource progress and errors -----------------------------------------------

APPLY_JSON = [
    {"@level": "info", "@message": "Terraform 1.11.4", "type": "version"},
    {
        "@level": "info",
        "@message": "Plan: 3 to add, 0 to change, 0 to destroy.",
        "type": "change_summary",
        "changes": {"add": 3, "change": 0, "import": 0, "remove": 0, "operation": "plan"},
    },
    {
        "@level": "info",
        "@message": "aws_sqs_queue.dlq: Creating...",
        "type": "apply_start",
        "hook": {"resource": {"addr": "aws_sqs_queue.dlq"}, "action": "create"},
    },
    {
        "@level": "info",
        "@message": "aws_sqs_queue.dlq: Creation complete after 0s",
        "type": "apply_complete",
        "hook": {"resource": {"addr": "aws_sqs_queue.dlq"}, "action": "create"},
    },
    {
        "@level": "error",
        "@message": "Error: creating Kinesis Stream",
        "type": "diagnostic",
        "diagnostic": {
            "severity": "error",
            "summary": "creating Kinesis Stream (pipelines-dev-events)",
            "detail": "connect: connection refused",
            "address": "aws_kinesis_stream.events",
        },
    },
]


def test_the_apply_is_followed_resource_by_resource() -> None:
    seen: list[tuple[int, int | None, str]] = []
    tracker = _ResourceTracker(lambda done, total, what: seen.append((done, total, what)))
    for message in APPLY_JSON:
        tracker.feed(json.dumps(message))
    tracker.feed("not json")
    assert seen == [(0, 3, "planned"), (0, 3, "aws_sqs_queue.dlq"), (1, 3, "aws_sqs_queue.dlq")]


def test_a_json_apply_that_fails_reads_as_terraform_would_print_it() -> None:
    text = human_output("\n".join(json.dumps(m) for m in APPLY_JSON))
    assert text.splitlines() == [
        "Error: creating Kinesis Stream (pipelines-dev-events)",
        "  with aws_kinesis_stream.events",
        "  connect: connection refused",
    ]


def test_an_endpoint_where_nothing_listens_fails_at_once_and_says_so() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StackError, match=rf"nothing answers at http://127.0.0.1:{port}: .*refused"):
        check_endpoint(f"http://127.0.0.1:{port}", timeout=2)


def test_up_without_a_listening_endpoint_is_one_clear_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["up", "--workspace", "ux", "--endpoint", "http://127.0.0.1:4566"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "pipeline up: nothing answers at http://127.0.0.1:4566: [Errno 111] Connection refused "
        "(start LocalStack: docker compose -f docker-compose.localstack.yml up -d)"
    ]


# --- up's summary ------------------------------------------------------------------------------

OUTPUTS = {
    "name_prefix": "pipelines-dev",
    "stream_name": "pipelines-dev-events",
    "function_names": {
        "alerter": "pipelines-dev-alerter",
        "archiver": "pipelines-dev-archiver",
        "lake-compactor": "pipelines-dev-lake-compactor",
        "lake-writer": "pipelines-dev-lake-writer",
        "projector": "pipelines-dev-projector",
    },
    "table_names": {
        "users": "pipelines-dev-users",
        "recent_transactions": "pipelines-dev-recent-transactions",
        "metric_baselines": "pipelines-dev-metric-baselines",
    },
    "bucket_names": {"archive": "pipelines-dev-archive-123456789012"},
    "glue_database": "pipelines_dev",
    "athena_workgroup": "pipelines-dev",
    "region": "us-east-1",
}


def test_up_says_where_what_and_the_environment_the_aws_cli_needs() -> None:
    result = UpResult(
        "http://127.0.0.1:45881",
        "us-east-1",
        "dev",
        OUTPUTS,
        emulator_pid=4242,
        started_emulator=True,
        created_workspace=True,
        seconds={"apply": 61.7},
    )
    lines = up_summary(result)
    assert all(len(line) < 80 for line in lines), lines
    text = "\n".join(lines)
    assert "workspace  dev (created)" in text
    assert "endpoint   http://127.0.0.1:45881 (embedded emulator, started, pid 4242)" in text
    assert "applied in 62 s" in text
    for export in (
        "export AWS_ENDPOINT_URL=http://127.0.0.1:45881",
        "export AWS_REGION=us-east-1",
        "export AWS_DEFAULT_REGION=us-east-1",
        "export AWS_ACCESS_KEY_ID=test",
        "export AWS_SECRET_ACCESS_KEY=test",
    ):
        assert export in text
    assert "pipelines-dev-recent-transactions" in text  # names are never cut
    assert "pipeline simulate --workspace dev" in text


# --- run's summary ---------------------------------------------------------------------------


def test_run_summary_counts_events_and_points_at_the_quarantine() -> None:
    projector = MappingStats(
        batches=3, records_succeeded=3, events_succeeded=2_001, events_quarantined=1
    )
    archiver = MappingStats(
        batches=3, records_succeeded=3, events_succeeded=2_001, events_quarantined=1
    )
    total = MappingStats()
    total.add(projector)
    total.add(archiver)
    result = RunResult(
        drained=True,
        seconds=12.34,
        stats=total,
        mappings={
            "pipelines-dev-projector <- stream/pipelines-dev-events": projector,
            "pipelines-dev-archiver <- stream/pipelines-dev-events": archiver,
        },
    )
    out = io.StringIO()
    _print_summary(result, False, out, "pipelines-dev-", "dev")
    lines = out.getvalue().splitlines()
    assert all(len(line) < 80 for line in lines), lines
    assert lines[0].split() == [
        "consumer", "records", "events", "quarantined", "errors", "dead-lettered"
    ]  # fmt: skip
    assert lines[1].split() == ["projector", "<-", "events", "3", "2,001", "1", "0", "0"]
    assert lines[3].split() == ["total", "6", "4,002", "2", "0", "0"]
    assert "drained after 12.3 s" in lines
    assert "records are Kinesis records; the producer aggregates many events into each" in lines
    assert "1 poison event(s) quarantined with their bytes by 2 consumer(s):" in lines
    assert "  pipeline quarantine list --workspace dev" in lines


def test_consumer_names_lose_the_workspace_prefix() -> None:
    label = "pipelines-dev-lake-writer <- stream/pipelines-dev-events"
    assert short_label(label, "pipelines-dev-") == "lake-writer <- events"
    sqs = "pipelines-dev-labeller <- pipelines-dev-uploads"
    assert short_label(sqs, "pipelines-dev-") == "labeller <- uploads"


# --- the demo's summary ----------------------------------------------------------------------


def demo_report() -> DemoReport:
    types = {
        "ImageLabeled": 500,
        "MetricRecorded": 1250,
        "TransactionRecorded": 1000,
        "UserActivityRecorded": 1250,
        "UserProfileUpdated": 500,
        "UserRegistered": 500,
    }
    return DemoReport(
        "local",
        "http://127.0.0.1:45881",
        "pipelines-local-events",
        "pipelines-local",
        5_000,
        1,
        produced=types,
        on_stream=types,
        shards={"shardId-000000000000": 2, "shardId-000000000001": 1},
        kinesis_records=3,
        projected=types,
        duplicates_skipped={},
        stale_skipped={"UserProfileUpdated": 3},
        quarantined={},
        dead_lettered={},
        alerts={"velocity": {"injected": 3, "caught": 3, "missed": 0, "extra": 0}},
        lake={"objects": 40, "partitions": 18, "bytes": 912_345},
        archive={"objects": 6, "partitions": 2, "bytes": 456_789, "events": 5000, "poison": 0},
        daily_analytics=[
            {
                "date": "2026-12-03",
                "total_events": 420,
                "unique_users": 133,
                "avg_session_duration_seconds": 58.623599999999996,
            }
        ],
        runtime={"stats": {"batches": 24, "retries": 0, "function_errors": 0}},
        seconds={"deploy": 61.83, "produce": 0.41, "consume": 14.02, "teardown": 9.5},
    )


def test_the_demo_summary_fits_80_columns_and_cuts_nothing() -> None:
    lines = summary_lines(demo_report())
    assert all(len(line) < 80 for line in lines), [line for line in lines if len(line) >= 80]
    text = "\n".join(lines)
    assert "…" not in text and "{" not in text  # nothing cut, no Python dict
    for name in ("UserActivityRecorded", "UserProfileUpdated", "UserRegistered"):
        assert name in text
    row = next(line for line in lines if line.startswith("UserProfileUpdated"))
    assert row.split() == ["UserProfileUpdated", "500", "500", "0", "3", "0", "0"]
    joined = " ".join(lines)
    assert "5,000 events in 3 Kinesis records, because the producer aggregates" in joined
    assert "58.62" in text and "58.6235" not in text
    assert "deploy 62 s, produce 0.4 s, consume 14 s, teardown 9.5 s" in joined


def test_the_demo_report_reads_back_from_its_json() -> None:
    report = demo_report()
    again = DemoReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert summary_lines(again)[2:] == summary_lines(report)[2:]


def test_data_sources_read_during_the_apply_are_not_counted_as_resources() -> None:
    seen: list[tuple[int, int | None, str]] = []
    tracker = _ResourceTracker(lambda done, total, what: seen.append((done, total, what)))
    policy = "data.aws_iam_policy_document.read"
    summary, complete = (
        next(m for m in APPLY_JSON if m["type"] == kind)
        for kind in ("change_summary", "apply_complete")
    )
    messages = [
        summary,
        {"type": "apply_complete", "hook": {"resource": {"addr": policy}, "action": "read"}},
        complete,
        complete,  # the same resource reported twice counts once
    ]
    for message in messages:
        tracker.feed(json.dumps(message))
    assert [done for done, _, _ in seen] == [0, 0, 1, 1]
    assert all(total == 3 for _, total, _ in seen)

"""`pipeline query` on the embedded emulator: a lake the lake writer wrote, read back."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.request import Request, urlopen

import pytest

from pipelines.consumers.lake import table_name
from pipelines.contract.codec import DecodedEvent, decode_event, encode_event
from pipelines_local import cli
from pipelines_local.query import AthenaEngine, LocalEngine, QueryError, named_query
from pipelines_local.simulator import simulate
from tests.lake import commit_events
from tests.stack import DeployedStack

pytestmark = [pytest.mark.integration, pytest.mark.needs("glue")]

BATCH = 500


def decoded(events: list[dict[str, Any]]) -> list[DecodedEvent]:
    return [decode_event(encode_event(event)) for event in events]


@pytest.fixture(scope="module")
def today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def events(today: datetime) -> list[DecodedEvent]:
    # Three days of events starting eight days ago: the last seven days cut through them.
    return decoded(simulate(2000, seed=1, start=today - timedelta(days=8)).events)


@dataclass(frozen=True)
class Lake:
    database: str
    bucket: str


@pytest.fixture(scope="module")
def lake(deployed: DeployedStack, events: list[DecodedEvent]) -> Lake:
    """A copy of the deployed lake (bucket and Glue database), committed as the lake writer
    commits, one batch of BATCH events at a time."""
    isolated = deployed.isolated("lake-writer")
    lake = Lake(isolated.database, isolated.buckets["lake"])
    catalog = deployed.workspace.lake_catalog(database=lake.database, bucket=lake.bucket)
    assert commit_events(catalog, events, batch=BATCH) > 6
    return lake


@pytest.fixture
def engine(lake: Lake, deployed: DeployedStack) -> LocalEngine:
    return LocalEngine(deployed.workspace.lake_catalog(database=lake.database, bucket=lake.bucket))


@pytest.mark.parametrize(
    "event_type",
    ["TransactionRecorded", "MetricRecorded", "UserActivityRecorded", "ImageLabeled"],
)
def test_each_event_type_is_a_table_holding_what_was_written(engine, events, event_type):
    written = [e for e in events if e.event_type == event_type]
    result = engine.execute(
        f"SELECT count(*), count(DISTINCT event_id) FROM {table_name(event_type)}"
    )
    assert result.rows == [(len(written), len({e.metadata["event_id"] for e in written}))]


def test_dt_is_a_string_partition_of_the_utc_event_date(engine, events):
    result = engine.execute(
        "SELECT dt, typeof(dt) AS type, count(*) AS n FROM transaction_recorded "
        "GROUP BY dt ORDER BY dt"
    )
    by_day: dict[str, int] = defaultdict(int)
    for event in events:
        if event.event_type == "TransactionRecorded":
            by_day[event.metadata["occurred_at"].astimezone(UTC).date().isoformat()] += 1
    assert result.rows == [(day, "VARCHAR", n) for day, n in sorted(by_day.items())]
    assert engine.execute(
        "SELECT count(*) FROM transaction_recorded WHERE dt = '" + min(by_day) + "'"
    ).rows == [(by_day[min(by_day)],)]


def test_sums_of_decimal_amounts_are_exact(engine, events):
    result = engine.execute(
        "SELECT sum(amount) FROM pipelines_qtest.transaction_recorded WHERE status = 'completed'"
    )
    expected = sum(
        e.record["amount"]
        for e in events
        if e.event_type == "TransactionRecorded" and e.record["status"] == "completed"
    )
    assert result.rows == [(expected,)]


def independent_daily_analytics(events: list[DecodedEvent], today: datetime) -> list[tuple]:
    """Events, distinct users and mean session seconds per UTC day of the last seven days."""
    cutoff = (today - timedelta(days=7)).date().isoformat()
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event.event_type != "UserActivityRecorded":
            continue
        day = event.metadata["occurred_at"].astimezone(UTC).date().isoformat()
        if day >= cutoff:
            days[day].append(event.record)
    rows = []
    for day in sorted(days, reverse=True):
        records = days[day]
        durations = [
            r["session_duration_ms"] for r in records if r["session_duration_ms"] is not None
        ]
        mean = sum(durations) / len(durations) / 1000.0 if durations else None
        rows.append((day, len(records), len({r["user_id"] for r in records}), mean))
    return rows


def test_daily_analytics_matches_an_independent_computation(engine, events, today):
    result = engine.execute(named_query("daily_analytics"))
    expected = independent_daily_analytics(events, today)
    assert result.columns == (
        "date",
        "total_events",
        "unique_users",
        "avg_session_duration_seconds",
    )
    assert len(expected) >= 2  # the window cuts through the three simulated days
    assert [row[:3] for row in result.rows] == [row[:3] for row in expected]
    assert [row[3] for row in result.rows] == pytest.approx([row[3] for row in expected])


def test_unknown_table_is_a_query_error(engine):
    with pytest.raises(QueryError, match="no_such_table"):
        engine.execute("SELECT * FROM no_such_table")


def run_cli(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> int:
    if "pipelines_local.commands.query" not in cli._COMMAND_MODULES:
        monkeypatch.setattr(
            cli, "_COMMAND_MODULES", (*cli._COMMAND_MODULES, "pipelines_local.commands.query")
        )
    return cli.main(argv)


@pytest.fixture
def cli_args(lake: Lake, deployed: DeployedStack, monkeypatch) -> list[str]:
    """The deployed workspace, as `pipeline up` recorded it; the lake copy as its database."""
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(deployed.workspace.state_dir))
    return [
        "--workspace",
        deployed.workspace.name,
        "--database",
        lake.database,
        "--bucket",
        lake.bucket,
    ]


SQL = "SELECT dt, count(*) AS n FROM metric_recorded GROUP BY dt ORDER BY dt"


def test_cli_prints_a_table_csv_and_json(cli_args, engine, monkeypatch, capsys):
    expected = engine.execute(SQL).rows

    assert run_cli(["query", SQL, *cli_args], monkeypatch) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["dt", "|", "n"]
    assert table[-1] == f"({len(expected)} rows)"

    assert run_cli(["query", SQL, "--format", "csv", *cli_args], monkeypatch) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["dt,n", *(f"{dt},{n}" for dt, n in expected)]

    assert run_cli(["query", SQL, "--format", "json", *cli_args], monkeypatch) == 0
    assert json.loads(capsys.readouterr().out) == [{"dt": dt, "n": n} for dt, n in expected]


def test_cli_runs_the_named_daily_analytics(cli_args, events, today, monkeypatch, capsys):
    argv = ["query", "--named", "daily_analytics", "--format", "json", *cli_args]
    assert run_cli(argv, monkeypatch) == 0
    records = json.loads(capsys.readouterr().out)
    expected = independent_daily_analytics(events, today)
    assert [(r["date"], r["total_events"], r["unique_users"]) for r in records] == [
        row[:3] for row in expected
    ]


def test_cli_reports_malformed_sql_without_a_traceback(cli_args, monkeypatch, capsys):
    assert run_cli(["query", "SELEC count(*) FROM metric_recorded", *cli_args], monkeypatch) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pipeline query: invalid SQL")
    assert "Traceback" not in captured.err


@pytest.mark.needs("athena", "embedded_emulator")
def test_athena_engine_pages_results_and_drops_the_header_row(deployed: DeployedStack):
    workspace = deployed.workspace
    athena = deployed.client("athena")
    column_info = [
        {"Name": "dt", "Type": "varchar"},
        {"Name": "n", "Type": "bigint"},
        {"Name": "amount", "Type": "decimal"},
    ]
    rows = [["dt", "n", "amount"], *([f"2026-11-{d:02d}", str(d), "1.50"] for d in range(1, 3))]
    body = {
        "account_id": deployed.client("sts").get_caller_identity()["Account"],
        "region": workspace.region,
        "results": [
            {
                "rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows],
                "column_info": column_info,
            }
        ],
    }
    request = Request(
        f"{deployed.endpoint_url}/moto-api/static/athena/query-results",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urlopen(request, timeout=10) as response:
        assert response.status == 201
    engine = AthenaEngine(workspace.athena_workgroup, workspace.glue_database, athena)
    result = engine.execute("SELECT dt, count(*) AS n, sum(amount) FROM transaction_recorded")
    assert result.columns == ("dt", "n", "amount")
    assert result.rows == [("2026-11-01", 1, Decimal("1.50")), ("2026-11-02", 2, Decimal("1.50"))]


def test_metadata_statements_are_answered_from_the_glue_catalog(engine, events):
    tables = engine.execute("SHOW TABLES")
    assert tables.columns == ("tab_name",)
    assert {table_name(e.event_type) for e in events} <= {row[0] for row in tables.rows}

    days = sorted({e.metadata["occurred_at"].astimezone(UTC).date().isoformat() for e in events})
    assert engine.execute("SHOW PARTITIONS transaction_recorded").rows == [
        (f"dt={day}",) for day in days
    ]
    described = {row[0]: row[1] for row in engine.execute("DESCRIBE transaction_recorded").rows}
    assert described["amount"] == "decimal(18,4)"
    assert described["# Partition Information"] == ""


def test_cli_names_unaliased_columns_and_refuses_writes(cli_args, engine, monkeypatch, capsys):
    sql = "SELECT count(*) FROM metric_recorded"
    expected = engine.execute(sql).rows[0][0]
    assert run_cli(["query", sql, "--format", "csv", *cli_args], monkeypatch) == 0
    assert capsys.readouterr().out.splitlines() == ["_col0", str(expected)]

    assert run_cli(["query", "DROP TABLE metric_recorded", *cli_args], monkeypatch) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("pipeline query: the local engine is read-only")
    assert "Traceback" not in captured.err
    assert engine.execute(sql).rows == [(expected,)]


# --- Athena on the embedded emulator runs the SQL (emulator patch athena_executes_sql) -----

# Every kind of column the lake has, grouping and ordering, the Iceberg metadata table, the
# metadata statements, and a result longer than one page of GetQueryResults.
ATHENA_QUERIES = [
    "SELECT count(*), count(DISTINCT event_id) FROM transaction_recorded",
    "SELECT dt, count(*) AS n, sum(amount) AS total FROM transaction_recorded "
    "GROUP BY dt ORDER BY dt",
    "SELECT status, min(occurred_at) AS first_at, max(amount) AS top FROM transaction_recorded "
    "GROUP BY status ORDER BY status",
    "SELECT metric_name, avg(value) AS mean, count(*) AS n FROM metric_recorded "
    "GROUP BY metric_name ORDER BY metric_name",
    "SELECT event_id, dt FROM (SELECT event_id, dt FROM metric_recorded UNION ALL "
    "SELECT event_id, dt FROM user_activity_recorded UNION ALL "
    "SELECT event_id, dt FROM transaction_recorded) ORDER BY event_id",
    "SELECT user_id, session_duration_ms FROM user_activity_recorded "
    "WHERE session_duration_ms IS NULL OR session_duration_ms > 0 ORDER BY event_id LIMIT 50",
    'SELECT record_count, file_count FROM "transaction_recorded$partitions" '
    "ORDER BY record_count, file_count",
    "SHOW TABLES",
    "SHOW PARTITIONS transaction_recorded",
    "DESCRIBE transaction_recorded",
    named_query("daily_analytics"),
]


@pytest.fixture
def athena_engine(lake: Lake, deployed: DeployedStack) -> AthenaEngine:
    workspace = deployed.workspace
    return AthenaEngine(
        workspace.athena_workgroup, lake.database, deployed.client("athena"), poll_seconds=0.1
    )


@pytest.mark.needs("athena", "embedded_emulator")
@pytest.mark.parametrize("sql", ATHENA_QUERIES, ids=range(len(ATHENA_QUERIES)))
def test_athena_on_the_emulator_gives_the_local_engines_rows(engine, athena_engine, sql):
    local = engine.execute(sql)
    athena = athena_engine.execute(sql)
    assert athena.columns == local.columns
    assert [athena.type_of(i) for i in range(len(athena.columns))] == [
        local.type_of(i) for i in range(len(local.columns))
    ]
    assert comparable(athena.rows) == comparable(local.rows)
    assert local.rows  # every test query has an answer


def comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows with doubles rounded: DuckDB sums in parallel, so the last bits of an average
    differ from one run of the same query to the next (whichever engine starts it)."""
    return [tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows]


@pytest.mark.needs("athena", "embedded_emulator")
def test_athena_pages_a_long_result_and_writes_it_where_athena_does(
    deployed: DeployedStack, lake: Lake, engine
):
    athena = deployed.client("athena")
    sql = ATHENA_QUERIES[4]
    expected = engine.execute(sql).rows
    assert len(expected) > 1000  # more than one page
    query_id = athena.start_query_execution(
        QueryString=sql,
        WorkGroup=deployed.workspace.athena_workgroup,
        QueryExecutionContext={"Database": lake.database},
    )["QueryExecutionId"]
    execution = wait_for(athena, query_id)
    assert execution["Status"]["State"] == "SUCCEEDED"
    assert execution["StatementType"] == "DML"
    location = execution["ResultConfiguration"]["OutputLocation"]
    results_bucket = deployed.workspace.bucket("athena_results")
    assert location.startswith(f"s3://{results_bucket}/")  # the workgroup's, enforced
    assert location.endswith(f"/{query_id}.csv")

    pages = list(
        athena.get_paginator("get_query_results").paginate(
            QueryExecutionId=query_id, PaginationConfig={"PageSize": 400}
        )
    )
    rows = [
        [c.get("VarCharValue") for c in r["Data"]] for p in pages for r in p["ResultSet"]["Rows"]
    ]
    assert len(pages) == -(-(len(expected) + 1) // 400)
    assert rows[0] == ["event_id", "dt"]  # the header row, on the first page only
    assert [tuple(row) for row in rows[1:]] == expected

    bucket, key = location.removeprefix("s3://").split("/", 1)
    s3 = deployed.client("s3")
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()
    lines = text.splitlines()
    assert lines[0] == '"event_id","dt"'
    assert lines[1:] == [f'"{event_id}","{dt}"' for event_id, dt in expected]
    metadata = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}.metadata")["Body"].read())
    assert [c["Name"] for c in metadata["ColumnInfo"]] == ["event_id", "dt"]


def wait_for(athena: Any, query_id: str, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        execution = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        if execution["Status"]["State"] not in ("QUEUED", "RUNNING"):
            return execution
        assert time.monotonic() < deadline, f"query {query_id} still running"
        time.sleep(0.1)


@pytest.mark.needs("athena", "embedded_emulator")
@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELEC count(*) FROM metric_recorded", "Invalid expression / Unexpected token"),
        ("SELECT * FROM no_such_table", "TABLE_NOT_FOUND: Table 'no_such_table' does not exist"),
        ("SELECT no_such_column FROM metric_recorded", "no_such_column"),
        ("DROP TABLE metric_recorded", "read-only"),
    ],
)
def test_athena_on_the_emulator_fails_bad_sql_with_the_reason(
    deployed: DeployedStack, lake: Lake, engine, sql, reason
):
    athena = deployed.client("athena")
    query_id = athena.start_query_execution(
        QueryString=sql,
        WorkGroup=deployed.workspace.athena_workgroup,
        QueryExecutionContext={"Database": lake.database},
    )["QueryExecutionId"]
    status = wait_for(athena, query_id)["Status"]
    assert status["State"] == "FAILED"
    assert reason in status["StateChangeReason"]
    with pytest.raises(athena.exceptions.InvalidRequestException, match="FAILED"):
        athena.get_query_results(QueryExecutionId=query_id)
    assert engine.execute("SELECT count(*) FROM metric_recorded").rows[0][0] > 0


@pytest.mark.needs("athena", "embedded_emulator")
def test_pipeline_query_engine_athena_prints_what_the_local_engine_does(
    cli_args, monkeypatch, capsys
):
    argv = ["query", "--named", "daily_analytics", "--format", "json", *cli_args]
    assert run_cli(argv, monkeypatch) == 0
    local = json.loads(capsys.readouterr().out)
    assert run_cli([*argv, "--engine", "athena"], monkeypatch) == 0
    assert json.loads(capsys.readouterr().out) == local

    assert (
        run_cli(["query", "SELECT * FROM nope", "--engine", "athena", *cli_args], monkeypatch) == 1
    )
    err = capsys.readouterr().err
    assert "failed: TABLE_NOT_FOUND" in err
    assert "Traceback" not in err

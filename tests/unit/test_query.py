"""Athena SQL on DuckDB: transpilation, named queries, result formats (no network)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from pipelines.contract.codec import decode_event, encode_event
from pipelines_local.query import (
    LocalEngine,
    QueryError,
    QueryResult,
    format_result,
    named_query,
    to_duckdb_sql,
)
from pipelines_local.query.named import render_template
from pipelines_local.simulator import simulate
from tests.lake import commit_events, local_lake


def run_on_duckdb(athena_sql: str, **tables: pa.Table) -> list[tuple[object, ...]]:
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone = 'UTC'")
    for name, table in tables.items():
        connection.register(name, table)
    return connection.execute(to_duckdb_sql(athena_sql, tables)).fetchall()


EVENTS = pa.table(
    {
        "user_id": ["u1", "u2", "u1", "u3"],
        "occurred_at": pa.array(
            [
                datetime(2026, 11, 1, 23, 59, tzinfo=UTC),
                datetime(2026, 11, 1, 0, 0, tzinfo=UTC),
                datetime(2026, 11, 2, 8, 30, tzinfo=UTC),
                datetime(2026, 11, 2, 9, 45, tzinfo=UTC),
            ],
            pa.timestamp("ms", tz="UTC"),
        ),
        "payload": ['{"a": "x"}', '{"a": "y"}', '{"a": "x"}', "{}"],
    }
)


def test_athena_date_function_groups_by_utc_day_on_duckdb():
    rows = run_on_duckdb(
        "SELECT DATE(occurred_at) AS day, COUNT(*) AS n FROM events GROUP BY DATE(occurred_at) "
        "ORDER BY day",
        events=EVENTS,
    )
    assert rows == [(date(2026, 11, 1), 2), (date(2026, 11, 2), 2)]


def test_date_trunc_and_approx_distinct_run_on_duckdb():
    rows = run_on_duckdb(
        "SELECT date_trunc('day', occurred_at) AS day, approx_distinct(user_id) AS users "
        "FROM events GROUP BY 1 ORDER BY 1",
        events=EVENTS,
    )
    assert [(day.date(), users) for day, users in rows] == [
        (date(2026, 11, 1), 2),
        (date(2026, 11, 2), 2),
    ]


def test_interval_arithmetic_and_date_format_run_on_duckdb():
    rows = run_on_duckdb(
        "SELECT date_format(occurred_at + INTERVAL '1' DAY, '%Y-%m-%d') AS next_day "
        "FROM events WHERE occurred_at >= TIMESTAMP '2026-11-02 00:00:00' - INTERVAL '1' HOUR "
        "ORDER BY 1",
        events=EVENTS,
    )
    assert rows == [("2026-11-02",), ("2026-11-03",), ("2026-11-03",)]


def test_json_extract_scalar_runs_on_duckdb():
    rows = run_on_duckdb(
        "SELECT json_extract_scalar(payload, '$.a') AS a, count(*) FROM events "
        "GROUP BY 1 ORDER BY 1 NULLS LAST",
        events=EVENTS,
    )
    assert rows == [("x", 2), ("y", 1), (None, 1)]


def test_lake_tables_lose_their_database_qualifier():
    sql = to_duckdb_sql(
        'SELECT count(*) FROM "pipelines_local"."transaction_recorded"', ["transaction_recorded"]
    )
    assert "pipelines_local" not in sql
    assert "transaction_recorded" in sql


@pytest.mark.parametrize(
    "sql", ["SELEC 1", "SELECT * FROM", "SELECT 1; SELECT 2", "SELECT a FROM t WHERE ("]
)
def test_malformed_sql_is_a_query_error_with_a_readable_message(sql):
    with pytest.raises(QueryError) as raised:
        to_duckdb_sql(sql)
    message = str(raised.value)
    assert "\x1b" not in message and "<Token" not in message
    assert message


def test_daily_analytics_is_rendered_like_terraform_renders_it():
    sql = named_query("daily_analytics")
    assert "${" not in sql
    assert "FROM user_activity_recorded" in sql
    assert to_duckdb_sql(sql, ["user_activity_recorded"])


def test_unknown_named_query_lists_the_known_ones():
    with pytest.raises(QueryError, match="daily_analytics"):
        named_query("weekly")


def test_template_escapes_and_missing_variables():
    assert render_template("a ${x} $${y}", {"x": "1"}) == "a 1 ${y}"
    with pytest.raises(QueryError, match="'z'"):
        render_template("${z}", {})


def test_engine_over_an_empty_lake_sees_empty_tables_with_the_glue_columns(tmp_path: Path):
    engine = LocalEngine(local_lake(tmp_path))
    result = engine.execute("SELECT * FROM metric_recorded")
    assert result.rows == []
    assert result.columns[:2] == ("event_id", "event_type")
    assert result.columns[-1] == "dt"


def test_engine_reads_a_local_lake_with_dt_as_a_string(tmp_path: Path):
    events = [decode_event(encode_event(e)) for e in simulate(300, seed=3).events]
    lake = local_lake(tmp_path)
    commit_events(lake, events, batch=100)
    engine = LocalEngine(lake)
    result = engine.execute("SELECT typeof(dt), count(*) FROM metric_recorded GROUP BY 1")
    expected = sum(1 for e in events if e.event_type == "MetricRecorded")
    assert result.rows == [("VARCHAR", expected)]


def test_engine_pushes_dt_filters_into_the_scan_and_answers_the_same(tmp_path: Path):
    events = [decode_event(encode_event(e)) for e in simulate(300, seed=3).events]
    lake = local_lake(tmp_path)
    commit_events(lake, events, batch=100)
    days = sorted({e.record["metadata"]["occurred_at"].strftime("%Y-%m-%d") for e in events})
    engine = LocalEngine(lake)
    sql = f"SELECT count(*) FROM transaction_recorded WHERE dt = '{days[0]}'"
    expected = sum(
        1
        for e in events
        if e.event_type == "TransactionRecorded"
        and e.record["metadata"]["occurred_at"].strftime("%Y-%m-%d") == days[0]
    )
    assert engine.execute(sql).rows == [(expected,)]


def test_engine_reads_an_earlier_snapshot_for_version_as_of(tmp_path: Path):
    events = [decode_event(encode_event(e)) for e in simulate(300, seed=3).events]
    lake = local_lake(tmp_path)
    commit_events(lake, events[:150], batch=150)
    first = lake.table("TransactionRecorded", refresh=True).current_snapshot()
    assert first is not None
    commit_events(lake, events[150:], batch=150, first_sequence=151)
    engine = LocalEngine(lake)
    then = engine.execute(
        f"SELECT count(*) FROM transaction_recorded FOR VERSION AS OF {first.snapshot_id}"
    )
    now = engine.execute("SELECT count(*) FROM transaction_recorded")
    assert then.rows == [(sum(1 for e in events[:150] if e.event_type == "TransactionRecorded"),)]
    assert now.rows == [(sum(1 for e in events if e.event_type == "TransactionRecorded"),)]


RESULT = QueryResult.of(
    ["date", "total", "amount", "when", "tags", "note"],
    [
        [
            "2026-11-02",
            12,
            Decimal("10.5000"),
            datetime(2026, 11, 2, 8, tzinfo=UTC),
            {"k": "v"},
            None,
        ],
        ["2026-11-01", 3, Decimal("2"), None, {}, 'a, "b"'],
    ],
)


def test_table_format_aligns_columns_and_counts_rows():
    text = format_result(RESULT, "table")
    lines = text.splitlines()
    assert lines[0].split(" | ")[0].strip() == "date"
    assert lines[2].startswith("2026-11-02 | ")
    assert "NULL" in lines[2]
    assert lines[-1] == "(2 rows)"
    assert len({line.index("|") for line in lines[:-1] if "|" in line}) == 1


def test_csv_format_is_readable_by_a_csv_reader():
    rows = list(csv.reader(io.StringIO(format_result(RESULT, "csv"))))
    assert rows[0] == ["date", "total", "amount", "when", "tags", "note"]
    assert rows[1] == ["2026-11-02", "12", "10.5000", "2026-11-02 08:00:00+00:00", '{"k": "v"}', ""]
    assert rows[2][-1] == 'a, "b"'


def test_json_format_is_an_array_of_objects():
    records = json.loads(format_result(RESULT, "json"))
    assert records[0] == {
        "date": "2026-11-02",
        "total": 12,
        "amount": 10.5,
        "when": "2026-11-02T08:00:00+00:00",
        "tags": {"k": "v"},
        "note": None,
    }
    assert records[1]["amount"] == 2


def test_unknown_format_is_a_query_error():
    with pytest.raises(QueryError):
        format_result(RESULT, "xml")

"""The local engine answers Athena's own statements as Athena does, on a lake on the local disk:
SHOW and DESCRIBE in Athena's layout, Athena's result column names, writes refused."""

from __future__ import annotations

import csv
import io
import logging
from collections import Counter
from pathlib import Path

import pytest

from pipelines.consumers.lake import LakeCatalog
from pipelines.contract.codec import DecodedEvent, decode_event, encode_event
from pipelines_local import cli
from pipelines_local.query import LocalEngine, QueryError
from pipelines_local.simulator import simulate
from pipelines_local.workspace import Workspace
from tests.lake import LAKE, commit_events, local_lake

EVENT_TABLES = [
    "image_labeled",
    "metric_recorded",
    "transaction_recorded",
    "user_activity_recorded",
    "user_profile_updated",
    "user_registered",
]
TRANSACTION_COLUMNS = [
    "event_id",
    "event_type",
    "aggregate_id",
    "aggregate_version",
    "occurred_at",
    "producer",
    "correlation_id",
    "replay_id",
    "transaction_id",
    "user_id",
    "amount",
    "currency",
    "merchant",
    "category",
    "status",
    "dt",
]


@pytest.fixture(scope="module")
def events() -> list[DecodedEvent]:
    return [decode_event(encode_event(e)) for e in simulate(300, seed=3).events]


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, events: list[DecodedEvent]) -> LakeCatalog:
    written = local_lake(tmp_path_factory.mktemp("lake"))
    commit_events(written, events, batch=100)
    return written


@pytest.fixture
def engine(lake: LakeCatalog) -> LocalEngine:
    return LocalEngine(lake)


def transactions_by_day(events: list[DecodedEvent]) -> Counter[str]:
    return Counter(
        e.metadata["occurred_at"].strftime("%Y-%m-%d")
        for e in events
        if e.event_type == "TransactionRecorded"
    )


def stored_tables(lake: LakeCatalog) -> list[str]:
    return sorted(name for _, name in lake.catalog.list_tables(LAKE))


# --- SHOW and DESCRIBE --------------------------------------------------------------------


def test_show_tables_lists_one_table_per_event_type_in_tab_name(engine):
    result = engine.execute("SHOW TABLES")

    assert result.columns == ("tab_name",)
    assert [row[0] for row in result.rows] == EVENT_TABLES


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (f"SHOW TABLES IN {LAKE}", EVENT_TABLES),
        (
            "SHOW TABLES '*recorded'",
            ["metric_recorded", "transaction_recorded", "user_activity_recorded"],
        ),
        ("SHOW TABLES 'user*|metric*'", ["metric_recorded", *EVENT_TABLES[3:]]),
        ("SHOW TABLES '.*labeled'", ["image_labeled"]),
        (f"SHOW TABLES IN `{LAKE}` 'TRANSACTION*'", ["transaction_recorded"]),
        ("SHOW TABLES 'nothing*'", []),
    ],
)
def test_show_tables_filters_by_athena_patterns(engine, sql, expected):
    assert [row[0] for row in engine.execute(sql).rows] == expected


def test_show_tables_of_another_database_says_how_to_read_it(engine):
    with pytest.raises(QueryError, match="--database other"):
        engine.execute("SHOW TABLES IN other")


@pytest.mark.parametrize("sql", ["SHOW DATABASES", "SHOW SCHEMAS", "SHOW DATABASES LIKE 'la.*'"])
def test_show_databases_lists_the_catalog_databases_in_database_name(engine, sql):
    result = engine.execute(sql)

    assert result.columns == ("database_name",)
    assert result.rows == [(LAKE,)]


@pytest.mark.parametrize(
    "sql",
    [
        "SHOW COLUMNS IN transaction_recorded",
        "SHOW COLUMNS FROM transaction_recorded",
        f"SHOW COLUMNS FROM {LAKE}.transaction_recorded",
        f"SHOW COLUMNS IN transaction_recorded IN {LAKE}",
        f"SHOW COLUMNS FROM `transaction_recorded` FROM `{LAKE}`;",
    ],
)
def test_show_columns_lists_the_column_names_in_field(engine, sql):
    result = engine.execute(sql)

    assert result.columns == ("field",)
    assert [row[0] for row in result.rows] == TRANSACTION_COLUMNS


def test_show_partitions_lists_each_day_once_and_points_at_partitions_metadata(
    engine, events, caplog
):
    with caplog.at_level(logging.WARNING):
        result = engine.execute("SHOW PARTITIONS transaction_recorded")

    assert result.columns == ("partition",)
    assert result.rows == [(f"dt={day}",) for day in sorted(transactions_by_day(events))]
    assert '"transaction_recorded$partitions"' in caplog.text


def test_partitions_metadata_table_counts_the_records_of_each_partition(engine, events):
    result = engine.execute(
        f'SELECT partition.dt AS day, record_count, file_count FROM "{LAKE}".'
        '"transaction_recorded$partitions" ORDER BY 1'
    )

    assert result.columns == ("day", "record_count", "file_count")
    assert [(day, n) for day, n, _ in result.rows] == sorted(transactions_by_day(events).items())
    assert all(files >= 1 for _, _, files in result.rows)


def test_describe_lists_columns_types_and_the_partition(engine):
    result = engine.execute("DESCRIBE transaction_recorded")

    assert result.columns == ("col_name", "data_type", "comment")
    columns = dict((name, data_type) for name, data_type, _ in result.rows[:16])
    assert list(columns) == TRANSACTION_COLUMNS
    assert columns["amount"] == "decimal(18,4)"
    assert columns["occurred_at"] == "timestamp"
    assert columns["aggregate_version"] == "bigint"
    assert result.rows[16:] == [
        ("", "", ""),
        ("# Partition Information", "", ""),
        ("# col_name", "data_type", "comment"),
        ("dt", "string", ""),
    ]


def test_describe_formatted_adds_the_location_and_properties(engine):
    rows = engine.execute(f"DESCRIBE FORMATTED {LAKE}.metric_recorded").rows

    details = {name: value for name, value, _ in rows}
    assert details["Table Type:"] == "ICEBERG"
    assert details["Location:"].endswith("/metric_recorded")
    assert ("", "write.parquet.compression-codec", "zstd") in rows


def test_show_create_table_prints_the_tables_definition_line_by_line(engine):
    result = engine.execute("SHOW CREATE TABLE transaction_recorded")

    assert result.columns == ("createtab_stmt",)
    lines = [row[0] for row in result.rows]
    assert lines[0] == f"CREATE TABLE {LAKE}.transaction_recorded ("
    assert "  `amount` decimal(18,4)," in lines
    assert "PARTITIONED BY (`dt`)" in lines
    assert "  'table_type'='iceberg'," in lines


def test_a_table_not_written_yet_is_described_as_it_will_be_and_not_created(tmp_path: Path):
    empty = local_lake(tmp_path)
    engine = LocalEngine(empty)

    assert [row[0] for row in engine.execute("SHOW COLUMNS IN transaction_recorded").rows] == (
        TRANSACTION_COLUMNS
    )
    assert engine.execute("DESCRIBE transaction_recorded").rows[-1] == ("dt", "string", "")
    assert engine.execute("SHOW PARTITIONS transaction_recorded").rows == []
    assert engine.execute('SELECT * FROM "transaction_recorded$partitions"').rows == []
    assert stored_tables(empty) == []


def test_describing_an_unknown_table_names_the_lakes_tables(engine):
    with pytest.raises(QueryError, match=r"'no_such_table' does not exist.*transaction_recorded"):
        engine.execute("DESCRIBE no_such_table")


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SHOW COLUMNS", "expected IN or FROM"),
        (f"SHOW PARTITIONS {LAKE}.", "expected a name"),
        ("SHOW TABLES IN", "expected a name"),
        ("SHOW TABLES 'a' 'b'", "unexpected 'b'"),
        ("SHOW DATABASES LIKE", "expected a quoted pattern"),
        ("SHOW TABLES 'x['", "invalid pattern"),
    ],
)
def test_malformed_show_statements_are_query_errors_naming_the_problem(engine, sql, problem):
    with pytest.raises(QueryError, match=problem):
        engine.execute(sql)


# --- result column names ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("SELECT count(*) FROM transaction_recorded", ("_col0",)),
        ("SELECT dt, count(*) FROM transaction_recorded GROUP BY dt", ("dt", "_col1")),
        (
            "SELECT count(*) AS n, max(amount), t.dt, 1 + 1 FROM transaction_recorded t GROUP BY 3",
            ("n", "_col1", "dt", "_col3"),
        ),
        (
            "SELECT * FROM (SELECT dt, approx_distinct(user_id) FROM transaction_recorded "
            "GROUP BY dt)",
            ("dt", "_col1"),
        ),
        ("WITH c AS (SELECT count(*) FROM metric_recorded) SELECT * FROM c", ("_col0",)),
        ("SELECT 1 UNION ALL SELECT 2", ("_col0",)),
        ("VALUES (1, 'a')", ("_col0", "_col1")),
        ("SELECT * FROM (VALUES (1, 'a')) AS v (k, w)", ("k", "w")),
    ],
)
def test_unnamed_result_columns_are_named_by_position(engine, sql, columns):
    assert engine.execute(sql).columns == columns


# --- statements the local engine does not run ---------------------------------------------


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DROP TABLE transaction_recorded", "DROP TABLE"),
        ("CREATE TABLE copy AS SELECT * FROM transaction_recorded", "CREATE TABLE AS SELECT"),
        ("CREATE TABLE t (a int)", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("INSERT INTO transaction_recorded SELECT * FROM transaction_recorded", "INSERT"),
        ("UPDATE transaction_recorded SET status = 'x'", "UPDATE"),
        ("DELETE FROM transaction_recorded WHERE dt < '2026-11-02'", "DELETE"),
        (
            "MERGE INTO transaction_recorded t USING metric_recorded m ON t.event_id = m.event_id "
            "WHEN MATCHED THEN DELETE",
            "MERGE",
        ),
        ("ALTER TABLE transaction_recorded ADD COLUMNS (note string)", "ALTER TABLE"),
        ("ALTER TABLE transaction_recorded DROP PARTITION (dt = '2026-11-01')", "ALTER TABLE"),
        ("OPTIMIZE transaction_recorded REWRITE DATA USING BIN_PACK", "OPTIMIZE"),
        ("VACUUM transaction_recorded", "VACUUM"),
        ("MSCK REPAIR TABLE transaction_recorded", "MSCK REPAIR"),
        ("UNLOAD (SELECT 1) TO 's3://bucket/out/' WITH (format = 'PARQUET')", "UNLOAD"),
        ("TRUNCATE TABLE transaction_recorded", "TRUNCATE TABLE"),
        ("DROP DATABASE lake", "DROP DATABASE"),
    ],
)
def test_statements_that_write_are_refused_and_change_nothing(engine, lake, sql, kind):
    before = engine.execute("SELECT count(*) FROM transaction_recorded").rows

    with pytest.raises(QueryError) as refused:
        engine.execute(sql)

    message = str(refused.value)
    assert message.startswith(f"the local engine is read-only and does not run {kind}:")
    assert "written only by the pipeline" in message
    assert any(hint in message for hint in ("--engine athena", "pipeline lake compact", "need no"))
    assert stored_tables(lake) == EVENT_TABLES
    assert engine.execute("SELECT count(*) FROM transaction_recorded").rows == before


@pytest.mark.parametrize(
    ("sql", "kind"),
    [("EXPLAIN SELECT 1", "EXPLAIN"), ("USE lake", "USE"), ("SHOW VIEWS", "SHOW VIEWS")],
)
def test_statements_the_local_engine_does_not_answer_say_where_to_run_them(engine, sql, kind):
    with pytest.raises(QueryError, match=f"does not run {kind} statements.*--engine athena"):
        engine.execute(sql)


def test_other_iceberg_metadata_tables_are_refused_by_name(engine):
    with pytest.raises(QueryError, match=r'"transaction_recorded\$files"'):
        engine.execute('SELECT * FROM "transaction_recorded$files"')


# --- what the command line prints -----------------------------------------------------------


@pytest.fixture
def workspace(lake: LakeCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A recorded workspace whose lake is the local one."""
    monkeypatch.setenv("PIPELINE_STATE_DIR", str(tmp_path))
    Workspace("qlocal", None, "us-east-1", {}, state_dir=tmp_path).save()
    monkeypatch.setattr(Workspace, "lake_catalog", lambda self, **_: lake)
    return "qlocal"


def test_cli_prints_show_tables_and_nothing_else(workspace, capsys):
    assert cli.main(["query", "SHOW TABLES", "--workspace", workspace]) == 0

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "tab_name"
    assert lines[2:-1] == EVENT_TABLES
    assert lines[-1] == "(6 rows)"
    assert captured.err == ""


def test_cli_names_count_star_col0(workspace, events, capsys):
    sql = "SELECT dt, count(*) FROM transaction_recorded GROUP BY dt ORDER BY dt"
    assert cli.main(["query", sql, "--workspace", workspace, "--format", "csv"]) == 0

    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["dt", "_col1"]
    assert rows[1:] == [[day, str(n)] for day, n in sorted(transactions_by_day(events).items())]


@pytest.mark.parametrize(
    "sql", ["DROP TABLE transaction_recorded", "CREATE TABLE t AS SELECT 1 AS a"]
)
def test_cli_refuses_writes_with_a_message_and_no_traceback(workspace, sql, capsys):
    assert cli.main(["query", sql, "--workspace", workspace]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("pipeline query: the local engine is read-only")
    assert "--engine athena" in captured.err
    assert "View" not in captured.err and "Traceback" not in captured.err


def test_cli_reports_unparseable_sql_without_a_traceback(workspace, capsys):
    assert cli.main(["query", "SELECT FROM WHERE (", "--workspace", workspace]) == 1

    captured = capsys.readouterr()
    assert captured.err.startswith("pipeline query: invalid SQL")
    assert "Traceback" not in captured.err

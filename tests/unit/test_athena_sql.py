"""The emulator's Athena (patch athena_executes_sql): values as Athena prints them, read back
by the Athena engine as the local engine returns them; the result files; the output
location a query's result goes to."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from pipelines_local.emulator.patches import athena_sql
from pipelines_local.query.columns import athena_type
from pipelines_local.query.engine import _CONVERTERS, _column_type

VALUES = [
    (True, "boolean", "true"),
    (12, "bigint", "12"),
    (58.6236, "double", "58.6236"),
    (Decimal("1.5000"), "decimal(18,4)", "1.5000"),
    (date(2026, 12, 1), "date", "2026-12-01"),
    (datetime(2026, 12, 1, 10, 0), "timestamp", "2026-12-01 10:00:00.000"),
    (
        datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
        "timestamp with time zone",
        "2026-12-01 10:00:00.123456 UTC",
    ),
    ("ada", "varchar", "ada"),
]


@pytest.mark.parametrize(("value", "kind", "text"), VALUES, ids=[v[1] for v in VALUES])
def test_values_print_as_athena_prints_them_and_read_back_equal(
    value: Any, kind: str, text: str
) -> None:
    assert athena_sql._text(value) == text
    info = athena_sql._column_info("c", kind)
    convert = _CONVERTERS.get(info["Type"], str)
    assert convert(text) == value
    assert _column_type(info) == kind


def test_nulls_arrays_and_maps_print_as_trino_prints_them() -> None:
    assert athena_sql._text(None) is None
    assert athena_sql._text(["a", None, 2]) == "[a, null, 2]"
    assert athena_sql._text({"dt": "2026-12-01"}) == "{dt=2026-12-01}"


def test_a_decimal_column_carries_its_precision_and_scale() -> None:
    info = athena_sql._column_info("amount", "decimal(38,4)")
    assert (info["Type"], info["Precision"], info["Scale"]) == ("decimal", 38, 4)


@pytest.mark.parametrize(
    ("duckdb", "athena"),
    [
        ("BIGINT", "bigint"),
        ("HUGEINT", "bigint"),
        ("DECIMAL(18,4)", "decimal(18,4)"),
        ("TIMESTAMP WITH TIME ZONE", "timestamp with time zone"),
        ("VARCHAR[]", "array"),
        ("STRUCT(dt VARCHAR)", "row"),
        ("MAP(VARCHAR, INTEGER)", "map"),
        ("SOMETHING_NEW", "varchar"),
    ],
)
def test_duckdb_types_are_named_as_athena_names_them(duckdb: str, athena: str) -> None:
    assert athena_type(duckdb) == athena


def test_the_csv_quotes_every_value_and_leaves_nulls_empty() -> None:
    columns = [athena_sql._column_info(n, "varchar") for n in ("a", "b")]
    body = athena_sql._csv(columns, [["x", None], ['say "hi"', "1"]])
    assert body.decode().splitlines() == ['"a","b"', '"x",', '"say ""hi""","1"']


def test_metadata_statements_are_tab_separated_without_a_header() -> None:
    assert athena_sql._tsv([["amount", "decimal(18,4)", ""]]) == b"amount\tdecimal(18,4)\t\n"


def workgroup(configuration: dict[str, Any]) -> Any:
    return SimpleNamespace(work_groups={"wg": SimpleNamespace(configuration=configuration)})


def execution(location: str | None) -> Any:
    return SimpleNamespace(config={"OutputLocation": location} if location else {})


def test_an_enforced_workgroup_location_wins_over_the_requests() -> None:
    backend = workgroup(
        {
            "EnforceWorkGroupConfiguration": True,
            "ResultConfiguration": {"OutputLocation": "s3://results/athena"},
        }
    )
    located = athena_sql._output_location(backend, execution("s3://mine/x/id.csv"), "wg")
    assert located == "s3://results/athena/"


def test_the_requests_location_is_used_when_the_workgroup_does_not_enforce_its_own() -> None:
    backend = workgroup({"ResultConfiguration": {"OutputLocation": "s3://results/"}})
    assert athena_sql._output_location(backend, execution("s3://mine/x/id.csv"), "wg") == (
        "s3://mine/x/"
    )
    assert athena_sql._output_location(backend, execution(None), "wg") == "s3://results/"


def test_without_any_location_there_is_none() -> None:
    assert athena_sql._output_location(workgroup({}), execution(None), "wg") is None


def test_a_missing_table_reads_as_athenas_table_not_found() -> None:
    error = RuntimeError("Catalog Error: Table with name nope does not exist!")
    assert athena_sql._reason(error) == "TABLE_NOT_FOUND: Table 'nope' does not exist"

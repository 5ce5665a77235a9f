"""A query result as text: an aligned table, CSV, or JSON (an array of objects)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pipelines_local.query.errors import QueryError
from pipelines_local.query.result import QueryResult

FORMATS = ("table", "csv", "json")
_NULL = "NULL"


def format_result(result: QueryResult, fmt: str = "table") -> str:
    """``result`` rendered as ``table``, ``csv`` or ``json``; always newline-terminated."""
    if fmt == "table":
        return format_table(result)
    if fmt == "csv":
        return format_csv(result)
    if fmt == "json":
        return format_json(result)
    raise QueryError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def format_table(result: QueryResult) -> str:
    cells = [[_text(value, _NULL) for value in row] for row in result.rows]
    numeric = [
        bool(result.rows)
        and all(_is_number(row[i]) or row[i] is None for row in result.rows)
        and any(_is_number(row[i]) for row in result.rows)
        for i in range(len(result.columns))
    ]
    widths = [
        max([len(name), *(len(row[i]) for row in cells)]) for i, name in enumerate(result.columns)
    ]

    def line(values: list[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return " | ".join(parts).rstrip()

    lines = [line(list(result.columns)), "-+-".join("-" * width for width in widths)]
    lines.extend(line(row) for row in cells)
    count = len(result.rows)
    lines.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(lines) + "\n"


def format_csv(result: QueryResult) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_text(value, "") for value in row])
    return buffer.getvalue()


def format_json(result: QueryResult) -> str:
    records = [
        {name: _json_value(value) for name, value in zip(result.columns, row, strict=True)}
        for row in result.rows
    ]
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, dict | list | tuple):
        return json.dumps(_json_value(value), ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)

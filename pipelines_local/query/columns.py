"""Result column names as Athena gives them.

Athena (Trino) names a result column after its alias or, for a bare column reference, after
the column; any other expression it leaves unnamed and reports as ``_col<position>``, the
column's 0-based position in the result: ``SELECT dt, count(*)`` gives ``dt, _col1``. DuckDB
names such expressions after their text (``count_star()``), so before the statement runs each
unnamed select item, in every ``SELECT`` of it, gets a placeholder alias; after, each result
column that still carries one is renamed to its position. A placeholder travels through
subqueries, ``*`` and set operations exactly as an unnamed column does in Trino. The columns
of a ``VALUES`` list are unnamed too, unless its alias names them (``AS t(a, b)``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

from sqlglot import exp

_PLACEHOLDER = "__athena_col_{}"
_IS_PLACEHOLDER = re.compile(r"__athena_col_\d+")
# Select items Trino names: an alias, a column (``t.c``, ``c``), ``*`` and ``t.*``, and a field
# of a row (``r.f``, named ``f``).
_NAMED = (exp.Alias, exp.Column, exp.Star, exp.Dot)


def mark_unnamed_columns(tree: exp.Expr) -> exp.Expr:
    """``tree`` with every unnamed select item, and every column of a ``VALUES`` list without
    column names, aliased to a placeholder (in place; a bare ``VALUES`` statement becomes
    ``SELECT * FROM (VALUES ...)``, the tree returned)."""
    counter = itertools.count()
    for select in tree.find_all(exp.Select):
        items = select.expressions
        for index, item in enumerate(items):
            if not isinstance(item, _NAMED):
                items[index] = exp.alias_(item, _PLACEHOLDER.format(next(counter)))
        select.set("expressions", items)
    for values in tree.find_all(exp.Values):
        alias = values.args.get("alias")
        if alias is None or not alias.columns:
            first = values.expressions[0] if values.expressions else None
            width = len(first.expressions) if isinstance(first, exp.Tuple) else 1
            columns = [exp.to_identifier(_PLACEHOLDER.format(next(counter))) for _ in range(width)]
            name = alias.this if alias is not None else exp.to_identifier("_values")
            values.set("alias", exp.TableAlias(this=name, columns=columns))
    if isinstance(tree, exp.Values):
        return exp.select("*").from_(tree)
    return tree


def athena_column_names(names: Sequence[str]) -> list[str]:
    """The result's column names with each placeholder replaced by ``_col<position>``."""
    return [
        f"_col{position}" if _IS_PLACEHOLDER.fullmatch(name) else name
        for position, name in enumerate(names)
    ]


# DuckDB's type names and Athena's (Trino's) for the same values.
_ATHENA_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "tinyint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "bigint",  # DuckDB's sum() of integers; Trino's is bigint
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "bigint",
    "FLOAT": "real",
    "DOUBLE": "double",
    "VARCHAR": "varchar",
    "BLOB": "varbinary",
    "DATE": "date",
    "TIME": "time",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval day to second",
    "UUID": "uuid",
    "JSON": "json",
}


def athena_type(duckdb_type: str) -> str:
    """The Athena type of a result column DuckDB typed ``duckdb_type``: ``DECIMAL(18,4)`` is
    ``decimal(18,4)``, ``VARCHAR[]`` is ``array``, a ``STRUCT`` is ``row``; what has no
    counterpart is ``varchar``."""
    name = duckdb_type.strip().upper()
    if name.startswith("DECIMAL"):
        return name.lower().replace(" ", "")
    if name.endswith("]"):
        return "array"
    if name.startswith("STRUCT"):
        return "row"
    if name.startswith("MAP"):
        return "map"
    return _ATHENA_TYPES.get(name, "varchar")

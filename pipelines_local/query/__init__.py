"""Athena (Trino-dialect) SQL over the lake: on DuckDB locally, on Athena in AWS.

One table per event type, named after it in snake case (``transaction_recorded``),
with the Glue table's columns and the ``dt`` partition as a string.
"""

from pipelines_local.query.engine import AthenaEngine, LocalEngine, QueryEngine, to_duckdb_sql
from pipelines_local.query.errors import QueryError
from pipelines_local.query.formatting import FORMATS, format_result
from pipelines_local.query.named import NAMED_QUERIES, named_query
from pipelines_local.query.result import QueryResult

__all__ = [
    "FORMATS",
    "NAMED_QUERIES",
    "AthenaEngine",
    "LocalEngine",
    "QueryEngine",
    "QueryError",
    "QueryResult",
    "format_result",
    "named_query",
    "to_duckdb_sql",
]

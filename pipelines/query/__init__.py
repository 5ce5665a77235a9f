"""Athena (Trino-dialect) SQL over the lake: on DuckDB locally, on Athena in AWS.

One table per event type, named after it in snake case (``transaction_recorded``),
with the Glue table's columns and the ``dt`` partition as a string.
"""

from pipelines.query.engine import AthenaEngine, LocalEngine, QueryEngine, to_duckdb_sql
from pipelines.query.errors import QueryError
from pipelines.query.formatting import FORMATS, format_result
from pipelines.query.named import NAMED_QUERIES, named_query
from pipelines.query.result import QueryResult

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

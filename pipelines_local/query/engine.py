"""Engines that run Athena (Trino-dialect) SQL over the lake.

:class:`LocalEngine` runs it on DuckDB, in process, over the same Parquet objects
Athena reads: the SQL is transpiled with sqlglot and each event type's table is
a pyarrow dataset over ``s3://<lake bucket>/<table>/dt=<yyyy-MM-dd>/*.parquet``
with ``dt`` a string, as Glue declares it. :class:`AthenaEngine` sends the SQL
unchanged to Athena, in the workspace's workgroup and Glue database.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import sqlglot
from botocore.exceptions import BotoCoreError, ClientError
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from pipelines.consumers.lake.parquet import PARTITION_COLUMN
from pipelines.consumers.lake.schema import lake_schema
from pipelines.contract.schemas import SchemaRegistry, default_registry
from pipelines_local.catalog import table_name
from pipelines_local.query.errors import QueryError
from pipelines_local.query.result import QueryResult

logger = logging.getLogger(__name__)

DIALECT = "athena"
_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.string())]), flavor="hive")


class QueryEngine(Protocol):
    def execute(self, sql: str) -> QueryResult: ...


def parse_statement(sql: str) -> exp.Expr:
    """The one statement of ``sql``, parsed as Athena SQL; a clear error if it is not SQL."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        raise QueryError(f"invalid SQL: {_parse_error_message(exc)}") from exc
    except SqlglotError as exc:
        raise QueryError(f"invalid SQL: {exc}") from exc
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def to_duckdb_sql(sql: str, lake_tables: Iterable[str] = ()) -> str:
    """Athena SQL as DuckDB SQL; lake tables lose their database qualifier."""
    return _transpile(parse_statement(sql), set(lake_tables))[0]


def _transpile(tree: exp.Expr, lake_tables: set[str]) -> tuple[str, set[str]]:
    referenced: set[str] = set()
    for table in tree.find_all(exp.Table):
        if table.name in lake_tables:
            referenced.add(table.name)
            table.set("db", None)
            table.set("catalog", None)
    try:
        return tree.sql(dialect="duckdb"), referenced
    except SqlglotError as exc:
        raise QueryError(f"cannot run this SQL locally: {exc}") from exc


def _parse_error_message(exc: ParseError) -> str:
    if not exc.errors:
        return str(exc).splitlines()[0]
    first = exc.errors[0]
    where = f" (line {first.get('line')}, column {first.get('col')})" if first.get("line") else ""
    near = (first.get("highlight") or "").strip()
    description = _TOKEN.sub(_token_text, str(first.get("description")))
    return f"{description}{where}" + (f" near {near!r}" if near else "")


_TOKEN = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: .*?>")


def _token_text(match: re.Match[str]) -> str:
    return "the end of the query" if match.group(1) == "SENTINEL" else repr(match.group(2))


class LocalEngine:
    """DuckDB over the lake bucket's Parquet objects, read through a pyarrow filesystem."""

    def __init__(
        self,
        lake_bucket: str,
        filesystem: pafs.FileSystem,
        registry: SchemaRegistry | None = None,
    ) -> None:
        self.lake_bucket = lake_bucket
        self.filesystem = filesystem
        registry = registry or default_registry()
        self.schemas: dict[str, pa.Schema] = {
            table_name(event_type): lake_schema(version.resolved).append(
                pa.field(PARTITION_COLUMN, pa.string())
            )
            for event_type, version in sorted(registry.current.items())
        }

    @property
    def tables(self) -> list[str]:
        return sorted(self.schemas)

    def execute(self, sql: str) -> QueryResult:
        duckdb_sql, referenced = _transpile(parse_statement(sql), set(self.schemas))
        logger.info("DuckDB SQL: %s", duckdb_sql)
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET TimeZone = 'UTC'")
            for name in sorted(referenced):
                connection.register(name, self.dataset(name))
            cursor = connection.execute(duckdb_sql)
            if cursor.description is None:
                return QueryResult(())
            columns = [column[0] for column in cursor.description]
            return QueryResult.of(columns, cursor.fetchall())
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        finally:
            connection.close()

    def dataset(self, table: str) -> ds.Dataset | pa.Table:
        """The table's Parquet objects as a dataset, or an empty table if it has none."""
        schema = self.schemas[table]
        prefix = f"{self.lake_bucket}/{table}"
        try:
            if self.filesystem.get_file_info(self.lake_bucket).type == pafs.FileType.NotFound:
                raise QueryError(f"lake bucket {self.lake_bucket!r} does not exist")
            infos = self.filesystem.get_file_info(
                pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
            )
        except OSError as exc:
            raise QueryError(f"cannot list s3://{prefix}/: {exc}") from exc
        paths = sorted(
            info.path
            for info in infos
            if info.type == pafs.FileType.File and info.path.endswith(".parquet")
        )
        if not paths:
            return schema.empty_table()
        return ds.dataset(
            paths,
            schema=schema,
            format="parquet",
            filesystem=self.filesystem,
            partitioning=_PARTITIONING,
            partition_base_dir=prefix,
        )


_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
_CONVERTERS: Mapping[str, Callable[[str], Any]] = {
    "boolean": lambda v: v.lower() == "true",
    "tinyint": int,
    "smallint": int,
    "integer": int,
    "bigint": int,
    "float": float,
    "real": float,
    "double": float,
    "decimal": Decimal,
}


class AthenaEngine:
    """Athena in the workspace's workgroup: start the query, poll it, page its results."""

    def __init__(
        self,
        workgroup: str,
        database: str,
        athena: Any,
        *,
        timeout_seconds: float = 300.0,
        poll_seconds: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.workgroup = workgroup
        self.database = database
        self.athena = athena
        self.timeout_seconds = timeout_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep

    def execute(self, sql: str) -> QueryResult:
        try:
            query_id = self.athena.start_query_execution(
                QueryString=sql,
                WorkGroup=self.workgroup,
                QueryExecutionContext={"Database": self.database},
            )["QueryExecutionId"]
            self._wait(query_id)
            return self._results(query_id)
        except (ClientError, BotoCoreError) as exc:
            raise QueryError(f"Athena: {exc}") from exc

    def _wait(self, query_id: str) -> None:
        deadline = time.monotonic() + self.timeout_seconds
        delay = self.poll_seconds
        while True:
            execution = self.athena.get_query_execution(QueryExecutionId=query_id)
            status = execution["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in _TERMINAL:
                reason = status.get("StateChangeReason", "no reason given")
                raise QueryError(f"query {query_id} {state.lower()}: {reason}")
            if time.monotonic() >= deadline:
                self.athena.stop_query_execution(QueryExecutionId=query_id)
                raise QueryError(
                    f"query {query_id} still {state.lower()} after {self.timeout_seconds:g} s; "
                    "stopped it"
                )
            self.sleep(delay)
            delay = min(delay * 1.5, 5.0)

    def _results(self, query_id: str) -> QueryResult:
        paginator = self.athena.get_paginator("get_query_results")
        columns: list[str] = []
        converters: list[Callable[[str], Any]] = []
        rows: list[tuple[Any, ...]] = []
        first = True
        for page in paginator.paginate(QueryExecutionId=query_id):
            result_set = page["ResultSet"]
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [column["Name"] for column in info]
                converters = [_CONVERTERS.get(column.get("Type", ""), str) for column in info]
            data = result_set.get("Rows", [])
            for index, row in enumerate(data):
                raw = [cell.get("VarCharValue") for cell in row.get("Data", [])]
                if first and index == 0 and raw == columns:
                    continue  # a SELECT's first row repeats the column names
                rows.append(
                    tuple(
                        None if value is None else convert(value)
                        for value, convert in zip(raw, converters, strict=False)
                    )
                )
            first = False
        return QueryResult(tuple(columns), rows)

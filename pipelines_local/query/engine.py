"""Engines that run Athena (Trino-dialect) SQL over the lake.

:class:`LocalEngine` runs it on DuckDB, in process, over the same Iceberg tables Athena
reads: the SQL is transpiled with sqlglot and each event type's table is a pyiceberg scan
(the table's current snapshot, the partitions the query asks for) with ``dt`` a string.
It answers Athena's metadata statements (``SHOW TABLES``, ``DESCRIBE``, ...) from the Iceberg
catalog, names result columns as Athena does, and refuses every statement that writes.
:class:`AthenaEngine` sends the SQL unchanged to Athena, in the workspace's workgroup and
Glue database.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pyarrow as pa
import sqlglot
from botocore.exceptions import BotoCoreError, ClientError
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError

from pipelines.consumers.lake.iceberg import PARTITION_COLUMN
from pipelines_local.query.columns import (
    athena_column_names,
    athena_type,
    mark_unnamed_columns,
)
from pipelines_local.query.errors import QueryError
from pipelines_local.query.metadata import LakeMetadata
from pipelines_local.query.result import QueryResult
from pipelines_local.query.statements import classify

if TYPE_CHECKING:
    from pipelines.consumers.lake import LakeCatalog

logger = logging.getLogger(__name__)

DIALECT = "athena"


class QueryEngine(Protocol):
    def execute(self, sql: str) -> QueryResult: ...


def parse_statement(sql: str) -> exp.Expr:
    """The one statement of ``sql``, parsed as Athena SQL; a clear error if it is not SQL."""
    try:
        with _commands_unannounced():
            statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except ParseError as exc:
        raise QueryError(f"invalid SQL: {_parse_error_message(exc)}") from exc
    except SqlglotError as exc:
        raise QueryError(f"invalid SQL: {exc}") from exc
    if len(statements) != 1:
        raise QueryError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


class _CommandFallback(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


@contextmanager
def _commands_unannounced() -> Iterator[None]:
    """sqlglot warns of each statement it keeps as an opaque command (``SHOW``, ``OPTIMIZE``);
    the engines tell those apart themselves, so the warning would only be noise."""
    sqlglot_logger = logging.getLogger("sqlglot")
    fallback = _CommandFallback()
    sqlglot_logger.addFilter(fallback)
    try:
        yield
    finally:
        sqlglot_logger.removeFilter(fallback)


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
    """DuckDB over pyiceberg scans of the lake's Iceberg tables; read-only.

    Each lake table the SQL names is scanned (its current snapshot, or the one a
    ``FOR TIMESTAMP AS OF`` / ``FOR VERSION AS OF`` clause picks) into Arrow and registered
    with DuckDB under its name. Conditions of the ``WHERE`` clause on the ``dt`` partition
    against constants (literals, or expressions such as ``date_format(current_date -
    INTERVAL '7' DAY, '%Y-%m-%d')``, evaluated once) are pushed into the scan, so only the
    partitions asked for are read; the SQL still applies them, so the answer is the same.
    ``"<table>$partitions"`` is the table's Iceberg partitions metadata, as on Athena.

    Metadata statements are answered by :class:`LakeMetadata`; statements that write are
    refused (:func:`~pipelines_local.query.statements.classify`).
    """

    def __init__(self, lake: LakeCatalog) -> None:
        self.lake = lake
        self.metadata = LakeMetadata(lake)
        self.event_types = self.metadata.event_types

    @property
    def tables(self) -> list[str]:
        return sorted(self.event_types)

    def execute(self, sql: str) -> QueryResult:
        tree = parse_statement(sql)
        statement = classify(tree)
        if not isinstance(statement, exp.Expr):
            return self.metadata.answer(statement)
        tree = mark_unnamed_columns(tree)
        connection = duckdb.connect(":memory:")
        try:
            connection.execute("SET TimeZone = 'UTC'")
            scans = self._scans(tree, connection)
            duckdb_sql, _ = _transpile(tree, set(self.event_types))
            logger.info("DuckDB SQL: %s", duckdb_sql)
            for name, data in scans.items():
                connection.register(name, data)
            cursor = connection.execute(duckdb_sql)
            if cursor.description is None:
                return QueryResult(())
            columns = athena_column_names([column[0] for column in cursor.description])
            types = [athena_type(str(column[1])) for column in cursor.description]
            return QueryResult.of(columns, cursor.fetchall(), types)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from exc
        finally:
            connection.close()

    def _scans(self, tree: exp.Expr, connection: Any) -> dict[str, pa.Table]:
        """Every lake table the SQL reads, as Arrow, by the name the SQL will read it under."""
        out = self._metadata_tables(tree)
        lake_tables = [t for t in tree.find_all(exp.Table) if t.name in self.event_types]
        pushed = _partition_filter(tree, lake_tables, connection)
        for index, node in enumerate(lake_tables):
            version = node.args.get("version")
            snapshot_id = None
            name = node.name
            table = node.name
            if version is not None:
                snapshot_id = self._snapshot_of(table, version, connection)
                name = f"{table}__as_of_{index}"
                node.set("version", None)
                node.set("this", exp.to_identifier(name))
            if name not in out:
                out[name] = self.scan(table, pushed, snapshot_id)
        return out

    def _metadata_tables(self, tree: exp.Expr) -> dict[str, pa.Table]:
        """The Iceberg metadata tables the SQL reads (``"transaction_recorded$partitions"``),
        renamed to names DuckDB reads them under."""
        out: dict[str, pa.Table] = {}
        for node in list(tree.find_all(exp.Table)):
            table, _, kind = node.name.partition("$")
            if not kind or table not in self.event_types:
                continue
            if kind != "partitions":
                raise QueryError(
                    f'the local engine reads "{table}$partitions" of the Iceberg metadata '
                    f'tables only; read "{node.name}" on AWS with --engine athena'
                )
            name = f"{table}__partitions"
            node.set("this", exp.to_identifier(name))
            node.set("db", None)
            node.set("catalog", None)
            if name not in out:
                out[name] = self.metadata.partitions(table)
        return out

    def scan(self, table: str, partitions: Any = None, snapshot_id: int | None = None) -> pa.Table:
        """One table's rows (of ``partitions``, at ``snapshot_id``) as Arrow."""
        from pyiceberg.exceptions import NoSuchTableError
        from pyiceberg.expressions import AlwaysTrue

        try:
            iceberg = self.lake.table(self.event_types[table])
        except NoSuchTableError:
            raise QueryError(
                f"TABLE_NOT_FOUND: Table 'awsdatacatalog.{self.lake.database}.{table}' "
                "does not exist"
            ) from None
        except Exception as exc:
            raise QueryError(f"cannot load lake table {table}: {exc}") from exc
        schema = self.lake.schema(self.event_types[table])
        if snapshot_id is None and iceberg.current_snapshot() is None:
            return schema.empty_table()
        try:
            scanned = iceberg.scan(
                row_filter=partitions if partitions is not None else AlwaysTrue(),
                snapshot_id=snapshot_id,
            ).to_arrow()
        except OSError as exc:
            raise QueryError(f"cannot read lake table {table}: {exc}") from exc
        return scanned

    def _snapshot_of(self, table: str, version: exp.Expr, connection: Any) -> int:
        iceberg = self.lake.table(self.event_types[table])
        kind = str(version.this).upper()
        value = _constant(version.expression, connection)
        if kind == "VERSION":
            snapshot_id = int(value)
            if iceberg.snapshot_by_id(snapshot_id) is None:
                raise QueryError(f"{table} has no snapshot {snapshot_id}")
            return snapshot_id
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace(" UTC", "+00:00"))
        if not isinstance(value, datetime):
            raise QueryError(f"FOR TIMESTAMP AS OF needs a timestamp, got {value!r}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        snapshot = iceberg.snapshot_as_of_timestamp(int(value.timestamp() * 1000))
        if snapshot is None:
            raise QueryError(f"{table} has no snapshot as of {value.isoformat()}")
        return int(snapshot.snapshot_id)


_COMPARISONS: Mapping[type[exp.Expr], str] = {
    exp.EQ: "eq",
    exp.GT: "gt",
    exp.GTE: "ge",
    exp.LT: "lt",
    exp.LTE: "le",
}
_MIRRORED = {"eq": "eq", "gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}


def _partition_filter(tree: exp.Expr, lake_tables: list[exp.Table], connection: Any) -> Any:
    """The pyiceberg filter of the top-level ``WHERE`` conditions on ``dt`` against constants,
    when the statement reads one lake table from one ``SELECT``; None when there are none."""
    from pyiceberg import expressions

    ie: Any = expressions  # pyiceberg's pydantic models confuse type checkers

    if len({t.name for t in lake_tables}) != 1 or not isinstance(tree, exp.Select):
        return None
    where = tree.args.get("where")
    if where is None:
        return None
    makers = {
        "eq": ie.EqualTo,
        "gt": ie.GreaterThan,
        "ge": ie.GreaterThanOrEqual,
        "lt": ie.LessThan,
        "le": ie.LessThanOrEqual,
    }
    found = []
    for condition in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        op = _COMPARISONS.get(type(condition))
        if op is not None:
            left, right = condition.this, condition.expression
            if _is_partition(right) and not _is_partition(left):
                left, right, op = right, left, _MIRRORED[op]
            if _is_partition(left) and not list(right.find_all(exp.Column)):
                value = _constant(right, connection, quiet=True)
                if isinstance(value, str):
                    found.append(makers[op](PARTITION_COLUMN, value))
        elif isinstance(condition, exp.Between) and _is_partition(condition.this):
            low = _constant(condition.args["low"], connection, quiet=True)
            high = _constant(condition.args["high"], connection, quiet=True)
            if isinstance(low, str) and isinstance(high, str):
                found.append(ie.GreaterThanOrEqual(PARTITION_COLUMN, low))
                found.append(ie.LessThanOrEqual(PARTITION_COLUMN, high))
        elif isinstance(condition, exp.In) and _is_partition(condition.this):
            values = [_constant(v, connection, quiet=True) for v in condition.expressions]
            if values and all(isinstance(v, str) for v in values):
                found.append(ie.In(PARTITION_COLUMN, values))
    if not found:
        return None
    return found[0] if len(found) == 1 else ie.And(*found)


def _is_partition(node: exp.Expr) -> bool:
    return isinstance(node, exp.Column) and node.name == PARTITION_COLUMN


def _constant(node: exp.Expr, connection: Any, *, quiet: bool = False) -> Any:
    """The value of an expression that names no column, as DuckDB computes it."""
    if list(node.find_all(exp.Column)):
        if quiet:
            return None
        raise QueryError(f"not a constant: {node.sql(dialect=DIALECT)}")
    try:
        rows = connection.execute(f"SELECT {node.sql(dialect='duckdb')}").fetchall()
    except (duckdb.Error, SqlglotError) as exc:
        if quiet:
            return None
        raise QueryError(f"cannot evaluate {node.sql(dialect=DIALECT)}: {exc}") from exc
    return rows[0][0] if rows else None


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
    "date": date.fromisoformat,
    "timestamp": datetime.fromisoformat,
    "timestamp with time zone": lambda v: datetime.fromisoformat(v.removesuffix(" UTC")).replace(
        tzinfo=UTC
    ),
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
        types: list[str] = []
        first = True
        for page in paginator.paginate(QueryExecutionId=query_id):
            result_set = page["ResultSet"]
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [column["Name"] for column in info]
                converters = [_CONVERTERS.get(column.get("Type", ""), str) for column in info]
                types = [_column_type(column) for column in info]
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
        return QueryResult(tuple(columns), rows, tuple(types))


def _column_type(column: Mapping[str, Any]) -> str:
    """A ColumnInfo's type as one name: ``decimal`` with its precision and scale."""
    name = str(column.get("Type", "varchar"))
    if name == "decimal" and "Precision" in column:
        return f"decimal({column['Precision']},{column.get('Scale', 0)})"
    return name

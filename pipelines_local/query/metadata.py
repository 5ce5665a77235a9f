"""Athena's metadata statements answered from the lake's Iceberg catalog, in Athena's layout.

Each answer has the columns Athena's (Hive-derived) DDL engine gives it: ``tab_name`` for
``SHOW TABLES``, ``database_name`` for ``SHOW DATABASES``, ``field`` for ``SHOW COLUMNS``,
``partition`` for ``SHOW PARTITIONS``, ``createtab_stmt`` for ``SHOW CREATE TABLE`` and
``col_name, data_type, comment`` for ``DESCRIBE``. Column types are the Glue (Hive DDL) names
Athena prints (``bigint``, ``timestamp``, ``decimal(18,4)``).

The lake's database holds one table per event type; a table the lake writer has not created
yet is answered as the writer will create it (its columns, identity partition on ``dt``,
location and properties), as queries read it as empty. Nothing here creates a table.

Partitions come from the current snapshot's manifests, as Iceberg's ``$partitions``
metadata table does: Athena itself refuses ``SHOW PARTITIONS`` on Iceberg tables and answers
``SELECT * FROM "t$partitions"`` instead, which the local engine runs too (:meth:`partitions`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.consumers.lake import hive_type_of, table_name
from pipelines.consumers.lake.iceberg import PARTITION_COLUMN
from pipelines_local.query.errors import QueryError
from pipelines_local.query.result import QueryResult
from pipelines_local.query.statements import (
    DescribeTable,
    MetadataStatement,
    ShowColumns,
    ShowCreateTable,
    ShowDatabases,
    ShowPartitions,
    ShowTables,
)

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from pipelines.consumers.lake import LakeCatalog

logger = logging.getLogger(__name__)

DESCRIBE_COLUMNS = ("col_name", "data_type", "comment")
PARTITIONS_SCHEMA = pa.schema(
    [
        pa.field("partition", pa.struct([pa.field(PARTITION_COLUMN, pa.string())])),
        pa.field("record_count", pa.int64()),
        pa.field("file_count", pa.int64()),
        pa.field("total_size", pa.int64()),
    ]
)

Column = tuple[str, str, str]  # name, Hive type, comment


class LakeMetadata:
    """What Athena's metadata statements answer about the lake's database."""

    def __init__(self, lake: LakeCatalog) -> None:
        self.lake = lake
        self.event_types = {table_name(t): t for t in lake.tables.event_types}

    def answer(self, statement: MetadataStatement) -> QueryResult:
        match statement:
            case ShowTables():
                return self.show_tables(statement)
            case ShowDatabases():
                return self.show_databases(statement)
            case ShowColumns():
                return self.show_columns(statement)
            case ShowPartitions():
                return self.show_partitions(statement)
            case ShowCreateTable():
                return self.show_create_table(statement)
            case DescribeTable():
                return self.describe(statement)

    # --- the statements ------------------------------------------------------------------

    def show_tables(self, statement: ShowTables) -> QueryResult:
        self._check_database(statement.database)
        matches = name_matcher(statement.pattern)
        return QueryResult.of(
            ["tab_name"], [(name,) for name in sorted(self.event_types) if matches(name)]
        )

    def show_databases(self, statement: ShowDatabases) -> QueryResult:
        try:
            namespaces = self.lake.catalog.list_namespaces()
        except Exception as exc:  # the catalog's own errors (Glue, SQL) have no common root
            raise QueryError(f"cannot list the catalog's databases: {exc}") from exc
        names = {".".join(namespace) for namespace in namespaces} | {self.lake.database}
        matches = name_matcher(statement.pattern)
        return QueryResult.of(
            ["database_name"], [(name,) for name in sorted(names) if matches(name)]
        )

    def show_columns(self, statement: ShowColumns) -> QueryResult:
        columns, _ = self._columns(self._event_type(statement.table, statement.database))
        return QueryResult.of(["field"], [(name,) for name, _, _ in columns])

    def show_partitions(self, statement: ShowPartitions) -> QueryResult:
        self._event_type(statement.table, statement.database)
        logger.warning(
            'Athena does not run SHOW PARTITIONS on Iceberg tables; SELECT * FROM "%s$partitions" '
            "runs on both engines",
            statement.table,
        )
        rows = [
            ("/".join(f"{key}={value}" for key, value in record["partition"].items()),)
            for record in self.partitions(statement.table).to_pylist()
        ]
        return QueryResult.of(["partition"], rows)

    def show_create_table(self, statement: ShowCreateTable) -> QueryResult:
        event_type = self._event_type(statement.table, statement.database)
        columns, partition_columns = self._columns(event_type)
        iceberg = self._existing(event_type)
        location = iceberg.location() if iceberg else self._location(statement.table)
        compression = (
            iceberg.properties.get("write.parquet.compression-codec", "")
            if iceberg
            else self.lake.tables.compression
        )
        definitions = [
            f"  `{name}` {data_type}" + (f" COMMENT {_quoted(comment)}" if comment else "")
            for name, data_type, comment in columns
        ]
        lines = [
            f"CREATE TABLE {self.lake.database}.{statement.table} (",
            *(f"{line}," for line in definitions[:-1]),
            f"{definitions[-1]})",
        ]
        if partition_columns:
            lines.append(
                "PARTITIONED BY ("
                + ", ".join(f"`{name}`" for name, _, _ in partition_columns)
                + ")"
            )
        lines += [
            f"LOCATION {_quoted(location)}",
            "TBLPROPERTIES (",
            "  'table_type'='iceberg',",
            "  'format'='parquet',",
            f"  'write_compression'={_quoted(compression)})",
        ]
        return QueryResult.of(["createtab_stmt"], [(line,) for line in lines])

    def describe(self, statement: DescribeTable) -> QueryResult:
        event_type = self._event_type(statement.table, statement.database)
        columns, partition_columns = self._columns(event_type)
        rows: list[Column] = list(columns)
        if partition_columns:
            rows += [
                ("", "", ""),
                ("# Partition Information", "", ""),
                ("# col_name", "data_type", "comment"),
                *partition_columns,
            ]
        if statement.formatted:
            iceberg = self._existing(event_type)
            properties = dict(iceberg.properties) if iceberg else {}
            rows += [
                ("", "", ""),
                ("# Detailed Table Information", "", ""),
                ("Database:", self.lake.database, ""),
                ("Table:", statement.table, ""),
                (
                    "Location:",
                    iceberg.location() if iceberg else self._location(statement.table),
                    "",
                ),
                ("Table Type:", "ICEBERG", ""),
                ("Table Parameters:", "", ""),
                *(("", key, value) for key, value in sorted(properties.items())),
            ]
        return QueryResult.of(DESCRIBE_COLUMNS, rows)

    # --- Iceberg metadata ------------------------------------------------------------------

    def partitions(self, table: str) -> pa.Table:
        """``table``'s current partitions, as Athena's ``"table$partitions"`` lists them (its
        ``partition``, ``record_count``, ``file_count`` and ``total_size`` columns)."""
        iceberg = self._existing(self._event_type(table, None))
        if iceberg is None or iceberg.current_snapshot() is None:
            return PARTITIONS_SCHEMA.empty_table()
        try:
            raw = iceberg.inspect.partitions()
        except (OSError, ValueError) as exc:
            raise QueryError(f"cannot read the partitions of lake table {table}: {exc}") from exc
        records = sorted(raw.to_pylist(), key=lambda r: tuple(map(str, r["partition"].values())))
        return pa.Table.from_pylist(
            [
                {
                    "partition": record["partition"],
                    "record_count": record["record_count"],
                    "file_count": record["file_count"],
                    "total_size": record["total_data_file_size_in_bytes"],
                }
                for record in records
            ],
            schema=PARTITIONS_SCHEMA,
        )

    def _event_type(self, table: str, database: str | None) -> str:
        self._check_database(database)
        if table not in self.event_types:
            raise QueryError(
                f"table {table!r} does not exist in database {self.lake.database!r} "
                f"(its tables: {', '.join(sorted(self.event_types))})"
            )
        return self.event_types[table]

    def _check_database(self, database: str | None) -> None:
        if database is not None and database != self.lake.database:
            raise QueryError(
                f"the local engine reads the lake's database {self.lake.database!r} only; "
                f"to read {database!r}, run with --database {database}"
            )

    def _existing(self, event_type: str) -> Table | None:
        """The event type's Iceberg table, or None when the lake writer has not created it."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            return self.lake.catalog.load_table(self.lake.identifier(event_type))
        except NoSuchTableError:
            return None
        except Exception as exc:  # the catalog's own errors (Glue, SQL) have no common root
            raise QueryError(f"cannot load lake table {table_name(event_type)}: {exc}") from exc

    def _columns(self, event_type: str) -> tuple[list[Column], list[Column]]:
        """The table's columns and its partition columns, as Athena lists them."""
        iceberg = self._existing(event_type)
        if iceberg is None:
            columns = [(f.name, hive_type_of(f.type), "") for f in self.lake.schema(event_type)]
            partitions = [c for c in columns if c[0] == PARTITION_COLUMN]
            return columns, partitions
        schema = iceberg.schema()
        columns = [(f.name, hive_type(f.field_type), f.doc or "") for f in schema.fields]
        by_name = {column[0]: column for column in columns}
        partitions = [
            by_name[schema.find_column_name(field.source_id) or field.name]
            for field in iceberg.spec().fields
        ]
        return columns, partitions

    def _location(self, table: str) -> str:
        return f"{self.lake.warehouse}/{table}"


def hive_type(iceberg_type: Any) -> str:
    """The Glue (Hive DDL) name of an Iceberg type, as the Glue catalog records it."""
    from pyiceberg.catalog.glue import GLUE_PRIMITIVE_TYPES
    from pyiceberg.types import DecimalType, ListType, MapType, StructType

    if isinstance(iceberg_type, StructType):
        fields = ",".join(f"{f.name}:{hive_type(f.field_type)}" for f in iceberg_type.fields)
        return f"struct<{fields}>"
    if isinstance(iceberg_type, ListType):
        return f"array<{hive_type(iceberg_type.element_type)}>"
    if isinstance(iceberg_type, MapType):
        return f"map<{hive_type(iceberg_type.key_type)},{hive_type(iceberg_type.value_type)}>"
    if isinstance(iceberg_type, DecimalType):
        return f"decimal({iceberg_type.precision},{iceberg_type.scale})"
    primitives: dict[Any, str] = GLUE_PRIMITIVE_TYPES  # keyed by pyiceberg's type classes
    return primitives.get(type(iceberg_type), str(iceberg_type))


def name_matcher(pattern: str | None) -> Callable[[str], bool]:
    """Whether a name matches a ``SHOW`` pattern: a regular expression of the whole name,
    case-insensitive, in which ``*`` (or ``.*``) is any characters and ``|`` separates
    alternatives, as Athena documents them."""
    if pattern is None:
        return lambda name: True
    try:
        compiled = re.compile(re.sub(r"(?<!\.)\*", ".*", pattern), re.IGNORECASE)
    except re.error as exc:
        raise QueryError(f"invalid pattern {pattern!r}: {exc}") from exc
    return lambda name: compiled.fullmatch(name) is not None


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "\\'") + "'"

"""Glue columns for the lake, derived from the Avro schemas.

The lake writes one Parquet dataset per event type. Its Glue table has the
event metadata flattened into top-level columns, then the event's body fields,
with Hive types that match what the lake writer stores. Terraform reads the
result from ``terraform/modules/catalog/tables.json``, which is generated here
and committed, so applying the stack needs no Python; a unit test fails when
the committed file and the schemas drift apart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.errors import PipelineError

METADATA_FIELD = "metadata"
PARTITION_COLUMN = {"name": "dt", "type": "string"}
PARTITION_FORMAT = "yyyy-MM-dd"
TABLES_JSON = Path(__file__).resolve().parent.parent / "terraform/modules/catalog/tables.json"

_PRIMITIVES = {
    "null": "void",
    "boolean": "boolean",
    "int": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "bytes": "binary",
    "string": "string",
}
_LOGICAL = {
    "timestamp-millis": "timestamp",
    "timestamp-micros": "timestamp",
    "date": "date",
    "uuid": "string",
}


class CatalogError(PipelineError):
    """An Avro schema has a shape the lake's Glue tables cannot express."""


def table_name(event_type: str) -> str:
    """``TransactionRecorded`` -> ``transaction_recorded``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()


def hive_type(avro_type: Any) -> str:
    """The Glue (Hive DDL) type of one Avro type, nullable unions unwrapped."""
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type]
        raise CatalogError(f"named type {avro_type!r} must be resolved before mapping")
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            raise CatalogError(f"only nullable unions map to a column, got {avro_type!r}")
        return hive_type(branches[0])
    if not isinstance(avro_type, Mapping):
        raise CatalogError(f"not an Avro type: {avro_type!r}")
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return f"decimal({avro_type['precision']},{avro_type.get('scale', 0)})"
    if logical in _LOGICAL:
        return _LOGICAL[logical]
    kind = avro_type["type"]
    if kind == "record":
        fields = ",".join(f"{f['name']}:{hive_type(f['type'])}" for f in avro_type["fields"])
        return f"struct<{fields}>"
    if kind == "array":
        return f"array<{hive_type(avro_type['items'])}>"
    if kind == "map":
        return f"map<string,{hive_type(avro_type['values'])}>"
    if kind == "enum":
        return "string"
    if kind == "fixed":
        return "binary"
    return hive_type(kind)


def glue_columns(schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """The lake's columns of one event schema: metadata fields first, then the body.

    ``schema`` is a record schema with named types resolved (plain JSON or
    fastavro's parsed form).
    """
    columns: list[dict[str, str]] = []
    for field in schema["fields"]:
        if field["name"] == METADATA_FIELD:
            columns.extend(glue_columns(field["type"]))
        else:
            columns.append({"name": field["name"], "type": hive_type(field["type"])})
    names = [c["name"] for c in columns]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogError(f"{schema.get('name')}: columns appear twice: {duplicates}")
    return columns


def catalog_tables(schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``tables.json`` holds: one entry per event type, by event type."""
    return {
        event_type: {
            "table_name": table_name(event_type),
            "columns": glue_columns(schema),
            "partition_keys": [PARTITION_COLUMN],
            "partition_format": PARTITION_FORMAT,
        }
        for event_type, schema in sorted(schemas.items())
    }


def current_schemas() -> dict[str, dict[str, Any]]:
    """The current schema of every event type, named types inlined."""
    from pipelines.schemas import default_registry

    return {name: version.resolved for name, version in default_registry().current.items()}


def render_catalog_tables(schemas: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """``tables.json`` as text (stable: sorted, indented, newline-terminated)."""
    tables = catalog_tables(current_schemas() if schemas is None else schemas)
    return json.dumps(tables, indent=2, sort_keys=True) + "\n"


def write_catalog_tables(path: Path | str = TABLES_JSON) -> Path:
    """Write the Glue table definitions Terraform reads; returns the path."""
    target = Path(path)
    target.write_text(render_catalog_tables())
    return target


if __name__ == "__main__":
    print(write_catalog_tables())

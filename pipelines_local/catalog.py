"""Glue columns for the lake, derived from the Avro schemas (``make catalog``).

The lake has one Apache Iceberg table per event type: the event metadata flattened into
top-level columns, then the event's body fields, then the ``dt`` partition, with the Hive
types of the Arrow types the lake writer stores (:mod:`pipelines.consumers.lake.schema`, the
one walk of the Avro type tree). The writer creates the tables
(:mod:`pipelines.consumers.lake.iceberg`); Terraform reads their names (and, for the reader of
the module, their columns) from ``terraform/modules/catalog/tables.json``, which is generated
here and committed, so applying the stack needs no Python; a unit test fails when the
committed file and the schemas drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pipelines.consumers.lake.schema import (
    METADATA_FIELD,
    CatalogError,
    arrow_type,
    hive_type_of,
    lake_schema,
    table_name,
)

__all__ = [
    "METADATA_FIELD",
    "PARTITION_COLUMN",
    "TABLES_JSON",
    "CatalogError",
    "catalog_tables",
    "glue_columns",
    "hive_type",
    "render_catalog_tables",
    "table_name",
    "write_catalog_tables",
]

PARTITION_COLUMN = {"name": "dt", "type": "string"}
TABLES_JSON = Path(__file__).resolve().parent.parent / "terraform/modules/catalog/tables.json"


def hive_type(avro_type: Any) -> str:
    """The Glue (Hive DDL) type of one Avro type, nullable unions unwrapped."""
    return hive_type_of(arrow_type(avro_type)[0])


def glue_columns(schema: Mapping[str, Any]) -> list[dict[str, str]]:
    """The lake's columns of one event schema: metadata fields first, then the body."""
    return [{"name": f.name, "type": hive_type_of(f.type)} for f in lake_schema(schema)]


def catalog_tables(schemas: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """What ``tables.json`` holds: one entry per event type, by event type."""
    return {
        event_type: {
            "table_name": table_name(event_type),
            "columns": glue_columns(schema),
            "partition_keys": [PARTITION_COLUMN],
        }
        for event_type, schema in sorted(schemas.items())
    }


def current_schemas() -> dict[str, dict[str, Any]]:
    """The current schema of every event type, named types inlined."""
    from pipelines.contract.schemas import default_registry

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

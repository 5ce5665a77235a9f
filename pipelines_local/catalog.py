"""Glue columns for the lake, derived from the Avro schemas (``make catalog``).

The lake writes one Parquet dataset per event type. Its Glue table has the event metadata
flattened into top-level columns, then the event's body fields, with the Hive types of the
Arrow types the lake writer stores (:mod:`pipelines.consumers.lake.schema`, the one walk of
the Avro type tree). Terraform reads the result from
``terraform/modules/catalog/tables.json``, which is generated here and committed, so
applying the stack needs no Python; a unit test fails when the committed file and the
schemas drift apart. Each table's partition projection starts at the pipeline's event time
floor (:data:`~pipelines.event_time.EVENT_TIME_FLOOR`), the same date before which the decode
path refuses an event, so every event the lake holds is where Athena looks.
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
from pipelines.event_time import EVENT_TIME_FLOOR_DATE

__all__ = [
    "METADATA_FIELD",
    "PARTITION_COLUMN",
    "PARTITION_FORMAT",
    "PARTITION_RANGE_START",
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
PARTITION_FORMAT = "yyyy-MM-dd"
PARTITION_RANGE_START = EVENT_TIME_FLOOR_DATE  # the projection's range: this date to NOW
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
            "partition_format": PARTITION_FORMAT,
            "partition_range_start": PARTITION_RANGE_START,
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

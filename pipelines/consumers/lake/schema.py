"""Arrow schemas of the lake's Parquet datasets, derived from the Avro schemas.

Each event type's dataset (table ``transaction_recorded`` for ``TransactionRecorded``) has
the event metadata flattened into top-level columns, then the body fields. This is the one
walk of the Avro type tree: the Glue columns Terraform declares
(``terraform/modules/catalog/tables.json``) are the Hive types of these Arrow types
(:func:`hive_type_of`), so the files and the catalog cannot disagree. The ``dt`` partition
is in the object key (Hive style), not in the files.

Types: ``timestamp-millis`` is ``timestamp[ms, tz=UTC]``, decimals are
``decimal128(p, s)`` (exact), maps are ``map<string, V>``, arrays are
``list<V>``, records are ``struct``; nullable unions are nullable columns.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from pipelines.errors import PipelineError

METADATA_FIELD = "metadata"


class CatalogError(PipelineError):
    """An Avro schema has a shape the lake's tables cannot express."""


def table_name(event_type: str) -> str:
    """``TransactionRecorded`` -> ``transaction_recorded``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", event_type).lower()


_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}
_LOGICAL: dict[str, pa.DataType] = {
    "timestamp-millis": pa.timestamp("ms", tz="UTC"),
    "timestamp-micros": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
    "uuid": pa.string(),
}


def arrow_type(avro_type: Any) -> tuple[pa.DataType, bool]:
    """The Arrow type of one Avro type, and whether it is nullable."""
    if isinstance(avro_type, str):
        if avro_type in _PRIMITIVES:
            return _PRIMITIVES[avro_type], avro_type == "null"
        raise CatalogError(f"named type {avro_type!r} must be resolved before mapping")
    if isinstance(avro_type, list):
        branches = [branch for branch in avro_type if branch != "null"]
        if len(branches) != 1:
            raise CatalogError(f"only nullable unions map to a column, got {avro_type!r}")
        return arrow_type(branches[0])[0], True
    if not isinstance(avro_type, Mapping):
        raise CatalogError(f"not an Avro type: {avro_type!r}")
    logical = avro_type.get("logicalType")
    if logical == "decimal":
        return pa.decimal128(avro_type["precision"], avro_type.get("scale", 0)), False
    if logical in _LOGICAL:
        return _LOGICAL[logical], False
    kind = avro_type["type"]
    if kind == "record":
        return pa.struct([arrow_field(f["name"], f["type"]) for f in avro_type["fields"]]), False
    if kind == "array":
        return pa.list_(arrow_field("element", avro_type["items"])), False
    if kind == "map":
        return pa.map_(pa.string(), arrow_field("value", avro_type["values"]).type), False
    if kind == "enum":
        return pa.string(), False
    if kind == "fixed":
        return pa.binary(avro_type["size"]), False
    return arrow_type(kind)


def arrow_field(name: str, avro_type: Any) -> pa.Field:
    data_type, nullable = arrow_type(avro_type)
    return pa.field(name, data_type, nullable=nullable)


def lake_schema(schema: Mapping[str, Any]) -> pa.Schema:
    """The Parquet schema of one event type: metadata fields first, then the body.

    ``schema`` is a record schema with named types resolved (plain JSON or fastavro's
    parsed form). A body field named like a metadata column is refused.
    """
    fields = _columns(schema)
    names = [f.name for f in fields]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CatalogError(f"{schema.get('name')}: columns appear twice: {duplicates}")
    return pa.schema(fields)


def _columns(schema: Mapping[str, Any]) -> list[pa.Field]:
    fields: list[pa.Field] = []
    for field in schema["fields"]:
        if field["name"] == METADATA_FIELD:
            fields.extend(_columns(field["type"]))
        else:
            fields.append(arrow_field(field["name"], field["type"]))
    return fields


def hive_type_of(data_type: pa.DataType) -> str:
    """The Glue (Hive DDL) type a reader sees for an Arrow type written to Parquet."""
    if pa.types.is_timestamp(data_type):
        return "timestamp"
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_map(data_type):
        return f"map<{hive_type_of(data_type.key_type)},{hive_type_of(data_type.item_type)}>"
    if pa.types.is_list(data_type):
        return f"array<{hive_type_of(data_type.value_type)}>"
    if pa.types.is_struct(data_type):
        inner = ",".join(f"{f.name}:{hive_type_of(f.type)}" for f in data_type)
        return f"struct<{inner}>"
    names = {
        pa.null(): "void",
        pa.bool_(): "boolean",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.binary(): "binary",
        pa.string(): "string",
        pa.date32(): "date",
    }
    if data_type in names:
        return names[data_type]
    if pa.types.is_fixed_size_binary(data_type):
        return "binary"
    raise CatalogError(f"no Glue type for Arrow type {data_type}")

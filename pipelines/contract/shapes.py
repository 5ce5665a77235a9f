"""An Avro schema as the closed set of shapes the generated codecs know.

The schema is first parsed by fastavro (``parse_schema``), so the generators see
exactly what fastavro's reader and writer see: full names, named types defined
once and referred to by name afterwards, logical types keyed the way fastavro
keys them (``"<type>-<logicalType>"``). Every shape the generators do not
produce code for raises :class:`UnsupportedSchema`, and the caller keeps
fastavro for that schema: there is no shape the generated code handles by
guessing.

Logical types follow fastavro's own tables: a logical type fastavro does not
know (``int`` with ``timestamp-millis``, say) is read and written as its
underlying type, because that is what fastavro does with it; one it knows but
that is not generated here (``time-millis``, ``local-timestamp-*``) makes the
whole schema unsupported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastavro import parse_schema
from fastavro.logical_readers import LOGICAL_READERS
from fastavro.logical_writers import LOGICAL_WRITERS

PRIMITIVES = frozenset({"null", "boolean", "int", "long", "float", "double", "bytes", "string"})
# A union index is written as one zig-zag byte up to here; larger unions stay with fastavro.
MAX_UNION_BRANCHES = 64


class UnsupportedSchema(Exception):
    """The schema has a shape no code is generated for; fastavro handles it."""


@dataclass(frozen=True, slots=True)
class Primitive:
    kind: str  # one of PRIMITIVES


@dataclass(frozen=True, slots=True)
class Fixed:
    size: int


@dataclass(frozen=True, slots=True)
class Enum:
    symbols: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Array:
    items: Shape


@dataclass(frozen=True, slots=True)
class Map:
    values: Shape


@dataclass(frozen=True, slots=True)
class Union:
    branches: tuple[Shape, ...]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    shape: Shape


@dataclass(frozen=True, slots=True)
class Record:
    name: str
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Timestamp:
    """``long`` timestamp-millis (``unit`` 1000 microseconds) or -micros (``unit`` 1)."""

    unit: int


@dataclass(frozen=True, slots=True)
class Date:
    """``int`` date: days since 1970-01-01."""


@dataclass(frozen=True, slots=True)
class Uuid:
    """``string`` uuid."""


@dataclass(frozen=True, slots=True)
class Decimal:
    """decimal on ``bytes`` (``size`` None) or on ``fixed`` of ``size`` bytes."""

    precision: int
    scale: int
    size: int | None


Shape = Primitive | Fixed | Enum | Array | Map | Union | Record | Timestamp | Date | Uuid | Decimal

_GENERATED_LOGICAL: dict[str, Shape] = {
    "long-timestamp-millis": Timestamp(1000),
    "long-timestamp-micros": Timestamp(1),
    "int-date": Date(),
    "string-uuid": Uuid(),
}


def shape_of(schema: Any) -> Shape:
    """The shape of a schema (plain JSON or fastavro-parsed), or ``UnsupportedSchema``."""
    named: dict[str, Shape | None] = {}
    try:
        parsed = parse_schema(schema, {}, _write_hint=False)
    except Exception as exc:  # fastavro refuses the schema: nothing to generate
        raise UnsupportedSchema(f"fastavro does not parse the schema: {exc!r}") from exc
    return _shape(parsed, named)


def _shape(schema: Any, named: dict[str, Shape | None]) -> Shape:
    if isinstance(schema, list):
        return _union(schema, named)
    if isinstance(schema, str):
        return _named_or_primitive(schema, named)
    if not isinstance(schema, Mapping) or not isinstance(schema.get("type"), str):
        raise UnsupportedSchema(f"not a schema fastavro reads by type name: {schema!r}")
    kind = schema["type"]
    logical = _logical_key(schema)
    if logical is not None:
        shape = _logical(schema, logical)
        if kind in ("record", "enum", "fixed"):
            # A named logical type (a decimal on a fixed) may be referred to by
            # name afterwards, and fastavro converts it there as well.
            named[schema["name"]] = shape
        return shape
    if kind in PRIMITIVES:
        return Primitive(kind)
    if kind == "array":
        return Array(_shape(schema["items"], named))
    if kind == "map":
        return Map(_shape(schema["values"], named))
    if kind in ("record", "enum", "fixed"):
        return _named_definition(schema, named)
    raise UnsupportedSchema(f"type {kind!r} is not generated")


def _logical_key(schema: Mapping[str, Any]) -> str | None:
    """fastavro's key for a logical type it converts, or None when it converts nothing."""
    logical = schema.get("logicalType")
    if not logical:
        return None
    key = f"{schema['type']}-{logical}"
    return key if key in LOGICAL_READERS or key in LOGICAL_WRITERS else None


def _logical(schema: Mapping[str, Any], key: str) -> Shape:
    if key in _GENERATED_LOGICAL:
        return _GENERATED_LOGICAL[key]
    if key not in ("bytes-decimal", "fixed-decimal"):
        raise UnsupportedSchema(f"logical type {key} is not generated")
    precision, scale = schema.get("precision"), schema.get("scale", 0)
    if type(precision) is not int or type(scale) is not int or precision <= 0 or scale < 0:
        raise UnsupportedSchema(f"decimal needs integer precision and scale: {dict(schema)!r}")
    if key == "bytes-decimal":
        return Decimal(precision, scale, None)
    return Decimal(precision, scale, _fixed_size(schema))


def _fixed_size(schema: Mapping[str, Any]) -> int:
    size = schema.get("size")
    if type(size) is not int or size < 0:
        raise UnsupportedSchema(f"fixed needs a non-negative integer size: {dict(schema)!r}")
    return size


def _named_or_primitive(name: str, named: dict[str, Shape | None]) -> Shape:
    if name in PRIMITIVES:
        return Primitive(name)
    if name not in named:
        raise UnsupportedSchema(f"unknown named type {name!r}")
    shape = named[name]
    if shape is None:
        raise UnsupportedSchema(f"{name} refers to itself; recursive types are not generated")
    return shape


def _named_definition(schema: Mapping[str, Any], named: dict[str, Shape | None]) -> Shape:
    name = schema["name"]
    kind = schema["type"]
    if kind == "fixed":
        shape: Shape = Fixed(_fixed_size(schema))
    elif kind == "enum":
        symbols = tuple(schema["symbols"])
        if not all(type(s) is str for s in symbols):
            raise UnsupportedSchema(f"enum {name} has a symbol that is not a string")
        shape = Enum(symbols)
    else:
        named[name] = None  # being defined: a reference from inside is recursion
        fields = []
        for f in schema["fields"]:
            field_name = f["name"]
            if type(field_name) is not str or field_name == "-type":
                # fastavro's union validation treats a "-type" key specially.
                raise UnsupportedSchema(f"record {name} has a field named {field_name!r}")
            fields.append(Field(field_name, _shape(f["type"], named)))
        shape = Record(name, tuple(fields))
    named[name] = shape
    return shape


def _union(schema: list[Any], named: dict[str, Shape | None]) -> Union:
    if not 0 < len(schema) <= MAX_UNION_BRANCHES:
        raise UnsupportedSchema(f"a union of {len(schema)} branches is not generated")
    branches = tuple(_shape(s, named) for s in schema)
    if any(isinstance(b, Union) for b in branches):
        raise UnsupportedSchema("a union directly inside a union is not Avro")
    return Union(branches)

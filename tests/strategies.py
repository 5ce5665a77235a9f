"""Hypothesis strategies that build events from the Avro schemas themselves."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from pipelines.contract.schemas import default_registry

_TEXT = st.text(max_size=40)  # any unicode, empty included
_MIN_TS = datetime(1, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def _timestamps() -> st.SearchStrategy[datetime]:
    return st.datetimes(
        min_value=_MIN_TS.replace(tzinfo=None),
        max_value=_MAX_TS.replace(tzinfo=None),
        timezones=st.just(UTC),
    ).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))


def _decimals(precision: int, scale: int) -> st.SearchStrategy[Decimal]:
    bound = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)
    return st.decimals(min_value=-bound, max_value=bound, places=scale, allow_nan=False)


def from_avro(schema: Any) -> st.SearchStrategy[Any]:
    if isinstance(schema, list):
        return st.one_of(*(from_avro(s) for s in schema))
    if isinstance(schema, str):
        schema = {"type": schema}
    kind, logical = schema["type"], schema.get("logicalType")
    if logical == "timestamp-millis":
        return _timestamps()
    if logical == "decimal":
        return _decimals(schema["precision"], schema.get("scale", 0))
    if logical == "uuid":
        return st.uuids().map(str)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "string": _TEXT,
        "long": st.integers(-(2**63), 2**63 - 1),
        "int": st.integers(-(2**31), 2**31 - 1),
        "double": st.floats(allow_nan=False),
        "float": st.floats(allow_nan=False, width=32),
        "boolean": st.booleans(),
    }
    if kind in simple:
        return simple[kind]
    if kind == "map":
        return st.dictionaries(_TEXT, from_avro(schema["values"]), max_size=4)
    if kind == "array":
        return st.lists(from_avro(schema["items"]), max_size=4)
    if kind == "record":
        return st.fixed_dictionaries({f["name"]: from_avro(f["type"]) for f in schema["fields"]})
    raise ValueError(f"no strategy for {schema!r}")


def events_of(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Events of one type; metadata.event_type is the type itself."""
    schema = default_registry().current[event_type].resolved

    def fix(event: dict[str, Any]) -> dict[str, Any]:
        event["metadata"]["event_type"] = event_type
        return event

    return from_avro(schema).map(fix)

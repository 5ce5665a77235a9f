"""Building events, and converting them to and from JSON.

An event is a plain dict in the shape of its Avro schema: a ``metadata``
record (see ``schemas/EventMetadata.avsc``) and the body fields. Timestamps
are timezone-aware ``datetime`` values, money is ``Decimal``.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pipelines.contract.schemas import EVENT_TYPES, default_registry
from pipelines.errors import EventValidationError

# The body field whose value is the aggregate id (and so the partition key).
AGGREGATE_FIELD = {
    "UserRegistered": "user_id",
    "UserProfileUpdated": "user_id",
    "UserActivityRecorded": "user_id",
    "TransactionRecorded": "user_id",
    "MetricRecorded": "source",
    "ImageLabeled": "key",
}


def new_event(
    event_type: str,
    body: Mapping[str, Any],
    *,
    producer: str,
    occurred_at: datetime | None = None,
    event_id: str | None = None,
    aggregate_version: int | None = None,
    correlation_id: str | None = None,
) -> dict[str, Any]:
    """A new event of ``event_type`` with complete metadata."""
    if event_type not in AGGREGATE_FIELD:
        raise EventValidationError(
            f"unknown event type {event_type!r}; expected one of {', '.join(EVENT_TYPES)}"
        )
    try:
        aggregate_id = str(body[AGGREGATE_FIELD[event_type]])
    except KeyError as exc:
        raise EventValidationError(
            f"{event_type} needs {AGGREGATE_FIELD[event_type]!r} (its aggregate id)"
        ) from exc
    metadata = {
        "event_id": event_id or str(uuid.uuid4()),
        "event_type": event_type,
        "aggregate_id": aggregate_id,
        "aggregate_version": aggregate_version,
        "occurred_at": occurred_at or datetime.now(UTC),
        "producer": producer,
        "correlation_id": correlation_id,
        "replay_id": None,
    }
    return {"metadata": metadata, **body}


def partition_key(event: Mapping[str, Any]) -> str:
    """The Kinesis partition key of an event: its aggregate id."""
    key: str = event["metadata"]["aggregate_id"]
    return key


# --- JSON -------------------------------------------------------------------


def event_from_json(event_type: str, data: Mapping[str, Any], *, producer: str) -> dict[str, Any]:
    """An event from JSON: body fields plus an optional, possibly partial, ``metadata``.

    Missing metadata is filled in (new event id, now, aggregate id from the
    body). Timestamps may be ISO 8601 strings or epoch milliseconds; money may
    be a string or a number.
    """
    if not isinstance(data, Mapping):
        raise EventValidationError("an event must be a JSON object")
    if event_type not in AGGREGATE_FIELD:
        raise EventValidationError(
            f"unknown event type {event_type!r}; expected one of {', '.join(EVENT_TYPES)}"
        )
    given_meta = data.get("metadata") or {}
    body = {k: v for k, v in data.items() if k != "metadata"}
    event = new_event(event_type, body, producer=producer)
    event["metadata"].update(given_meta)
    event["metadata"]["event_type"] = event_type
    try:
        event["metadata"]["event_id"] = str(uuid.UUID(str(event["metadata"]["event_id"])))
    except ValueError as exc:
        raise EventValidationError(f"{event_type}.metadata.event_id is not a UUID") from exc
    schema = default_registry().current[event_type].resolved
    converted: dict[str, Any] = _from_json(schema, event, event_type)
    return converted


def event_to_json(record: Mapping[str, Any], event_type: str) -> dict[str, Any]:
    """A decoded event as JSON-ready values (ISO timestamps, decimal strings)."""
    schema = default_registry().current[event_type].resolved
    converted: dict[str, Any] = _to_json(schema, record)
    return converted


def _from_json(schema: Any, value: Any, path: str) -> Any:
    if isinstance(schema, list):  # union: null first by convention
        if value is None:
            return None
        branches = [s for s in schema if s != "null"]
        return _from_json(branches[0], value, path)
    if isinstance(schema, str):
        return _scalar_from_json(schema, None, value, path)
    kind = schema["type"]
    if kind == "record":
        if not isinstance(value, Mapping):
            raise EventValidationError(f"{path} must be an object")
        known = {f["name"] for f in schema["fields"]}
        unknown = sorted(set(value) - known)
        if unknown:
            raise EventValidationError(f"{path} has unknown field(s): {', '.join(unknown)}")
        out = {}
        for f in schema["fields"]:
            name = f["name"]
            if name in value:
                out[name] = _from_json(f["type"], value[name], f"{path}.{name}")
            elif "default" in f:
                out[name] = f["default"]
            else:
                raise EventValidationError(f"{path}.{name} is required")
        return out
    if kind == "map":
        if not isinstance(value, Mapping):
            raise EventValidationError(f"{path} must be an object")
        return {str(k): _from_json(schema["values"], v, f"{path}.{k}") for k, v in value.items()}
    if kind == "array":
        if not isinstance(value, list):
            raise EventValidationError(f"{path} must be an array")
        return [_from_json(schema["items"], v, f"{path}[{i}]") for i, v in enumerate(value)]
    return _scalar_from_json(kind, schema.get("logicalType"), value, path)


def _scalar_from_json(kind: str, logical: str | None, value: Any, path: str) -> Any:
    if logical == "timestamp-millis":
        if isinstance(value, bool):
            raise EventValidationError(f"{path} must be a timestamp")
        if isinstance(value, int):
            return datetime.fromtimestamp(value / 1000, UTC)
        if isinstance(value, datetime):
            return value
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise EventValidationError(f"{path} is not an ISO 8601 timestamp") from exc
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise EventValidationError(f"{path} must be an ISO 8601 string or epoch milliseconds")
    if logical == "decimal":
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise EventValidationError(f"{path} must be a decimal number or string")
        try:
            return Decimal(str(value))
        except InvalidOperation as exc:
            raise EventValidationError(f"{path} is not a decimal number: {value!r}") from exc
    if logical == "uuid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError as exc:
            raise EventValidationError(f"{path} is not a UUID: {value!r}") from exc
    expected: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "long": int,
        "int": int,
        "double": (int, float),
        "float": (int, float),
        "boolean": bool,
    }
    if kind == "bytes":
        return base64.b64decode(value)
    want = expected.get(kind)
    if want is not None and (
        not isinstance(value, want) or (kind != "boolean" and isinstance(value, bool))
    ):
        raise EventValidationError(f"{path} must be of Avro type {kind}, got {value!r}")
    return float(value) if kind in ("double", "float") else value


def _to_json(schema: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(schema, list):
        branches = [s for s in schema if s != "null"]
        return _to_json(branches[0], value)
    if isinstance(schema, dict):
        kind = schema["type"]
        if kind == "record":
            return {f["name"]: _to_json(f["type"], value.get(f["name"])) for f in schema["fields"]}
        if kind == "map":
            return {k: _to_json(schema["values"], v) for k, v in value.items()}
        if kind == "array":
            return [_to_json(schema["items"], v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value

"""What a hostile (or broken) producer can put on the stream, and our encoder never writes.

:func:`forge` writes an event under its shipped schema's fingerprint without the encoder's
checks: decimals wider than their declared precision (written as the unscaled integer, as
Avro stores them), infinite numbers, any strings, any times. The bytes decode; the contract
(:mod:`pipelines.contract.validation`) is what refuses them.
"""

from __future__ import annotations

import copy
import io
from decimal import Decimal
from typing import Any

from fastavro import parse_schema, schemaless_writer

from pipelines.contract.codec import MAGIC
from pipelines.contract.schemas import default_registry


def _plain_decimals(node: Any) -> Any:
    """The schema with every decimal logical type written as its underlying bytes."""
    if isinstance(node, dict):
        if node.get("logicalType") == "decimal":
            return {"type": "bytes", "scale": node.get("scale", 0)}
        return {k: _plain_decimals(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain_decimals(v) for v in node]
    return node


def _unscaled(value: Decimal, scale: int) -> bytes:
    number = int(value.scaleb(scale))
    length = max(1, (number.bit_length() + 8) // 8)
    return number.to_bytes(length, "big", signed=True)


def forge(event: dict[str, Any]) -> bytes:
    """``event`` on the wire under its current schema's fingerprint, unchecked."""
    version = default_registry().current[event["metadata"]["event_type"]]
    schema = _plain_decimals(copy.deepcopy(version.resolved))
    body = dict(event)
    for field in version.resolved["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind.get("logicalType") == "decimal":
            body[field["name"]] = _unscaled(Decimal(event[field["name"]]), kind.get("scale", 0))
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(schema), body)
    return MAGIC + version.fingerprint + buffer.getvalue()

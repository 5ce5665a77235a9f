"""Avro single-object encoding of events.

Wire format (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint | Avro binary body

The fingerprint is that of the writer schema's parsing canonical form. On
decode the writer schema is found by fingerprint among the shipped schemas
(current and every released version) and resolved to the current reader schema
of its event type, so events written long ago still read as today's shape.

fastavro is the reference implementation. Where no schema resolution is
needed (the writer schema is the reader schema, as for every current event),
reading and writing go through code generated for the schema
(:mod:`pipelines.contract.generated`) first. That code refuses, by raising,
anything it does not handle exactly as fastavro does, and on any exception from
it the same bytes or event go through fastavro's path as before: the fast path
can make a verdict slower, never different. ``Codec(fast=False)`` is the
fastavro path alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from fastavro import schemaless_reader, schemaless_writer

from pipelines.contract.generated import Specialised, UnsupportedSchema, specialise
from pipelines.contract.schemas import SchemaRegistry, default_registry
from pipelines.errors import (
    CorruptRecordError,
    EventValidationError,
    InvalidEventError,
    PoisonRecordError,
    UnknownSchemaError,
)

MAGIC = b"\xc3\x01"
HEADER_SIZE = len(MAGIC) + 8

# fastavro reports a record that does not fit its schema with these.
_WRITE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, OverflowError)


class DecodedEvent(NamedTuple):
    """An event read off the wire, in the current reader schema's shape."""

    event_type: str
    record: dict[str, Any]
    fingerprint: bytes  # of the writer schema
    writer_version: int

    @property
    def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = self.record["metadata"]
        return metadata

    @property
    def event_id(self) -> str:
        """The idempotency key, as a string (the record holds a ``UUID``)."""
        return str(self.record["metadata"]["event_id"])


@dataclass(frozen=True, slots=True)
class _DecimalField:
    name: str
    precision: int
    scale: int

    def check(self, event_type: str, value: Any) -> None:
        if not isinstance(value, Decimal):
            raise EventValidationError(f"{event_type}.{self.name} must be a Decimal, got {value!r}")
        if not value.is_finite():
            raise EventValidationError(f"{event_type}.{self.name} must be finite, got {value}")
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > self.scale:
            raise EventValidationError(
                f"{event_type}.{self.name} has more than {self.scale} decimal places: {value}"
            )
        if abs(value) >= Decimal(10) ** (self.precision - self.scale):
            raise EventValidationError(
                f"{event_type}.{self.name} does not fit decimal({self.precision},{self.scale}): "
                f"{value}"
            )


def _specialised(schema: dict[str, Any], fast: bool) -> Specialised | None:
    """The generated codec of a schema, or None to keep fastavro alone for it."""
    if not fast:
        return None
    try:
        return specialise(schema)
    except UnsupportedSchema:
        return None


_Read = Callable[[bytes, int], tuple[Any, int]]


def _reader_of(specialised: Specialised | None) -> _Read | None:
    return None if specialised is None else specialised.read


def _decimal_fields(schema: Mapping[str, Any]) -> tuple[_DecimalField, ...]:
    found = []
    for f in schema["fields"]:
        t = f["type"]
        if isinstance(t, dict) and t.get("logicalType") == "decimal":
            found.append(_DecimalField(f["name"], t["precision"], t.get("scale", 0)))
    return tuple(found)


class Codec:
    """Encodes events with the current schemas; decodes any shipped version.

    ``fast=False`` leaves out the generated fast path: fastavro alone, the
    reference the fast path is tested against.
    """

    def __init__(self, registry: SchemaRegistry | None = None, *, fast: bool = True) -> None:
        self.registry = registry or default_registry()
        self._writers = {
            name: (
                MAGIC + v.fingerprint,
                v.parsed,
                _decimal_fields(v.resolved),
                _specialised(v.resolved, fast),
            )
            for name, v in self.registry.current.items()
        }
        self._readers: dict[
            bytes,
            tuple[str, int, dict[str, Any], dict[str, Any] | None, _Read | None],
        ] = {}
        for version in self.registry.all_versions():
            reader = self.registry.current[version.event_type]
            same = reader.fingerprint == version.fingerprint
            self._readers[version.fingerprint] = (
                version.event_type,
                version.version,
                reader.parsed if same else version.parsed,
                None if same else reader.parsed,
                # Resolution between versions is fastavro's alone.
                _reader_of(_specialised(reader.resolved, fast) if same else None),
            )
        self._buffer = io.BytesIO()

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """Encode one event; its type is ``event["metadata"]["event_type"]``."""
        try:
            event_type = event["metadata"]["event_type"]
            header, parsed, decimals, generated = self._writers[event_type]
        except (KeyError, TypeError) as exc:
            raise EventValidationError(
                f"not an event of a known type (metadata.event_type): {exc}"
            ) from exc
        for d in decimals:
            d.check(event_type, event.get(d.name))
        if generated is not None:
            try:
                return generated.write(event, header)
            except Exception:  # declined, or not fastavro's way: fastavro decides below
                generated = None
        buf = self._buffer
        buf.seek(0)
        buf.truncate()
        buf.write(header)
        try:
            schemaless_writer(buf, parsed, event)
        except _WRITE_ERRORS as exc:
            raise EventValidationError(f"{event_type} does not fit its schema: {exc!r}") from exc
        return buf.getvalue()

    @staticmethod
    def _unreadable(data: bytes) -> PoisonRecordError:
        """Why a record's header names no shipped schema."""
        if len(data) < HEADER_SIZE:
            return CorruptRecordError(
                f"record is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header", data
            )
        if data[:2] != MAGIC:
            return CorruptRecordError(
                f"record does not start with the single-object marker C3 01 (got {data[:2].hex()})",
                data,
            )
        return UnknownSchemaError(
            f"no shipped schema has fingerprint {bytes(data[2:HEADER_SIZE]).hex()}", data
        )

    def decode(self, data: bytes) -> DecodedEvent:
        """Decode one wire record into the current reader schema's shape."""
        fingerprint = data[2:HEADER_SIZE]
        found = self._readers.get(fingerprint) if data.startswith(MAGIC) else None
        if found is None:
            raise self._unreadable(data)
        event_type, version, writer, reader, read = found
        record: Any = None
        if read is not None and type(data) is bytes:
            try:
                record, end = read(data, HEADER_SIZE)
            except Exception:  # declined, or not fastavro's way: fastavro decides below
                record = None
        if record is None:
            record, end = self._read_reference(data, event_type, writer, reader)
        if end != len(data):
            raise CorruptRecordError(
                f"{event_type} body has {len(data) - end} trailing bytes", data
            )
        declared = record["metadata"]["event_type"]
        if declared != event_type:
            raise InvalidEventError(
                f"metadata.event_type is {declared!r} but the schema is {event_type}", data
            )
        return DecodedEvent(event_type, record, bytes(fingerprint), version)

    @staticmethod
    def _read_reference(
        data: bytes, event_type: str, writer: dict[str, Any], reader: dict[str, Any] | None
    ) -> tuple[Any, int]:
        """fastavro's record from the body, and the offset it stopped at."""
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(body, writer, reader)
        except EOFError as exc:
            raise CorruptRecordError(f"{event_type} body is truncated", data) from exc
        except Exception as exc:  # fastavro raises many kinds on bad bytes
            raise CorruptRecordError(f"{event_type} body does not decode: {exc!r}", data) from exc
        return record, body.tell()


_default: Codec | None = None


def default_codec() -> Codec:
    global _default
    if _default is None:
        _default = Codec()
    return _default


def encode_event(event: Mapping[str, Any]) -> bytes:
    """Encode one event with the current schema of its type."""
    return default_codec().encode(event)


def decode_event(data: bytes) -> DecodedEvent:
    """Decode one single-object encoded event, or raise a poison-record error."""
    return default_codec().decode(data)

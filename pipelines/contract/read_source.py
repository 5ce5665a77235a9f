"""Source of a reader specialised to one schema: ``read(data, pos) -> (value, end)``.

The generated code is straight-line Python for the schema's fields, with every
varint, length and index decoded inline and every conversion written out. It
accepts only well-formed input, and on it computes exactly what fastavro's
``schemaless_reader`` computes (same values, same types, same bytes consumed).
Anything else it refuses by raising, never by guessing: a truncated buffer
(``IndexError``, ``struct.error`` or an explicit bound check), a varint wider
than 64 bits, a negative length, a boolean byte other than 0 or 1, a union or
enum index out of range, invalid UTF-8, or a block count larger than the bytes
left could hold. The caller then hands the same bytes to fastavro, whose
verdict stands, so where fastavro is lenient (any non-zero boolean byte is
true, a negative union index counts from the end) its leniency is kept too.

fastavro's conversions, reproduced:

* ``timestamp-millis``: ``epoch + timedelta(microseconds=n * 1000)`` with a
  UTC-aware epoch (exact integer arithmetic, pre-epoch values included);
  ``timestamp-micros`` the same without the factor;
* ``date``: ``date.fromordinal(n + 719163)``; ``uuid``: ``UUID(text)``;
* ``decimal``: ``Context(prec=precision).create_decimal(unscaled).scaleb(-scale)``,
  so an unscaled value wider than the precision is rounded half-even, as
  fastavro does, rather than refused;
* ``int`` is read as a long with no 32-bit range check, as fastavro reads it.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from pipelines.contract import shapes as s
from pipelines.contract.source import Source
from pipelines.contract.wire import Reject, decimal_context, read_span, read_uvarint

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAYS_SHIFT = date(1970, 1, 1).toordinal()
_BOOLEANS = (False, True)
_CONSTANTS: dict[str, Any] = {
    "Reject": Reject,
    "uvarint": read_uvarint,
    "span": read_span,
    "unpack_float": struct.Struct("<f").unpack_from,
    "unpack_double": struct.Struct("<d").unpack_from,
    "booleans": _BOOLEANS,
    "epoch": _EPOCH,
    "timedelta": timedelta,
    "fromordinal": date.fromordinal,
    "UUID": UUID,
    "from_bytes": int.from_bytes,
}


def reader_source(shape: s.Shape) -> tuple[str, dict[str, Any]]:
    """The ``def read(data, pos)`` source, and the names it binds."""
    src = Source()
    for stem, value in _CONSTANTS.items():
        src.bind(stem, value)
    src.line("size = len(data)")
    result = _read(src, shape)
    # Slices stop short at the end of the buffer: a value that ran past it shows here.
    with src.block("if pos > size:"):
        src.line(f"raise {_c(src, 'Reject')}('value runs past the buffer')")
    src.line(f"return {result}, pos")
    return src.function("read", "data, pos"), src.bound


def _c(src: Source, stem: str) -> str:
    return src.bind(stem, _CONSTANTS[stem])


def _read(src: Source, shape: s.Shape) -> str:
    """Emit code reading one ``shape`` value at ``pos``; return the expression holding it."""
    if isinstance(shape, s.Primitive):
        return _read_primitive(src, shape.kind)
    if isinstance(shape, s.Record):
        values = [(f.name, _read(src, f.shape)) for f in shape.fields]
        out = src.fresh("rec")
        src.line(f"{out} = {{" + ", ".join(f"{n!r}: {v}" for n, v in values) + "}")
        return out
    if isinstance(shape, s.Union):
        return _read_union(src, shape)
    if isinstance(shape, s.Array | s.Map):
        return _read_blocks(src, shape)
    if isinstance(shape, s.Fixed):
        return _read_fixed(src, shape.size)
    if isinstance(shape, s.Enum):
        index = _read_long(src)
        out = src.fresh("sym")
        with src.block(f"if {index} < 0:"):
            src.line(f"raise {_c(src, 'Reject')}('negative enum index')")
        src.line(f"{out} = {src.bind('symbols', shape.symbols)}[{index}]")
        return out
    return _read_logical(src, shape)


def _read_logical(src: Source, shape: s.Shape) -> str:
    out = src.fresh("val")
    if isinstance(shape, s.Timestamp):
        n = _read_long(src)
        micros = f"{n} * {shape.unit}" if shape.unit != 1 else n
        src.line(f"{out} = {_c(src, 'epoch')} + {_c(src, 'timedelta')}(0, 0, {micros})")
    elif isinstance(shape, s.Date):
        n = _read_long(src)
        src.line(f"{out} = {_c(src, 'fromordinal')}({n} + {_DAYS_SHIFT})")
    elif isinstance(shape, s.Uuid):
        text = _read_length_prefixed(src, decode=True)
        src.line(f"{out} = {_c(src, 'UUID')}({text})")
    elif isinstance(shape, s.Decimal):
        raw = (
            _read_length_prefixed(src, decode=False)
            if shape.size is None
            else _read_fixed(src, shape.size)
        )
        ctx = src.bind("decimal_context", decimal_context(shape.precision))
        unscaled = f"{_c(src, 'from_bytes')}({raw}, 'big', signed=True)"
        src.line(f"{out} = {ctx}.create_decimal({unscaled}).scaleb({-shape.scale}, {ctx})")
    else:
        raise s.UnsupportedSchema(f"no reader for {shape!r}")
    return out


def _read_primitive(src: Source, kind: str) -> str:
    if kind == "null":
        return "None"
    if kind in ("int", "long"):
        return _read_long(src)
    if kind in ("string", "bytes"):
        return _read_length_prefixed(src, decode=kind == "string")
    out = src.fresh("val")
    if kind == "boolean":
        src.line(f"{out} = {_c(src, 'booleans')}[data[pos]]")
        src.line("pos += 1")
    elif kind == "float":
        src.line(f"{out} = {_c(src, 'unpack_float')}(data, pos)[0]")
        src.line("pos += 4")
    elif kind == "double":
        src.line(f"{out} = {_c(src, 'unpack_double')}(data, pos)[0]")
        src.line("pos += 8")
    else:
        raise s.UnsupportedSchema(f"no reader for {kind}")
    return out


def _read_long(src: Source) -> str:
    """Emit a zig-zag long read, the continuation loop inline (timestamps take six bytes)."""
    n = src.fresh("n")
    src.line(f"{n} = data[pos]")
    src.line("pos += 1")
    with src.block(f"if {n} > 127:"):
        src.line(f"{n} &= 127")
        src.line("shift = 0")
        with src.block("while True:"):
            src.line("b = data[pos]")
            src.line("pos += 1")
            src.line("shift += 7")
            src.line(f"{n} |= (b & 127) << shift")
            with src.block("if b < 128:"):
                src.line("break")
        with src.block(f"if shift > 63 or {n} >> 64:"):
            src.line(f"raise {_c(src, 'Reject')}('varint wider than 64 bits')")
    src.line(f"{n} = ({n} >> 1) ^ -({n} & 1)")
    return n


def _read_length_prefixed(src: Source, *, decode: bool) -> str:
    """A length (one even byte inline, else out of line), then that many bytes.

    A length running past the buffer gives a short slice here and leaves ``pos``
    past the end: every later read then fails, and the final check refuses it.
    """
    n = src.fresh("n")
    out = src.fresh("text" if decode else "raw")
    src.line(f"{n} = data[pos]")
    with src.block(f"if {n} & 129:"):
        src.line(f"pos, end = {_c(src, 'span')}(data, pos)")
    with src.block("else:"):
        src.line("pos += 1")
        src.line(f"end = pos + ({n} >> 1)")
    # bytes.decode() is strict UTF-8, as fastavro's read_utf8 (errors="strict").
    src.line(f"{out} = data[pos:end].decode()" if decode else f"{out} = data[pos:end]")
    src.line("pos = end")
    return out


def _read_fixed(src: Source, size: int) -> str:
    out = src.fresh("raw")
    src.line(f"end = pos + {size}")
    src.line(f"{out} = data[pos:end]")
    src.line("pos = end")
    return out


def _read_union(src: Source, shape: s.Union) -> str:
    """Branch ``i`` is the single byte ``2 * i``; any other index encoding is refused."""
    out = src.fresh("val")
    index = src.fresh("n")
    src.line(f"{index} = data[pos]")
    src.line("pos += 1")
    for i, branch in enumerate(shape.branches):
        with src.block(f"{'if' if i == 0 else 'elif'} {index} == {2 * i}:"):
            src.line(f"{out} = {_read(src, branch)}")
    with src.block("else:"):
        src.line(f"raise {_c(src, 'Reject')}('union index out of range')")
    return out


def _read_blocks(src: Source, shape: s.Array | s.Map) -> str:
    """Blocks of ``count`` items up to a zero count; a negative count is followed by a
    byte size, which fastavro reads and ignores, and so is it read and ignored here."""
    is_map = isinstance(shape, s.Map)
    out = src.fresh("map" if is_map else "arr")
    item = shape.values if isinstance(shape, s.Map) else shape.items
    least = 1 if is_map else _min_size(item)  # bytes per entry, at the very least
    src.line(f"{out} = {{}}" if is_map else f"{out} = []")
    count = _read_long(src)
    with src.block(f"while {count}:"):
        with src.block(f"if {count} < 0:"):
            src.line(f"{count} = -{count}")
            _read_long(src)
        if least:
            with src.block(f"if {count} * {least} > size - pos:"):
                src.line(f"raise {_c(src, 'Reject')}('block count beyond the buffer')")
        with src.block(f"for _ in range({count}):"):
            if is_map:
                key = _read_length_prefixed(src, decode=True)
                src.line(f"{out}[{key}] = {_read(src, item)}")
            else:
                src.line(f"{out}.append({_read(src, item)})")
        src.line(f"{count} = {_read_long(src)}")
    return out


def _min_size(shape: s.Shape) -> int:
    """The fewest bytes one value of ``shape`` takes on the wire."""
    if isinstance(shape, s.Primitive):
        return {"null": 0, "float": 4, "double": 8}.get(shape.kind, 1)
    if isinstance(shape, s.Record):
        return sum(_min_size(f.shape) for f in shape.fields)
    if isinstance(shape, s.Fixed):
        return shape.size
    if isinstance(shape, s.Decimal) and shape.size is not None:
        return shape.size
    return 1  # a varint, a length, an index or a block count

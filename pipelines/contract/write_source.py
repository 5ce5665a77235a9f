"""Source of a writer specialised to one schema: ``write(value, prefix=b"") -> bytes``.

The generated code accepts a value only when its Python type is exactly the one
the schema position expects (``type(v) is str``, ``int`` that is not a
``bool`` and fits 64 bits, or 32 for ``int``, ``float`` for float and double,
``dict`` records with exactly the schema's fields, ...), and then writes the
bytes fastavro's ``schemaless_writer`` writes for it. Everything else is
refused with an exception, and the caller hands the value to fastavro, whose
verdict stands. fastavro is lenient in ways not worth imitating (a float for a
long is truncated, any truthy object is a true boolean, a naive ``datetime`` is
read in the local time zone, a missing field takes its default, extra fields
are ignored, a tuple selects a union branch by name): those values all take
the fastavro path.

Unions are where a writer chooses, so the choice is made as fastavro makes it:
fastavro takes the first branch whose validator accepts the value (preferring a
later ``double`` to a ``float``, and comparing field counts between records).
For each exact Python type the generated code dispatches on, the branch is
fixed at generation time as the first one whose fastavro validator could accept
a value of that type at all; the type is dispatched only if that branch's
writer handles it and no float or record tie-break could move fastavro
elsewhere. Since a generated writer only accepts values fastavro's validator
accepts, fastavro would pick that same branch.
"""

from __future__ import annotations

import struct
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from pipelines.contract import shapes as s
from pipelines.contract.source import Source
from pipelines.contract.wire import Reject, decimal_to_bytes, decimal_to_fixed

_NONE = type(None)
_DISPATCHED = (_NONE, bool, int, float, str, bytes, dict, list, Decimal, datetime, date, UUID)
_CONSTANTS: dict[str, Any] = {
    "Reject": Reject,
    "type": type,
    "len": len,
    "bytes": bytes,
    "bytearray": bytearray,
    "pack_float": struct.Struct("<f").pack,
    "pack_double": struct.Struct("<d").pack,
    "epoch": datetime(1970, 1, 1, tzinfo=UTC),
    "millisecond": timedelta(milliseconds=1),
    "microsecond": timedelta(microseconds=1),
    "decimal_to_bytes": decimal_to_bytes,
    "decimal_to_fixed": decimal_to_fixed,
    **{t.__name__: t for t in _DISPATCHED if t is not _NONE},
}
_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_DAYS_SHIFT = date(1970, 1, 1).toordinal()


def writer_source(shape: s.Shape) -> tuple[str, dict[str, Any]]:
    """The ``def write(value, prefix=b"")`` source, and the names it binds."""
    src = Source()
    for stem, value in _CONSTANTS.items():
        src.bind(stem, value)
    src.line(f"buf = {_c(src, 'bytearray')}(prefix)")
    src.line("put = buf.append")
    _write(src, shape, "value", checked=False)
    src.line(f"return {_c(src, 'bytes')}(buf)")
    return src.function("write", 'value, prefix=b""'), src.bound


def _c(src: Source, stem: str) -> str:
    return src.bind(stem, _CONSTANTS[stem])


def _refuse_unless(src: Source, condition: str, why: str) -> None:
    with src.block(f"if not ({condition}):"):
        src.line(f"raise {_c(src, 'Reject')}({why!r})")


def _is(src: Source, v: str, python_type: type) -> str:
    if python_type is _NONE:
        return f"{v} is None"
    return f"{_c(src, 'type')}({v}) is {_c(src, python_type.__name__)}"


def _write(src: Source, shape: s.Shape, v: str, *, checked: bool) -> None:
    """Emit code writing the value in local ``v``; ``checked``: its type is already known."""
    if not checked and not isinstance(shape, s.Union):  # a union dispatches on the type
        types = _handles(shape)
        _refuse_unless(src, " or ".join(_is(src, v, t) for t in types), f"not {_name(shape)}")
    if isinstance(shape, s.Primitive):
        _write_primitive(src, shape.kind, v)
    elif isinstance(shape, s.Record):
        _refuse_unless(src, f"{_c(src, 'len')}({v}) == {len(shape.fields)}", "not the fields")
        for f in shape.fields:
            item = src.fresh("f")
            src.line(f"{item} = {v}[{f.name!r}]")
            _write(src, f.shape, item, checked=False)
    elif isinstance(shape, s.Union):
        _write_union(src, shape, v)
    elif isinstance(shape, s.Array | s.Map):
        _write_blocks(src, shape, v)
    elif isinstance(shape, s.Fixed):
        _refuse_unless(src, f"{_c(src, 'len')}({v}) == {shape.size}", "wrong fixed size")
        src.line(f"buf += {v}")
    elif isinstance(shape, s.Enum):
        index = src.fresh("n")
        table = src.bind("indexes", {sym: i for i, sym in enumerate(shape.symbols)})
        src.line(f"{index} = {table}.get({v}, -1)")
        _refuse_unless(src, f"{index} >= 0", "not a symbol")
        _write_varint(src, f"{index} << 1")
    else:
        _write_logical(src, shape, v)


def _name(shape: s.Shape) -> str:
    return shape.kind if isinstance(shape, s.Primitive) else type(shape).__name__.lower()


def _write_logical(src: Source, shape: s.Shape, v: str) -> None:
    n = src.fresh("n")
    if isinstance(shape, s.Timestamp):
        # fastavro: ((days * 86400 + seconds) * unit_per_s + micros // (1000 or 1)) of
        # value - epoch, i.e. the floor division below; naive datetimes go to fastavro.
        unit = _c(src, "millisecond" if shape.unit == 1000 else "microsecond")
        with src.block(f"if {_is(src, v, datetime)}:"):
            _refuse_unless(src, f"{v}.tzinfo is not None", "naive datetime")
            src.line(f"{n} = ({v} - {_c(src, 'epoch')}) // {unit}")
        with src.block("else:"):
            src.line(f"{n} = {v}")
        _write_long(src, n, "long")
    elif isinstance(shape, s.Date):
        with src.block(f"if {_is(src, v, date)}:"):
            src.line(f"{n} = {v}.toordinal() - {_DAYS_SHIFT}")
        with src.block("else:"):
            src.line(f"{n} = {v}")
        _write_long(src, n, "int")
    elif isinstance(shape, s.Uuid):
        with src.block(f"if {_is(src, v, UUID)}:"):
            src.line(f"{n} = {_c(src, 'str')}({v})")
        with src.block("else:"):
            src.line(f"{n} = {v}")
        _write_length_prefixed(src, f"{n}.encode()")
    elif isinstance(shape, s.Decimal):
        if shape.size is None:
            raw = f"{_c(src, 'decimal_to_bytes')}({v}, {shape.precision}, {shape.scale})"
            _write_length_prefixed(src, raw)
        else:
            args = f"{v}, {shape.precision}, {shape.scale}, {shape.size}"
            src.line(f"buf += {_c(src, 'decimal_to_fixed')}({args})")
    else:
        raise s.UnsupportedSchema(f"no writer for {shape!r}")


def _write_primitive(src: Source, kind: str, v: str) -> None:
    if kind == "null":
        return
    if kind in ("int", "long"):
        _write_long(src, v, kind)
    elif kind == "string":
        _write_length_prefixed(src, f"{v}.encode()")
    elif kind == "bytes":
        _write_length_prefixed(src, v)
    elif kind == "boolean":
        src.line(f"put(1 if {v} else 0)")
    elif kind in ("float", "double"):
        # struct packs as fastavro's C cast does, and refuses a double too large
        # for a float, which fastavro writes as infinity: that goes to fastavro.
        src.line(f"buf += {_c(src, 'pack_' + kind)}({v})")
    else:
        raise s.UnsupportedSchema(f"no writer for {kind}")


def _write_long(src: Source, v: str, kind: str) -> None:
    low, high = _RANGES[kind]
    _refuse_unless(src, f"{_is(src, v, int)} and {low} <= {v} <= {high}", f"not an Avro {kind}")
    _write_varint(src, f"({v} << 1) ^ ({v} >> 63)")


def _write_varint(src: Source, zigzag: str) -> None:
    n = src.fresh("n")
    src.line(f"{n} = {zigzag}")
    with src.block(f"while {n} > 127:"):
        src.line(f"put(({n} & 127) | 128)")
        src.line(f"{n} >>= 7")
    src.line(f"put({n})")


def _write_length_prefixed(src: Source, expression: str) -> None:
    raw = src.fresh("raw")
    src.line(f"{raw} = {expression}")
    _write_varint(src, f"{_c(src, 'len')}({raw}) << 1")
    src.line(f"buf += {raw}")


def _write_blocks(src: Source, shape: s.Array | s.Map, v: str) -> None:
    """One block of ``len`` items, then the zero count; none for an empty value."""
    with src.block(f"if {v}:"):
        _write_varint(src, f"{_c(src, 'len')}({v}) << 1")
        if isinstance(shape, s.Map):
            key, item = src.fresh("k"), src.fresh("x")
            with src.block(f"for {key}, {item} in {v}.items():"):
                _refuse_unless(src, _is(src, key, str), "map key not a str")
                _write_length_prefixed(src, f"{key}.encode()")
                _write(src, shape.values, item, checked=False)
        else:
            item = src.fresh("x")
            with src.block(f"for {item} in {v}:"):
                _write(src, shape.items, item, checked=False)
    src.line("put(0)")


def _write_union(src: Source, shape: s.Union, v: str) -> None:
    dispatch = union_dispatch(shape)
    keyword = "if"
    for python_type, index in dispatch.items():
        with src.block(f"{keyword} {_is(src, v, python_type)}:"):
            src.line(f"put({2 * index})")
            _write(src, shape.branches[index], v, checked=True)
        keyword = "elif"
    refuse = f"raise {_c(src, 'Reject')}('no branch chosen here')"
    if not dispatch:
        src.line(refuse)
        return
    with src.block("else:"):
        src.line(refuse)


def union_dispatch(shape: s.Union) -> dict[type, int]:
    """{exact Python type: the branch fastavro's ``write_union`` picks for it}."""
    dispatch: dict[type, int] = {}
    for python_type in _DISPATCHED:
        candidates = [i for i, b in enumerate(shape.branches) if python_type in _accepts(b)]
        if not candidates:
            continue
        first = shape.branches[candidates[0]]
        later = shape.branches[candidates[0] + 1 :]
        if python_type not in _handles(first):
            continue
        if first == s.Primitive("float") and s.Primitive("double") in later:
            continue  # fastavro moves on to the double
        if isinstance(first, s.Record) and len(candidates) > 1:
            continue  # fastavro compares field counts, or takes a later non-record
        dispatch[python_type] = candidates[0]
    return dispatch


def _handles(shape: s.Shape) -> tuple[type, ...]:
    """The exact Python types the generated writer for ``shape`` writes."""
    if isinstance(shape, s.Primitive):
        by_kind: dict[str, tuple[type, ...]] = {
            "null": (_NONE,),
            "boolean": (bool,),
            "int": (int,),
            "long": (int,),
            "float": (float,),
            "double": (float,),
            "string": (str,),
            "bytes": (bytes,),
        }
        return by_kind[shape.kind]
    simple: dict[type, tuple[type, ...]] = {
        s.Fixed: (bytes,),
        s.Enum: (str,),
        s.Array: (list,),
        s.Map: (dict,),
        s.Record: (dict,),
        s.Timestamp: (datetime, int),
        s.Date: (date, int),
        s.Uuid: (UUID, str),
        s.Decimal: (Decimal,),
    }
    return simple.get(type(shape), ())


def _accepts(shape: s.Shape) -> frozenset[type]:
    """The dispatched types fastavro's validator might accept (or raise on) for ``shape``.

    From ``_validation.pyx``: ints are valid floats and doubles, ``bytes`` is a
    ``Sequence`` and so a candidate array, a logical type's ``prepare`` runs
    before validation (a ``datetime`` is a ``date``, a ``str`` is parsed as an
    ISO date and may raise), ``bool`` is never an int.
    """
    if isinstance(shape, s.Primitive):
        by_kind = {"float": {int, float}, "double": {int, float}}
        return frozenset(by_kind.get(shape.kind, _handles(shape)))
    extra: dict[type, set[type]] = {
        s.Array: {bytes},
        s.Date: {datetime, str},
        s.Decimal: {bytes},
    }
    return frozenset(_handles(shape)) | extra.get(type(shape), set())

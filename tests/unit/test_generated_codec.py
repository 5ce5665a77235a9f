"""The generated Avro codecs are fastavro, only faster: same bytes, same values, same verdicts.

``pipelines.contract.generated`` compiles a reader and a writer per schema and
``Codec`` tries them first, handing whatever they decline to fastavro. What
is proved here, with fastavro (``schemaless_reader``/``schemaless_writer``,
and ``Codec(fast=False)``) as the reference:

* every shipped schema (current and released): on its valid values the
  generated writer does not decline and writes fastavro's bytes, and the
  generated reader reads them back as fastavro does (types included: NaN bit
  patterns, time zones, Decimal exponents) and consumes all of them;
* arbitrary schemas (enums, fixed, decimals on bytes and on fixed, nested
  arrays, maps and records, unions of several branches, named references,
  date, uuid, timestamp-millis and -micros, logical types fastavro ignores)
  and odd values: each generated function either declines or gives exactly
  fastavro's result; on union-free schemas and valid values it never declines;
* damaged bytes (every truncation, bit flips, random edits, crafted varints,
  lengths, block counts, union and enum indexes, invalid UTF-8, boolean bytes)
  and invalid events: ``Codec()`` and ``Codec(fast=False)`` give the same
  outcome, the same value or the same exception with the same message;
* 20,000 simulated events go through both paths identically.
"""

from __future__ import annotations

import io
import itertools
import math
import struct
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from typing import Any, NamedTuple

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipelines.contract.codec import HEADER_SIZE, MAGIC, Codec
from pipelines.contract.generated import UnsupportedSchema, specialise
from pipelines.contract.schemas import EVENT_TYPES, SchemaVersion, default_registry
from pipelines_local.simulator import simulate
from tests.strategies import events_of, from_avro

_REGISTRY = default_registry()
_SHIPPED: list[SchemaVersion] = sorted(
    {v.fingerprint: v for v in (*_REGISTRY.current.values(), *_REGISTRY.all_versions())}.values(),
    key=lambda v: (v.event_type, v.version),
)
FAST = Codec()
REFERENCE = Codec(fast=False)

_HEALTH = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=_HEALTH
    )


def _version_id(version: SchemaVersion) -> str:
    return f"{version.event_type}-v{version.version}"


# --- comparing outcomes ---------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (floats by bit pattern)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return _same(list(a), list(b)) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Decimal):
        return a.as_tuple() == b.as_tuple()
    if isinstance(a, datetime):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and type(a.tzinfo) is type(b.tzinfo)
            and a.tzinfo == b.tzinfo
            and a.fold == b.fold
        )
    return bool(a == b)


Outcome = tuple[Any, ...]


def _outcome(fn: Callable[..., Any], *args: Any) -> Outcome:
    """("returns", value) or ("raises", exception class, message)."""
    try:
        return ("returns", fn(*args))
    except Exception as exc:
        return ("raises", type(exc), str(exc))


def _assert_same_outcome(fast: Outcome, reference: Outcome, what: Any) -> None:
    if reference[0] == "returns":
        assert fast[0] == "returns", (what, fast, reference)
        assert _same(fast[1], reference[1]), (what, fast, reference)
    else:
        assert fast == reference, what


def _fastavro_write(schema: Any, value: Any) -> bytes:
    buf = io.BytesIO()
    schemaless_writer(buf, schema, value)
    return buf.getvalue()


def _fastavro_read(schema: Any, data: bytes, pos: int = 0) -> tuple[Any, int]:
    buf = io.BytesIO(data)
    buf.seek(pos)
    value = schemaless_reader(buf, schema, None)
    return value, buf.tell()


def _write_agrees_or_declines(write: Callable[[Any], bytes], schema: Any, value: Any) -> bool:
    """The generated writer declines, or writes exactly fastavro's bytes. True if it wrote."""
    got = _outcome(write, value)
    if got[0] == "raises":
        return False
    expected = _outcome(_fastavro_write, schema, value)
    assert expected[0] == "returns", (value, got, expected)
    assert type(got[1]) is bytes and got[1] == expected[1], (value, got, expected)
    return True


def _read_agrees_or_declines(
    read: Callable[[bytes, int], Any], schema: Any, data: bytes, pos: int = 0
) -> bool:
    """The generated reader declines, or returns fastavro's value and end. True if it read."""
    got = _outcome(read, data, pos)
    if got[0] == "raises":
        return False
    expected = _outcome(_fastavro_read, schema, data, pos)
    assert expected[0] == "returns", (data, got, expected)
    assert _same(got[1], expected[1]), (data, got, expected)
    return True


def _reads_as_fastavro(read: Callable[[bytes, int], Any], schema: Any, body: bytes) -> None:
    """Well-formed bytes: the reader returns what fastavro returns, or raises where it raises.

    (fastavro raises on some bytes its own writer wrote: text that is no UUID in a
    uuid field, a timestamp past the year 9999.)
    """
    expected = _outcome(_fastavro_read, schema, body)
    got = _outcome(read, body, 0)
    if expected[0] == "raises":
        assert got[0] == "raises", (body, got, expected)
        return
    assert expected[1][1] == len(body)
    assert got[0] == "returns" and _same(got[1], expected[1]), (body, got, expected)
    framed = b"\x01" + body + b"\x00"
    assert _same(read(framed, 1), (expected[1][0], 1 + len(body)))


# --- shipped schemas -------------------------------------------------------------


def _valid_values(version: SchemaVersion) -> st.SearchStrategy[Any]:
    def fix(value: dict[str, Any], fixed: bool) -> dict[str, Any]:
        if fixed:
            value["metadata"]["event_type"] = version.event_type
        return value

    return st.builds(fix, from_avro(version.resolved), st.booleans())


@pytest.mark.parametrize("version", _SHIPPED, ids=_version_id)
@_settings(150)
@given(data=st.data())
def test_shipped_schema_values_write_and_read_as_fastavro(
    version: SchemaVersion, data: st.DataObject
) -> None:
    value = data.draw(_valid_values(version), label="value")
    generated = specialise(version.resolved)
    body = _fastavro_write(version.parsed, value)
    assert generated.write(value) == body
    header = MAGIC + version.fingerprint
    assert generated.write(value, header) == header + body

    expected, end = _fastavro_read(version.parsed, body)
    assert end == len(body)
    assert _same(generated.read(body, 0), (expected, len(body)))
    framed = b"\x07\x00" + body + b"\xff\x01"
    assert _same(generated.read(framed, 2), (expected, 2 + len(body)))


@pytest.mark.parametrize("version", _SHIPPED, ids=_version_id)
@_settings(120)
@given(data=st.data())
def test_shipped_schema_odd_values_agree_or_decline(
    version: SchemaVersion, data: st.DataObject
) -> None:
    odd = data.draw(st.booleans(), label="odd")
    value = data.draw(_values(version.resolved, odd=odd), label="value")
    generated = specialise(version.resolved)
    wrote = _write_agrees_or_declines(generated.write, version.parsed, value)
    event(f"odd={odd} written={wrote}")
    if not odd:
        assert wrote, value
    if wrote:
        _reads_as_fastavro(generated.read, version.parsed, generated.write(value))


@pytest.mark.parametrize("version", _SHIPPED, ids=_version_id)
def test_parsed_and_resolved_schemas_give_the_same_code(version: SchemaVersion) -> None:
    from_parsed, from_resolved = specialise(version.parsed), specialise(version.resolved)
    assert from_parsed.reader_source == from_resolved.reader_source
    assert from_parsed.writer_source == from_resolved.writer_source


# --- arbitrary schemas -----------------------------------------------------------

_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
_SYMBOLS = ("A", "B", "C", "D", "E_1")
_ZONES = (UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8)))


class Generated(NamedTuple):
    schema: Any
    # Every shape in it is one code is generated for (if fastavro parses it).
    supported: bool


def _max_digits(size: int) -> int:
    """The decimal digits a signed fixed of ``size`` bytes always holds."""
    return max(0, math.floor(math.log10(2 ** (8 * size - 1) - 1))) if size else 0


@st.composite
def _schemas(draw: st.DrawFn) -> Generated:
    """An Avro schema: named types defined once, then referred to by name."""
    names: list[str] = []
    counter = itertools.count()
    supported = True

    def fresh() -> str:
        return f"T{next(counter)}"

    def logical() -> Any:
        nonlocal supported
        choice = draw(
            st.sampled_from(
                (
                    "timestamp-millis",
                    "timestamp-micros",
                    "date",
                    "uuid",
                    "bytes-decimal",
                    "fixed-decimal",
                    "ignored",
                    "unsupported",
                )
            )
        )
        if choice in ("timestamp-millis", "timestamp-micros"):
            return {"type": "long", "logicalType": choice}
        if choice == "date":
            return {"type": "int", "logicalType": "date"}
        if choice == "uuid":
            return {"type": "string", "logicalType": "uuid"}
        if choice == "bytes-decimal":
            precision = draw(st.integers(1, 24))
            scale = draw(st.integers(0, precision))
            return {
                "type": "bytes",
                "logicalType": "decimal",
                "precision": precision,
                "scale": scale,
            }
        if choice == "fixed-decimal":
            size = draw(st.integers(1, 9))
            precision = draw(st.integers(1, max(1, _max_digits(size))))
            scale = draw(st.integers(0, precision))
            name = fresh()
            names.append(name)
            return {
                "type": "fixed",
                "name": name,
                "size": size,
                "logicalType": "decimal",
                "precision": precision,
                "scale": scale,
            }
        if choice == "ignored":  # logical types fastavro does not convert: the plain type
            return draw(
                st.sampled_from(
                    (
                        {"type": "int", "logicalType": "timestamp-millis"},
                        {"type": "string", "logicalType": "no-such-type"},
                        {"type": "bytes", "logicalType": "uuid"},
                    )
                )
            )
        supported = False
        return draw(
            st.sampled_from(
                (
                    {"type": "int", "logicalType": "time-millis"},
                    {"type": "long", "logicalType": "time-micros"},
                    {"type": "long", "logicalType": "local-timestamp-millis"},
                )
            )
        )

    def node(depth: int, in_union: bool = False) -> Any:
        kinds = ["primitive", "primitive", "logical", "enum", "fixed"]
        if names:
            kinds.append("reference")
        if depth > 0:
            kinds += ["array", "map", "record", "record"]
            if not in_union:
                kinds += ["union", "union"]
        if in_union:
            kinds += ["contender", "contender", "contender"]
        kind = draw(st.sampled_from(kinds))
        if kind == "contender":
            name = fresh()
            branch = draw(st.sampled_from(_contenders(name)))
            if isinstance(branch, dict) and "name" in branch:
                names.append(name)
            return branch
        if kind == "primitive":
            primitive = draw(st.sampled_from(_PRIMITIVES))
            return primitive if draw(st.booleans()) else {"type": primitive}
        if kind == "logical":
            return logical()
        if kind == "reference":
            return draw(st.sampled_from(names))
        if kind == "enum":
            symbols = draw(st.lists(st.sampled_from(_SYMBOLS), min_size=1, max_size=4, unique=True))
            name = fresh()
            names.append(name)
            return {"type": "enum", "name": name, "symbols": symbols}
        if kind == "fixed":
            name = fresh()
            names.append(name)
            return {"type": "fixed", "name": name, "size": draw(st.integers(0, 6))}
        if kind == "array":
            return {"type": "array", "items": node(depth - 1)}
        if kind == "map":
            return {"type": "map", "values": node(depth - 1)}
        if kind == "union":
            branches = [node(depth - 1, in_union=True) for _ in range(draw(st.integers(1, 4)))]
            if draw(st.booleans()):
                branches.insert(draw(st.integers(0, len(branches))), "null")
            return branches
        name = fresh()  # a record, named once its fields are (no recursion)
        fields = [
            {"name": f"f{i}", "type": node(depth - 1)} for i in range(draw(st.integers(1, 4)))
        ]
        names.append(name)
        return {"type": "record", "name": name, "fields": fields}

    return Generated(node(3), supported)


def _contenders(name: str) -> list[Any]:
    """Union branches that compete for the same Python values (``name`` for the named)."""
    return [
        "null",
        "boolean",
        "int",
        "long",
        "float",
        "double",
        "bytes",
        "string",
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "int", "logicalType": "date"},
        {"type": "string", "logicalType": "uuid"},
        {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
        {"type": "fixed", "name": name, "size": 3, "logicalType": "decimal", "precision": 4},
        {"type": "fixed", "name": name, "size": 2},
        {"type": "enum", "name": name, "symbols": ["A", "B"]},
        {"type": "array", "items": "long"},
        {"type": "array", "items": "string"},
        {"type": "map", "values": "long"},
        {"type": "map", "values": "string"},
        {"type": "record", "name": name, "fields": [{"name": "f0", "type": "long"}]},
        {
            "type": "record",
            "name": name,
            "fields": [{"name": "f0", "type": "long"}, {"name": "f1", "type": ["null", "string"]}],
        },
    ]


_CONTENDED: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    1,
    -5,
    2**31,
    2**40,
    2**63,
    1.5,
    -0.0,
    float("nan"),
    3.4e38,
    1e300,
    "",
    "A",
    "x",
    "2024-05-06",
    "12345678-1234-5678-1234-567812345678",
    b"",
    b"ab",
    b"abc",
    Decimal("1.5"),
    Decimal("-12.5"),
    Decimal("1234.5"),
    Decimal("123456.78"),
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 5, 6, 7, 8, 9),
    date(2024, 5, 6),
    uuid.UUID(int=12345),
    [],
    [1, 2],
    ["a"],
    {},
    {"f0": 1},
    {"f0": 1, "f1": None},
    {"f0": 1, "f1": "s"},
    {"k": "v"},
    {"k": 1},
    ("string", "x"),
    ("long", 3),
)


def _union_agrees_or_declines(union: list[Any]) -> int:
    """Every contended value written through ``union``; how many the generated code wrote."""
    parsed = _parsed(union)
    if parsed is None:  # fastavro refuses the union (two branches of one name, say)
        with pytest.raises(UnsupportedSchema):
            specialise(union)
        return 0
    codec = specialise(union)
    wrote = 0
    for value in _CONTENDED:
        if _write_agrees_or_declines(codec.write, parsed, value):
            wrote += 1
        written = _outcome(_fastavro_write, parsed, value)
        if written[0] == "returns":
            _reads_as_fastavro(codec.read, parsed, written[1])
    return wrote


def test_unions_of_two_contenders_pick_fastavros_branch() -> None:
    count = len(_contenders("N"))
    wrote = 0
    for first, second in itertools.product(range(count), repeat=2):
        union = [_contenders("N0")[first], _contenders("N1")[second]]
        wrote += _union_agrees_or_declines(union)
    assert wrote > count * count  # the generated code writes most of them itself


@_settings(500)
@given(st.lists(st.integers(0, len(_contenders("N")) - 1), min_size=3, max_size=6))
def test_unions_of_several_contenders_pick_fastavros_branch(picks: list[int]) -> None:
    _union_agrees_or_declines([_contenders(f"N{i}")[c] for i, c in enumerate(picks)])


def _double(bits: int) -> float:
    value: float = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    return value


def _single(bits: int) -> float:
    value: float = struct.unpack("<f", bits.to_bytes(4, "little"))[0]
    return value


class _Str(str):
    pass


class _Int(IntEnum):
    ONE = 1


class _Float(float):
    pass


_EXTREMES = (0, 1, -1, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1, 2**63 - 1, -(2**63))
_TOO_WIDE = (2**63, -(2**63) - 1, 2**64)
_DOUBLES = st.one_of(st.floats(), st.integers(0, 2**64 - 1).map(_double))
_SINGLES = st.one_of(st.floats(width=32), st.integers(0, 2**32 - 1).map(_single))
_DATETIMES = st.datetimes(timezones=st.sampled_from(_ZONES))
_ODDITIES = st.sampled_from(
    (
        None,
        True,
        False,
        0,
        1,
        -1,
        *_TOO_WIDE,
        2**31,
        -(2**31) - 1,
        1.5,
        -0.0,
        float("nan"),
        float("inf"),
        3.5e38,
        1e300,
        "",
        "x",
        "A",
        "\ud800",
        "2024-05-06",
        "not-a-uuid",
        b"",
        b"abcd",
        bytearray(b"ab"),
        Decimal("1.5"),
        Decimal("-0"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        Decimal("1E+40"),
        Decimal("1.00000000000000000000000001"),
        datetime(2024, 5, 6, 7, 8, 9, 123456),
        datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=_ZONES[1]),
        date(2024, 5, 6),
        uuid.UUID(int=5),
        [],
        [1],
        [None],
        {},
        {"A": 1},
        {1: 2},
        ("string", "x"),
        ("null", None),
        _Str("x"),
        _Int.ONE,
        _Float(1.0),
        OrderedDict(),
    )
)


def _decimals(precision: int, scale: int, size: int | None, odd: bool) -> st.SearchStrategy[Any]:
    digits = st.lists(st.integers(0, 9), min_size=1, max_size=precision).map(tuple)
    exponent = st.integers(-scale, 3)
    value = st.builds(lambda s, d, e: Decimal((s, d, e)), st.integers(0, 1), digits, exponent)
    if size is not None and not odd:  # fits the fixed, as a valid value does
        value = value.filter(lambda d: _unscaled(d, scale).bit_length() < 8 * size)
    return value


def _unscaled(value: Decimal, scale: int) -> int:
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return int("".join(map(str, digits))) * 10 ** (exponent + scale)


def _values(schema: Any, *, odd: bool, names: dict[str, Any] | None = None) -> Any:
    """Values of ``schema``: valid ones, or (``odd``) anything at any position."""
    named: dict[str, st.SearchStrategy[Any]] = {} if names is None else names
    value = _valid(schema, odd, named)
    return st.one_of(value, _ODDITIES) if odd else value


def _valid(schema: Any, odd: bool, named: dict[str, st.SearchStrategy[Any]]) -> Any:
    if isinstance(schema, list):
        return st.one_of([_values(b, odd=odd, names=named) for b in schema])
    if isinstance(schema, str):
        if schema in named:
            return named[schema]
        schema = {"type": schema}
    kind = schema["type"]
    if isinstance(kind, list | dict):
        return _valid(kind, odd, named)
    if kind in named:
        return named[kind]
    logical = f"{kind}-{schema.get('logicalType')}"
    strategy: st.SearchStrategy[Any]
    if logical in ("long-timestamp-millis", "long-timestamp-micros"):
        strategy = st.one_of(_DATETIMES, st.integers(-(2**63), 2**63 - 1))
    elif logical == "int-date":
        strategy = st.one_of(st.dates(), st.integers(-(2**31), 2**31 - 1))
    elif logical == "string-uuid":
        strategy = st.one_of(st.uuids(), st.uuids().map(str))
    elif logical in ("bytes-decimal", "fixed-decimal"):
        size = schema.get("size") if kind == "fixed" else None
        strategy = _decimals(schema["precision"], schema.get("scale", 0), size, odd)
    elif kind in ("int", "long"):
        low, high = (-(2**31), 2**31 - 1) if kind == "int" else (-(2**63), 2**63 - 1)
        strategy = st.one_of(
            st.integers(low, high), st.sampled_from(_EXTREMES).filter(lambda n: low <= n <= high)
        )
    elif kind == "null":
        strategy = st.none()
    elif kind == "boolean":
        strategy = st.booleans()
    elif kind == "float":
        strategy = st.one_of(_SINGLES, _DOUBLES) if odd else _SINGLES
    elif kind == "double":
        strategy = _DOUBLES
    elif kind == "bytes":
        strategy = st.binary(max_size=16)
    elif kind == "string":
        strategy = st.text(max_size=12)
    elif kind == "fixed":
        strategy = st.binary(min_size=schema["size"], max_size=schema["size"])
    elif kind == "enum":
        strategy = st.sampled_from(schema["symbols"])
    elif kind == "array":
        strategy = st.lists(_values(schema["items"], odd=odd, names=named), max_size=3)
    elif kind == "map":
        keys = st.text(max_size=6)
        strategy = st.dictionaries(
            keys, _values(schema["values"], odd=odd, names=named), max_size=3
        )
    elif kind == "record":
        fields = {f["name"]: _values(f["type"], odd=odd, names=named) for f in schema["fields"]}
        strategy = st.fixed_dictionaries(fields)
        if odd:
            strategy = st.tuples(strategy, st.sampled_from(("as is", "drop", "extra"))).map(
                _reshaped
            )
    else:
        raise ValueError(f"no values for {schema!r}")
    if kind in ("record", "enum", "fixed"):
        named[schema["name"]] = strategy
        if "namespace" in schema:
            named[f"{schema['namespace']}.{schema['name']}"] = strategy
    return strategy


def _reshaped(drawn: tuple[dict[str, Any], str]) -> dict[str, Any]:
    record, how = drawn
    if how == "drop" and record:
        record.pop(next(iter(record)))
    elif how == "extra":
        record["extra"] = 1
    return record


def _has_union(schema: Any) -> bool:
    if isinstance(schema, list):
        return True
    if isinstance(schema, dict):
        return any(
            _has_union(v) for k, v in schema.items() if k in ("type", "items", "values")
        ) or any(_has_union(f["type"]) for f in schema.get("fields", ()))
    return False


def _definitions(schema: Any, named: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type the schema defines, by name (and full name), wherever it is."""
    named = {} if named is None else named
    if isinstance(schema, list):
        for branch in schema:
            _definitions(branch, named)
    elif isinstance(schema, dict):
        kind = schema["type"]
        if isinstance(kind, list | dict):
            _definitions(kind, named)
        elif kind in ("record", "enum", "fixed"):
            named[schema["name"]] = schema
            if "namespace" in schema:
                named[f"{schema['namespace']}.{schema['name']}"] = schema
        for f in schema.get("fields", ()) if kind == "record" else ():
            _definitions(f["type"], named)
        if kind == "array":
            _definitions(schema["items"], named)
        if kind == "map":
            _definitions(schema["values"], named)
    return named


def _definition(schema: Any, named: dict[str, Any]) -> Any:
    """The schema with references and nesting looked through: a union, or a dict."""
    while True:
        if isinstance(schema, str):
            schema = named.get(schema, {"type": schema})
        elif isinstance(schema, dict) and (
            isinstance(schema["type"], list | dict) or schema["type"] in named
        ):
            schema = schema["type"]
        else:
            return schema


def _min_size(schema: Any, named: dict[str, Any]) -> int:
    """The fewest bytes one value takes."""
    schema = _definition(schema, named)
    if isinstance(schema, list):
        return 1
    kind = schema["type"]
    if kind == "record":
        return sum(_min_size(f["type"], named) for f in schema["fields"])
    sizes = {"null": 0, "float": 4, "double": 8, "fixed": schema.get("size", 1)}
    return int(sizes.get(kind, 1))


def _loops_on_damage(schema: Any) -> bool:
    """An array whose items can take no bytes: a damaged count makes both readers spin."""
    named = _definitions(schema)
    return any(
        d.get("type") == "array" and _min_size(d["items"], named) == 0 for d in _nodes(schema)
    )


def _nodes(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema node written out (not references), depth first."""
    if isinstance(schema, list):
        for branch in schema:
            yield from _nodes(branch)
    elif isinstance(schema, dict):
        yield schema
        kind = schema["type"]
        if isinstance(kind, list | dict):
            yield from _nodes(kind)
        for f in schema.get("fields", ()) if kind == "record" else ():
            yield from _nodes(f["type"])
        if kind == "array":
            yield from _nodes(schema["items"])
        if kind == "map":
            yield from _nodes(schema["values"])


def _parsed(schema: Any) -> Any | None:
    try:
        return parse_schema(schema)
    except Exception:
        return None


@_settings(800)
@given(generated=_schemas(), data=st.data())
def test_arbitrary_schemas_agree_with_fastavro_or_decline(
    generated: Generated, data: st.DataObject
) -> None:
    schema = generated.schema
    parsed = _parsed(schema)
    try:
        codec = specialise(schema)
    except UnsupportedSchema:
        # fastavro keeps the schema; only shapes no code is generated for get here.
        assert parsed is None or not generated.supported, schema
        event("unsupported schema")
        return
    assert parsed is not None, schema
    odd = data.draw(st.booleans(), label="odd")
    value = data.draw(_values(schema, odd=odd), label="value")
    wrote = _write_agrees_or_declines(codec.write, parsed, value)
    if not odd and not _has_union(schema):
        assert wrote, (schema, value)
    event(f"odd={odd} written={wrote}")
    written = _outcome(_fastavro_write, parsed, value)
    if written[0] == "raises":
        return
    body = written[1]
    _reads_as_fastavro(codec.read, parsed, body)

    if _loops_on_damage(schema):
        return
    for damaged in data.draw(_damaged(schema, body), label="damaged"):
        _read_agrees_or_declines(codec.read, parsed, damaged)


def test_unsupported_shapes_stay_with_fastavro() -> None:
    recursive = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": "next", "type": ["null", "Node"]}],
    }
    for schema in (
        recursive,
        {"type": "int", "logicalType": "time-millis"},
        {"type": "long", "logicalType": "local-timestamp-micros"},
        [{"type": "fixed", "name": f"F{i}", "size": 1} for i in range(65)],
        {"type": "no-such-type"},
    ):
        with pytest.raises(UnsupportedSchema):
            specialise(schema)


# --- varints, booleans and unions byte by byte ----------------------------------


def _zigzag(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _varints() -> Iterator[bytes]:
    """Canonical, padded, overlong and truncated varints."""
    for n in (*_EXTREMES, 63, 64, -64, -65, 2**62, -(2**62), 8191, 8192):
        canonical = _zigzag(n)
        yield canonical
        yield canonical[:-1] + bytes([canonical[-1] | 0x80, 0])  # padded, same value
        yield canonical[:-1]  # truncated (or empty)
        yield canonical[:-1] + bytes([canonical[-1] | 0x80])  # continues past the end
    for last in (0, 1, 2, 3, 0x7F, 0x80):
        yield b"\xff" * 9 + bytes([last])  # tenth byte: one bit allowed
        yield b"\x80" * 9 + bytes([last])
    yield b"\xff" * 10 + b"\x01"  # eleven bytes
    yield b"\x80" * 10 + b"\x00"
    yield b"\x80" * 20 + b"\x00"


@pytest.mark.parametrize(
    "schema",
    [
        "long",
        "int",
        {"type": "long", "logicalType": "timestamp-millis"},
        {"type": "long", "logicalType": "timestamp-micros"},
        {"type": "int", "logicalType": "date"},
        {"type": "array", "items": "long"},
        {"type": "map", "values": "int"},
        "string",
        {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]},
        ["null", "long", "string"],
        {"type": "bytes", "logicalType": "decimal", "precision": 5, "scale": 2},
    ],
    ids=repr,
)
def test_every_varint_form_agrees_or_declines(schema: Any) -> None:
    codec, parsed = specialise(schema), parse_schema(schema)
    for varint in _varints():
        for tail in (b"", b"\x00", b"\x02\x02", b"\x04ab\x00"):
            data = varint + tail
            _read_agrees_or_declines(codec.read, parsed, data)
            _read_agrees_or_declines(codec.read, parsed, b"\x00" + data, 1)


@pytest.mark.parametrize(
    "schema",
    [
        "boolean",
        ["null", "boolean"],
        {"type": "record", "name": "R", "fields": [{"name": "b", "type": "boolean"}]},
        {"type": "array", "items": "boolean"},
    ],
    ids=repr,
)
def test_every_boolean_byte_agrees_or_declines(schema: Any) -> None:
    codec, parsed = specialise(schema), parse_schema(schema)
    read = 0
    for byte in range(256):
        for data in (bytes([byte]), bytes([2, byte]), bytes([2, byte, 0]), bytes([3, 2, byte, 0])):
            read += _read_agrees_or_declines(codec.read, parsed, data)
    assert read  # the well-formed ones are read by the generated code


def test_every_union_index_agrees_or_declines() -> None:
    schema = ["null", "long", "string", {"type": "enum", "name": "E", "symbols": ["A", "B"]}]
    codec, parsed = specialise(schema), parse_schema(schema)
    for index in range(-6, 7):
        for tail in (b"", b"\x02", b"\x04ab", b"\x02\x00"):
            _read_agrees_or_declines(codec.read, parsed, _zigzag(index) + tail)
            padded = _zigzag(index)[:-1] + bytes([_zigzag(index)[-1] | 0x80, 0]) + tail
            _read_agrees_or_declines(codec.read, parsed, padded)
    for data in (b"\x00", b"\x02\x02", b"\x04\x02a", b"\x06\x02"):
        assert _same(codec.read(data, 0), _fastavro_read(parsed, data))


def test_floats_read_and_write_bit_for_bit() -> None:
    for kind, width, unpack in (("float", 4, _single), ("double", 8, _double)):
        codec, parsed = specialise(kind), parse_schema(kind)
        patterns = [
            0,
            1,
            (1 << (8 * width - 1)),  # -0.0
            *(
                (0x7F800000, 0x7F800001, 0x7FC00001, 0xFF800001, 0x7FBFFFFF, 0xFFFFFFFF)
                if width == 4
                else (0x7FF0000000000001, 0x7FF8000000000001, 0xFFF0000000000001)
            ),
            *range(0, 2 ** (8 * width), 2 ** (8 * width) // 997),
        ]
        for bits in patterns:
            data = bits.to_bytes(width, "little")
            assert _same(codec.read(data, 0), _fastavro_read(parsed, data))
            assert _write_agrees_or_declines(codec.write, parsed, unpack(bits))
            # Any double: a float may decline one too wide for 32 bits, a double never does.
            wrote = _write_agrees_or_declines(codec.write, parsed, _double(bits * 7919 % 2**64))
            assert wrote or kind == "float"


# --- damaged records through the codec -------------------------------------------


class _Site(NamedTuple):
    kind: str
    start: int
    end: int
    info: Any = None


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        b = data[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return (n >> 1) ^ -(n & 1), pos


def _sites(schema: Any, data: bytes, pos: int) -> list[_Site]:
    """Where each varint, length, block, index and boolean of a valid encoding lies."""
    sites: list[_Site] = []
    end = _walk(schema, data, pos, _definitions(schema), sites)
    assert end == len(data)
    return sites


def _walk(schema: Any, data: bytes, pos: int, named: dict[str, Any], sites: list[_Site]) -> int:
    schema = _definition(schema, named)
    if isinstance(schema, list):
        start = pos
        index, pos = _read_varint(data, pos)
        sites.append(_Site("union", start, pos, len(schema)))
        return _walk(schema[index], data, pos, named, sites)
    kind = schema["type"]
    start = pos
    if kind == "null":
        return pos
    if kind == "boolean":
        sites.append(_Site("boolean", pos, pos + 1))
        return pos + 1
    if kind in ("int", "long", "enum"):
        _, pos = _read_varint(data, pos)
        sites.append(_Site(kind if kind == "enum" else "long", start, pos, schema.get("symbols")))
        return pos
    if kind in ("float", "double"):
        return pos + (4 if kind == "float" else 8)
    if kind in ("bytes", "string"):
        n, pos = _read_varint(data, pos)
        sites.append(_Site("length", start, pos, n))
        if kind == "string" and n:
            sites.append(_Site("utf8", pos, pos + n))
        return pos + n
    if kind == "fixed":
        return pos + int(schema["size"])
    if kind == "record":
        for f in schema["fields"]:
            pos = _walk(f["type"], data, pos, named, sites)
        return pos
    item = schema["items"] if kind == "array" else schema["values"]
    while True:
        start = pos
        count, pos = _read_varint(data, pos)
        if count == 0:
            sites.append(_Site("end", start, pos))
            return pos
        items = pos
        for _ in range(count):
            if kind == "map":
                pos = _walk("string", data, pos, named, sites)
            pos = _walk(item, data, pos, named, sites)
        sites.append(_Site("block", start, items, (count, pos - items)))


def _padded(varint: bytes) -> bytes:
    return varint[:-1] + bytes([varint[-1] | 0x80, 0])


_HUGE = (2**31, 2**62, 2**63 - 1, -(2**63), -(2**31), -1)


def _crafted(site: _Site, data: bytes) -> Iterator[bytes]:
    """Each site of a valid encoding rewritten into something else."""
    head, original, tail = data[: site.start], data[site.start : site.end], data[site.end :]
    replacements: list[bytes] = [_padded(original), b"\xff" * 10 + b"\x01", b"\xff" * 9 + b"\x02"]
    if site.kind == "long":
        replacements += [_zigzag(n) for n in (*_EXTREMES, *_HUGE)]
    elif site.kind == "length":
        n = site.info
        lengths = (-2, -(2**62), n + 1, n - 1, len(tail) + 1, 0, *_HUGE)
        replacements += [_zigzag(m) for m in lengths]
    elif site.kind in ("union", "enum"):
        n = site.info if site.kind == "union" else len(site.info)
        replacements += [_zigzag(i) for i in (n, n + 1, -1, -n, -n - 1, 64, *_HUGE)]
    elif site.kind == "boolean":
        replacements = [bytes([b]) for b in (2, 3, 0x7F, 0x80, 0xFF)]
    elif site.kind in ("block", "end"):
        count, size = site.info if site.kind == "block" else (0, 0)
        replacements += [_zigzag(c) for c in (count + 1, count - 1, count * 2, -1, 1, *_HUGE)]
        if count:  # the block as a negative count and its byte size: the same items
            replacements += [_zigzag(-count) + _zigzag(size), _zigzag(-count) + _zigzag(0)]
            replacements += [_zigzag(-count), _zigzag(-count) + b"\xff" * 10 + b"\x01"]
    elif site.kind == "utf8":
        for b in (0x80, 0xBF, 0xC0, 0xC1, 0xC3, 0xE2, 0xED, 0xF4, 0xF5, 0xFF):
            yield head + bytes([b]) + original[1:] + tail
            yield head + original[:-1] + bytes([b]) + tail
        if len(original) >= 3:
            for bad in (b"\xed\xa0\x80", b"\xe0\x80\x80", b"\xf0\x9f\x98", b"\xc0\xaf\x00"):
                yield head + bad + original[3:] + tail
        return
    for replacement in replacements:
        yield head + replacement + tail


def _damaged(schema: Any, body: bytes) -> st.SearchStrategy[list[bytes]]:
    """A few damaged copies of ``body``: cut, edited, or one site rewritten."""
    sites = _sites(schema, body, 0)
    crafted = [d for s in sites for d in _crafted(s, body)]
    edits = st.lists(_edit(len(body)), min_size=1, max_size=3).map(lambda es: _apply(body, es))
    options = [edits, st.integers(0, max(0, len(body) - 1)).map(lambda i: body[:i])]
    if crafted:
        options.append(st.sampled_from(crafted))
    return st.lists(st.one_of(options), max_size=12)


def _edit(size: int) -> st.SearchStrategy[tuple[str, int, int]]:
    return st.tuples(
        st.sampled_from(("replace", "insert", "delete", "flip")),
        st.integers(0, max(0, size)),
        st.integers(0, 255),
    )


def _apply(data: bytes, edits: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for how, at, byte in edits:
        at = min(at, len(out))
        if how == "insert":
            out.insert(at, byte)
        elif at < len(out):
            if how == "replace":
                out[at] = byte
            elif how == "delete":
                del out[at]
            else:
                out[at] ^= 1 << (byte % 8)
    return bytes(out)


def _decoded_alike(data: bytes) -> None:
    _assert_same_outcome(_outcome(FAST.decode, data), _outcome(REFERENCE.decode, data), data)


def _simulated(per_type: int) -> list[dict[str, Any]]:
    events = simulate(600, seed=5).events
    picked: list[dict[str, Any]] = []
    for event_type in EVENT_TYPES:
        picked += [e for e in events if e["metadata"]["event_type"] == event_type][:per_type]
    return picked


def test_every_truncation_and_bit_flip_decodes_alike() -> None:
    for e in _simulated(3):
        wire = REFERENCE.encode(e)
        assert FAST.encode(e) == wire
        for cut in range(len(wire)):
            _decoded_alike(wire[:cut])
        for bit in range(8 * len(wire)):
            damaged = bytearray(wire)
            damaged[bit // 8] ^= 1 << (bit % 8)
            _decoded_alike(bytes(damaged))
        _decoded_alike(wire + b"\x00")
        _decoded_alike(bytearray(wire))  # not bytes: fastavro alone


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@_settings(40)
@given(data=st.data())
def test_damaged_records_decode_alike(event_type: str, data: st.DataObject) -> None:
    wire = REFERENCE.encode(data.draw(events_of(event_type), label="event"))
    version = _REGISTRY.current[event_type]
    body = wire[HEADER_SIZE:]
    assert specialise(version.resolved).read(wire, HEADER_SIZE)[1] == len(wire)
    for cut in range(HEADER_SIZE, len(wire)):
        _decoded_alike(wire[:cut])
    for site in _sites(version.resolved, body, 0):
        for damaged in _crafted(site, body):
            _decoded_alike(wire[:HEADER_SIZE] + damaged)
    for edits in data.draw(
        st.lists(st.lists(_edit(len(body)), min_size=1, max_size=4), max_size=30)
    ):
        _decoded_alike(wire[:HEADER_SIZE] + _apply(body, edits))


# --- invalid events through the codec --------------------------------------------

_DELETE = object()
_PALETTE: tuple[Any, ...] = (
    _DELETE,
    None,
    True,
    0,
    -1,
    2**31,
    -(2**31) - 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    2**64,
    1.5,
    -0.0,
    float("nan"),
    float("inf"),
    3.5e38,
    "",
    "x",
    "UserRegistered",
    "\ud800",
    b"",
    b"bytes",
    bytearray(b"ab"),
    Decimal("1.5"),
    Decimal("12345678901234.56789"),
    Decimal("0.00001"),
    Decimal("1E+20"),
    Decimal("NaN"),
    Decimal("-0"),
    datetime(2024, 5, 6, 7, 8, 9, 123456),
    datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=_ZONES[1]),
    datetime(1, 1, 1, tzinfo=UTC),
    date(2024, 5, 6),
    uuid.UUID(int=7),
    [],
    ["x"],
    [{"name": "x", "confidence": 1}],
    {},
    {"k": "v"},
    {1: "v"},
    {"k": 1},
    ("string", "x"),
    ("null", None),
    _Str("x"),
    _Int.ONE,
    _Float(2.5),
    OrderedDict(k="v"),
    object(),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*path, key)
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*path, i)
            yield from _paths(item, (*path, i))


def _with(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced (or deleted)."""
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    head, rest = path[0], path[1:]
    if not rest and new is _DELETE:
        del copy[head]
    else:
        copy[head] = _with(value[head], rest, new)
    return copy


def _mutations(e: dict[str, Any]) -> Iterator[Any]:
    for path in _paths(e):
        for new in _PALETTE:
            yield _with(e, path, new)
    for path in ((), *_paths(e)):
        node = e
        for key in path:
            node = node[key]
        if isinstance(node, dict):
            for key, extra in (("extra", "x"), (1, "x"), ("", None)):
                yield _with(e, path, {**node, key: extra})
    yield from (None, [], "x", {"metadata": None})


def _encoded_alike(e: Any) -> None:
    _assert_same_outcome(_outcome(FAST.encode, e), _outcome(REFERENCE.encode, e), e)


def test_invalid_simulated_events_encode_alike() -> None:
    for e in _simulated(2):
        for mutated in _mutations(e):
            _encoded_alike(mutated)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
@_settings(15)
@given(data=st.data())
def test_invalid_events_encode_alike(event_type: str, data: st.DataObject) -> None:
    e = data.draw(events_of(event_type), label="event")
    version = _REGISTRY.current[event_type]
    generated = specialise(version.resolved)
    assert generated.write(e, MAGIC + version.fingerprint) == REFERENCE.encode(e)
    for mutated in _mutations(e):
        _encoded_alike(mutated)
        # Below the codec's own checks (decimals): the generated writer itself.
        _write_agrees_or_declines(generated.write, version.parsed, mutated)


# --- realistic volume -----------------------------------------------------------


def test_simulated_events_round_trip_alike_through_both_paths() -> None:
    events = simulate(20_000, seed=11).events
    assert len(events) == 20_000
    writers = {
        t: (specialise(v.resolved), MAGIC + v.fingerprint) for t, v in _REGISTRY.current.items()
    }
    for e in events:
        wire = REFERENCE.encode(e)
        generated, header = writers[e["metadata"]["event_type"]]
        assert generated.write(e, header) == wire  # the fast path itself, not a fallback
        assert FAST.encode(e) == wire
        fast, reference = FAST.decode(wire), REFERENCE.decode(wire)
        assert _same(fast, reference)
        assert _same(generated.read(wire, HEADER_SIZE), (reference.record, len(wire)))

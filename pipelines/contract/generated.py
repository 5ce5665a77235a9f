"""Avro readers and writers generated for one schema, compiled once, fastavro as reference.

Why generate code: fastavro walks the schema for every value it reads or
writes (a chain of type-name comparisons, dictionary look-ups of ``"type"``,
``"fields"``, ``"logicalType"``, a logical-type table keyed by a string built on
the fly). For a schema known at import time all of that can be decided once:
the generator emits straight-line Python for the schema (one local per field,
varints decoded inline, ``struct`` packers bound as locals, conversions written
out), and ``compile``/``exec`` turns it into a function. The sources are kept
on the result (``reader_source``, ``writer_source``) and registered with
``linecache``, so a traceback through generated code shows the generated line.

Why the result can never change a verdict: the generated functions are a fast
path, not a second implementation. They accept only input they can decode or
encode exactly as fastavro does (same values, same types, same bytes) and
raise on everything else, including inputs fastavro accepts; the caller
(``pipelines.codec.Codec``) then runs fastavro on the same input and returns
or raises whatever fastavro's path gives. So the fast path may only ever be
slower than fastavro on odd input, never different. Shapes no code is
generated for (recursive types, time logical types, ...) raise
:class:`~pipelines.contract.shapes.UnsupportedSchema` here, and such a schema
stays with fastavro entirely.
"""

from __future__ import annotations

import json
import linecache
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from pipelines.contract.read_source import reader_source
from pipelines.contract.shapes import UnsupportedSchema, shape_of
from pipelines.contract.write_source import writer_source

__all__ = ["Specialised", "UnsupportedSchema", "specialise"]

Reader = Callable[[bytes, int], tuple[Any, int]]
Writer = Callable[..., bytes]


@dataclass(frozen=True)
class Specialised:
    """The generated codec of one schema.

    ``read(data, pos)`` decodes the value at ``pos`` of a ``bytes`` object and
    returns it with the offset just after it; ``write(value)`` returns the Avro
    binary body, ``write(value, prefix)`` the same after ``prefix``. Both raise
    on anything they do not handle exactly as fastavro would.
    """

    read: Reader = field(repr=False)
    write: Writer = field(repr=False)
    reader_source: str = field(repr=False)
    writer_source: str = field(repr=False)


def specialise(schema: Any) -> Specialised:
    """The generated reader and writer of ``schema``, compiled on first use, cached after.

    ``schema`` is a resolved schema (plain JSON) or fastavro's parsed form of
    one; both give the same code. Raises ``UnsupportedSchema`` for a shape no
    code is generated for.
    """
    return _specialise(json.dumps(_plain(schema), sort_keys=True))


@cache
def _specialise(canonical: str) -> Specialised:
    schema = json.loads(canonical)
    shape = shape_of(schema)
    name = schema.get("name", "schema") if isinstance(schema, dict) else "schema"
    read_src, read_names = reader_source(shape)
    write_src, write_names = writer_source(shape)
    return Specialised(
        read=_compiled(read_src, read_names, "read", f"<avro reader {name}>"),
        write=_compiled(write_src, write_names, "write", f"<avro writer {name}>"),
        reader_source=read_src,
        writer_source=write_src,
    )


def _compiled(source: str, names: dict[str, Any], function: str, filename: str) -> Any:
    namespace = dict(names)
    exec(compile(source, filename, "exec"), namespace)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return namespace[function]


def _plain(node: Any) -> Any:
    """fastavro's parsed form without its bookkeeping keys (which are cyclic)."""
    if isinstance(node, dict):
        return {k: _plain(v) for k, v in node.items() if not str(k).startswith("__")}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node

"""What the generated readers and writers call: the rare paths, kept out of line.

Everything here mirrors, operation for operation, what fastavro 1.x does
(``_read.pyx``, ``_write.pyx``, ``_logical_readers.pyx``,
``_logical_writers.pyx``), or refuses with :class:`Reject` where fastavro's
behaviour is not worth reproducing (then fastavro itself decides).
"""

from __future__ import annotations

import decimal
from functools import cache

# Zig-zag varints carry 64-bit values: at most ten bytes, the tenth holding one bit.
MAX_VARINT_SHIFT = 63
VARINT_LIMIT = 1 << 64


class Reject(Exception):
    """The generated code declines this input; the reference (fastavro) path decides."""


def read_uvarint(data: bytes, pos: int) -> tuple[int, int]:
    """The raw (not yet zig-zag decoded) varint at ``pos``, and the offset after it.

    fastavro accumulates into an unsigned 64-bit integer and shifts past 64 bits
    without complaint (C leaves such shifts undefined), so anything longer than
    ten bytes or wider than 64 bits is refused here rather than imitated.
    """
    b = data[pos]
    pos += 1
    n = b & 0x7F
    shift = 0
    while b & 0x80:
        b = data[pos]
        pos += 1
        shift += 7
        n |= (b & 0x7F) << shift
    if shift > MAX_VARINT_SHIFT or n >= VARINT_LIMIT:
        raise Reject("varint wider than 64 bits")
    return n, pos


def read_span(data: bytes, pos: int) -> tuple[int, int]:
    """Where the bytes of the length-prefixed value at ``pos`` start and end.

    The out-of-line case of a length: more than one varint byte, or negative
    (which fastavro refuses too, as a short read).
    """
    n, pos = read_uvarint(data, pos)
    if n & 1:
        raise Reject("negative length")
    return pos, pos + (n >> 1)


@cache
def decimal_context(precision: int) -> decimal.Context:
    """The context fastavro reads decimals with: a default ``Context()`` at ``precision``.

    fastavro keeps one module-level ``Context()`` and sets ``prec`` before each
    read; a default context per precision is the same arithmetic (rounding
    ROUND_HALF_EVEN, so unscaled values wider than the precision are rounded,
    not refused; Overflow, DivisionByZero and InvalidOperation trapped).
    """
    context = decimal.Context()
    context.prec = precision
    return context


def _unscaled(value: decimal.Decimal, precision: int, scale: int) -> tuple[int, int]:
    """(sign, |unscaled integer|) of ``value`` at ``scale``, checked as fastavro checks.

    fastavro refuses more digits than the precision and an exponent finer than
    the scale (on the exponent, not the value: ``Decimal("1.00000")`` does not fit
    scale 4); NaN and infinities fail on the exponent arithmetic.
    """
    sign, digits, exponent = value.as_tuple()
    if len(digits) > precision:
        raise Reject("more digits than the precision")
    if not isinstance(exponent, int) or exponent + scale < 0:
        raise Reject("not a finite decimal at this scale")
    numerator, denominator = value.as_integer_ratio()
    unscaled, remainder = divmod(abs(numerator) * 10**scale, denominator)
    if remainder:  # cannot happen for exponent >= -scale; never guess
        raise Reject("not an integer at this scale")
    return sign, unscaled


def decimal_to_bytes(value: decimal.Decimal, precision: int, scale: int) -> bytes:
    """fastavro's ``prepare_bytes_decimal``: big-endian two's complement of the unscaled value.

    The width is ``(bit_length + 8) // 8`` of the magnitude, so a negative power of
    two takes one byte more than the shortest encoding (``-128`` is ``ff 80``), and
    ``Decimal("-0")`` is ``00``.
    """
    sign, unscaled = _unscaled(value, precision, scale)
    width = (unscaled.bit_length() + 8) // 8
    return (-unscaled if sign else unscaled).to_bytes(width, "big", signed=True)


def decimal_to_fixed(value: decimal.Decimal, precision: int, scale: int, size: int) -> bytes:
    """fastavro's ``prepare_fixed_decimal``, bit for bit, for a fixed of ``size`` bytes.

    Its quirks are kept: a negative value is ``(1 << bits) - unscaled`` with every
    bit from ``bits`` up to the fixed's width set, where ``bits`` is the
    magnitude's bit length plus one, so ``Decimal("-0")`` is written as -2 units
    of the last place; a negative value too wide for the fixed keeps its low
    bytes. A positive value too wide is refused, as fastavro's fixed writer
    refuses the longer byte string.
    """
    sign, unscaled = _unscaled(value, precision, scale)
    bits = unscaled.bit_length() + 1
    width = size * 8
    if sign:
        mask = ((1 << width) - 1) ^ ((1 << bits) - 1)
        raw = (((1 << bits) - unscaled) | mask) & ((1 << width) - 1)
        return raw.to_bytes(size, "big")
    if bits > width:
        raise Reject("decimal wider than its fixed")
    return unscaled.to_bytes(size, "big")

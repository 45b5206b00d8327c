"""The common event record read and retagged straight from its bytes, without protobuf.

Almost every record a summary writer produces has one shape::

    Event { wall_time (1, double), [step (2, varint)],
            summary (5) { value (1) { tag (1), ...rest of the value... } } }

with one value and the fields in field-number order (TensorFlow's C++ writer, upb and
tensorboardX all serialize that way). For such a record :func:`peek` returns wall_time,
step and tag, and :func:`retag` returns the record with another tag by rewriting the
three length prefixes, keeping the rest of the value byte for byte. Anything else --
several values, other fields, another order, a truncated varint -- returns None, and the
caller decodes the record with protobuf instead. Wire format:
https://protobuf.dev/programming-guides/encoding/.
"""

from __future__ import annotations

import struct
from typing import Final, TypeAlias

_F64 = struct.Struct("<d")
_WALL_TIME = 0x09  # field 1, fixed64
_STEP = 0x10  # field 2, varint
_SUMMARY = 0x2A  # field 5, length-delimited
_VALUE = 0x0A  # Summary.value and Value.tag: field 1, length-delimited
_SIMPLE_VALUE = 0x15  # Value.simple_value: field 2, fixed32
_TENSOR = 0x42  # Value.tensor: field 8, length-delimited
_METADATA = 0x4A  # Value.metadata: field 9, length-delimited


def _varint(d: bytes, p: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        b = d[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7
        if shift > 63:
            raise IndexError("varint too long")


def encode_varint(n: int) -> bytes:
    """Return the protobuf varint of a non-negative ``n``."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


Peek: TypeAlias = tuple[float, int, bytes, int, int]
"""``(wall_time, step, tag, summary_at, rest_at)`` of a common-shape record: wall_time
(float seconds since the Unix epoch), step (int64), tag (bytes, UTF-8), the offset of the
summary field's key byte, and the offset just past the tag's bytes. A plain tuple: this
is built once per record on the hot path."""

# Indexes into a Peek (Final, so that a type checker knows each field's type).
WALL_TIME: Final = 0
STEP: Final = 1
TAG: Final = 2
SUMMARY_AT: Final = 3
REST_AT: Final = 4


def peek(d: bytes) -> Peek | None:
    """Return the :data:`Peek` of a common-shape record, or None for any other record."""
    end = len(d)
    if end < 14 or d[0] != _WALL_TIME:
        return None
    try:
        p = 9
        step = 0
        if d[p] == _STEP:
            b = d[10]
            if b < 0x80:
                step, p = b, 11
            elif d[11] < 0x80:
                step, p = (b & 0x7F) | d[11] << 7, 12
            elif d[12] < 0x80:
                step, p = (b & 0x7F) | (d[11] & 0x7F) << 7 | d[12] << 14, 13
            else:
                step, p = _varint(d, 10)
                step &= (1 << 64) - 1  # protobuf keeps the low 64 bits of an overlong varint
                if step >= 1 << 63:
                    step -= 1 << 64
        if d[p] != _SUMMARY:
            return None
        summary_at = p
        n = d[p + 1]
        if n < 0x80:
            p += 2
        else:
            n, p = _varint(d, p + 1)
        if p + n != end or d[p] != _VALUE:
            return None
        n = d[p + 1]
        if n < 0x80:
            p += 2
        else:
            n, p = _varint(d, p + 1)
        if p + n != end or d[p] != _VALUE:
            return None
        n = d[p + 1]
        if n < 0x80:
            p += 2
        else:
            n, p = _varint(d, p + 1)
        if p + n > end:
            return None
    except IndexError:
        return None
    return (_F64.unpack_from(d, 1)[0], step, d[p : p + n], summary_at, p + n)


def retag_head(tag: bytes, rest: int) -> bytes:
    """Return the bytes from the summary key through the new tag.

    For a value whose bytes after the tag are ``rest`` long (callers cache it per tag and
    length).
    """
    value = 1 + len(encode_varint(len(tag))) + len(tag) + rest
    summary = 1 + len(encode_varint(value)) + value
    return b"".join(
        (
            bytes((_SUMMARY,)),
            encode_varint(summary),
            bytes((_VALUE,)),
            encode_varint(value),
            bytes((_VALUE,)),
            encode_varint(len(tag)),
            tag,
        )
    )


def retag(d: bytes, peeked: Peek, tag: bytes) -> bytes:
    """Return record ``d`` (common shape, as peeked) with its value's tag replaced."""
    rest_at = peeked[REST_AT]
    return d[: peeked[SUMMARY_AT]] + retag_head(tag, len(d) - rest_at) + d[rest_at:]


def has_metadata(d: bytes, peeked: Peek) -> bool | None:
    """Return whether the value carries ``metadata`` (None if its fields do not parse)."""
    p = peeked[REST_AT]
    end = len(d)
    try:
        while p < end:
            key = d[p]
            if key == _METADATA:
                return True
            if key == _SIMPLE_VALUE:
                p += 5
            elif key & 7 == 2 and key < 0x80:
                n, p = _varint(d, p + 1)
                p += n
            else:
                return None
    except IndexError:
        return None
    return False if p == end else None

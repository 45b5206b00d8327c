"""A deliberately naive TFRecord parser: the oracle the fuzz tests compare the reader with.

It holds the whole input in memory and checks one byte offset at a time, straight from
the record layout (FORMATS.md section 1: ``u64 length | u32 masked_crc(length) | data |
u32 masked_crc(data)``), sharing nothing with ``tbrewrite.events.framing`` but the CRC function.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from tbrewrite.events.framing import masked_crc32c

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def record_at(data: bytes, pos: int) -> bytes | None:
    """Return the payload of the whole valid record starting at ``pos``, or None."""
    if len(data) - pos < 12:
        return None
    (length,) = _U64.unpack_from(data, pos)
    (length_crc,) = _U32.unpack_from(data, pos + 8)
    if masked_crc32c(data[pos : pos + 8]) != length_crc:
        return None
    end = pos + 12 + length
    if end + 4 > len(data):
        return None
    payload = data[pos + 12 : end]
    (data_crc,) = _U32.unpack_from(data, end)
    return payload if masked_crc32c(payload) == data_crc else None


def damage_at(data: bytes, pos: int) -> str:
    """Classify why no valid record starts at ``pos``: ``truncated`` or ``crc_mismatch``."""
    if len(data) - pos < 12:
        return "truncated"
    (length,) = _U64.unpack_from(data, pos)
    if masked_crc32c(data[pos : pos + 8]) != _U32.unpack_from(data, pos + 8)[0]:
        return "crc_mismatch"
    return "truncated" if pos + 16 + length > len(data) else "crc_mismatch"


@dataclass
class Parsed:
    """What a correct reader yields for some bytes.

    Attributes:
        records: list of (offset, payload).
        damage: list of (offset, kind, resumed_at or None).
    """

    records: list[tuple[int, bytes]] = field(default_factory=list)
    damage: list[tuple[int, str, int | None]] = field(default_factory=list)


def parse(data: bytes, *, resync: bool = False) -> Parsed:
    """Parse ``data`` as a TFRecord file, stopping (or, with resync, scanning forward one
    byte at a time) at damage. An empty input is one ``truncated`` damage at 0."""
    out = Parsed()
    if not data:
        out.damage.append((0, "truncated", None))
        return out
    pos = 0
    while pos < len(data):
        payload = record_at(data, pos)
        if payload is not None:
            out.records.append((pos, payload))
            pos += 16 + len(payload)
            continue
        kind = damage_at(data, pos)
        if kind == "crc_mismatch" and pos == 0 and not out.records:
            kind = "not_an_event_file"
        resume = None
        if resync:
            resume = next((q for q in range(pos + 1, len(data)) if record_at(data, q) is not None), None)
        out.damage.append((pos, kind, resume))
        if resume is None:
            break
        pos = resume
    return out


def reframe(data: bytes) -> bytes:
    """Re-frame ``data`` with correct checksums: read each record by its length field
    alone, ignoring both CRCs (a length past the end takes the rest), and encode the
    payloads again. Mutating a real event file and reframing it gives records whose
    checksums hold but whose bytes may not be an Event -- what only a buggy or hostile
    writer produces, and what the CRC check cannot stop."""
    out = []
    pos = 0
    while len(data) - pos >= 12:
        (length,) = _U64.unpack_from(data, pos)
        payload = data[pos + 12 : pos + 12 + min(length, len(data))]
        out.append(_frame(payload))
        pos += 16 + len(payload)
    return b"".join(out)


def _frame(payload: bytes) -> bytes:
    header = _U64.pack(len(payload))
    return header + _U32.pack(masked_crc32c(header)) + payload + _U32.pack(masked_crc32c(payload))

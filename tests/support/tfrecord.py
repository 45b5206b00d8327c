"""A strict TFRecord parser written apart from tbrewrite's, to check files it writes.

CRC-32C comes from ``google_crc32c`` and the framing from TensorFlow's format description
(``tensorflow/core/lib/io/record_writer.cc``): ``u64 length | u32 masked crc(length) | data |
u32 masked crc(data)``, little-endian. Nothing here tolerates damage: any bad frame raises.
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def masked_crc(data: bytes) -> int:
    """TensorFlow's masked CRC-32C of ``data``."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord."""
    header = _U64.pack(len(data))
    return header + _U32.pack(masked_crc(header)) + data + _U32.pack(masked_crc(data))


def parse(data: bytes) -> list[bytes]:
    """Return every record of ``data``; raise AssertionError at the first bad byte."""
    records = []
    at = 0
    while at < len(data):
        assert len(data) - at >= 12, f"truncated header at byte {at}"
        header = data[at : at + 8]
        assert _U32.unpack_from(data, at + 8)[0] == masked_crc(header), f"bad length crc at byte {at}"
        (n,) = _U64.unpack(header)
        end = at + 12 + n + 4
        assert end <= len(data), f"truncated record at byte {at}"
        payload = data[at + 12 : at + 12 + n]
        assert _U32.unpack_from(data, at + 12 + n)[0] == masked_crc(payload), f"bad data crc at byte {at}"
        records.append(payload)
        at = end
    return records


def read_frames(path: Path) -> list[bytes]:
    """:func:`parse` the file at ``path``."""
    return parse(Path(path).read_bytes())

"""The floor: copy every event file of a tree record by record, in pure Python.

For each record: parse the frame, verify the length CRC and the data CRC (masked
CRC-32C via ``google_crc32c``), and write the frame back with a freshly computed data
CRC, as a rewriter must for records it changes. No protobuf parsing. The data is
sliced out as ``bytes`` (``google_crc32c`` rejects memoryviews). Reads 1 MiB
chunks, writes through a 1 MiB buffer and fsyncs each output file (as ``tbrewrite``
does), so it is what any Python rewriter costs before it looks inside a record.

Usage: ``python bench/peers/raw_copy.py SRC OUT`` (OUT mirrors SRC's event files).
Prints one JSON line: files, records, bytes.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

import google_crc32c

CHUNK = 1 << 20
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_crc = google_crc32c.value


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def copy_file(src: Path, dst: Path) -> tuple[int, int]:
    """Copy the records of ``src`` to ``dst``; return (records, bytes written)."""
    records = written = 0
    unpack64, unpack32, pack32 = _U64.unpack_from, _U32.unpack_from, _U32.pack
    with open(src, "rb", buffering=0) as f, open(dst, "wb", buffering=CHUNK) as out:
        write = out.write
        buf = b""
        pos = 0
        while True:
            if len(buf) - pos < 12:
                more = f.read(CHUNK)
                if not more:
                    break
                buf = buf[pos:] + more
                pos = 0
                continue
            (length,) = unpack64(buf, pos)
            if _masked(_crc(buf[pos : pos + 8])) != unpack32(buf, pos + 8)[0]:
                raise ValueError(f"{src}: length crc mismatch at {pos}")
            end = pos + 12 + length + 4
            if end > len(buf):
                more = f.read(max(end - len(buf), CHUNK))
                if not more:
                    raise ValueError(f"{src}: truncated")
                buf = buf[pos:] + more
                pos = 0
                continue
            data = buf[pos + 12 : pos + 12 + length]
            crc = _masked(_crc(data))
            if crc != unpack32(buf, pos + 12 + length)[0]:
                raise ValueError(f"{src}: data crc mismatch at {pos}")
            write(buf[pos : pos + 12])
            write(data)
            write(pack32(crc))
            records += 1
            written += end - pos
            pos = end
        out.flush()
        os.fsync(out.fileno())
    return records, written


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    files = records = written = 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if "tfevents" not in name:
                continue
            target = out / Path(dirpath).relative_to(src) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            n, b = copy_file(Path(dirpath) / name, target)
            files, records, written = files + 1, records + n, written + b
    print(json.dumps({"files": files, "records": records, "bytes": written}))


if __name__ == "__main__":
    main()

"""Resync scan speed: the per-byte scan it replaced vs ``records.find_next_record``.

Not a test (no timed assertions in the suite): run it by hand, results go in README.md.

    .venv/bin/python tests/fuzz/bench_resync.py [MEGABYTES]

Each case is one valid record, MEGABYTES of garbage, and one valid record; both scans
must find the second record at the same offset. Garbage: random bytes; zeros (what a
crash leaves in a preallocated tail); real event records with every data checksum
broken (every header is a candidate whose data must be read).
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time

from tbrewrite.events.framing import (
    _U32,
    _U64,
    FOOTER_LENGTH,
    HEADER_LENGTH,
    RecordReader,
    _crc,
    _masked,
    encode_record,
    find_next_record,
)


def per_byte_scan(f, start: int, size: int, window: int = 1 << 20) -> int | None:
    """The scan of the walking skeleton (commit 915437c): one CRC call per byte offset."""
    pos = start
    while pos + HEADER_LENGTH + FOOTER_LENGTH <= size:
        f.seek(pos)
        buf = f.read(window + HEADER_LENGTH)
        limit = len(buf) - HEADER_LENGTH
        for i in range(max(limit + 1, 0)):
            (stored,) = _U32.unpack_from(buf, i + 8)
            if _masked(_crc(buf[i : i + 8])) != stored:
                continue
            (length,) = _U64.unpack_from(buf, i)
            candidate = pos + i
            if candidate + HEADER_LENGTH + length + FOOTER_LENGTH > size:
                continue
            here = f.tell()
            f.seek(candidate + HEADER_LENGTH)
            data = f.read(length)
            footer = f.read(FOOTER_LENGTH)
            f.seek(here)
            if len(footer) == FOOTER_LENGTH and _masked(_crc(data)) == _U32.unpack(footer)[0]:
                return candidate
        pos += max(limit + 1, 1)
    return None


def garbage(kind: str, n: int) -> bytes:
    if kind == "random":
        return random.Random(0).randbytes(n)
    if kind == "zeros":
        return bytes(n)
    # Real event records whose data checksums all fail: every length checksum holds,
    # so every header is a candidate whose data must be read and checked.
    corpus = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "corpus")
    path = os.path.join(
        corpus,
        "TensorBoard-Tutorial",
        "archive",
        "hparam_tuning",
        "Experiment 0_adam_200_0.2",
        "events.out.tfevents.1690483601.e-bnbobg-5l77j-0.61366.1.v2",
    )
    out = bytearray()
    while len(out) < n:
        for data in RecordReader(path):
            framed = bytearray(encode_record(data))
            framed[-1] ^= 0xFF
            out += framed
    return bytes(out[:n])


def main() -> None:
    megabytes = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    n = int(megabytes * (1 << 20))
    first = encode_record(b"first")
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "warm-up"), "wb") as f:
            f.write(bytes(64))
        with open(os.path.join(tmp, "warm-up"), "rb") as f:
            find_next_record(f, 0, 64)  # imports numpy, builds the CRC tables
        for kind in ("random", "zeros", "bad-data-crcs"):
            path = os.path.join(tmp, kind)
            with open(path, "wb") as f:
                f.write(first + garbage(kind, n) + encode_record(b"second"))
            size = os.path.getsize(path)
            results = []
            for scan in (per_byte_scan, find_next_record):
                with open(path, "rb", buffering=0) as f:
                    t = time.perf_counter()
                    found = scan(f, len(first) + 1, size)
                    results.append((found, time.perf_counter() - t))
            (old, t_old), (new, t_new) = results
            assert old == new, (kind, old, new)
            print(
                f"{kind:15s} {n / 1e6:6.1f} MB  per-byte {t_old:7.2f} s ({n / 1e6 / t_old:6.2f} MB/s)"
                f"  vectorised {t_new:6.3f} s ({n / 1e6 / t_new:6.1f} MB/s)  x{t_old / t_new:.0f}"
                f"  resumed at {new}"
            )

    alternating(2000)


def alternating(pairs: int) -> None:
    """Resync at every other record: a good record follows each damaged one closely."""
    good = encode_record(b"g" * 50)
    bad = bytearray(encode_record(b"b" * 50))
    bad[-1] ^= 0xFF
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alternating")
        with open(path, "wb") as f:
            f.write((good + bytes(bad)) * pairs)
        size = os.path.getsize(path)
        damaged = [len(good) + k * (len(good) + len(bad)) for k in range(pairs)]
        times = []
        for scan in (per_byte_scan, find_next_record):
            with open(path, "rb", buffering=0) as f:
                t = time.perf_counter()
                found = [scan(f, offset + 1, size) for offset in damaged]
                times.append(time.perf_counter() - t)
            assert found[:-1] == [d + len(bad) for d in damaged[:-1]] and found[-1] is None
        print(
            f"alternating     {pairs} resyncs, one record apart: per-byte {times[0]:.3f} s, vectorised {times[1]:.3f} s"
        )


if __name__ == "__main__":
    main()

"""A sketch of the fast path the profile proposes: rename tags by splicing record bytes.

Not a product and not a peer users have: it measures what a pure-Python rewriter costs
when it avoids protobuf for the common record, so ``bench/RESULTS.md`` can give the
expected gain of each proposal with a figure instead of a guess.

For each event file under SRC (mirrored into OUT, like ``tbrewrite rename --out``):

1. With ``--scan``, a first pass reads every record and keeps per-tag statistics
   (count, last step, last wall_time, steps going backwards), as ``convert``'s planning
   pass must.
2. The rewrite pass reads each record (both CRCs checked) and, when the record is the
   common shape -- ``Event{wall_time, [step], summary{one value{tag, ...}}}`` with the
   fields in field-number order, as TensorFlow's C++ writer and upb serialize them --
   splices the new tag into the bytes (the length prefixes of the summary, the value and
   the tag are recomputed from a per-tag cache). Records of any other shape, and values
   whose remaining bytes contain the old tag (a ``display_name`` to rewrite), fall back to
   protobuf parse + serialize. Unchanged records are written back as read. Framed output
   goes to one list that is joined and written every 1 MiB; the file is fsynced.

The shape check is strict and falls back on anything unexpected. On the generated
scalar-heavy log its output files were byte-identical to ``tbrewrite rename --out``'s with
the same rules (compared record by record once, by hand; not re-checked on each run).

Usage: ``python bench/peers/splice_rename.py SRC OUT [--scan] --rule REGEX=REPL ...``
Prints one JSON line: files, records, spliced, parsed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
from pathlib import Path

import google_crc32c
from tensorboard.compat.proto import event_pb2

CHUNK = 1 << 20
MASK_DELTA = 0xA282EAD8
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_F64 = struct.Struct("<d")
_crc = google_crc32c.value


def varint(n: int) -> bytes:
    """Return ``n`` as a protobuf varint."""
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(d: bytes, p: int) -> tuple[int, int]:
    """Return (value, next position) of the varint at ``d[p]``."""
    b = d[p]
    if b < 0x80:
        return b, p + 1
    value, shift = 0, 0
    while True:
        b = d[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7


def records(path: Path):
    """Yield the data of each record of ``path``, both CRCs checked."""
    unpack64, unpack32 = _U64.unpack_from, _U32.unpack_from
    crc = _crc
    with open(path, "rb", buffering=0) as f:
        buf = f.read(CHUNK)
        pos = 0
        while True:
            end_header = pos + 12
            if end_header > len(buf):
                more = f.read(CHUNK)
                if not more:
                    return
                buf = buf[pos:] + more
                pos = 0
                continue
            (length,) = unpack64(buf, pos)
            c = crc(buf[pos : pos + 8])
            if (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF != unpack32(buf, pos + 8)[0]:
                raise ValueError(f"{path}: length crc mismatch")
            end = end_header + length + 4
            if end > len(buf):
                if length >= CHUNK:  # a large record: read it on its own, no concatenation
                    rest = buf[end_header:]
                    data = rest + f.read(length - len(rest)) if rest else f.read(length)
                    footer = f.read(4)
                    buf, pos = b"", 0
                    stored = unpack32(footer)[0]
                else:
                    more = f.read(CHUNK)
                    if not more:
                        raise ValueError(f"{path}: truncated")
                    buf = buf[pos:] + more
                    pos = 0
                    continue
            else:
                data = buf[end_header : end_header + length]
                stored = unpack32(buf, end - 4)[0]
                pos = end
            c = crc(data)
            if (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF != stored:
                raise ValueError(f"{path}: data crc mismatch")
            yield data


def split(d: bytes) -> tuple[int, int, int, bytes] | None:
    """Return (step, summary offset, rest offset, tag) for the common shape, else None."""
    if len(d) < 16 or d[0] != 0x09:
        return None
    try:
        return _split(d)
    except IndexError:
        return None


def _split(d: bytes) -> tuple[int, int, int, bytes] | None:
    p = 9
    step = 0
    if d[p] == 0x10:
        step, p = read_varint(d, p + 1)
    if d[p] != 0x2A:
        return None
    start = p
    n1, p = read_varint(d, p + 1)
    if p + n1 != len(d) or d[p] != 0x0A:
        return None
    n2, p = read_varint(d, p + 1)
    if p + n2 != len(d) or d[p] != 0x0A:
        return None
    nt, p = read_varint(d, p + 1)
    return step, start, p + nt, d[p : p + nt]


class Stats:
    __slots__ = ("backwards", "count", "last_step", "last_wall_time")

    def __init__(self) -> None:
        self.count = 0
        self.last_step = -(1 << 63)
        self.last_wall_time = 0.0
        self.backwards = 0


def scan(path: Path, tags: dict[bytes, Stats]) -> None:
    """The planning pass: per-tag count, last step and wall_time, backwards steps."""
    for d in records(path):
        s = split(d)
        if s is None:
            event = event_pb2.Event.FromString(d)
            items = [(v.tag.encode(), event.step) for v in event.summary.value]
        else:
            items = [(s[3], s[0])]
        for tag, step in items:
            st = tags.get(tag)
            if st is None:
                st = tags[tag] = Stats()
            if step <= st.last_step:
                st.backwards += 1
            st.count += 1
            st.last_step = step
            st.last_wall_time = _F64.unpack_from(d, 1)[0] if d[:1] == b"\x09" else 0.0


def frame(data: bytes) -> bytes:
    header = _U64.pack(len(data))
    c = _crc(header)
    h = (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF
    c = _crc(data)
    return b"".join((header, _U32.pack(h), data, _U32.pack((((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF)))


def rewrite(path: Path, dst: Path, rename, counts: dict[str, int]) -> None:
    heads: dict[tuple[bytes, int], bytes | None] = {}
    out: list[bytes] = []
    size = 0
    with open(dst, "wb", buffering=0) as f:
        for d in records(path):
            s = split(d)
            new = None
            if s is not None:
                _, start, rest_at, tag = s
                key = (tag, len(d) - rest_at)
                head = heads.get(key, b"")
                if head == b"":
                    old = tag.decode()
                    to = rename(old)
                    head = None
                    if to != old:
                        t = to.encode()
                        value = len(t) + len(varint(len(t))) + 1 + key[1]
                        summary = value + len(varint(value)) + 1
                        head = b"\x2a" + varint(summary) + b"\x0a" + varint(value) + b"\x0a" + varint(len(t)) + t
                    heads[key] = head
                if head is None:
                    new = d
                elif d.find(tag, rest_at) < 0:
                    new = d[:start] + head + d[rest_at:]
                if new is not None:
                    counts["spliced"] += 1
            if new is None:
                counts["parsed"] += 1
                event = event_pb2.Event.FromString(d)
                changed = False
                for v in event.summary.value:
                    to = rename(v.tag)
                    if to != v.tag:
                        if v.HasField("metadata") and v.metadata.display_name == v.tag:
                            v.metadata.display_name = to
                        v.tag = to
                        changed = True
                new = event.SerializeToString() if changed else d
            rec = frame(new)
            out.append(rec)
            size += len(rec)
            counts["records"] += 1
            if size >= CHUNK:
                f.write(b"".join(out))
                out.clear()
                size = 0
        f.write(b"".join(out))
        os.fsync(f.fileno())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--scan", action="store_true")
    parser.add_argument("--rule", action="append", default=[])
    args = parser.parse_args()
    rules = [(re.compile(p), r) for p, r in (rule.split("=", 1) for rule in args.rule)]

    def rename(tag: str) -> str:
        for pattern, repl in rules:
            if pattern.search(tag):
                return pattern.sub(repl, tag)
        return tag

    counts = {"files": 0, "records": 0, "spliced": 0, "parsed": 0}
    for dirpath, dirnames, filenames in os.walk(args.src):
        dirnames.sort()
        names = sorted(n for n in filenames if "tfevents" in n)
        if args.scan:
            tags: dict[bytes, Stats] = {}
            for name in names:
                scan(Path(dirpath) / name, tags)
        for name in names:
            target = args.out / Path(dirpath).relative_to(args.src) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            rewrite(Path(dirpath) / name, target, rename, counts)
            counts["files"] += 1
    print(json.dumps(counts))


if __name__ == "__main__":
    main()

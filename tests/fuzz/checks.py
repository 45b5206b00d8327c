"""Checks shared by the hypothesis properties and the atheris harness."""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2

from fuzz.reference import record_at
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.wire import STEP, WALL_TIME, has_metadata


def check_lazy_reading(path: Path, data: bytes, resync: bool) -> None:
    """A peeking ``EventFileReader`` yields exactly the records a decoding one yields, with the
    same damage, and a peeked record agrees with protobuf on wall_time, step, one value
    and whether it has metadata."""
    path.write_bytes(data)
    full = EventFileReader(path, resync=resync, peek=False)
    want = [(r.offset, r.data) for r in full]
    lazy = EventFileReader(path, resync=resync)
    got = []
    for record in lazy:
        peeked, raw = record.peek, record.data
        assert record_at(data, lazy.offset) == raw == data[record.offset + 12 : record.offset + 12 + len(raw)]
        decoded = event_pb2.Event.FromString(raw)
        if peeked is None:
            assert record.event == decoded
        else:
            assert len(decoded.summary.value) == 1
            assert struct.pack("<d", peeked[WALL_TIME]) == struct.pack("<d", decoded.wall_time)
            assert peeked[STEP] == decoded.step
            assert has_metadata(raw, peeked) in (None, decoded.summary.value[0].HasField("metadata"))
        got.append((lazy.offset, raw))
    assert got == want
    assert [(d.offset, d.kind, d.resumed_at) for d in lazy.damage] == [
        (d.offset, d.kind, d.resumed_at) for d in full.damage
    ]

"""The native rewrite loop against the Python one: the same bytes and the same result.

Random plans over random event files (several sources of several files, one to three
values per event, first-value metadata with and without a display name equal to the tag,
non-summary events, records of other shapes, equal, NaN and signed-zero wall_times, steps
that go back), damaged ones (cut, flipped, garbage, re-framed undecodable payloads; with
and without resync), extra events, replaced steps, drops, renames, keep-last, crop
windows (steps and wall_times), step offsets, thinning by ordinal and dropped
non-summary events; and files changed after their scan.
Each plan is rewritten by both engines (``TBREWRITE_ENGINE``), and the output files must
be byte-identical and every field of :class:`OutputResult` equal (damage kinds, offsets,
detail; notes; counts).

``TBREWRITE_DIFF_SCALE=N`` multiplies the number of plans (default 1: 300 plans, a few
seconds); ``native/README.md`` gives the long run's command and figures.

Skipped as a whole when the extension is not built (pure-Python installs).
"""

from __future__ import annotations

import math
import os
import random
import struct
from dataclasses import asdict
from pathlib import Path

import pytest

pytest.importorskip("tbrewrite._native", reason="the native core is not built")

from tensorboard.compat.proto import event_pb2, summary_pb2

from support import events as ev
from support.tfrecord import frame
from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction, Window
from tbrewrite.engine.rewrite import OutputResult, rewrite
from tbrewrite.engine.scan import scan_files
from tbrewrite.events.framing import CHECKPOINT_RECORDS
from tbrewrite.output.transaction import Transaction

SCALE = int(os.environ.get("TBREWRITE_DIFF_SCALE", "1"))
TAGS = ["loss", "acc", "val_loss", "lr", "img", "a/b", "x" * 40]


def _value(rng: random.Random, tag: str) -> summary_pb2.Summary.Value:
    meta = None
    roll = rng.random()
    if roll < 0.2:
        meta = ev.metadata("scalars", display_name=tag if rng.random() < 0.5 else "")
    elif roll < 0.25:
        meta = ev.metadata("images", b"\x08\x01")
    make = ev.tensor if rng.random() < 0.4 else ev.simple
    return make(tag, rng.uniform(-1, 1), meta)


def _wall_time(rng: random.Random, t: float) -> float:
    roll = rng.random()
    if roll < 0.02:
        return math.nan
    if roll < 0.04:
        return rng.choice([0.0, -0.0])
    if roll < 0.3:
        return t  # a tie
    return t + rng.choice([0.5, 1.0, 2.0])


def _odd_record(rng: random.Random, t: float, step: int, tag: str) -> bytes:
    """A valid Event of another shape than the peek's: step before wall_time."""
    value = summary_pb2.Summary.Value(tag=tag, simple_value=1.5).SerializeToString()
    summary = b"\x0a" + bytes([len(value)]) + value
    return b"\x10" + bytes([step & 0x7F]) + b"\x09" + struct.pack("<d", t) + b"\x2a" + bytes([len(summary)]) + summary


def _records(rng: random.Random, n: int, t0: float) -> list[bytes]:
    out: list[bytes] = []
    if rng.random() < 0.8:
        out.append(ev.file_version(t0))
    t, step = t0, 0
    for _ in range(n):
        t = _wall_time(rng, t if math.isfinite(t) and t != 0 else t0)
        step = step + 1 if rng.random() < 0.85 else max(0, step - rng.randint(1, 3))
        roll = rng.random()
        if roll < 0.05:
            out.append(ev.graph(t))
        elif roll < 0.1:
            out.append(_odd_record(rng, t, step, rng.choice(TAGS)))
        elif roll < 0.12:
            out.append(event_pb2.Event(wall_time=t, step=step, summary=summary_pb2.Summary()).SerializeToString())
        else:
            k = 1 if rng.random() < 0.8 else rng.randint(2, 3)
            out.append(ev.summary(t, step, *(_value(rng, rng.choice(TAGS)) for _ in range(k))))
    return out


def _damage(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    roll = rng.random()
    if roll < 0.3 and len(b) > 20:
        return bytes(b[: rng.randrange(len(b))])
    if roll < 0.6 and b:
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if roll < 0.8:
        i = rng.randrange(len(b) + 1)
        return bytes(b[:i]) + bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))) + bytes(b[i:])
    # a payload that is not an Event, framed with valid checksums
    i = rng.randrange(len(b) + 1)
    return bytes(b[:i]) + frame(b"\xff\xff\xff") + bytes(b[i:])


def _write(rng: random.Random, path: Path, records: list[bytes], damaged: bool) -> Path:
    data = b"".join(frame(r) for r in records)
    if damaged:
        data = _damage(rng, data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _plan(rng: random.Random, root: Path, case: int) -> OutputPlan:
    resync = rng.random() < 0.5
    keep = rng.random() < 0.25
    n_sources = 1 if keep else rng.randint(1, 3)
    sources = []
    out_tags: set[str] = set()
    # (output tag, step, wall_time) of source values, for replaced points that exist.
    points: list[tuple[str, int, float]] = []
    for s in range(n_sources):
        paths = []
        written: list[bytes] = []
        for f in range(rng.randint(1, 3)):
            records = _records(rng, rng.randint(0, 40), ev.T0 + rng.choice([0, 0, 5, 30]))
            written += records
            damaged = rng.random() < 0.3
            paths.append(_write(rng, root / f"in{case}" / f"s{s}" / f"events.out.tfevents.{f}.x", records, damaged))
        scan = scan_files(paths, resync=resync)
        tags = {}
        keep_last = rng.random() < 0.3
        offset = rng.choice([0, 0, 0, 5, 100])  # one per source: an Event's values share it
        for tag, stats in scan.tags.items():
            roll = rng.random()
            new = None if roll < 0.15 else tag if roll < 0.5 else f"{rng.choice(['train', 'val'])}/{tag}"
            if new is not None:
                out_tags.add(new)
            first = (
                ev.metadata("scalars", display_name=tag if rng.random() < 0.3 else "") if rng.random() < 0.5 else None
            )
            backwards = tuple(stats.backwards) if keep_last else ()
            window = None
            if rng.random() < 0.25:
                lo, hi = rng.choice([None, 0, 3, 10]), rng.choice([None, 5, 20, 200])
                wall = (rng.choice([None, ev.T0 + 5]), rng.choice([None, ev.T0 + 20]))
                window = Window((lo, hi), wall if rng.random() < 0.3 else (None, None))
            kept = None
            if rng.random() < 0.2:
                kept = frozenset(o for o in range(stats.count) if rng.random() < 0.5)
            tags[tag] = TagAction(new, first, backwards, window=window, step_offset=offset, keep=kept)
        for record in written:
            event = event_pb2.Event.FromString(record)
            for v in event.summary.value:
                action = tags.get(v.tag)
                if action is not None and action.new is not None:
                    points.append((action.new, event.step, event.wall_time))
        sources.append(SourcePlan(f"s{s}", tuple(SourceFile.from_stats(f) for f in scan.files), tags))
    extra: list[event_pb2.Event] = []
    replaced: dict[str, frozenset[tuple[int, float]]] = {}
    if not keep and rng.random() < 0.5:
        tag = rng.choice(sorted(out_tags) or ["train/lr"])
        steps = sorted(rng.sample(range(30), rng.randint(1, 6)))
        for step in steps:
            event = event_pb2.Event(wall_time=ev.T0 + rng.choice([-1, 0, 3, 10, 40]) + step, step=step)
            event.summary.value.add(tag=tag, simple_value=0.1)
            extra.append(event)
        extra.sort(key=lambda e: e.wall_time)
        if rng.random() < 0.7:
            own = [(step, wall_time) for t, step, wall_time in points if t == tag]
            replaced[tag] = frozenset(rng.sample(own, min(len(own), rng.randint(1, 8))))
    header = Header.KEEP if keep else Header.OWN
    out = root / f"out{case}" / "events.out.tfevents.1700000000.out"
    drop_events = frozenset(rng.sample(["graph_def", "file_version", "session_log"], rng.randint(0, 2)))
    return OutputPlan(out, tuple(sources), header, ev.T0, tuple(extra), replaced, resync, drop_events)


def _run(plan: OutputPlan, engine: str, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, object], bytes | None]:
    monkeypatch.setenv("TBREWRITE_ENGINE", engine)
    with Transaction() as outputs:
        result = rewrite(plan, outputs)
        data = result.writer.finish().read_bytes() if result.writer is not None else None
        outputs.rollback()
    fields = asdict(OutputResult())
    got = {k: getattr(result, k) for k in fields if k != "writer"}
    got["damage"] = [(str(d.kind), d.offset, d.records_before, d.detail, d.resumed_at) for d in result.damage]
    return got, data


def _compare(plan: OutputPlan, monkeypatch: pytest.MonkeyPatch, what: str) -> None:
    py, py_data = _run(plan, "python", monkeypatch)
    na, na_data = _run(plan, "native", monkeypatch)
    assert na == py, what
    assert na_data == py_data, what


def test_random_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(1309)
    for case in range(300 * SCALE):
        plan = _plan(rng, tmp_path, case)
        _compare(plan, monkeypatch, f"case {case}")
        if SCALE > 1:
            for folder in (f"in{case}", f"out{case}"):
                for p in sorted((tmp_path / folder).rglob("*"), reverse=True):
                    p.rmdir() if p.is_dir() else p.unlink()


@pytest.mark.parametrize("change", ["append", "truncate", "rewrite", "flip-early", "flip-late"])
def test_files_changed_after_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Past a periodic checkpoint, as in place: both engines see the same difference."""
    n = CHECKPOINT_RECORDS + 500
    records = [ev.file_version()] + [ev.summary(ev.T0 + i, i, ev.simple("loss", 0.5)) for i in range(n)]
    data = b"".join(frame(r) for r in records)
    for resync in (False, True):
        path = tmp_path / f"in-{resync}" / "events.out.tfevents.1.x"
        path.parent.mkdir()
        path.write_bytes(data)
        scan = scan_files([path], resync=resync)
        tags = {"loss": TagAction("train/loss", ev.metadata("scalars"))}
        source = SourcePlan("", tuple(SourceFile.from_stats(f) for f in scan.files), tags)
        plan = OutputPlan(
            tmp_path / f"out-{resync}" / "events.out.tfevents.1.o", (source,), Header.OWN, ev.T0, resync=resync
        )
        changed = bytearray(data)
        if change == "append":
            changed += frame(ev.summary(ev.T0, 1, ev.simple("loss", 1.0)))
        elif change == "truncate":
            del changed[len(changed) // 2 :]
        elif change == "rewrite":
            changed = bytearray(b"".join(frame(r) for r in records[:100] + records[101:]))
        elif change == "flip-early":
            changed[40] ^= 1
        else:
            changed[-30] ^= 1
        path.write_bytes(bytes(changed))
        _compare(plan, monkeypatch, f"{change} resync={resync}")

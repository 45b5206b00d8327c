"""The two engines end to end: ``scan_files`` and the export under ``TBREWRITE_ENGINE=python``
and ``=native`` give equal results.

``engine.scan.scan_files`` must build the same :class:`StreamScan` (every field of every
``FileStats`` and ``TagStats``, metadata compared by ``SerializeToString``, the order of
tags and event kinds) and ``commands.export`` the same rows, DataFrames, damage and output
bytes, on every run of the corpus (``../shared/corpus``, skipped if absent) and the
fixtures, on damaged variants of real files (without and with resync), and on generated
logs that reach the corners of the scan: summaries of several values, metadata first seen
on a later value, steps that go back or repeat, more tags than a batch, files of more
than ``CHECKPOINT_RECORDS`` records with an invalid event at the checkpoint.

Skipped as a whole when the extension is not built (pure-Python installs).
``TBREWRITE_DIFF_SCALE=N`` multiplies the number of damaged variants.
"""

from __future__ import annotations

import dataclasses
import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

native = pytest.importorskip("tbrewrite._native", reason="the native core is not built")

from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: E402

from tbrewrite.commands import export as export_module  # noqa: E402
from tbrewrite.engine import scan as scan_module  # noqa: E402
from tbrewrite.engine.scan import StreamScan, scan_files  # noqa: E402
from tbrewrite.engine.select import ENV  # noqa: E402
from tbrewrite.events.framing import CHECKPOINT_RECORDS, encode_record  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
from support.paths import CORPUS  # noqa: E402  (TBREWRITE_TEST_CORPUS, or ../shared/corpus)

FIXTURES = ROOT / "fixtures"
SCALE = int(os.environ.get("TBREWRITE_DIFF_SCALE", "1"))


# --- comparing ----------------------------------------------------------------------------


def _plain(scan: StreamScan) -> dict:
    """Everything a StreamScan holds, in comparable form (order kept where it exists)."""
    tags = []
    for name, t in scan.tags.items():
        fields = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)}
        fields["metadata"] = None if t.metadata is None else t.metadata.SerializeToString()
        # Types too: a numpy scalar where Python has an int would break JSON output.
        fields["types"] = [type(v).__name__ for k, v in fields.items() if k not in ("metadata", "backwards")]
        fields["backwards_types"] = {type(x).__name__ for b in t.backwards for x in b}
        tags.append((name, fields))
    files = []
    for f in scan.files:
        fields = {x.name: getattr(f, x.name) for x in dataclasses.fields(f)}
        fields["first_wall_time"] = (type(f.first_wall_time).__name__, f.first_wall_time)
        fields["damage"] = [(type(d.kind).__name__, dataclasses.astuple(d)) for d in f.damage]
        fields["types"] = [type(fields[k]).__name__ for k in ("records", "bytes")]
        files.append(fields)
    return {
        "files": files,
        "tags": tags,
        "event_kinds": list(scan.event_kinds.items()),
        "events": scan.events,
    }


def _scan(engine: str, paths: list[Path], monkeypatch: pytest.MonkeyPatch, **kw) -> dict:
    monkeypatch.setenv(ENV, engine)
    return _plain(scan_files(paths, **kw))


def assert_same_scan(paths: list[Path], monkeypatch: pytest.MonkeyPatch, **kw) -> dict:
    want = _scan("python", paths, monkeypatch, **kw)
    got = _scan("native", paths, monkeypatch, **kw)
    assert got["files"] == want["files"], paths
    assert [t for t, _ in got["tags"]] == [t for t, _ in want["tags"]], paths
    for (name, g), (_, w) in zip(got["tags"], want["tags"], strict=True):
        assert g == w, (paths, name)
    assert got == want, paths
    return want


def _runs(root: Path) -> list[list[Path]]:
    """Every folder's event files, in TensorBoard's order (one stream each)."""
    runs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files = [Path(dirpath) / n for n in sorted(filenames) if "tfevents" in n]
        files = [f for f in files if f.is_file()]
        if files:
            runs.append(files)
    return runs


def _all_runs() -> list[list[Path]]:
    return [run for root in (CORPUS, FIXTURES) if root.is_dir() for run in _runs(root)]


# --- generated logs -----------------------------------------------------------------------


def _meta(plugin: str, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    m = summary_pb2.SummaryMetadata()
    m.plugin_data.plugin_name = plugin
    m.plugin_data.content = content
    return m


def _tensor_value(tag: str, x: float, meta: summary_pb2.SummaryMetadata | None = None) -> summary_pb2.Summary.Value:
    """A rank-0 tensor of ``x``: mostly float32 content, else another scalar dtype TensorBoard
    plots, in its typed field or its content (picked from ``x``, so no random draw is added)."""
    v = summary_pb2.Summary.Value(tag=tag)
    pick = int(x * 997) % 10
    t = v.tensor
    if pick <= 3:
        t.dtype, t.tensor_content = 1, struct.pack("<f", x)
    elif pick == 4:
        t.dtype = 2
        t.double_val.append(x)
    elif pick == 5:
        t.dtype = 9
        t.int64_val.append(int(x * 2**62) - 2**61)
    elif pick == 6:
        t.dtype, t.tensor_content = 3, struct.pack("<i", int(x * 1e9) - 500_000_000)
    elif pick == 7:
        t.dtype = 19
        t.half_val.append(int(x * 65536))
    elif pick == 8:
        t.dtype = 10
        t.bool_val.append(x < 0.5)
    else:
        t.dtype, t.tensor_content = 23, struct.pack("<Q", int(x * 2**64))
    if meta is not None:
        v.metadata.CopyFrom(meta)
    return v


def _events(rng: random.Random, n: int, tags: int) -> Iterator[event_pb2.Event]:
    """A log that goes everywhere the scan can: every kind of event and value, summaries
    of several values, metadata on the first value or only later (then the kind of a
    tensor tag changes), steps forward, back and repeated, the same tag twice in an event."""
    yield event_pb2.Event(wall_time=1.5, file_version="brain.Event:2")
    names = [f"t{k}/{'x' * (k % 3)}" for k in range(tags)]
    index = {name: k for k, name in enumerate(names)}
    late_meta = {name for name in names if rng.random() < 0.3}
    step = 0
    for i in range(n):
        e = event_pb2.Event(wall_time=2.0 + i * 0.25, step=step)
        r = rng.random()
        if r < 0.03:
            e.graph_def = b"\x0a\x00"
        elif r < 0.05:
            e.session_log.status = 1
        elif r < 0.06:
            e.log_message.message = "hello"
        elif r < 0.07:
            pass  # an empty event
        elif r < 0.08:
            e.summary.SetInParent()  # a summary without values
        else:
            for _ in range(1 if rng.random() < 0.6 else rng.randrange(2, 5)):
                name = rng.choice(names)
                kind = index[name] % 5
                plugin = ["scalars", "", "histograms", "text", "custom"][index[name] // 5 % 5]
                meta = _meta(plugin, bytes([i % 7])) if (name not in late_meta or rng.random() < 0.2) else None
                if rng.random() < 0.4 and name not in late_meta:
                    meta = None
                if kind == 0:
                    v = summary_pb2.Summary.Value(tag=name, simple_value=rng.random())
                    if meta is not None:
                        v.metadata.CopyFrom(meta)
                elif kind == 1:
                    v = _tensor_value(name, rng.random(), meta)
                elif kind == 2:
                    v = summary_pb2.Summary.Value(tag=name)
                    v.histo.min = 1.0
                    if meta is not None:
                        v.metadata.CopyFrom(meta)
                elif kind == 3:
                    v = summary_pb2.Summary.Value(tag=name)
                    v.image.height = 1
                else:
                    v = summary_pb2.Summary.Value(tag=name)  # no value at all
                    if meta is not None:
                        v.metadata.CopyFrom(meta)
                e.summary.value.append(v)
        yield e
        r = rng.random()
        step = step + 1 if r < 0.8 else (step if r < 0.9 else max(-3, step - rng.randrange(1, 40)))


def _write(path: Path, events, extra: dict[int, bytes] | None = None) -> Path:
    """Write ``events``; ``extra`` puts raw record payloads before event number ``k``."""
    with open(path, "wb") as f:
        for k, e in enumerate(events):
            if extra and k in extra:
                f.write(encode_record(extra[k]))
            f.write(encode_record(e.SerializeToString()))
    return path


def _damaged(data: bytes, rng: random.Random, n: int) -> Iterator[bytes]:
    size = len(data)
    for _ in range(n):
        yield data[: rng.randrange(size + 1)]
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.choice([1, 2, 8])):
            b[rng.randrange(size)] ^= 1 << rng.randrange(8)
        yield bytes(b)
    for _ in range(n):
        i = rng.randrange(size + 1)
        junk = rng.choice([bytes(rng.randrange(256) for _ in range(40)), bytes(100), data[: rng.randrange(1, 200)]])
        yield data[:i] + junk + data[i:]
    # Records that pass the checksums but are not Events.
    for bad in (b"\x0b", b"\xff" * 11, b"\x2a\x02\xc3\x28"):
        records = []
        p = 0
        while p + 16 <= size:
            (length,) = struct.unpack_from("<Q", data, p)
            if p + 16 + length > size:
                break
            records.append(data[p + 12 : p + 12 + length])
            p += 16 + length
        at = rng.randrange(len(records) + 1)
        yield b"".join(encode_record(r) for r in [*records[:at], bad, *records[at:]])


# --- scan_files ---------------------------------------------------------------------------


@pytest.mark.parametrize("resync", [False, True], ids=["stop", "resync"])
def test_scan_files_on_corpus_and_fixtures(monkeypatch: pytest.MonkeyPatch, resync: bool) -> None:
    runs = _all_runs()
    if not runs:
        pytest.skip("no corpus and no fixtures")
    events = 0
    for run in runs:
        for limit in (None, 0, 3):
            events += assert_same_scan(run, monkeypatch, resync=resync, backwards_limit=limit)["events"]
    # Every file as a stream of its own too, and everything as one stream.
    for run in runs:
        for path in run:
            assert_same_scan([path], monkeypatch, resync=resync)
    assert_same_scan([p for run in runs for p in run], monkeypatch, resync=resync, backwards_limit=5)
    assert events > 1000 or not CORPUS.is_dir()  # the fixtures alone hold fewer


@pytest.mark.parametrize("batch", [1, 7, 1 << 16], ids=lambda b: f"batch{b}")
def test_scan_files_on_generated_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """Batches of every size, so that a tag's values, backwards steps and first metadata
    fall in every way across batches and files."""
    monkeypatch.setattr(scan_module, "_BATCH_RECORDS", batch)
    rng = random.Random(11 + batch)
    paths = [_write(tmp_path / f"events.out.tfevents.{k}", _events(rng, 300, 12)) for k in range(3)]
    many = _write(tmp_path / "many_tags.tfevents", _events(rng, 400, 300))
    for streams in ([paths[0]], paths, [*paths, many], [many]):
        for limit in (None, 0, 1, 4):
            for resync in (False, True):
                assert_same_scan(streams, monkeypatch, resync=resync, backwards_limit=limit)


@pytest.mark.parametrize("resync", [False, True], ids=["stop", "resync"])
def test_scan_files_on_damaged_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resync: bool) -> None:
    seeds = sorted((p for run in _all_runs() for p in run if p.stat().st_size > 200), key=lambda p: p.stat().st_size)
    seeds = seeds[:: max(1, len(seeds) // 10)]
    rng = random.Random(5 + resync)
    seeds.append(_write(tmp_path / "generated.tfevents", _events(rng, 200, 8)))
    kinds: set[str] = set()
    for k, seed in enumerate(seeds):
        data = seed.read_bytes()[: 1 << 15]
        for j, variant in enumerate(_damaged(data, rng, 3 * SCALE)):
            path = tmp_path / f"v{k}_{j}.tfevents"
            path.write_bytes(variant)
            want = assert_same_scan([seed, path], monkeypatch, resync=resync, backwards_limit=2)
            kinds.update(d[1][1] for f in want["files"] for d in f["damage"])
    assert kinds >= {"truncated", "crc_mismatch", "invalid_event"}, kinds


def test_checkpoints_past_checkpoint_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More than CHECKPOINT_RECORDS records, with an invalid event as the record at which
    the first checkpoint falls: without resync it is retracted with its checkpoint; with
    resync it is counted in the fingerprints but not in the records."""
    event = event_pb2.Event(wall_time=1.0, step=1)
    event.summary.value.add(tag="loss", simple_value=0.5)
    n = CHECKPOINT_RECORDS + 10
    clean = _write(tmp_path / "clean.tfevents", [event] * n)
    stopped = _write(tmp_path / "invalid.tfevents", [event] * n, extra={CHECKPOINT_RECORDS - 1: b"\x0b"})
    for path in (clean, stopped):
        for resync in (False, True):
            want = assert_same_scan([path], monkeypatch, resync=resync)
            records = [c.records for c in want["files"][0]["checkpoints"]]
            if path == clean:
                assert records == [CHECKPOINT_RECORDS, n]
            elif resync:
                assert records == [CHECKPOINT_RECORDS, n + 1]
            else:
                assert records == [CHECKPOINT_RECORDS - 1]


def test_native_engine_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = native.FileScanner

    def counting(*args, **kw):
        calls.append(args)
        return real(*args, **kw)

    monkeypatch.setattr(native, "FileScanner", counting)
    path = _write(tmp_path / "events.out.tfevents.1", _events(random.Random(1), 20, 3))
    monkeypatch.setenv(ENV, "native")
    scan_files([path])
    assert len(calls) == 1
    monkeypatch.setenv(ENV, "python")
    scan_files([path])
    assert len(calls) == 1


# --- export -------------------------------------------------------------------------------


def _export_all(engine: str, root: Path, monkeypatch: pytest.MonkeyPatch, out: Path):
    monkeypatch.setenv(ENV, engine)
    frame = export_module.read_scalars(root)
    damage: list = []
    rows = list(export_module.iter_scalars(root, damage=damage))
    written = {}
    for fmt in ("csv", "parquet"):
        target = out / f"{engine}.{fmt}"
        count, found = export_module.export(root, target, force=True)
        written[fmt] = (count, found, target.read_bytes())
    return frame, rows, damage, written


def assert_same_export(root: Path, monkeypatch: pytest.MonkeyPatch, out: Path) -> int:
    import pandas as pd

    want = _export_all("python", root, monkeypatch, out)
    got = _export_all("native", root, monkeypatch, out)
    pd.testing.assert_frame_equal(got[0], want[0], check_exact=True)
    assert list(got[0].dtypes) == list(want[0].dtypes)
    # Rows bit for bit (NaN included), with Python types.
    assert [(r.run, r.tag, r.step, struct.pack("<dd", r.wall_time, r.value), r.dtype) for r in got[1]] == [
        (r.run, r.tag, r.step, struct.pack("<dd", r.wall_time, r.value), r.dtype) for r in want[1]
    ]
    assert {type(x) for r in got[1] for x in dataclasses.astuple(r)} <= {str, int, float}
    assert got[2] == want[2], root
    assert got[3] == want[3], root  # the same CSV and Parquet bytes, row counts and damage
    return len(want[1])


def test_export_on_corpus_and_fixtures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    roots = [r for r in (CORPUS, FIXTURES) if r.is_dir()]
    if not roots:
        pytest.skip("no corpus and no fixtures")
    rows = sum(assert_same_export(root, monkeypatch, tmp_path) for root in roots)
    assert rows > 1000 or not CORPUS.is_dir()  # the fixtures alone hold fewer


@pytest.mark.parametrize("chunk", [7, 100_000], ids=lambda c: f"chunk{c}")
def test_export_on_generated_and_damaged_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """Several runs (chunks of rows cross runs and batches), damaged files among them."""
    pytest.importorskip("pyarrow")
    monkeypatch.setattr(export_module, "CHUNK_ROWS", chunk)
    rng = random.Random(chunk)
    logdir = tmp_path / "logdir"
    for k in range(4):
        run = logdir / f"run{k}"
        run.mkdir(parents=True)
        for j in range(2):
            _write(run / f"events.out.tfevents.{j}.host", _events(rng, 150, 6))
    data = (logdir / "run0" / "events.out.tfevents.0.host").read_bytes()
    for j, variant in enumerate(_damaged(data, rng, 2 * SCALE)):
        run = logdir / f"damaged{j:03d}"
        run.mkdir()
        (run / "events.out.tfevents.1.host").write_bytes(variant)
    out = tmp_path / "out"
    out.mkdir()
    assert assert_same_export(logdir, monkeypatch, out) > 100
    # One event file given directly, and a run.
    assert_same_export(logdir / "run1", monkeypatch, out)
    assert_same_export(logdir / "run2" / "events.out.tfevents.0.host", monkeypatch, out)


def test_export_of_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "events.out.tfevents.1.host", [event_pb2.Event(wall_time=1.0, file_version="brain.Event:2")])
    out = tmp_path / "out"
    out.mkdir()
    assert assert_same_export(run, monkeypatch, out) == 0

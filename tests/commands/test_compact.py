"""``compact``: every bucket's min and max and each tag's last point survive; thinning, graphs, in place.

Hand-built logs here; a real Keras 3 log and TensorBoard's server:
``tests/e2e/test_edit_commands_e2e.py``.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files, loader_events, loader_values, tensor_value
from tbrewrite.cli import app
from tbrewrite.commands.compact import compact
from tbrewrite.events.reader import EventFileReader

runner = CliRunner()
SCALARS = ev.metadata("scalars")
KERAS = ev.metadata("graph_keras_model", b"1")
IMAGES = ev.metadata("images", b"\x08\x01")


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _image(tag: str, k: int) -> ev.summary_pb2.Summary.Value:
    value = ev.summary_pb2.Summary.Value(tag=tag)
    value.image.height, value.image.width, value.image.encoded_image_string = 1, 1, bytes([k % 256]) * 8
    return value


def _values(rng: random.Random, n: int) -> list[float]:
    values = [1.0 / (1 + 0.01 * i) + rng.uniform(-0.01, 0.01) for i in range(n)]
    for i in rng.sample(range(n), 20):
        values[i] = rng.choice([50.0, -50.0])  # spikes
    values[rng.randrange(n)] = math.nan
    return values


def _log(path: Path, values: list[float], *, first: int = 0, t0: float = ev.T0) -> Path:
    records = [ev.file_version(t0), ev.graph(t0 + 0.1), ev.summary(t0 + 0.2, 0, ev.tensor("keras", 0.0, KERAS))]
    for i, x in enumerate(values):
        step = first + i
        meta = SCALARS if i == 0 else None
        records.append(ev.summary(t0 + 1 + step, step, ev.tensor("loss", x, meta)))
        if step % 100 == 0:
            records.append(ev.summary(t0 + 1.5 + step, step, _image("img", step)))
    return ev.write(path, records)


def _loss(root: Path) -> list[tuple[int, float]]:
    return [(s, tensor_value(v)) for t, s, _, v in loader_values(event_files(root)) if t == "loss"]


def _same(a: float, b: float) -> bool:
    """``a`` read back equals ``b`` as the float32 it was stored as."""
    b32 = struct.unpack("<f", struct.pack("<f", b))[0]
    return a == b32 or (math.isnan(a) and math.isnan(b))


def test_every_bucket_keeps_its_first_min_max_last_and_nan(tmp_path: Path) -> None:
    values = _values(random.Random(7), 10_000)
    _log(tmp_path / "logs" / "run" / "events.out.tfevents.1700000000.h", values)
    report = compact(tmp_path / "logs", scalars=200, out=tmp_path / "out")
    kept = _loss(tmp_path / "out")
    assert len(kept) <= 200
    assert kept[-1] == (9_999, pytest.approx(values[-1]))  # the final value
    kept_steps = {s for s, _ in kept}
    buckets = 200 // 5
    for b in range(buckets):
        steps = [s for s in range(10_000) if s * buckets // 10_000 == b]
        finite = [s for s in steps if not math.isnan(values[s])]
        lo = min(finite, key=lambda s: values[s])
        hi = max(finite, key=lambda s: values[s])
        assert {steps[0], steps[-1], lo, hi} <= kept_steps, b
    assert any(math.isnan(x) for _, x in kept)  # the divergence survives
    assert all(_same(x, values[s]) for s, x in kept)
    (run_report,) = report.runs
    assert run_report.kept["loss"] == (10_000, len(kept))
    assert run_report.bytes_out is not None and run_report.bytes_out < run_report.bytes_in / 10
    # kept records are the input's bytes, except the first loss value keeps its metadata (it is kept)
    src = {r.data for r in EventFileReader(event_files(tmp_path / "logs")[0])}
    assert all(r.data in src for r in EventFileReader(event_files(tmp_path / "out")[0]))


def test_images_are_thinned_evenly_and_keep_the_last(tmp_path: Path) -> None:
    _log(tmp_path / "logs" / "run" / "events.out.tfevents.1700000000.h", [0.5] * 5_000)  # img at 0, 100, ..., 4900
    compact(tmp_path / "logs", images=5, scalars=2_000, out=tmp_path / "out")
    steps = [s for t, s, _, _ in loader_values(event_files(tmp_path / "out")) if t == "img"]
    assert steps == [0, 1200, 2500, 3700, 4900]
    assert len(_loss(tmp_path / "out")) == 800  # flat: each of the 400 buckets keeps its first and last


def test_one_run_over_several_files(tmp_path: Path) -> None:
    values = _values(random.Random(3), 4_000)
    run_dir = tmp_path / "logs" / "run"
    _log(run_dir / "events.out.tfevents.1700000000.h", values[:2_500])
    _log(run_dir / "events.out.tfevents.1700009000.h", values[2_500:], first=2_500, t0=ev.T0 + 9_000)
    compact(tmp_path / "logs", scalars=100, images=3, out=tmp_path / "out")
    kept = _loss(tmp_path / "out")
    assert len(kept) <= 100 and kept[-1][0] == 3_999
    assert [s for t, s, _, _ in loader_values(event_files(tmp_path / "out")) if t == "img"] == [0, 2000, 3900]


def test_graphs_kept_unless_dropped(tmp_path: Path) -> None:
    _log(tmp_path / "logs" / "run" / "events.out.tfevents.1700000000.h", [0.5] * 10)
    compact(tmp_path / "logs", out=tmp_path / "kept")
    assert loader_events(event_files(tmp_path / "kept")) == loader_events(event_files(tmp_path / "logs"))
    assert event_files(tmp_path / "kept")[0].read_bytes() == event_files(tmp_path / "logs")[0].read_bytes()
    compact(tmp_path / "logs", drop_graphs=True, out=tmp_path / "dropped")
    assert not loader_events(event_files(tmp_path / "dropped"))
    tags = {t for t, *_ in loader_values(event_files(tmp_path / "dropped"))}
    assert tags == {"loss", "img"}


def test_in_place_dry_run_and_cli(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    _log(logdir / "big" / "events.out.tfevents.1700000000.h", [0.25] * 3_000)
    small = _log(logdir / "small" / "events.out.tfevents.1700000000.h", [0.5] * 10)
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.rglob("*") if p.is_file()}
    dry = run("compact", logdir, "--scalars", "50", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: would thin 2 tag(s) in 2 run(s); nothing written" in dry.output  # big's loss and img
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.rglob("*") if p.is_file()} == digest
    assert run("compact", logdir, "--scalars", "4", "--in-place").exit_code == 2
    assert run("compact", logdir, "--scalars", "50").exit_code == 2  # neither --out nor --in-place
    before = small.stat().st_ino
    done = run("compact", logdir, "--scalars", "50", "--in-place", "--backup-dir", tmp_path / "backup")
    assert done.exit_code == 0, done.output
    assert "thinned 2 tag(s):" in done.output and "originals in" in done.output
    assert len(_loss(logdir / "big")) == 20 and small.stat().st_ino == before  # 10 flat buckets: first, last
    assert len(list((tmp_path / "backup").rglob("*"))) == 2  # backup/big/<file>


def _reference_kept(steps: list[int], values: list[float], count: int, lo: int, hi: int) -> set[int]:
    """The bucket rule one value at a time: first, last, first NaN, first lowest, first highest."""
    firsts: dict[int, int] = {}
    lasts: dict[int, int] = {}
    nans: dict[int, int] = {}
    lows: dict[int, tuple[float, int]] = {}
    highs: dict[int, tuple[float, int]] = {}
    for i, (step, x) in enumerate(zip(steps, values, strict=True)):
        b = min(count - 1, max(0, (step - lo) * count // (hi - lo + 1)))
        firsts.setdefault(b, i)
        lasts[b] = i
        if math.isnan(x):
            nans.setdefault(b, i)
            continue
        if b not in lows or x < lows[b][0]:
            lows[b] = (x, i)
        if b not in highs or x > highs[b][0]:
            highs[b] = (x, i)
    return {*firsts.values(), *lasts.values(), *nans.values(), *(i for _, i in lows.values())} | {
        i for _, i in highs.values()
    }


@pytest.mark.parametrize("seed", range(12))
def test_buckets_in_batches_keep_what_one_value_at_a_time_keeps(seed: int) -> None:
    import numpy as np

    from tbrewrite.commands.compact import _Buckets

    rng = random.Random(seed)
    n = rng.randint(1, 3_000)
    huge = seed % 3 == 0  # steps near the int64 limits: buckets computed with Python ints
    base = -(2**62) if huge else rng.randint(-50, 50)
    stride = 2**52 if huge else rng.randint(1, 3)
    steps = sorted(base + stride * rng.randrange(n) for _ in range(n))
    pool = [0.0, -0.0, 1.0, -1.0, math.inf, -math.inf, math.nan, 2.5]
    values = [rng.choice(pool) if rng.random() < 0.5 else rng.uniform(-3, 3) for _ in range(n)]
    count = rng.randint(1, 60)
    lo, hi = min(steps), max(steps)
    buckets = _Buckets(count, lo, hi)
    at = 0
    while at < n:
        size = rng.randint(1, 500)
        buckets.add(
            np.arange(at, min(n, at + size), dtype=np.int64),
            np.array(steps[at : at + size], np.int64),
            np.array(values[at : at + size], np.float64),
        )
        at += size
    assert buckets.exact is not huge
    assert {o for f, o in buckets.kept()} == _reference_kept(steps, values, count, lo, hi)


def test_in_place_with_nothing_to_thin_says_so(tmp_path: Path) -> None:
    """It printed 'originals in None' (as crop and rename say, nothing changed: no backup)."""
    ev.write(
        tmp_path / "logs" / "events.out.tfevents.1.host",
        [ev.file_version()] + [ev.summary(ev.T0 + k, k, ev.simple("loss", 1.0)) for k in range(3)],
    )
    result = runner.invoke(app, ["compact", str(tmp_path / "logs"), "--in-place"])
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("; nothing to change in place")
    assert "None" not in result.stdout


def test_values_written_after_the_scan_are_not_bucketed(tmp_path: Path) -> None:
    """A file still being written: the rewrite stops where the scan did, and so do the buckets."""
    from tbrewrite.commands.compact import _scalar_keys
    from tbrewrite.engine.scan import scan_files

    path = tmp_path / "events.out.tfevents.1700000000.h"
    records = [ev.file_version(ev.T0)]
    records += [
        ev.summary(ev.T0 + 1 + i, i, ev.tensor("loss", 1.0 / (1 + i), SCALARS if i == 0 else None)) for i in range(100)
    ]
    ev.write(path, records)
    scan = scan_files([path], resync=False, backwards_limit=0)
    grown = [ev.summary(ev.T0 + 101 + i, 100 + i, ev.tensor("loss", -5.0)) for i in range(50)]
    ev.write(tmp_path / "more", grown)
    with open(path, "ab") as f:  # the writer appends while compact plans
        f.write((tmp_path / "more").read_bytes())
    keys = _scalar_keys([path], [scan], {"loss": (0, 99)}, 20)
    assert "loss" in keys  # not "kept whole" as if some values were not numbers
    assert keys["loss"] and all(f == 0 and o < 100 for f, o in keys["loss"])

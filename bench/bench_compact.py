"""TensorBoard's own load time of a large log before and after ``tbrewrite compact``.

Issue 14 item 3: ``compact`` must make TensorBoard load a huge log at least 10x faster.
This script:

1. generates the scalar-heavy Keras 3 log of :func:`gen.scalar_log` (``--events``
   events: per-batch ``batch_loss`` and ``batch_accuracy``, the epoch scalars; one
   ``train/`` and one ``validation/`` run), deterministically;
2. runs ``tbrewrite compact LOG --out LOG-compact`` (default limits: 2,000 points per
   scalar tag) and times it;
3. times TensorBoard loading each log, in a fresh interpreter each:
   * the Python loader: ``plugin_event_accumulator.EventAccumulator(run).Reload()`` of
     both runs (what ``--load_fast=false`` and tbparse-style scripts run);
   * the Rust data server (``tensorboard --load_fast=true``): seconds from its start
     until it first answers, until ``/data/runs`` lists both runs, and until
     ``/data/plugin/scalars/scalars`` serves ``train``'s last ``batch_loss`` step
     (start-up alone is about what the tiny compacted log takes);
4. prints one table (seconds, bytes, events, and the speed-ups).

Usage::

    .venv/bin/python bench/bench_compact.py [--events 2000000] [--work DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen  # bench/gen.py, next to this script

BIN = Path(sys.executable).parent
ACCUMULATE = """
import sys, time
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.compat import tf
tf.io.gfile.exists(sys.argv[1])  # TensorFlow (or its stub) imported before the clock starts
t = time.perf_counter()
n = 0
for run in sys.argv[1:]:
    acc = pea.EventAccumulator(run)
    acc.Reload()
    n += sum(len(acc.Tensors(tag)) for tag in acc.Tags()["tensors"])
print(time.perf_counter() - t, n)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(port: int, path: str, **params: str) -> object:
    url = f"http://127.0.0.1:{port}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def accumulator_seconds(log: Path) -> tuple[float, int]:
    """Seconds for the Python EventAccumulator to load both runs, and the points it kept."""
    out = subprocess.run(
        [sys.executable, "-c", ACCUMULATE, str(log / "train"), str(log / "validation")],
        check=True,
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    seconds, points = out.stdout.split()
    return float(seconds), int(points)


def server_seconds(log: Path, last_step: int, timeout: float = 3600.0) -> tuple[float, float, float]:
    """Seconds from the server's start until it first answers, lists both runs, and serves ``last_step``.

    The data server starts reading the log as soon as it is launched, before the first
    answer; start-up alone (imports, launch) is what the tiny compacted log takes.
    """
    port = _port()
    start = time.perf_counter()
    argv = [str(BIN / "tensorboard"), "--logdir", str(log), "--port", str(port), "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*argv, "--load_fast=true", "--reload_interval=1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
    )
    runs_at = None
    up = None
    try:
        while time.perf_counter() - start < timeout:
            try:
                runs = _get(port, "/data/runs")
                up = up if up is not None else time.perf_counter() - start
                if runs_at is None and {"train", "validation"} <= set(runs):  # type: ignore[arg-type]
                    runs_at = time.perf_counter() - start
                points = _get(port, "/data/plugin/scalars/scalars", run="train", tag="batch_loss")
                if points and points[-1][1] == last_step:  # type: ignore[index]
                    return up, runs_at or 0.0, time.perf_counter() - start
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"tensorboard never served step {last_step} of {log}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _size(log: Path) -> int:
    return sum(p.stat().st_size for p in log.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tbrewrite-bench-compact-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        log = work / "log"
        info = gen.scalar_log(log, args.events)
        compacted = work / "log-compact"
        shutil.rmtree(compacted, ignore_errors=True)
        t = time.perf_counter()
        subprocess.run([str(BIN / "tbrewrite"), "compact", str(log), "--out", str(compacted)], check=True)
        compact_s = time.perf_counter() - t
        batches = int(info["events"]) // (gen.BATCHES_PER_EPOCH * gen.EVENTS_PER_BATCH + gen.EVENTS_PER_EPOCH)
        last = batches * gen.BATCHES_PER_EPOCH
        rows = []
        for name, path in (("original", log), ("compacted", compacted)):
            acc_s, points = accumulator_seconds(path)
            up_s, runs_s, ready_s = server_seconds(path, last)
            rows.append((name, _size(path), acc_s, points, up_s, runs_s, ready_s))
        print(f"machine: {platform.platform()}, {os.cpu_count()} cores; events {info['events']:,}")
        print(f"tbrewrite compact: {compact_s:.1f} s")
        print(
            "| log | bytes | EventAccumulator load (s) | points kept "
            "| server: first answer (s) | both runs listed (s) | last step served (s) |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, size, acc_s, points, up_s, runs_s, ready_s in rows:
            print(f"| {name} | {size:,} | {acc_s:.2f} | {points:,} | {up_s:.2f} | {runs_s:.2f} | {ready_s:.2f} |")
        (_, b0, a0, _, _, _, r0), (_, b1, a1, _, _, _, r1) = rows
        print(
            f"speed-up: EventAccumulator {a0 / a1:.1f}x, server last step from start {r0 / r1:.1f}x; "
            f"bytes {b0 / b1:.1f}x smaller"
        )
    finally:
        if not args.keep and args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""SIGTERM and SIGKILL with worker processes: nothing keeps writing after the command ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2

from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import is_event_file

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")


def _big_tree(root: Path, runs: int = 4, events: int = 150_000) -> Path:
    for r in range(runs):
        train = root / f"run{r}" / "train"
        train.mkdir(parents=True)
        with EventFileWriter(train / f"events.out.tfevents.{1700000000 + r}.host.1.0.v2", wall_time=1.7e9) as w:
            for step in range(events):
                e = event_pb2.Event(wall_time=1.7e9 + step, step=step)
                e.summary.value.add(tag="batch_loss", simple_value=1.0 / (step + 1))
                w.write_event(e)
    return root


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.update(int(c) for c in text)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def _start(tmp_path: Path) -> tuple[subprocess.Popen, Path, set[int]]:
    src = _big_tree(tmp_path / "logs")
    out = tmp_path / "out"
    cli = Path(sys.executable).with_name("tbrewrite")
    # The Python engine, so the runs take seconds: the native one converts this tree in
    # less time than the workers take to start, and the signal would find nothing to stop.
    env = {**os.environ, "TBREWRITE_ENGINE": "python"}
    proc = subprocess.Popen(
        [str(cli), "convert", str(src), str(out), "--jobs", "2"], stderr=subprocess.PIPE, text=True, env=env
    )
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2:
        try:
            workers = {c for c in _children(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()}
        except FileNotFoundError:
            break
        time.sleep(0.05)
    assert workers, "no worker processes started"
    time.sleep(0.5)
    return proc, out, workers


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file()] if out.exists() else []


@pytest.mark.slow
def test_sigterm_stops_workers_and_removes_output(tmp_path: Path) -> None:
    proc, out, workers = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert stderr.strip().splitlines()[-1] == "tbrewrite: terminated; partial output removed"
    time.sleep(1)
    assert not any(_alive(w) for w in workers)
    assert _leftovers(out) == []


@pytest.mark.slow
def test_sigkill_of_the_parent_takes_the_workers_down(tmp_path: Path) -> None:
    proc, out, workers = _start(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers)
    # Whatever is left is whole: published event files only, no half-written one
    # that TensorBoard would load.
    for path in _leftovers(out):
        assert is_event_file(path.name) and path.name.endswith(".tbrewrite"), path
    os.sync()

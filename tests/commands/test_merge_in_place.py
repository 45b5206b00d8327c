"""``merge --in-place`` publishes through the journaled swap: killed at any point, the run
is wholly old or wholly new after ``tbrewrite merge RUN --recover``."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from typer.testing import CliRunner

import tbrewrite.commands.merge as merge_module
from tbrewrite.cli import app
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import list_event_files
from tbrewrite.output import swap

runner = CliRunner()
T0 = 1_700_000_000.0


def make_run(run: Path, files: int, events: int) -> None:
    """A run restarted ``files`` times, ``train/loss`` at steps 0.. in every file."""
    run.mkdir(parents=True)
    for f in range(files):
        with EventFileWriter(run / f"events.out.tfevents.{1700000000 + f}.host", wall_time=T0 + f) as w:
            for k in range(events):
                event = event_pb2.Event(wall_time=T0 + f * events + k, step=f * events + k)
                event.summary.value.add(tag="train/loss", simple_value=1.0 / (k + 1))
                w.write_event(event)


def make_sidecar(path: Path, epochs: int) -> Path:
    rows = ["epoch,step,wall_time,learning_rate"] + [f"{e},{e},{T0 + e + 0.5},{0.1 / (e + 1)}" for e in range(epochs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def state(run: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_event_files(run)}


def backup_state(backup: Path) -> dict[str, str]:
    """The originals in a backup folder by their original names; TensorBoard loads none of them."""
    assert not list_event_files(backup)
    return {
        p.name.replace(swap.BACKUP_MARKER, "tfevents"): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in backup.iterdir()
    }


def leftovers(run: Path) -> list[str]:
    return sorted(p.name for p in run.iterdir() if p.name.startswith(".tbrewrite"))


@pytest.fixture
def template(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict[str, str]]:
    """A run, its sidecar, and its state before and after a clean in-place merge."""
    run = tmp_path / "template" / "run"
    make_run(run, files=3, events=20)
    sidecar = make_sidecar(tmp_path / "lr.csv", 10)
    reference = tmp_path / "reference" / "run"
    reference.parent.mkdir()
    shutil.copytree(run, reference, symlinks=True)
    result = runner.invoke(app, ["merge", str(reference), "--sidecar", str(sidecar), "--in-place"])
    assert result.exit_code == 0, result.output
    return run, sidecar, state(run), state(reference)


class Crash(Exception):
    """A process dying at this point: nothing after it runs, no recovery either."""


def test_interrupted_at_every_swap_step_recovers_wholly_new(
    tmp_path: Path, template: tuple[Path, Path, dict[str, str], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_template, sidecar, old, new = template
    assert old != new and len(old) == 3 and len(new) == 1
    steps = 0
    while True:
        run = tmp_path / f"attempt-{steps}" / "run"
        run.parent.mkdir()
        shutil.copytree(run_template, run, symlinks=True)

        def crash_after(swaps: list[swap.Swap], limit: int = steps) -> None:
            [s] = swaps
            swap.write_journal(s)
            if limit == 0:
                raise Crash()
            for n, _ in enumerate(swap.swap_steps(s.run_dir), start=1):
                if n == limit:
                    raise Crash()

        monkeypatch.setattr(merge_module, "commit", crash_after)
        result = runner.invoke(
            app, ["merge", str(run), "--sidecar", str(sidecar), "--in-place", "--backup-dir", str(run.parent / "bk")]
        )
        finished = result.exit_code == 0
        assert finished or isinstance(result.exception, Crash)
        if not finished:  # killed after the journal: it is there, or the swap is done
            assert (run / swap.JOURNAL_NAME).exists() or state(run) == new
        monkeypatch.undo()
        recovered = runner.invoke(app, ["merge", str(run), "--recover"])
        assert recovered.exit_code == 0, recovered.output
        assert state(run) == new, steps  # the journal existed: the run is logically new
        assert backup_state(run.parent / "bk") == old
        assert leftovers(run) == []
        if finished:
            break
        steps += 1
    assert steps == 9  # 3 originals backed up, 3 removed, 1 file published, journal removed; then done


@pytest.mark.slow
def test_sigkill_at_many_points_leaves_the_run_wholly_old_or_new(
    tmp_path: Path, template: tuple[Path, Path, dict[str, str], dict[str, str]]
) -> None:
    _run_template, sidecar, _, _ = template
    big = tmp_path / "big" / "run"
    make_run(big, files=120, events=200)  # a long write and a long swap
    old = state(big)
    code = "from tbrewrite.cli import main; main()"
    args = ["--sidecar", str(sidecar), "--in-place"]
    start = time.monotonic()
    reference = tmp_path / "ref" / "run"
    reference.parent.mkdir()
    shutil.copytree(big, reference, symlinks=True)
    subprocess.run([sys.executable, "-c", code, "merge", str(reference), *args], check=True, capture_output=True)
    duration = time.monotonic() - start
    new = state(reference)
    outcomes = {"old": 0, "new": 0}
    for k in range(16):
        run = tmp_path / f"kill-{k}" / "run"
        run.parent.mkdir()
        shutil.copytree(big, run, symlinks=True)
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "merge", str(run), *args],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(duration * (0.3 + 0.7 * k / 16))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        recovered = subprocess.run(
            [sys.executable, "-c", code, "merge", str(run), "--recover"], capture_output=True, text=True
        )
        assert recovered.returncode == 0, recovered.stderr
        now = state(run)
        assert now in (old, new), k
        assert leftovers(run) == []
        outcomes["old" if now == old else "new"] += 1
    assert outcomes["old"] and outcomes["new"], outcomes


def test_pending_journal_refused_until_recovered(
    tmp_path: Path, template: tuple[Path, Path, dict[str, str], dict[str, str]]
) -> None:
    run, sidecar, _, _ = template
    (run / swap.JOURNAL_NAME).write_text(
        '{"format": "tbrewrite-swap/2", "backup_dir": "/nonexistent", "files": [], "new": []}'
    )
    result = runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--in-place"])
    assert result.exit_code == 1
    assert "interrupted" in result.stderr and "--recover" in result.stderr
    assert runner.invoke(app, ["merge", str(run), "--recover"]).exit_code == 0
    assert runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--in-place"]).exit_code == 0

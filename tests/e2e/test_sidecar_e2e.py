"""Sidecars written by real Keras training, merged by ``convert``.

Slow: every test trains a tiny real Keras 3 model (``support/scripts/train_keras3.py``).
"""

from __future__ import annotations

import csv
import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.logs import points
from support.training import run_training
from tbrewrite.cli import app

runner = CliRunner()


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def batch_lr_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keras 3 fit, ExponentialDecay, LearningRateLogger(every="batch") -> logs/learning_rate.csv."""
    return run_training("train_keras3.py", tmp_path_factory.mktemp("lrb") / "logs", "--lr-logger", "batch")


@pytest.fixture(scope="module")
def epoch_lr_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_training("train_keras3.py", tmp_path_factory.mktemp("lre") / "logs", "--lr-logger", "epoch")


@pytest.mark.slow
def test_batch_sidecar_is_found_and_merged_exactly(batch_lr_logdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(batch_lr_logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    rows = csv_rows(batch_lr_logdir / "learning_rate.csv")
    got = points(tmp_path / "out", "train/batch_learning_rate")
    assert [(s, w, f32(v)) for s, w, v in got] == [
        (int(r["step"]), float(r["wall_time"]), f32(float(r["learning_rate"]))) for r in rows
    ]
    epochs = points(tmp_path / "out", "train/learning_rate")
    assert [s for s, _, _ in epochs] == [0, 1, 2]  # Keras 3's epoch_learning_rate, each epoch once


@pytest.mark.slow
def test_epoch_sidecar_wins_over_the_logged_rate(epoch_lr_logdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(epoch_lr_logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "replacing 3 log points" in result.stdout
    rows = csv_rows(epoch_lr_logdir / "learning_rate.csv")
    got = points(tmp_path / "out", "train/learning_rate")
    assert [(s, f32(v)) for s, _, v in got] == [(int(r["epoch"]), f32(float(r["learning_rate"]))) for r in rows]


@pytest.mark.slow
def test_csv_logger_restores_epochs_dropped_by_tensorflow_49109(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    history = tmp_path / "history.csv"
    # 4 batches per epoch, update_freq=3: Keras writes epoch summaries only when the
    # global batch count is a multiple of 3, so epochs 0 and 1 are missing.
    run_training("train_keras3.py", logdir, "--update-freq", "3", "--batches", "4", "--csv", str(history))
    before = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "plain")])
    assert "tensorflow#49109" in before.stderr
    assert len(points(tmp_path / "plain", "train/loss")) < 3
    result = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "out"), "--sidecar", str(history)])
    assert result.exit_code == 0, result.output
    rows = csv_rows(history)
    for tag, column in (("train/loss", "loss"), ("val/loss", "val_loss"), ("val/accuracy", "val_accuracy")):
        got = points(tmp_path / "out", tag)
        assert [(s, f32(v)) for s, _, v in got] == [(int(r["epoch"]), f32(float(r[column]))) for r in rows], tag


@pytest.fixture(scope="module")
def restarted_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two Keras 3 fit() processes into one log_dir, each with LearningRateLogger (no append).

    The second process's logger truncates learning_rate.csv in on_train_begin, so the file
    holds its 4 epoch rows only; a copy of the first process's file is kept as first.csv.
    Both processes log epoch_learning_rate at epochs 0..3 (Keras 3's TensorBoard).
    """
    root = tmp_path_factory.mktemp("restart")
    logdir = root / "logs"
    args = ("--epochs", "4", "--lr-logger", "epoch", "--no-histograms")
    run_training("train_keras3.py", logdir, *args)
    shutil.copy(logdir / "learning_rate.csv", root / "first.csv")
    run_training("train_keras3.py", logdir, *args)
    return logdir


def _log_rates(logdir: Path) -> list[tuple[int, float, bytes]]:
    """(step, wall_time, float32 value) of every epoch_learning_rate the two processes logged."""
    return sorted((s, w, f32(v)) for s, w, v in points(logdir / "train", "epoch_learning_rate"))


def _rows(path: Path) -> list[tuple[int, float, bytes]]:
    return [(int(r["epoch"]), float(r["wall_time"]), f32(float(r["learning_rate"]))) for r in csv_rows(path)]


@pytest.mark.slow
def test_restarted_logdir_sidecar_replaces_only_its_own_processes_points(
    restarted_logdir: Path, tmp_path: Path
) -> None:
    """Issue 12 item 4: the second process's rows replace its own 4 points; the first's 4 stay."""
    logged = _log_rates(restarted_logdir)
    assert len(logged) == 8 and len(_rows(restarted_logdir / "learning_rate.csv")) == 4
    result = runner.invoke(app, ["convert", str(restarted_logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "4 points added, replacing 4 log points" in result.stdout
    got = sorted((s, w, f32(v)) for s, w, v in points(tmp_path / "out", "train/learning_rate"))
    first = logged[::2]  # at each epoch the first process's point comes first
    assert max(w for _, w, _ in first) < min(w for _, w, _ in logged[1::2])
    assert got == sorted(first + _rows(restarted_logdir / "learning_rate.csv"))


@pytest.mark.slow
def test_restarted_logdir_with_each_processes_sidecar(restarted_logdir: Path, tmp_path: Path) -> None:
    """Both processes' sidecars given: each replaces its own process's points, 4 for 4."""
    first = restarted_logdir.parent / "first.csv"
    second = restarted_logdir / "learning_rate.csv"
    result = runner.invoke(
        app, ["convert", str(restarted_logdir), str(tmp_path / "out"), "--sidecar", str(first)]
    )  # the second is found beside the run
    assert result.exit_code == 0, result.output
    assert result.stdout.count("4 points added, replacing 4 log points") == 2, result.stdout
    got = sorted((s, w, f32(v)) for s, w, v in points(tmp_path / "out", "train/learning_rate"))
    assert got == sorted(_rows(first) + _rows(second))


@pytest.mark.slow
@pytest.mark.parametrize("given", [False, True], ids=["found", "given"])
def test_restarts_split_puts_each_row_into_its_processes_run(
    restarted_logdir: Path, tmp_path: Path, given: bool
) -> None:
    """--restarts split merges the sidecar (found or given) into the run of the process that wrote it."""
    sidecar = restarted_logdir / "learning_rate.csv"
    args = ["--sidecar", str(sidecar)] if given else []
    result = runner.invoke(app, ["convert", str(restarted_logdir), str(tmp_path / "out"), "--restarts", "split", *args])
    assert result.exit_code == 0, result.output
    assert result.stdout.count("4 points added, replacing 4 log points") == 1, result.stdout
    runs = sorted(p for p in (tmp_path / "out").iterdir() if p.is_dir())
    assert len(runs) == 2
    logged = _log_rates(restarted_logdir)
    assert sorted((s, w, f32(v)) for s, w, v in points(runs[0], "train/learning_rate")) == logged[::2]
    assert sorted((s, w, f32(v)) for s, w, v in points(runs[1], "train/learning_rate")) == _rows(sidecar)

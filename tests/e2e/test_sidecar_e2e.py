"""Sidecars written by real Keras training, merged by ``convert``.

Slow: every test trains a tiny real Keras 3 model (``support/scripts/train_keras3.py``).
"""

from __future__ import annotations

import csv
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

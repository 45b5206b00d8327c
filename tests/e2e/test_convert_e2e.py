"""``convert`` end to end: Keras runs trained in the session, TensorBoard's server reading the output.

Slow: every test here trains a tiny real model or starts ``tensorboard``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from support.expect import assert_converted, tensorflow_records
from support.logs import event_files, loader_values
from support.paths import FIXTURES
from support.tensorboard_server import TensorBoardServer
from support.training import run_training
from tbrewrite.commands.convert import convert
from tbrewrite.events.framing import RecordReader


@pytest.fixture(scope="session")
def tf_keras_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tf_keras log_dir trained in this session, ReduceLROnPlateau writing epoch_lr."""
    return run_training("train_tf_keras.py", tmp_path_factory.mktemp("tfk") / "logs")


@pytest.mark.slow
def test_convert_keras3_run_trained_in_session(keras3_logdir: Path, tmp_path: Path) -> None:
    report = convert(keras3_logdir, tmp_path / "out")
    output = assert_converted(keras3_logdir, tmp_path / "out", "keras-split")
    tags = {t for t, *_ in loader_values([output])}
    assert {
        "train/loss",
        "val/loss",
        "train/accuracy",
        "val/accuracy",
        "train/learning_rate",
        "train/batch_loss",
        "val/loss_vs_iterations",
    } <= tags
    assert not any(t.startswith(("epoch_", "batch_", "evaluation_")) for t in tags)
    assert report.damage == []
    (run,) = report.runs
    assert run.plan.layout == "keras-split"


@pytest.mark.slow
def test_tf_keras_run_trained_in_session(tf_keras_logdir: Path, tmp_path: Path) -> None:
    report = convert(tf_keras_logdir, tmp_path / "out")
    output = assert_converted(tf_keras_logdir, tmp_path / "out", "keras-split")
    tags = {t for t, *_ in loader_values([output])}
    assert {"train/loss", "val/loss", "train/learning_rate", "train/batch_loss"} <= tags
    assert report.runs[0].plan.layout == "keras-split"


@pytest.mark.slow
def test_real_tensorflow_files_read_record_for_record(keras3_logdir: Path) -> None:
    for path in event_files(keras3_logdir):
        records = tensorflow_records(path)
        assert len(records) > 1
        assert list(RecordReader(path)) == records


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_serves_the_converted_run(keras3_logdir: Path, tmp_path: Path, load_fast: str) -> None:
    convert(keras3_logdir, tmp_path / "logdir" / "run")
    with TensorBoardServer(tmp_path / "logdir", load_fast=load_fast) as tb:
        tags = tb.wait_for_tags(
            "run", {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "train/learning_rate"}
        )
        assert not any(t.startswith(("epoch_", "evaluation_")) for t in tags)
        for tag in ("train/loss", "val/loss", "train/accuracy", "val/accuracy", "train/learning_rate"):
            points = tb.scalars("run", tag)
            assert [step for _, step, _ in points] == [0, 1, 2], tag


@pytest.mark.slow
def test_keep_last_shows_what_tensorboard_shows(tmp_path: Path) -> None:
    """--restarts keep-last equals what TensorBoard's data server serves for the raw run."""
    shutil.copytree(FIXTURES / "tf1_flat_run", tmp_path / "logdir" / "raw")
    convert(FIXTURES / "tf1_flat_run", tmp_path / "logdir" / "converted", restarts="keep-last")
    with TensorBoardServer(tmp_path / "logdir", load_fast="true") as tb:
        tb.wait_for_tags("converted", {"train/loss"})
        tb.wait_for_tags("raw", {"loss"})
        for old, new in (("loss", "train/loss"), ("val_acc", "val/acc"), ("lr", "train/learning_rate")):
            raw = tb.scalars("raw", old)
            assert [s for _, s, _ in raw] == [0, 1, 2, 3, 4, 5, 6]
            assert tb.scalars("converted", new) == raw

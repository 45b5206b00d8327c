"""``crop``, ``concat`` and ``overlay`` on logs real writers wrote in this session, read by TensorBoard.

Writers: Keras 3 and tf_keras training (``tests/support/scripts``), and TensorFlow's own
``tf.summary`` / TF1 ``FileWriter`` (``write_all_kinds.py``: every summary kind and every
non-summary event). Checked with TensorBoard's ``EventFileLoader`` and its server in both
``--load_fast`` modes. (PyTorch and tensorboardX are not installed here.)

Slow: every test trains a tiny model or starts ``tensorboard``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files, loader_events, loader_values
from support.paths import SCRIPTS
from support.tensorboard_server import TensorBoardServer
from support.tfrecord import frame
from support.training import run_training, train_env
from tbrewrite.cli import app
from tbrewrite.commands.crop import crop
from tbrewrite.events.framing import RecordReader

runner = CliRunner()
STEPLESS = ("keras", "_hparams_/", "__run_graph__")  # graph_def events come out of the loader as __run_graph__


@pytest.fixture(scope="module")
def tf_keras_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_training("train_tf_keras.py", tmp_path_factory.mktemp("tfk") / "logs")


@pytest.fixture(scope="module")
def tf_summary_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    logdir = tmp_path_factory.mktemp("tfsum") / "logs"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "write_all_kinds.py"), str(logdir)], check=True, env=train_env(), timeout=300
    )
    return logdir


def _by_run(root: Path) -> dict[str, Counter]:
    out = {}
    for run_dir in sorted({p.parent for p in event_files(root)}):
        out[run_dir.relative_to(root).as_posix()] = Counter(loader_values(event_files(run_dir)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["keras3", "tf_keras", "tf_summary"])
def test_crop_keeps_exactly_the_steps_asked(writer: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    logdir = request.getfixturevalue({"keras3": "keras3_logdir"}.get(writer, f"{writer}_logdir"))
    crop(logdir, steps=(1, 3), out=tmp_path / "out")
    before, after = _by_run(logdir), _by_run(tmp_path / "out")
    assert before.keys() == after.keys()
    for run in before:
        # what TensorBoard's loader yields: every value at steps 1, 2, and the stepless ones
        expected = Counter({v: n for v, n in before[run].items() if 1 <= v[1] < 3 or v[0].startswith(STEPLESS)})
        assert after[run] == expected, run
        run_in, run_out = logdir / run, tmp_path / "out" / run
        assert loader_events(event_files(run_out)) == loader_events(event_files(run_in))


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_serves_the_cropped_run(keras3_logdir: Path, tmp_path: Path, load_fast: str) -> None:
    result = runner.invoke(app, ["crop", str(keras3_logdir), "--steps", "1:", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with TensorBoardServer(tmp_path / "out", load_fast=load_fast) as tb:
        tb.wait_for_tags("train", {"epoch_loss", "epoch_learning_rate"})
        tb.wait_for_tags("validation", {"epoch_loss"})
        assert [s for _, s, _ in tb.scalars("train", "epoch_loss")] == [1, 2]
        assert [s for _, s, _ in tb.scalars("validation", "epoch_loss")] == [1, 2]
        assert min(s for _, s, _ in tb.scalars("train", "batch_loss")) >= 1


def _split(logdir: Path, a: Path, b: Path, rng: random.Random) -> None:
    """Split every run of ``logdir`` at a random record into ``a`` and ``b`` (b's file starts anew)."""
    for path in event_files(logdir):
        run = path.parent.relative_to(logdir)
        records = list(RecordReader(path))
        k = rng.randrange(2, len(records) - 1)
        (a / run).mkdir(parents=True)
        (b / run).mkdir(parents=True)
        (a / run / path.name).write_bytes(b"".join(frame(r) for r in records[:k]))
        wall = ev.decode(records[k]).wall_time
        head = ev.file_version(wall)
        (b / run / f"events.out.tfevents.{int(wall) + 1}.host.99.v2").write_bytes(
            b"".join(frame(r) for r in [head, *records[k:]])
        )


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_concat_of_a_run_split_in_two_equals_the_unsplit_run(
    keras3_logdir: Path, tmp_path: Path, load_fast: str
) -> None:
    rng = random.Random(load_fast)
    _split(keras3_logdir, tmp_path / "a", tmp_path / "b", rng)
    result = runner.invoke(app, ["concat", str(tmp_path / "b"), str(tmp_path / "a"), str(tmp_path / "tb" / "joined")])
    assert result.exit_code == 0, result.output
    assert _by_run(tmp_path / "tb" / "joined") == _by_run(keras3_logdir)
    shutil.copytree(keras3_logdir, tmp_path / "tb" / "unsplit")
    with TensorBoardServer(tmp_path / "tb", load_fast=load_fast) as tb:
        for split in ("train", "validation"):
            tags = tb.wait_for_tags(f"unsplit/{split}", {"epoch_loss"})
            tb.wait_for_tags(f"joined/{split}", tags)
            for tag in tags:
                assert tb.scalars(f"joined/{split}", tag) == tb.scalars(f"unsplit/{split}", tag), (split, tag)


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["tf_keras", "tf_summary"])
def test_concat_of_other_writers_split_in_two(writer: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """tf_keras, and TF2 tf.summary (steps going back) / TF1 FileWriter (graph, session log, run metadata)."""
    logdir = request.getfixturevalue(f"{writer}_logdir")
    _split(logdir, tmp_path / "a", tmp_path / "b", random.Random(writer))
    result = runner.invoke(
        app, ["concat", str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "joined"), "--restarts", "keep"]
    )
    assert result.exit_code == 0, result.output
    assert _by_run(tmp_path / "joined") == _by_run(logdir)
    for run in _by_run(logdir):
        joined = loader_events(event_files(tmp_path / "joined" / run))
        assert joined == loader_events(event_files(logdir / run)), run


@pytest.mark.slow
def test_concat_of_a_resumed_keras_training(tmp_path: Path) -> None:
    """Two real trainings: the second restarted from epoch 0 in a new folder; --step-offset auto continues it."""
    first = run_training("train_keras3.py", tmp_path / "first", "--epochs", "3", "--no-histograms")
    second = run_training("train_keras3.py", tmp_path / "second", "--epochs", "2", "--no-histograms")
    result = runner.invoke(app, ["concat", str(first), str(second), str(tmp_path / "joined"), "--step-offset", "auto"])
    assert result.exit_code == 0, result.output
    steps = [(t, s) for t, s, _, _ in loader_values(event_files(tmp_path / "joined" / "train"))]
    assert sorted(s for t, s in steps if t == "epoch_loss") == [0, 1, 2, 3, 4]
    batch = [s for t, s, _, _ in loader_values(event_files(tmp_path / "joined" / "train")) if t == "batch_loss"]
    counts = [sum(1 for v in loader_values(event_files(r / "train")) if v[0] == "batch_loss") for r in (first, second)]
    assert len(batch) == sum(counts) and batch == sorted(set(batch))  # every point kept, steps strictly rising
    assert sorted(s for t, s in steps if t == "keras") == [0]


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_serves_the_overlay_layout(keras3_logdir: Path, tmp_path: Path, load_fast: str) -> None:
    out = tmp_path / "logs" / "run"
    result = runner.invoke(app, ["convert", str(keras3_logdir), str(out), "--overlay"])
    assert result.exit_code == 0, result.output
    with TensorBoardServer(tmp_path / "logs", load_fast=load_fast) as tb:
        tb.wait_for_tags("run", {"train/loss", "val/loss"})
        layout = tb.get("/data/plugin/custom_scalars/layout")
        (category,) = layout["category"]
        charts = {c["title"]: c["multiline"]["tag"] for c in category["chart"]}
        assert charts["loss"] == ["^train/loss$", "^val/loss$"]
        assert charts["accuracy"] == ["^train/accuracy$", "^val/accuracy$"]
        assert charts["learning_rate"] == ["^train/learning_rate$"]
        for regex in charts["loss"]:
            data = tb.get("/data/plugin/custom_scalars/scalars", run="run", tag=regex)
            assert data["regex_valid"]
            ((tag, points),) = data["tag_to_events"].items()
            assert [p[1] for p in points] == [0, 1, 2]
            assert points == tb.scalars("run", tag)


@pytest.fixture(scope="module")
def batch_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras 3 log_dir with a batch_loss point at every one of 5 x 40 batches."""
    logdir = tmp_path_factory.mktemp("k3batch") / "logs"
    return run_training("train_keras3.py", logdir, "--epochs", "5", "--batches", "40", "--update-freq", "1")


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_compact_keeps_every_bucket_min_max_and_the_last_point(
    batch_logdir: Path, tmp_path: Path, load_fast: str
) -> None:
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea
    from tensorboard.util import tensor_util

    result = runner.invoke(app, ["compact", str(batch_logdir), "--scalars", "20", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    acc = pea.EventAccumulator(str(batch_logdir / "train"), size_guidance={"tensors": 0})
    acc.Reload()
    before = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors("batch_loss")]
    assert len(before) == 200
    with TensorBoardServer(tmp_path / "out", load_fast=load_fast) as tb:
        tb.wait_for_tags("train", {"batch_loss", "epoch_loss"})
        served = [(s, v) for _, s, v in tb.scalars("train", "batch_loss")]
        assert [s for _, s, _ in tb.scalars("train", "epoch_loss")] == [0, 1, 2, 3, 4]  # 5 points: kept whole
    assert len(served) <= 20
    assert served[-1] == before[-1]
    lo, hi = before[0][0], before[-1][0]
    for b in range(4):  # 20 // 5 buckets over the step range
        points = [p for p in before if min(3, (p[0] - lo) * 4 // (hi - lo + 1)) == b]
        for wanted in (points[0], points[-1], min(points, key=lambda p: p[1]), max(points, key=lambda p: p[1])):
            assert wanted in served, (b, wanted)

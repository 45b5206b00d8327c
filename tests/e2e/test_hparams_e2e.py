"""``hparams`` on logs real writers wrote in this session, read by TensorBoard's loader and server.

Writers: Keras 3 and tf_keras training (a ``log_dir`` with ``train/`` and ``validation/``:
one session, metric groups ``train`` and ``validation``), TensorFlow's ``tf.summary`` (whose
run has ``hp.hparams`` already: merged) and TF1's ``FileWriter``, PyTorch's ``SummaryWriter``
(skipped where torch is not installed) and tensorboardX's (its origin), one run of which
called ``add_hparams`` -- its own experiment, which hid every other run's hparams
(pytorch#37738, stable-baselines3#1099). Checked with TensorBoard's ``EventFileLoader`` and
its server in both ``--load_fast`` modes: the HParams plugin's ``/experiment`` and
``/session_groups`` serve the values written and each metric's last value, which is the
last point the Scalars plugin serves for that run and tag.

Slow: trains models and starts ``tensorboard``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import hparams_backend
from support.logs import event_files
from support.paths import SCRIPTS
from support.tensorboard_server import TensorBoardServer
from support.training import run_training, train_env
from tbrewrite.cli import app

runner = CliRunner()
PYTORCH_WRITERS = [w for w in ("torch", "tensorboardX") if importlib.util.find_spec(w) is not None]

TABLE = """run,lr,units,optimizer,augment
keras3,0.05,3,sgd,true
tf_keras,0.01,3,sgd,false
tfsum/tf2,0.1,,adam,
tfsum/tf1,0.2,,adam,
{pytorch}
"""
PYTORCH_ROWS = "{w}/plain,0.3,8,adamw,true\n{w}/with_hparams,0.1,8,adamw,false"


def _script(script: str, *args: str) -> None:
    subprocess.run([sys.executable, str(SCRIPTS / script), *args], check=True, env=train_env(), timeout=300)


@pytest.fixture(scope="module")
def mixed_logdir(keras3_logdir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tree holding a log of every writer: keras3/, tf_keras/, tfsum/{tf1,tf2}/, <pytorch writer>/{plain,with_hparams}/."""
    root = tmp_path_factory.mktemp("mixed") / "logs"
    shutil.copytree(keras3_logdir, root / "keras3")
    run_training("train_tf_keras.py", root / "tf_keras")
    _script("write_all_kinds.py", str(root / "tfsum"))
    for writer in PYTORCH_WRITERS:
        _script("write_pytorch.py", str(root / writer), writer)
    return root


def _table(tmp_path: Path) -> Path:
    rows = "\n".join(PYTORCH_ROWS.format(w=w) for w in PYTORCH_WRITERS)
    path = tmp_path / "runs.csv"
    path.write_text(TABLE.format(pytorch=rows), encoding="utf-8")
    return path


def _expected_hparams() -> dict[str, dict[str, object]]:
    out: dict[str, dict[str, object]] = {
        "keras3": {"lr": 0.05, "units": 3, "optimizer": "sgd", "augment": True},
        "tf_keras": {"lr": 0.01, "units": 3, "optimizer": "sgd", "augment": False},
        "tfsum/tf2": {"lr": 0.1, "optimizer": "adam"},  # hp.hparams({"lr": 0.1}) merged: the same lr
        "tfsum/tf1": {"lr": 0.2, "optimizer": "adam"},
    }
    for w in PYTORCH_WRITERS:
        out[f"{w}/plain"] = {"lr": 0.3, "units": 8, "optimizer": "adamw", "augment": True}
        out[f"{w}/with_hparams"] = {"lr": 0.1, "units": 8, "optimizer": "adamw", "augment": False}
        # add_hparams' own session (``with_hparams/hp``) keeps its hparams
        out[f"{w}/with_hparams/hp"] = {"lr": 0.1, "bsize": 32}
    return out


@pytest.mark.slow
def test_summaries_as_tensorboards_loader_reads_them(mixed_logdir: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    result = runner.invoke(
        app, ["hparams", str(mixed_logdir), "--from", str(_table(tmp_path)), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    starts, experiments = {}, []
    for path in event_files(tmp_path / "out"):
        for event in EventFileLoader(str(path)).Load():
            for v in event.summary.value:
                content = v.metadata.plugin_data.content
                run = path.parent.relative_to(tmp_path / "out").as_posix()
                if v.tag == metadata.SESSION_START_INFO_TAG:
                    assert run not in starts, f"{run}: two session start summaries"
                    info = metadata.parse_session_start_info_plugin_data(content)
                    starts[run] = {k: _py(x) for k, x in info.hparams.items()}
                elif v.tag == metadata.EXPERIMENT_TAG:
                    experiments.append((run, metadata.parse_experiment_plugin_data(content)))
    assert starts == _expected_hparams()
    ((run, experiment),) = experiments  # the writers' own experiments are gone: one for the tree
    assert run == "."
    names = {h.name for h in experiment.hparam_infos}
    assert names == {"lr", "units", "optimizer", "augment"} | ({"bsize"} if PYTORCH_WRITERS else set())
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("train", "epoch_loss"), ("validation", "epoch_loss"), ("", "s"), ("", "x")} <= metrics
    # every file the command did not need to change is the original's bytes
    changed = {f"{w}/with_hparams/hp" for w in PYTORCH_WRITERS} | {"tfsum/tf2"}
    for path in event_files(mixed_logdir):
        run = path.parent.relative_to(mixed_logdir).as_posix()
        if run not in changed:
            assert (tmp_path / "out" / path.relative_to(mixed_logdir)).read_bytes() == path.read_bytes(), path


def _py(value) -> object:
    kind = value.WhichOneof("kind")
    number = value.number_value
    return getattr(value, kind) if kind != "number_value" else (int(number) if number.is_integer() else number)


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboard_serves_the_sessions_and_the_metrics_last_values(
    mixed_logdir: Path, tmp_path: Path, load_fast: str
) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["hparams", str(mixed_logdir), "--from", str(_table(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = _expected_hparams()
    with TensorBoardServer(out, load_fast=load_fast) as tb:
        board = hparams_backend.served(tb.port, len(expected))
        assert board.sessions.keys() == expected.keys()
        for session, values in expected.items():
            assert board.sessions[session]["hparams"] == values, session
        assert board.hparams["lr"][0] == "DATA_TYPE_FLOAT64"
        assert board.hparams["optimizer"] == ("DATA_TYPE_STRING", ["adam", "adamw", "sgd"])
        checked = 0
        for session in expected:
            for (group, tag), value in board.sessions[session]["metrics"].items():
                run = f"{session}/{group}" if group else session
                assert value == pytest.approx(tb.scalars(run, tag)[-1][2]), (session, group, tag)
                checked += 1
        keras = board.sessions["keras3"]["metrics"]
        assert {("train", "epoch_loss"), ("validation", "epoch_loss"), ("validation", "epoch_accuracy")} <= keras.keys()
        assert board.sessions["tfsum/tf1"]["metrics"] == {("", "x"): 1.0}
        for w in PYTORCH_WRITERS:
            assert board.sessions[f"{w}/plain"]["metrics"][("", "loss")] == pytest.approx(0.2)
            # add_hparams' metric is in its own session's run (the longest session folder above it)
            assert board.sessions[f"{w}/with_hparams/hp"]["metrics"] == {("", "hparam/final_loss"): pytest.approx(0.3)}
            assert board.sessions[f"{w}/with_hparams"]["metrics"][("", "loss")] == pytest.approx(0.3)
        assert checked >= 10

"""``tbrewrite.read`` against tbparse, value for value, on logs every common writer made in the session.

Writers: Keras 3 (histograms, weight images), tf_keras, raw ``tf.summary`` (every kind, an
hparams experiment), a TF1 graph's merged summaries through ``FileWriter``, tensorboardX,
and PyTorch's ``SummaryWriter`` when torch is installed. tbparse reads with TensorFlow (so
that it decodes images and audio); every row it returns must be in exactly one of our
tables with the same value, and we return no row it does not.

The deliberate differences (README, "Every kind into pandas"), each handled below:

* ``run`` is tbparse's ``dir_name`` (``"."`` for the logdir itself, tbparse ``""``).
* TF2 scalars, histograms, images and audio are stored as tensors: tbparse lists them under
  ``.tensors`` (raw arrays), we under their kind (decoded as TensorBoard shows them); our
  ``tensors`` holds only what no other kind takes.
* Images and audio are the encoded bytes (tbparse decodes them with TensorFlow): compared
  here after decoding ours with TensorFlow.
* hparams: one row per session run with a column per hyperparameter and per metric;
  tbparse has one row per (run, hyperparameter) and no metrics.
* A text tensor of several strings is an array of str; tbparse fails on it (not compared).
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from support.paths import CORPUS, SCRIPTS, needs_corpus
from support.training import run_training, train_env
from tbrewrite import read

pytestmark = pytest.mark.slow

EXTRA = {
    "dir_name",
    "wall_time",
    "min",
    "max",
    "num",
    "sum",
    "sum_squares",
    "width",
    "height",
    "content_type",
    "length_frames",
    "sample_rate",
}


def write(logdir: Path, writer: str) -> Path:
    subprocess.run(
        [sys.executable, str(SCRIPTS / "write_every_kind.py"), str(logdir), writer],
        check=True,
        env=train_env(),
        timeout=300,
    )
    return logdir


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("every_kind")
    made = {
        "keras3": run_training("train_keras3.py", root / "keras3", "--write-images", "--epochs", "2"),
        "tf_keras": run_training("train_tf_keras.py", root / "tf_keras", "--epochs", "2"),
        "tf2": write(root / "tf2", "tf2"),
        "tf1": write(root / "tf1", "tf1"),
        "tensorboardX": write(root / "tensorboardX", "tensorboardX"),
    }
    if importlib.util.find_spec("torch") is not None:
        made["torch"] = write(root / "torch", "torch")
    return made


def tbparse_tables(logdir: Path) -> dict[str, Any]:
    from tbparse import SummaryReader

    reader = SummaryReader(str(logdir), extra_columns=EXTRA)
    kinds = ("scalars", "tensors", "histograms", "images", "audio", "text", "hparams")
    return {kind: reader.get_events(kind) for kind in kinds}


def key(row: Any) -> tuple[str, str, int, float]:
    return (row.dir_name or ".", row.tag, int(row.step), float(row.wall_time))


def ours_by_key(frames: Any) -> dict[tuple[str, str, int, float], list[tuple[str, Any]]]:
    """Every row of ours (images and audio grouped per value) under (run, tag, step, wall_time)."""
    found: dict[tuple, list] = defaultdict(list)
    for kind in ("scalars", "tensors", "histograms", "text"):
        for row in frames[kind].itertuples(index=False):
            found[(row.run, row.tag, row.step, row.wall_time)].append((kind, row))
    for kind in ("images", "audio"):
        for k, group in frames[kind].groupby(["run", "tag", "step", "wall_time"], sort=False):
            found[k].append((kind, list(group.sort_values("index").itertuples(index=False))))
    return found


def take(found: dict, k: tuple, kind: str | None = None) -> tuple[str, Any]:
    assert found.get(k), f"tbparse has {k}, we have no row there"
    got_kind, value = found[k].pop(0)
    if kind is not None:
        assert got_kind == kind, (k, got_kind, kind)
    return got_kind, value


def same_number(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_tensor(k: tuple, tb_value: Any, kind: str, ours: Any) -> None:
    from tbparse import SummaryReader

    if kind == "scalars":
        assert same_number(float(tb_value), ours.value), k
    elif kind == "histograms":
        expected = SummaryReader.tensor_to_histogram(tb_value) if len(tb_value) else None
        if expected is None:
            assert len(ours.limits) == 0 and ours.num == 0
        else:
            np.testing.assert_array_equal(ours.limits, expected["limits"])
            np.testing.assert_array_equal(ours.counts, expected["counts"])
            assert (ours.min, ours.max, ours.num) == (expected["min"], expected["max"], expected["num"])
    elif kind == "images":
        assert [int(tb_value[0]), int(tb_value[1])] == [ours[0].width, ours[0].height], k
        assert [bytes(b) for b in tb_value[2:]] == [r.value for r in ours], k
    elif kind == "audio":
        pairs = tb_value if tb_value.ndim == 2 else [(b, b"") for b in tb_value]
        assert [(bytes(a), bytes(b).decode()) for a, b in pairs] == [(r.value, r.label) for r in ours], k
    else:
        assert kind == "tensors", (k, kind)
        if isinstance(tb_value, np.ndarray):
            np.testing.assert_array_equal(ours.value, tb_value)
            assert ours.value.dtype == tb_value.dtype
        else:
            assert ours.value == tb_value or same_number(ours.value, tb_value), k


def compare(logdir: Path, damaged: bool = False) -> dict[str, int]:
    """Assert tbparse's tables and ours hold the same values; return tbparse's row counts."""
    import tensorflow as tf

    theirs = tbparse_tables(logdir)
    frames = read(logdir)
    assert bool(frames.damage) == damaged
    found = ours_by_key(frames)
    counts = {kind: len(table) for kind, table in theirs.items()}
    for row in theirs["scalars"].itertuples(index=False):
        _, ours = take(found, key(row), "scalars")
        assert same_number(row.value, ours.value) and ours.dtype == "float32"
    for row in theirs["tensors"].itertuples(index=False):
        kind, ours = take(found, key(row))
        check_tensor(key(row), row.value, kind, ours)
    for row in theirs["histograms"].itertuples(index=False):
        _, ours = take(found, key(row), "histograms")
        np.testing.assert_array_equal(ours.limits, row.limits)
        np.testing.assert_array_equal(ours.counts, row.counts)
        for name in ("min", "max", "num", "sum", "sum_squares"):
            assert same_number(getattr(ours, name), getattr(row, name)), name
    for row in theirs["images"].itertuples(index=False):
        _, (ours,) = take(found, key(row), "images")
        assert (ours.width, ours.height, ours.format) == (row.width, row.height, "png")
        np.testing.assert_array_equal(tf.image.decode_image(ours.value).numpy(), row.value)
    for row in theirs["audio"].itertuples(index=False):
        _, (ours,) = take(found, key(row), "audio")
        assert (ours.content_type, ours.length_frames, ours.sample_rate) == (
            row.content_type,
            row.length_frames,
            row.sample_rate,
        )
        samples, rate = tf.audio.decode_wav(ours.value)
        np.testing.assert_array_equal(samples.numpy(), row.value)
        assert int(rate) == row.sample_rate
    for row in theirs["text"].itertuples(index=False):
        _, ours = take(found, key(row), "text")
        assert ours.value == row.value
    leftover = {k: v for k, v in found.items() if v}
    assert not leftover, f"rows of ours tbparse does not have: {list(leftover)[:5]}"
    hparams = frames.hparams.set_index("run")
    pairs = {(r.dir_name or ".", r.tag): r.value for r in theirs["hparams"].itertuples(index=False)}
    ours_pairs = {
        (run, name): value
        for run, row in hparams.iterrows()
        for name, value in row.items()
        if name in {t for _, t in pairs} and value is not None and value == value
    }
    assert ours_pairs == pairs
    return counts


def test_keras3(logs: dict[str, Path]) -> None:
    counts = compare(logs["keras3"])
    assert counts["tensors"] > 0 and counts["scalars"] == 0  # tbparse: every Keras 3 value is a tensor
    frames = read(logs["keras3"], kinds="images,histograms")
    assert len(frames.images) and len(frames.histograms) and frames.scalars.empty


def test_tf_keras(logs: dict[str, Path]) -> None:
    compare(logs["tf_keras"])


def test_raw_tf_summary_every_kind(logs: dict[str, Path]) -> None:
    compare(logs["tf2"])
    frames = read(logs["tf2"])
    assert {k: len(frames[k]) for k in ("scalars", "tensors", "histograms", "images", "audio", "text")} == {
        "scalars": 3 + 4,
        "tensors": 3,
        "histograms": 6,
        "images": 6,
        "audio": 6,
        "text": 3,
    }
    assert list(frames.hparams.columns) == ["run", "lr", "optimizer", "units", "accuracy"]
    assert frames.hparams.to_dict("list") == {
        "run": ["tf2_hp/run-0", "tf2_hp/run-1"],
        "lr": [0.01, 0.1],
        "optimizer": ["adam", "sgd"],
        "units": [8.0, 16.0],
        "accuracy": [pytest.approx(0.51), pytest.approx(0.61)],
    }
    assert set(frames.audio.label) == {""} and set(frames.audio.sample_rate) == {8000.0}


def test_text_table_is_an_array_of_str(logs: dict[str, Path]) -> None:
    text = read(logs["tf2"].with_name("tf2.table")).text
    assert text.value[0].tolist() == [["a", "b"], ["c", "d"]]


def test_tf1_merged_summaries(logs: dict[str, Path]) -> None:
    counts = compare(logs["tf1"])
    assert counts["images"] == 6 and counts["audio"] == 6 and counts["histograms"] == 3
    left = {x.what for x in read(logs["tf1"]).left_out}
    assert left == {"graphs", "meta graphs", "session logs"}


def test_tensorboardx(logs: dict[str, Path]) -> None:
    compare(logs["tensorboardX"])
    frames = read(logs["tensorboardX"])
    assert set(frames.tensors.plugin) == {"pr_curves"}
    if importlib.util.find_spec("soundfile") is not None:  # tensorboardX encodes audio with it
        assert len(frames.audio) == 3 and set(frames.audio.sample_rate) == {8000.0}
    assert frames.hparams.run.tolist() == ["tensorboardX/hp"]
    assert frames.hparams["hparam/acc"].tolist() == [pytest.approx(0.9)]
    reasons = {(x.what, x.reason) for x in frames.left_out}
    assert ("files", "the Projector's embeddings configuration, not summaries") in reasons


def test_pytorch(logs: dict[str, Path]) -> None:
    if "torch" not in logs:
        pytest.skip("torch is not installed")
    compare(logs["torch"])


def frames_equal(a: Any, b: Any) -> None:
    import pandas as pd

    for kind in ("scalars", "tensors", "histograms", "images", "audio", "text", "hparams"):
        x, y = a[kind], b[kind]
        assert list(x.columns) == list(y.columns), kind
        assert len(x) == len(y), kind
        for column in x.columns:
            for u, v in zip(x[column], y[column], strict=True):
                if isinstance(u, np.ndarray):
                    np.testing.assert_array_equal(u, v)
                else:
                    assert u == v or (pd.isna(u) and pd.isna(v)), (kind, column, u, v)
    assert [vars(x) for x in a.left_out] == [vars(x) for x in b.left_out]


@pytest.mark.parametrize("writer", ["keras3", "tf2", "tf1", "tensorboardX"])
def test_engines_and_paths_agree(logs: dict[str, Path], writer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The native one-pass reader, the native scanner (an older core) and the Python engine."""
    from tbrewrite.frames import scalars

    one_pass = read(logs[writer])
    monkeypatch.setattr(scalars, "has_others", lambda native: False)
    monkeypatch.setattr("tbrewrite.frames.has_others", lambda native: False)
    frames_equal(one_pass, read(logs[writer]))
    monkeypatch.setenv("TBREWRITE_ENGINE", "python")
    frames_equal(one_pass, read(logs[writer]))


@pytest.mark.parametrize("engine", ["native", "python"])
def test_filters_are_applied_while_reading(logs: dict[str, Path], engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TBREWRITE_ENGINE", engine)
    whole = read(logs["tf2"])
    some = read(logs["tf2"], tags="^(img|note|loss)$", steps=slice(1, None), kinds="scalars,images,text,histograms")
    assert set(some.scalars.tag) == {"loss"} and set(some.scalars.step) == {1, 2}
    assert len(some.images) == 4 and set(some.text.step) == {1, 2}
    assert some.histograms.empty and some.audio.empty and some.tensors.empty
    expected = whole.scalars[(whole.scalars.tag == "loss") & (whole.scalars.step >= 1)].reset_index(drop=True)
    assert some.scalars.equals(expected)
    strided = read(logs["tf2"], kinds="histograms", steps=range(0, 3, 2))
    assert sorted(set(strided.histograms.step)) == [0, 2]
    asked = {x.what: x.reason for x in some.left_out}
    assert asked["audio"] == "not asked for" and asked["tensors"] == "not asked for"


CORPUS_LOGS = [
    "2231-Project",
    "Callbacks-in-Keras",
    "OCTTextureDetector",
    "TensorBoard-Tutorial",
    "eyenet",
    "tensorboard-reducer",
]
CORPUS_DAMAGED = {"Callbacks-in-Keras", "eyenet"}


@needs_corpus
@pytest.mark.parametrize("name", CORPUS_LOGS)
def test_real_logs_of_the_corpus(name: str) -> None:
    """Real logs (Keras 2 on TF1, tf.keras, Keras 3 with hparams, damaged files): everything before the damage."""
    compare(CORPUS / name, damaged=name in CORPUS_DAMAGED)

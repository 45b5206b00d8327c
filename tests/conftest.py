"""Shared fixtures: the real-event corpus, real Keras training runs, TensorBoard's loader."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "fixtures"
SCRIPTS = Path(__file__).resolve().parent / "scripts"


def train_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        CUDA_VISIBLE_DEVICES="",
        KERAS_BACKEND="tensorflow",
        PYTHONHASHSEED="0",
        TF_ENABLE_ONEDNN_OPTS="0",
    )
    return env


def run_training(script: str, logdir: Path, *args: str) -> Path:
    """Run ``tests/scripts/<script>`` in a fresh interpreter to train a tiny real model."""
    subprocess.run(
        [sys.executable, str(SCRIPTS / script), str(logdir), *args],
        check=True,
        env=train_env(),
        timeout=300,
    )
    return logdir


@pytest.fixture(scope="session")
def keras3_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras 3 log_dir trained in this session: train/ + validation/, batch scalars,
    histograms, an ExponentialDecay learning-rate schedule."""
    return run_training("train_keras3.py", tmp_path_factory.mktemp("k3") / "logs")


def event_files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file() and "tfevents" in p.name and not p.name.endswith(".profile-empty"))


def loader_values(files: list[Path]) -> list[tuple[str, int, float, bytes]]:
    """Every summary value as TensorBoard's own EventFileLoader yields it.

    Returns (tag, step, wall_time, serialized tensor) in file order; the loader's
    data_compat migration turns simple_value into a float32 tensor on both sides.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = []
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            if event.HasField("summary"):
                for v in event.summary.value:
                    out.append((v.tag, event.step, event.wall_time, v.tensor.SerializeToString()))
    return out


def loader_events(files: list[Path]) -> Counter:
    """Non-summary events (graph_def, meta_graph_def, ...) by kind and bytes."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    counts: Counter = Counter()
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            what = event.WhichOneof("what")
            if what not in ("summary", "file_version"):
                counts[(what, event.step, event.wall_time, event.SerializeToString())] += 1
    return counts

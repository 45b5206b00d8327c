"""Fixtures shared by every test folder; helper functions live in the ``support`` package."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.training import run_training


@pytest.fixture(scope="session")
def keras3_logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Keras 3 log_dir trained in this session: train/ + validation/, batch scalars,
    histograms, an ExponentialDecay learning-rate schedule."""
    return run_training("train_keras3.py", tmp_path_factory.mktemp("k3") / "logs")

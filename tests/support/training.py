"""Training tiny real models in a fresh interpreter (``tests/support/scripts/``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.paths import SCRIPTS


def train_env() -> dict[str, str]:
    """The environment every training subprocess runs in: CPU only, quiet, deterministic."""
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
    """Run ``tests/support/scripts/<script> LOGDIR ARGS...`` in a fresh interpreter; return ``logdir``."""
    subprocess.run(
        [sys.executable, str(SCRIPTS / script), str(logdir), *args],
        check=True,
        env=train_env(),
        timeout=300,
    )
    return logdir

"""Overhead of LearningRateLogger(every="batch") on a small Keras 3 MLP.

Fits the same compiled model with and without the logger, alternating the two so that
drift on a shared machine hits both alike, and prints for each the median wall time and
the median process CPU time (all threads; steadier than wall time when other jobs share
the cores), the overhead of each in percent, and the time spent inside the logger's own
hooks as a share of the baseline fit, which is the least noisy of the three figures.
It is measured for a constant learning rate (one variable read per batch) and for an
``ExponentialDecay`` schedule (one iteration-counter read per batch; the schedule is
evaluated once per epoch over the epoch's rows).

Usage::

    PYTHONPATH=src .venv/bin/python bench/bench_lr_logger.py [--epochs 20] [--batches 100]
        [--repeats 5] [--lr constant|schedule|both]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

from tbrewrite.keras import LearningRateLogger

BATCH_SIZE = 32


def build_model(kind: str) -> keras.Model:
    learning_rate = keras.optimizers.schedules.ExponentialDecay(0.01, 100, 0.9) if kind == "schedule" else 0.01
    model = keras.Sequential(
        [
            keras.Input((20,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="mse", jit_compile=False)
    return model


class TimedLogger(LearningRateLogger):
    """LearningRateLogger that adds up the wall time spent in its hooks."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hook_seconds = 0.0

    def on_train_begin(self, logs=None):
        start = time.perf_counter()
        super().on_train_begin(logs)
        self.hook_seconds += time.perf_counter() - start

    def on_train_batch_begin(self, batch, logs=None):
        start = time.perf_counter()
        super().on_train_batch_begin(batch, logs)
        self.hook_seconds += time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.hook_seconds += time.perf_counter() - start

    def on_train_end(self, logs=None):
        start = time.perf_counter()
        super().on_train_end(logs)
        self.hook_seconds += time.perf_counter() - start


def timed_fit(model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int, callbacks: list) -> tuple[float, float]:
    """Return the (wall, CPU) seconds of one fit()."""
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=epochs, callbacks=callbacks, verbose=0)
    return time.perf_counter() - wall, time.process_time() - cpu


def bench(kind: str, epochs: int, batches: int, repeats: int, out: Path) -> float:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batches * BATCH_SIZE, 20)).astype("float32")
    y = rng.normal(size=(batches * BATCH_SIZE, 1)).astype("float32")
    model = build_model(kind)
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0)  # trace the train function

    base, logged, hooks = [], [], []
    for i in range(repeats):
        base.append(timed_fit(model, x, y, epochs, []))
        logger = TimedLogger(out / f"{kind}{i}.csv", every="batch")
        logged.append(timed_fit(model, x, y, epochs, [logger]))
        hooks.append(logger.hook_seconds)
        rows = (out / f"{kind}{i}.csv").read_text().count("\n") - 1
        assert rows == epochs * batches, rows

    steps = epochs * batches
    wall_b, wall_w = (statistics.median(t[0] for t in runs) for runs in (base, logged))
    cpu_b, cpu_w = (statistics.median(t[1] for t in runs) for runs in (base, logged))
    hook = statistics.median(hooks)
    print(
        f"{kind:>8}: wall {wall_b:6.2f} s -> {wall_w:6.2f} s ({(wall_w - wall_b) / wall_b:+6.1%}); "
        f"cpu {cpu_b:6.2f} s -> {cpu_w:6.2f} s ({(cpu_w - cpu_b) / cpu_b:+6.1%}); "
        f"in logger hooks {hook:5.3f} s = {hook / wall_b:5.1%} of the fit, "
        f"{hook / steps * 1e6:5.1f} us/batch (batch {wall_b / steps * 1e3:.2f} ms)"
    )
    print(f"{'':>8}  wall runs without {' '.join(f'{t[0]:.2f}' for t in base)}")
    print(f"{'':>8}  wall runs with    {' '.join(f'{t[0]:.2f}' for t in logged)}")
    return hook / wall_b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batches", type=int, default=100, help="batches per epoch")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--lr", choices=["constant", "schedule", "both"], default="both")
    args = parser.parse_args()
    kinds = ["constant", "schedule"] if args.lr == "both" else [args.lr]
    print(
        f"keras {keras.__version__} ({keras.backend.backend()}), {args.epochs} epochs x "
        f"{args.batches} batches of {BATCH_SIZE}, median of {args.repeats} runs each"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            bench(kind, args.epochs, args.batches, args.repeats, Path(tmp))


if __name__ == "__main__":
    main()

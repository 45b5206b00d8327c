"""LearningRateLogger / TfKerasLearningRateLogger under real training (no mocks).

Every training test runs twice: Keras 3 on the TensorFlow backend and tf_keras (Keras 2).
Models are one Dense layer trained with SGD on 32 samples, batch size 8: 4 batches per
epoch. Keras 3 on JAX or torch runs in a subprocess (KERAS_BACKEND is read when keras is
first imported) and is skipped when the backend is not installed; the same subprocess
test also runs on TensorFlow.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tbrewrite.keras as tbk
from tbrewrite.errors import SidecarError

# TensorFlow 2.21's tensors and variables implement __array__ without NumPy 2's `copy`
# argument; every keras.ops.convert_to_numpy call on TF (Keras's own callbacks included) warns.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

BATCHES = 4
"""Training batches per epoch (32 samples, batch size 8)."""
HEADER = ["epoch", "step", "wall_time", "learning_rate"]
SRC = Path(tbk.__file__).resolve().parents[1]


@dataclass
class Framework:
    """Builds tiny models with one Keras flavour and its logger class."""

    name: str
    keras: ModuleType
    logger: type

    def model(self, learning_rate: Any, optimizer: Any = None) -> Any:
        k = self.keras
        model = k.Sequential([k.Input((2,)), k.layers.Dense(1)])
        optimizer = optimizer or k.optimizers.SGD(learning_rate=learning_rate)
        model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
        return model

    def fit(self, model: Any, callbacks: list[Any], **kwargs: Any) -> Any:
        x = np.random.default_rng(0).normal(size=(8 * BATCHES, 2)).astype("float32")
        y = x.sum(axis=1, keepdims=True)
        kwargs.setdefault("epochs", 3)
        return model.fit(x, y, batch_size=8, callbacks=callbacks, verbose=0, **kwargs)

    def exponential_decay(self) -> Any:
        """A schedule that changes at every step: 0.1 * 0.9**step."""
        return self.keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.9)


@pytest.fixture(scope="module", params=["keras3", "tf_keras"])
def fw(request: pytest.FixtureRequest) -> Framework:
    if request.param == "keras3":
        import keras

        if keras.backend.backend() != "tensorflow":
            pytest.skip("in-process tests use the TensorFlow backend")
        return Framework("keras3", keras, tbk.LearningRateLogger)
    import tf_keras

    return Framework("tf_keras", tf_keras, tbk.TfKerasLearningRateLogger)


def read_sidecar(path: Path) -> list[tuple[int, int, float, float]]:
    """Rows of a sidecar, after checking the CSVLogger framing: one header, CRLF lines."""
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n")
    assert raw.count(b"epoch,step,wall_time,learning_rate") == 1
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == HEADER
    return [(int(e), int(s), float(t), float(lr)) for e, s, t, lr in rows[1:]]


def column(rows: list[tuple[int, int, float, float]], i: int) -> list[Any]:
    return [row[i] for row in rows]


def f32(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def rates(schedule: Any, iterations: Any) -> np.ndarray:
    """What the optimizer applies at each (0-based) iteration."""
    return f32([np.asarray(schedule(i)) for i in iterations])


@pytest.mark.slow
def test_schedule_rows_per_batch_every_n_and_epoch(fw: Framework, tmp_path: Path) -> None:
    schedule = fw.exponential_decay()
    model = fw.model(schedule)
    callbacks = [
        fw.keras.callbacks.CSVLogger(str(tmp_path / "before.csv")),
        fw.logger(tmp_path / "batch.csv", every="batch", add_to_logs=False),
        fw.logger(tmp_path / "every3.csv", every=3, add_to_logs=False),
        fw.logger(tmp_path / "epoch.csv"),
        fw.keras.callbacks.CSVLogger(str(tmp_path / "after.csv")),
    ]
    start = time.time()
    history = fw.fit(model, callbacks, validation_data=(np.zeros((8, 2)), np.zeros((8, 1))))
    end = time.time()

    batch = read_sidecar(tmp_path / "batch.csv")
    assert column(batch, 1) == list(range(1, 3 * BATCHES + 1))  # validation batches don't count
    assert column(batch, 0) == [e for e in range(3) for _ in range(BATCHES)]
    # Update k (step k + 1) uses schedule(k); a read at batch end would give schedule(k + 1).
    np.testing.assert_allclose(f32(column(batch, 3)), rates(schedule, range(12)), rtol=1e-6)
    wall = column(batch, 2)
    assert start <= wall[0] and wall == sorted(wall) and wall[-1] <= end

    every3 = read_sidecar(tmp_path / "every3.csv")
    assert column(every3, 1) == [3, 6, 9, 12]
    assert column(every3, 0) == [0, 1, 2, 2]
    np.testing.assert_allclose(f32(column(every3, 3)), rates(schedule, [2, 5, 8, 11]), rtol=1e-6)

    epoch = read_sidecar(tmp_path / "epoch.csv")
    assert [row[:2] for row in epoch] == [(0, 4), (1, 8), (2, 12)]
    epoch_rates = rates(schedule, [0, 4, 8])  # the first update of each epoch
    np.testing.assert_allclose(f32(column(epoch, 3)), epoch_rates, rtol=1e-6)

    # add_to_logs: History and callbacks after the logger see the epoch rate; before, not.
    np.testing.assert_allclose(f32(history.history["learning_rate"]), epoch_rates, rtol=1e-6)
    with open(tmp_path / "after.csv", newline="") as f:
        after = list(csv.DictReader(f))
    np.testing.assert_allclose(f32([r["learning_rate"] for r in after]), epoch_rates, rtol=1e-6)
    with open(tmp_path / "before.csv", newline="") as f:
        assert "learning_rate" not in next(csv.reader(f))


@pytest.mark.slow
def test_reduce_lr_on_plateau_before_and_after(fw: Framework, tmp_path: Path) -> None:
    # min_delta=10 makes every epoch after the first "no improvement"; with patience=0
    # each of them halves the rate in on_epoch_end. Epoch 0 always improves on +inf.
    reduce = fw.keras.callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=10)
    callbacks = [
        fw.logger(tmp_path / "before.csv"),  # reads before ReduceLROnPlateau reduces
        reduce,
        fw.logger(tmp_path / "after.csv"),  # reads after it reduced at epoch end
        fw.logger(tmp_path / "batch.csv", every="batch", add_to_logs=False),
        # Batch rows are on disk at every epoch end (a crash loses one epoch at most).
        fw.keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: on_disk.append(len(read_sidecar(batch_csv)))
        ),
    ]
    batch_csv, on_disk = tmp_path / "batch.csv", []
    fw.fit(fw.model(0.1), callbacks, epochs=4)
    assert on_disk == [4, 8, 12, 16]

    in_force = f32(0.1) * f32([1, 1, 0.5, 0.25])
    for name in ("before.csv", "after.csv"):
        rows = read_sidecar(tmp_path / name)
        assert [row[:2] for row in rows] == [(0, 4), (1, 8), (2, 12), (3, 16)]
        np.testing.assert_array_equal(f32(column(rows, 3)), in_force)
    batch = read_sidecar(tmp_path / "batch.csv")
    np.testing.assert_array_equal(f32(column(batch, 3)), np.repeat(in_force, BATCHES))


@pytest.mark.slow
def test_learning_rate_scheduler_before_and_after(fw: Framework, tmp_path: Path) -> None:
    scheduler = fw.keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
    callbacks = [
        fw.logger(tmp_path / "before.csv"),  # its on_epoch_begin runs before the scheduler's
        fw.logger(tmp_path / "batch.csv", every="batch"),
        scheduler,
        fw.logger(tmp_path / "after.csv"),
    ]
    fw.fit(fw.model(1.0), callbacks)

    in_force = f32([0.1, 0.05, 0.025])
    for name in ("before.csv", "after.csv"):
        np.testing.assert_array_equal(f32(column(read_sidecar(tmp_path / name), 3)), in_force)
    batch = read_sidecar(tmp_path / "batch.csv")
    np.testing.assert_array_equal(f32(column(batch, 3)), np.repeat(in_force, BATCHES))


@pytest.mark.slow
def test_append_continues_a_resumed_run(fw: Framework, tmp_path: Path) -> None:
    schedule = fw.exponential_decay()
    model = fw.model(schedule)

    def callbacks() -> list[Any]:  # new instances, as in a new process
        return [
            fw.logger(tmp_path / "batch.csv", every="batch", append=True),
            fw.logger(tmp_path / "epoch.csv", append=True),
        ]

    fw.fit(model, callbacks(), epochs=2)
    fw.fit(model, callbacks(), initial_epoch=2, epochs=4)

    batch = read_sidecar(tmp_path / "batch.csv")  # one header
    assert column(batch, 1) == list(range(1, 4 * BATCHES + 1))
    assert column(batch, 0) == [e for e in range(4) for _ in range(BATCHES)]
    np.testing.assert_allclose(f32(column(batch, 3)), rates(schedule, range(16)), rtol=1e-6)
    epoch = read_sidecar(tmp_path / "epoch.csv")
    assert [row[:2] for row in epoch] == [(0, 4), (1, 8), (2, 12), (3, 16)]


@pytest.mark.slow
def test_one_instance_reused_across_fits(fw: Framework, tmp_path: Path) -> None:
    schedule = fw.exponential_decay()
    model = fw.model(schedule)
    logger = fw.logger(tmp_path / "lr.csv", every="batch")
    fw.fit(model, [logger], epochs=3)
    fw.fit(model, [logger], epochs=2)

    # append=False: the second fit() rewrites the file and restarts the step count,
    # while the optimizer's iterations (and so the schedule) carry on from 12.
    rows = read_sidecar(tmp_path / "lr.csv")
    assert column(rows, 1) == list(range(1, 2 * BATCHES + 1))
    assert column(rows, 0) == [0] * BATCHES + [1] * BATCHES
    np.testing.assert_allclose(f32(column(rows, 3)), rates(schedule, range(12, 20)), rtol=1e-6)


@pytest.mark.slow
def test_tf_keras_legacy_optimizers(tmp_path: Path) -> None:
    import tf_keras

    fw = Framework("tf_keras", tf_keras, tbk.TfKerasLearningRateLogger)
    legacy = tf_keras.optimizers.legacy
    schedule = fw.exponential_decay()
    fw.fit(fw.model(None, legacy.SGD(schedule)), [fw.logger(tmp_path / "s.csv", every="batch")])
    np.testing.assert_allclose(f32(column(read_sidecar(tmp_path / "s.csv"), 3)), rates(schedule, range(12)), rtol=1e-6)
    # Deprecated time-based decay: lr / (1 + decay * iterations).
    fw.fit(fw.model(None, legacy.SGD(0.1, decay=0.5)), [fw.logger(tmp_path / "d.csv", every=2)])
    want = f32(0.1) / (f32(1) + f32(0.5) * f32([1, 3, 5, 7, 9, 11]))
    np.testing.assert_allclose(f32(column(read_sidecar(tmp_path / "d.csv"), 3)), want, rtol=1e-6)


def test_append_refuses_a_foreign_csv(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch,loss\r\n0,1.5\r\n")
    logger = tbk.LearningRateLogger(path, append=True)
    with pytest.raises(SidecarError) as info:
        logger.on_train_begin()
    assert str(info.value) == (
        f"{path}:1: cannot append: header is 'epoch,loss', want 'epoch,step,wall_time,learning_rate'"
    )
    assert path.read_bytes() == b"epoch,loss\r\n0,1.5\r\n"


@pytest.mark.parametrize("every", [0, -2, 1.5, True, None, "epochs", "Batch"])
def test_every_is_validated(every: Any) -> None:
    with pytest.raises(ValueError) as info:
        tbk.LearningRateLogger("lr.csv", every=every)
    assert str(info.value) == (
        f'Expected `every` to be "epoch", "batch" or a positive integer. Received: every={every!r}'
    )


def test_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        tbk.LearningRateLogger("lr.csv", "batch")
    with pytest.raises(TypeError):
        tbk.LearningRateLogger("lr.csv", update_freq="batch")
    assert tbk.LearningRateLogger("lr.csv", every=np.int64(5)).every == 5


def run_python(code: str, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(SRC), "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
def test_import_does_not_import_keras() -> None:
    out = run_python(
        """
        import sys
        import tbrewrite.keras
        heavy = {"keras", "tf_keras", "tensorflow"}
        print(sorted(heavy & set(sys.modules)))
        tbrewrite.keras.LearningRateLogger
        print(sorted(heavy & set(sys.modules)))
        tbrewrite.keras.TfKerasLearningRateLogger
        print(sorted(heavy & set(sys.modules)))
        """
    )
    assert out.splitlines() == ["[]", "['keras', 'tensorflow']", "['keras', 'tensorflow', 'tf_keras']"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch", "tensorflow"])
def test_keras3_backend_in_a_fresh_process(backend: str, tmp_path: Path) -> None:
    pytest.importorskip(backend)
    run_python(
        f"""
        import keras, numpy as np
        from tbrewrite.keras import LearningRateLogger
        assert keras.backend.backend() == {backend!r}
        schedule = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.9)
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
        x = np.ones((32, 2), "float32")
        reduce = keras.callbacks.ReduceLROnPlateau(
            monitor="loss", factor=0.5, patience=0, min_delta=10
        )
        model.fit(x, x[:, :1], batch_size=8, epochs=3, verbose=0,
                  callbacks=[LearningRateLogger({str(tmp_path / "s.csv")!r}, every="batch")])
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(x, x[:, :1], batch_size=8, epochs=3, verbose=0,
                  callbacks=[reduce, LearningRateLogger({str(tmp_path / "r.csv")!r})])
        """,
        KERAS_BACKEND=backend,
    )
    schedule = [np.float32(0.1) * np.float32(0.9) ** k for k in range(12)]
    np.testing.assert_allclose(column(read_sidecar(tmp_path / "s.csv"), 3), schedule, rtol=1e-5)
    want = f32(0.1) * f32([1, 1, 0.5])
    np.testing.assert_array_equal(f32(column(read_sidecar(tmp_path / "r.csv"), 3)), want)

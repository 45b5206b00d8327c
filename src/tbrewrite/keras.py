"""Keras callback that records the learning rate each optimizer update actually used.

This is the only tbrewrite module that touches Keras, and it imports it lazily:
``import tbrewrite.keras`` imports neither Keras nor TensorFlow. The classes are built on
first access (module ``__getattr__``, PEP 562):

* ``LearningRateLogger`` subclasses ``keras.callbacks.Callback`` (Keras 3, any backend);
  accessing it imports ``keras``.
* ``TfKerasLearningRateLogger`` subclasses ``tf_keras.callbacks.Callback`` (Keras 2:
  ``import tf_keras``, or ``tf.keras`` with ``TF_USE_LEGACY_KERAS=1``); accessing it imports
  ``tf_keras``.

Both share one implementation, :class:`_LoggerCore`; each adds only how to read the
rate from its framework's optimizer.
"""

from __future__ import annotations

import csv
import numbers
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tbrewrite.errors import SidecarError

__all__ = ["LearningRateLogger", "TfKerasLearningRateLogger"]

if TYPE_CHECKING:  # built on first access, by the module __getattr__ below
    LearningRateLogger: type[_LoggerCore]
    TfKerasLearningRateLogger: type[_LoggerCore]

HEADER = ("epoch", "step", "wall_time", "learning_rate")
"""Columns of the sidecar CSV, in order."""
LOGS_KEY = "learning_rate"
"""Key added to the epoch-end ``logs`` (the name Keras 3's LR callbacks use)."""
_TAIL_BYTES = 4096


class _Pending:
    """A schedule rate whose evaluation is deferred to the next flush."""

    __slots__ = ("iteration", "schedule")

    def __init__(self, schedule: Any, iteration: int) -> None:
        self.schedule = schedule
        self.iteration = iteration


def _rows_period(every: object) -> int | None:
    """Return the row period in batches for ``every``, or None for one row per epoch."""
    if isinstance(every, str) and every in ("epoch", "batch"):
        return None if every == "epoch" else 1
    if not isinstance(every, bool) and isinstance(every, numbers.Integral) and int(every) >= 1:
        return int(every)
    raise ValueError(f'Expected `every` to be "epoch", "batch" or a positive integer. Received: every={every!r}')


def _steps_in_file(path: str) -> int:
    """Return the step of the last row of an existing sidecar (0 if it has only a header)."""
    with open(path, "rb") as f:
        first = f.readline().rstrip(b"\r\n").decode("utf-8", "replace")
        if first != ",".join(HEADER):
            raise SidecarError(f"{path}:1: cannot append: header is {first!r}, want {','.join(HEADER)!r}")
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - _TAIL_BYTES))
        lines = [line for line in f.read().splitlines() if line.strip()]
    last = lines[-1].decode("utf-8", "replace")
    if last == ",".join(HEADER):
        return 0
    try:
        return int(last.split(",")[1])
    except (IndexError, ValueError):
        raise SidecarError(f"{path}: cannot append: no step in the last row {last!r}") from None


def _evaluate_schedule(
    schedule: Callable[[Any], Any], iterations: Sequence[int], to_numpy: Callable[[Any], Any]
) -> list[float]:
    """Evaluate ``schedule`` at each iteration, vectorized for Keras's built-in schedules.

    A built-in schedule called on an int64 array returns the array of rates (one kernel
    launch instead of one per row). Anything else, or a built-in that cannot take an array
    (``CosineDecay`` with warmup uses ``ops.cond``), is called once per iteration.
    """
    import numpy as np

    if type(schedule).__module__.startswith(("keras.", "tf_keras.")) and len(iterations) > 1:
        steps = np.asarray(iterations, dtype=np.int64)
        try:
            values = np.asarray(to_numpy(schedule(steps)))
        except Exception:  # noqa: BLE001 - any failure means "not vectorizable"
            values = None
        if values is not None and values.shape == steps.shape:
            return [float(v) for v in values]
    return [float(to_numpy(schedule(int(i)))) for i in iterations]


class _LoggerCore:
    """Framework-independent state and hooks of the learning-rate loggers.

    Subclasses (built in :func:`__getattr__`) add a Keras ``Callback`` base class and two
    methods: ``_probe_rate()`` returns the rate the next update will use, either as a
    float or as a :class:`_Pending` schedule evaluation; ``_evaluate(schedule,
    iterations)`` evaluates a schedule at several iterations.
    """

    def __init__(
        self,
        filename: str | os.PathLike[str],
        *,
        every: str | int = "epoch",
        add_to_logs: bool = True,
        append: bool = False,
    ) -> None:
        super().__init__()
        self.filename = os.fspath(filename)
        self.every = every
        self.add_to_logs = add_to_logs
        self.append = append
        self._period = _rows_period(every)
        self._file: Any = None
        self._writer: Any = None
        self._rows: list[list[Any]] = []
        self._step = 0
        self._epoch = 0
        self._epoch_rate: float | _Pending | None = None

    # Keras hooks.

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._close()
        self._rows = []
        self._epoch = 0
        self._epoch_rate = None
        self._step = self._open()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_rate = None

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Every on_epoch_begin (LearningRateScheduler) has run and no on_epoch_end
        # (ReduceLROnPlateau) has, and the optimizer has not yet applied this batch's update:
        # `optimizer.learning_rate` is exactly the rate this update will use.
        self._step += 1
        rate = None
        if self._period is not None and self._step % self._period == 0:
            rate = self._probe_rate()
            self._rows.append([self._epoch, self._step, time.time(), rate])
        if self._epoch_rate is None:
            self._epoch_rate = self._probe_rate() if rate is None else rate

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self._epoch_rate is None:  # an epoch without training batches
            self._epoch_rate = self._probe_rate()
        epoch_row = [epoch, self._step, time.time(), self._epoch_rate]
        self._resolve([*self._rows, epoch_row])
        if self._period is None:
            self._rows.append(epoch_row)
        self._flush()
        if self.add_to_logs and logs is not None:
            logs[LOGS_KEY] = epoch_row[3]

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self._resolve(self._rows)
        self._flush()
        self._close()

    # Framework-specific, see the subclasses.

    def _probe_rate(self) -> float | _Pending:
        raise NotImplementedError

    def _evaluate(self, schedule: Any, iterations: list[int]) -> list[float]:
        raise NotImplementedError

    # File handling.

    def _open(self) -> int:
        """Open the sidecar for a new fit() and return the number of steps already in it."""
        steps = 0
        exists = os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        if self.append and exists:
            steps = _steps_in_file(self.filename)
        # Open for the whole fit(): _close() (on_train_end, or the next on_train_begin) closes it.
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._writer = csv.writer(self._file)  # csv.excel, "\r\n", as CSVLogger
        if not (self.append and exists):
            self._writer.writerow(HEADER)
            self._file.flush()
        return steps

    def _resolve(self, rows: list[list[Any]]) -> None:
        """Replace every pending schedule rate in ``rows`` by its value."""
        groups: dict[int, tuple[Any, list[list[Any]]]] = {}
        for row in rows:
            if isinstance(row[3], _Pending):
                groups.setdefault(id(row[3].schedule), (row[3].schedule, []))[1].append(row)
        for schedule, pending in groups.values():
            values = self._evaluate(schedule, [row[3].iteration for row in pending])
            for row, value in zip(pending, values, strict=True):
                row[3] = value

    def _flush(self) -> None:
        if self._rows and self._writer is not None:
            self._writer.writerows(self._rows)
            self._file.flush()
        self._rows = []

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = None
        self._writer = None


_DOC = r"""Callback that records the learning rate each optimizer update used, to a CSV file.

    {framework}

    The CSV follows the conventions of Keras's ``CSVLogger`` ({csv_logger}):
    ``csv.excel`` dialect (``\r\n`` line ends), a single header
    ``epoch,step,wall_time,learning_rate``, and rows flushed at every epoch end and at
    train end. Batch rows are buffered in memory during an epoch, so a crash loses at most
    the current epoch's batch rows.

    Columns:

    * ``epoch``: 0-based epoch index as Keras passes it (it continues from
      ``initial_epoch``).
    * ``step``: 1-based global batch index, counted like the ``batch_*`` summaries of Keras
      3's ``TensorBoard`` (``keras/src/callbacks/tensorboard.py``, ``_global_train_batch``):
      one per ``on_train_batch_begin`` call, so one per execution with
      ``steps_per_execution=N``. It restarts at 1 in every ``fit()``, except with
      ``append=True``, where it continues from the file's last row so that steps stay
      unique across resumed runs. Epoch rows carry the number of batches done at the
      epoch's end.
    * ``wall_time``: float seconds since the Unix epoch: when the batch started (batch
      rows) or when the epoch ended (epoch rows).
    * ``learning_rate``: batch rows: the rate applied by that batch's update. Epoch rows:
      the rate in force during the epoch, that is the rate of its first update, read after
      every callback's ``on_epoch_begin`` and before any ``on_epoch_end``. So it includes
      a ``LearningRateScheduler`` change and excludes a ``ReduceLROnPlateau`` reduction
      made at the end of that epoch, whatever the order of the callbacks. With a
      ``LearningRateSchedule`` the rate changes within an epoch: use ``every="batch"``.

    The rate is read in ``on_train_batch_begin``, before the update. Keras evaluates a
    schedule at the iteration count and increments the count after the update
    ({optimizer}),
    so a read at batch end would give the *next* update's rate. A schedule's rates are
    evaluated at the next flush, vectorized over the epoch's rows, which keeps per-batch
    logging cheap; schedules must therefore be pure functions of the step, as Keras
    expects anyway.

    {reading}

    {hooks}

    Callback order: with ``add_to_logs=True`` the epoch's rate is put into the shared
    epoch-end ``logs`` as ``learning_rate``, which only the callbacks placed *after* this
    one in ``callbacks=[...]`` see (``CSVLogger``, ``TensorBoard``, ``EarlyStopping``);
    ``History`` always sees it because Keras appends it last. The value of an earlier
    ``LearningRateScheduler`` or ``ReduceLROnPlateau`` under that key is replaced (it is
    the same rate, unless their order made it differ). A callback that changes the rate
    in its own ``on_train_batch_begin`` must come before this one.

    {tensorboard}

    Args:
        filename: str or os.PathLike. Path of the CSV file, e.g. ``"run/lr.csv"``. Opened
            in ``on_train_begin`` (truncated unless ``append``); its directory must exist.
        every: str or int. ``"epoch"``: one row per epoch. ``"batch"``: one row per
            training batch. An int ``N`` >= 1: one row every ``N`` batches (global steps
            ``N``, ``2N``, ...).
        add_to_logs: bool. Put the epoch's rate (a float) into the epoch-end ``logs``
            under ``"learning_rate"``.
        append: bool. ``True`` for resumed training: append to an existing file, without
            a second header, continuing ``step`` from its last row. ``False``: overwrite.

    Raises:
        ValueError: ``every`` is not ``"epoch"``, ``"batch"`` or a positive int.
        tbrewrite.errors.SidecarError: with ``append=True``, the existing file does not
            start with the expected header. Raised by ``fit()``, from ``on_train_begin``.

    Example:

    ```python
    from tbrewrite.keras import {name}

    lr_logger = {name}("run/lr.csv", every="batch")
    model.fit(
        x, y, epochs=10,
        callbacks=[lr_logger, {module}.callbacks.CSVLogger("run/log.csv")],
    )
    # Resumed in a new process: one file, one header, steps continue.
    model.fit(
        x, y, initial_epoch=10, epochs=20,
        callbacks=[{name}("run/lr.csv", every="batch", append=True)],
    )
    ```
    """


def _build_keras3() -> type:
    import keras
    from keras.optimizers.schedules import LearningRateSchedule

    def to_numpy(x: Any) -> Any:
        return keras.ops.convert_to_numpy(x)

    def to_float(x: Any) -> float:
        # float() of a keras.Variable reads its backend value on every backend
        # (keras/src/backend/common/variables.py, __float__). It is 2-4x cheaper than
        # convert_to_numpy, which on TensorFlow 2.21 + NumPy 2 also warns at every call.
        return float(x) if isinstance(x, keras.Variable) else float(to_numpy(x))

    # Keras ships no type information, so its Callback is Any to mypy.
    class LearningRateLogger(_LoggerCore, keras.callbacks.Callback):  # type: ignore[misc]
        __doc__ = _DOC.format(
            framework="For Keras 3 (``keras``), on any backend. For tf_keras use ``TfKerasLearningRateLogger``.",
            csv_logger="``keras/src/callbacks/csv_logger.py``",
            optimizer="``keras/src/optimizers/base_optimizer.py``, ``_get_current_learning_rate``",
            reading="""A constant rate is read as ``float(optimizer.learning_rate)`` (a
    ``keras.Variable``; other values go through ``keras.ops.convert_to_numpy``). The
    optimizer is fetched from ``self.model`` at every read, never cached: on JAX that
    access syncs the training state.""",
            hooks="""No ``*_batch_end`` hook is overridden, so Keras keeps dispatching batch-end
    hooks asynchronously (``keras/src/callbacks/callback_list.py``,
    ``_configure_async_dispatch``). ``on_train_batch_begin`` is overridden in every mode,
    because it counts batches (as ``TensorBoard`` does) and is the one hook that runs after
    all ``on_epoch_begin`` and before all ``on_epoch_end`` calls.""",
            tensorboard="""Keras 3's ``TensorBoard`` ignores this key: it writes its own
    ``epoch_learning_rate``, read at epoch end (after a reduction by an earlier
    ``ReduceLROnPlateau``, and, with a schedule, the rate of the *next* step).""",
            name="LearningRateLogger",
            module="keras",
        )

        def _probe_rate(self) -> float | _Pending:
            optimizer = self.model.optimizer
            # LossScaleOptimizer: the inner optimizer holds the rate (as in tensorboard.py).
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
            schedule = getattr(optimizer, "_learning_rate", None)
            if isinstance(schedule, LearningRateSchedule) and hasattr(optimizer, "_iterations"):
                # `learning_rate` would return schedule(_iterations): the raw counter, not
                # `iterations`, which is divided by gradient_accumulation_steps.
                return _Pending(schedule, int(optimizer._iterations))
            return to_float(optimizer.learning_rate)

        def _evaluate(self, schedule: Any, iterations: list[int]) -> list[float]:
            return _evaluate_schedule(schedule, iterations, to_numpy)

    return LearningRateLogger


def _build_tf_keras() -> type:
    import numpy as np
    import tf_keras
    from tf_keras.optimizers.schedules import LearningRateSchedule

    get_value = tf_keras.backend.get_value
    legacy_optimizer = tf_keras.optimizers.legacy.Optimizer

    # tf_keras ships no type information, so its Callback is Any to mypy.
    class TfKerasLearningRateLogger(_LoggerCore, tf_keras.callbacks.Callback):  # type: ignore[misc]
        __doc__ = _DOC.format(
            framework="For tf_keras (Keras 2): ``import tf_keras``, or ``tf.keras`` with "
            "``TF_USE_LEGACY_KERAS=1``. For Keras 3 use ``LearningRateLogger``.",
            csv_logger="``tf_keras/callbacks.py``, ``CSVLogger``",
            optimizer="``tf_keras/optimizers/optimizer.py``, ``_compute_current_learning_rate``",
            reading="""Like tf_keras's ``TensorBoard._collect_learning_rate``, the callback takes a
    schedule from ``optimizer._learning_rate`` (legacy optimizers: ``optimizer.lr``) and
    calls it on ``optimizer.iterations``; the public ``learning_rate`` of a scheduled
    optimizer is the rate of the *previous* update. A legacy optimizer's deprecated ``decay`` is applied
    (``tf_keras/optimizers/legacy/optimizer_v2.py``, ``_decayed_lr``).""",
            hooks="""Because ``on_train_batch_begin`` is overridden (it counts batches and is the
    one hook that runs after all ``on_epoch_begin`` and before all ``on_epoch_end`` calls),
    tf_keras's ``CallbackList`` calls batch hooks even with ``verbose=0`` or ``2``; the
    callback declares ``_supports_tf_logs`` so that batch logs are not converted to NumPy
    on its account. (tf_keras's own batch axis, ``model._train_counter``, also restarts
    at every ``fit()``.)""",
            tensorboard="""A tf_keras ``TensorBoard`` placed after this callback writes the key
    as ``epoch_learning_rate`` (with a schedule, it writes its own read instead).
    tf_keras's LR callbacks report the rate under ``lr``, which is left alone.""",
            name="TfKerasLearningRateLogger",
            module="tf_keras",
        )

        def __init__(
            self,
            filename: str | os.PathLike[str],
            *,
            every: str | int = "epoch",
            add_to_logs: bool = True,
            append: bool = False,
        ) -> None:
            super().__init__(filename, every=every, add_to_logs=add_to_logs, append=append)
            self._supports_tf_logs = True  # batch logs are never read

        def _probe_rate(self) -> float | _Pending:
            optimizer = self.model.optimizer
            optimizer = getattr(optimizer, "inner_optimizer", optimizer)
            if not isinstance(optimizer, legacy_optimizer):
                rate = getattr(optimizer, "_learning_rate", None)
                if isinstance(rate, LearningRateSchedule):
                    return _Pending(rate, int(get_value(optimizer.iterations)))
                return float(get_value(optimizer.learning_rate))
            rate = optimizer.lr  # the schedule object itself, or the variable
            decay = float(getattr(optimizer, "_initial_decay", 0.0))
            if not decay:
                if isinstance(rate, LearningRateSchedule):
                    return _Pending(rate, int(get_value(optimizer.iterations)))
                return float(get_value(rate))
            # Deprecated time-based decay: lr / (1 + decay * iterations), in float32.
            iteration = np.float32(get_value(optimizer.iterations))
            if isinstance(rate, LearningRateSchedule):
                rate = rate(iteration)
            value = np.float32(get_value(rate))
            return float(value / (np.float32(1.0) + np.float32(decay) * iteration))

        def _evaluate(self, schedule: Any, iterations: list[int]) -> list[float]:
            return _evaluate_schedule(schedule, iterations, get_value)

    return TfKerasLearningRateLogger


_BUILDERS: dict[str, Callable[[], type]] = {
    "LearningRateLogger": _build_keras3,
    "TfKerasLearningRateLogger": _build_tf_keras,
}


def __getattr__(name: str) -> type:
    """Build ``LearningRateLogger`` / ``TfKerasLearningRateLogger`` on first access."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = builder()
    cls.__module__ = __name__
    cls.__qualname__ = name
    globals()[name] = cls
    return cls


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""Sidecar CSVs: the learning-rate sidecar and Keras CSVLogger files, as scalar points.

Two kinds of file are accepted, told apart by their header:

* **Learning-rate sidecar** (written by :class:`tbrewrite.keras.LearningRateLogger`):
  ``epoch,step,wall_time,learning_rate`` plus optional extra numeric columns. A file with
  one row per epoch holds *epoch rows* (``learning_rate`` -> ``train/learning_rate`` at
  step = epoch); a file with several rows in some epoch holds *batch rows*
  (``learning_rate`` -> ``train/batch_learning_rate`` at step = the global batch). Extra
  columns become ``train/<column>`` (``train/batch_<column>`` for batch rows). wall_time
  comes from the file. The sidecar's rate is the rate actually used, so where the log
  already holds the same tag at the same step (Keras 3's ``epoch_learning_rate``), the
  sidecar's point wins.
* **Keras CSVLogger file** (``keras/src/callbacks/csv_logger.py``): ``epoch`` and then the
  ``logs`` keys (``loss``, ``val_loss``, ``learning_rate`` or ``lr``, ...), ``NA`` for a
  missing value. Columns map like a flat Keras 2 log (``val_loss`` -> ``val/loss``,
  ``loss`` -> ``train/loss``, ``lr`` -> ``train/learning_rate``) at step = epoch.
  wall_time is taken from the run's own events of that epoch. Points the log already
  has keep the log's value; the rest fill the gaps -- e.g. every epoch summary that
  Keras's TensorBoard callback silently drops when an integer ``update_freq`` does not
  divide the batches per epoch (tensorflow#49109).

Files are streamed, never held whole: :func:`read_sidecar` checks every row in one pass
and keeps only counts and ranges (a :class:`Sidecar`); :meth:`Sidecar.points` reads the
file again, row by row, each time it is called. Memory stays flat in the number of rows
(a per-batch sidecar of millions of rows is the common large case); only two unusual
shapes cost memory in proportion: steps that go back within the file (duplicates are
then looked for with a set of the steps) and epochs that go back (the rows' kind is then
decided with a set of the epochs).

Every malformation is a :class:`tbrewrite.errors.SidecarError` whose message names the
file, line and column.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

from tbrewrite.errors import SidecarError
from tbrewrite.output.files import special_file
from tbrewrite.producers.keras import TagMapping

LR_HEADER = ("epoch", "step", "wall_time", "learning_rate")
LR_SIDECAR = "learning-rate"
CSV_LOGGER = "csv-logger"
DISCOVERED_NAME = "learning_rate.csv"
_MISSING = {"NA", ""}
_LATEST_WALL_TIME = 1e11  # seconds since the Unix epoch: the year 5138
_STEP_END = 1 << 63  # steps are int64

_Rows = Iterator[tuple[int, list[str]]]
_Record = tuple[int, int, float | None, tuple[float | None, ...]]
"""One data row: ``(line, step, wall_time, values)``; ``values`` in :attr:`Sidecar.columns`
order, None where a cell is missing; ``step`` is the point's step (global batch, or epoch)."""


class SidecarPoint(NamedTuple):
    """One scalar point from a sidecar.

    Attributes:
        tag: str. The output tag (``train/learning_rate``, ``val/loss``, ...).
        step: int (int64).
        value: float.
        wall_time: float seconds since the Unix epoch, or None until placed (CSVLogger).
        line: int. 1-based line of the CSV row, for error messages.
    """

    tag: str
    step: int
    value: float
    wall_time: float | None
    line: int


@dataclass(frozen=True)
class Sidecar:
    """A checked sidecar file: what it holds, without its rows.

    Attributes:
        path: Path.
        kind: str. ``"learning-rate"`` or ``"csv-logger"``.
        rows: str. ``"epoch"`` or ``"batch"`` (what the rows are).
        header: tuple of str. The header's column names, stripped.
        columns: tuple of str. The value columns, in header order (``learning_rate``
            and the extra columns; a CSVLogger file's columns but ``epoch``).
        column_tags: tuple of str. The output tag of each column.
        tags: frozenset of str. The output tags of the sidecar's points.
        count: int. Points in the file.
        first_line: int. Line of the first row with a point.
        min_step, max_step: int. The lowest and highest step of a point.
        stride: int. The difference between consecutive points' steps if the rows'
            steps rise by the same amount every row (``every=N``: N), else 0.
        in_order: bool. The rows' wall_times never go back in file order (always True
            for a CSVLogger file, which has none).
        stamp: tuple of int. ``(inode, size, mtime_ns)`` when the file was checked; a
            later read of a file that differs is an error.
    """

    path: Path
    kind: str
    rows: str
    header: tuple[str, ...]
    columns: tuple[str, ...]
    column_tags: tuple[str, ...]
    tags: frozenset[str]
    count: int
    first_line: int
    min_step: int
    max_step: int
    stride: int
    in_order: bool
    stamp: tuple[int, int, int]

    @property
    def sidecar_wins(self) -> bool:
        """True if the sidecar's value replaces the log's at the same tag and step."""
        return self.kind == LR_SIDECAR

    def points(self) -> Iterator[SidecarPoint]:
        """Read the file again and yield its points, row by row, in file order.

        Each row yields one point per column with a value, in column order. CSVLogger
        points have ``wall_time=None`` (see :mod:`tbrewrite.sidecars.place`).

        Raises:
            SidecarError: the file changed since :func:`read_sidecar` checked it, or
                cannot be read.
        """
        with _open(self.path) as f:
            stamp = _stamp(os.fstat(f.fileno()))
            if stamp != self.stamp:
                raise SidecarError(
                    f"{self.path}: changed while tbrewrite ran (it was checked at {self.stamp[1]} bytes, "
                    f"now {stamp[1]}); run again"
                )
            rows = _rows(f)
            with _readable(self.path):
                next(rows, None)  # the header, checked already
            tags = self.column_tags
            header = list(self.header)
            if self.kind == LR_SIDECAR and len(tags) == 1:  # the common file: one point per row
                tag, batch = tags[0], self.rows == "batch"
                for line, epoch, step, at, rate, _ in _lr_rows(self.path, header, rows):
                    yield SidecarPoint(tag, step if batch else epoch, rate, at, line)
                return
            if self.kind == CSV_LOGGER:
                records = _csv_logger_records(self.path, header, rows)
            else:
                records = _lr_records(self.path, header, rows, batch=self.rows == "batch")
            for line, step, wall_time, values in records:
                for tag, value in zip(tags, values, strict=True):
                    if value is not None:
                        yield SidecarPoint(tag, step, value, wall_time, line)


def _fail(path: Path, line: int, column: str | None, problem: str) -> SidecarError:
    where = f"{path}: line {line}" + (f", column '{column}'" if column else "")
    return SidecarError(f"{where}: {problem}")


def _number(path: Path, line: int, column: str, text: str, *, integer: bool = False) -> float:
    text = text.strip()
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise _fail(path, line, column, f"{text!r} is not {kind}") from None
    if not integer and not math.isfinite(value):
        raise _fail(path, line, column, f"{text} is not a finite number")
    return value


def _index(path: Path, line: int, column: str, text: str) -> int:
    """An epoch or step: an integer from 0 to 2**63 - 1 (an int64 step)."""
    value = int(_number(path, line, column, text, integer=True))
    if not 0 <= value < _STEP_END:
        raise _fail(path, line, column, f"{text.strip()} is out of range (0 to 2**63 - 1)")
    return value


def _wall_time(path: Path, line: int, text: str) -> float:
    value = _number(path, line, "wall_time", text)
    if not 0 <= value < _LATEST_WALL_TIME:
        raise _fail(path, line, "wall_time", f"{text.strip()} is not seconds since the Unix epoch")
    return value


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _open(path: Path) -> TextIO:
    target = Path(os.path.realpath(path))  # a symlink is read through: look at what it names
    kind = special_file(target) if os.path.lexists(target) else None
    if kind is not None:  # reading a pipe or a device could block or never end
        raise SidecarError(f"{path}: not a regular file ({kind})")
    try:
        # A BOM, as Excel writes, is fine (utf-8-sig).
        return open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise SidecarError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SidecarError(f"{path}: is a folder, not a CSV file") from None


def _rows(f: TextIO) -> _Rows:
    """Number the file's CSV rows from 1; read them within :func:`_readable`."""
    return enumerate(csv.reader(f), start=1)


@contextlib.contextmanager
def _readable(path: Path) -> Iterator[None]:
    """Turn what the CSV reader raises into a SidecarError naming the file."""
    try:
        yield
    except (csv.Error, UnicodeDecodeError) as e:
        raise SidecarError(f"{path}: not a readable CSV file ({e})") from None


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _extras(path: Path, line: int, row: list[str], extras: list[tuple[str, int]]) -> list[float | None]:
    values: list[float | None] = []
    for column, i in extras:
        cell = row[i].strip()
        values.append(None if cell in _MISSING else _number(path, line, column, cell))
    return values


def _lr_records(path: Path, header: list[str], rows: _Rows, *, batch: bool) -> Iterator[_Record]:
    """Yield a learning-rate sidecar's rows, each checked; step is the global batch if ``batch``, else the epoch."""
    for line, epoch, step, wall_time, rate, extras in _lr_rows(path, header, rows):
        yield line, step if batch else epoch, wall_time, (rate, *extras)


_LrRow = tuple[int, int, int, float, float, tuple[float | None, ...]]
"""``(line, epoch, step, wall_time, learning_rate, extra column values)``."""


def _lr_rows(path: Path, header: list[str], rows: _Rows) -> Iterator[_LrRow]:
    """Yield every data row of a learning-rate sidecar, each checked.

    The common row (four valid numbers) takes one conversion per cell; any other is
    checked cell by cell in header order, so the first bad cell is the one named.
    """
    width = len(header)
    ie, i_step, iw, il = (header.index(c) for c in LR_HEADER)
    extras = [(c, i) for i, c in enumerate(header) if c not in LR_HEADER]
    isfinite = math.isfinite
    none: tuple[float | None, ...] = ()
    with _readable(path):
        for line, row in rows:
            if len(row) != width:
                if not row or _blank(row):
                    continue
                raise _fail(path, line, None, f"{len(row)} cells, want {width} as in the header")
            try:
                epoch, step, wall_time, rate = int(row[ie]), int(row[i_step]), float(row[iw]), float(row[il])
                ok = (
                    0 <= epoch < _STEP_END
                    and 0 <= step < _STEP_END
                    and 0 <= wall_time < _LATEST_WALL_TIME
                    and isfinite(rate)
                )
            except ValueError:
                ok = False
            if not ok:
                if _blank(row):
                    continue
                epoch = _index(path, line, "epoch", row[ie])
                step = _index(path, line, "step", row[i_step])
                wall_time = _wall_time(path, line, row[iw])
                rate = _number(path, line, "learning_rate", row[il])
            yield line, epoch, step, wall_time, rate, tuple(_extras(path, line, row, extras)) if extras else none


def _csv_logger_records(path: Path, header: list[str], rows: _Rows) -> Iterator[_Record]:
    """Yield ``(line, epoch, None, values)`` of every data row of a CSVLogger file, each checked."""
    width = len(header)
    ie = header.index("epoch")
    columns = [(c, i) for i, c in enumerate(header) if c != "epoch"]
    with _readable(path):
        for line, row in rows:
            if not row or _blank(row):
                continue
            if len(row) != width:
                raise _fail(path, line, None, f"{len(row)} cells, want {width} as in the header")
            epoch = _index(path, line, "epoch", row[ie])
            yield line, epoch, None, tuple(_extras(path, line, row, columns))


def _check_header(path: Path, first: tuple[int, list[str]] | None) -> list[str]:
    if first is None or _blank(first[1]):
        raise _fail(path, 1, None, "file is empty; want a header such as 'epoch,step,wall_time,learning_rate'")
    header = [cell.strip() for cell in first[1]]
    if len(header) == 1:
        for delimiter in (";", "\t", "|"):
            if delimiter in header[0]:
                raise _fail(path, 1, None, f"wrong delimiter {delimiter!r}; sidecars are comma-separated")
    if len(set(header)) != len(header):
        raise _fail(path, 1, None, f"duplicate column names in header {','.join(header)!r}")
    if "epoch" not in header:
        raise _fail(path, 1, "epoch", f"missing column 'epoch' (header is {','.join(header)!r})")
    if "step" in header or "wall_time" in header:
        for column in LR_HEADER:
            if column not in header:
                raise _fail(path, 1, column, f"missing column '{column}' (want {','.join(LR_HEADER)})")
    elif len(header) == 1:
        raise _fail(path, 1, None, "no metric columns besides 'epoch'")
    return header


class _Track:
    """A sequence of steps (or epochs) seen one by one, in constant memory."""

    __slots__ = ("high", "last", "low", "nondecreasing", "repeats", "rises", "stride")

    def __init__(self) -> None:
        self.low = self.high = self.last = -1
        self.rises = True  # strictly: no value can repeat
        self.nondecreasing = True  # then a repeat is a run of equal values
        self.repeats = False  # two equal values in a row
        self.stride: int | None = None  # the constant difference of a rising sequence; 0 if none

    def add(self, value: int) -> None:
        if self.last < 0:
            self.low = self.high = value
        else:
            d = value - self.last
            if d <= 0:
                self.rises = False
                self.stride = 0
                if d == 0:
                    self.repeats = True
                else:
                    self.nondecreasing = False
            elif self.stride is None:
                self.stride = d
            elif d != self.stride:
                self.stride = 0
            if value < self.low:
                self.low = value
            elif value > self.high:
                self.high = value
        self.last = value


class _Survey:
    """What one pass over a sidecar's rows learns, in constant memory."""

    def __init__(self, columns: int) -> None:
        self.points = 0
        self.first_line = 0
        self.used = [False] * columns
        self.steps = _Track()
        self.epochs = _Track()
        self.in_order = True

    def lr(self, rows: Iterator[_LrRow]) -> None:
        """Survey a learning-rate sidecar's rows (the hot loop: millions of batch rows)."""
        add_step, add_epoch = self.steps.add, self.epochs.add
        used = self.used
        used[0] = True
        in_order, previous, points = True, -math.inf, 0
        for line, epoch, step, wall_time, _, extras in rows:
            if not points:
                self.first_line = line
            points += 1
            for k, value in enumerate(extras, start=1):
                if value is not None:
                    points += 1
                    used[k] = True
            add_step(step)
            add_epoch(epoch)
            if wall_time < previous:
                in_order = False
            previous = wall_time
        self.points, self.in_order = points, in_order

    def csv_logger(self, records: Iterator[_Record]) -> None:
        """Survey a CSVLogger file's rows (one per epoch)."""
        for line, epoch, _, values in records:
            n = 0
            for k, value in enumerate(values):
                if value is not None:
                    n += 1
                    self.used[k] = True
            if n:
                if not self.points:
                    self.first_line = line
                self.points += n
                self.steps.add(epoch)


def read_sidecar(path: str | os.PathLike[str], mapping: TagMapping | None = None) -> Sidecar:
    """Check a learning-rate sidecar or a Keras CSVLogger file, streaming it once.

    Args:
        path: str or PathLike. The CSV file.
        mapping: TagMapping. Split names and tag pattern of the output.

    Returns:
        Sidecar. Its points are read by :meth:`Sidecar.points`.

    Raises:
        SidecarError: the file is missing, empty, has the wrong delimiter or missing
            columns, or a cell is non-numeric, NaN or infinite, or a step appears twice;
            the message names the file, line and column.
    """
    path = Path(path)
    mapping = mapping or TagMapping()
    with _open(path) as f:
        stamp = _stamp(os.fstat(f.fileno()))
        rows = _rows(f)
        with _readable(path):
            first = next(rows, None)
        header = _check_header(path, first)
        lr = "step" in header
        if lr:
            columns = ["learning_rate", *(c for c in header if c not in LR_HEADER)]
            survey = _Survey(len(columns))
            survey.lr(_lr_rows(path, header, rows))
        else:
            columns = [c for c in header if c != "epoch"]
            survey = _Survey(len(columns))
            survey.csv_logger(_csv_logger_records(path, header, rows))
    if not survey.points:
        raise _fail(path, 2, None, "no data rows after the header")
    epochs = survey.epochs
    batch = lr and (epochs.repeats or (not epochs.nondecreasing and _epochs_repeat(path, header)))
    if lr:
        prefix = "batch_" if batch else ""
        tags = tuple(mapping.tag("train", prefix + c) for c in columns)
    else:
        tags = tuple(mapping.map_flat(c) or mapping.tag("train", c) for c in columns)
    # A point's step: the global batch (batch rows), else the epoch (CSVLogger: "steps").
    track = survey.steps if batch or not lr else epochs
    sidecar = Sidecar(
        path,
        LR_SIDECAR if lr else CSV_LOGGER,
        "batch" if batch else "epoch",
        tuple(header),
        tuple(columns),
        tags,
        frozenset(t for t, used in zip(tags, survey.used, strict=True) if used),
        survey.points,
        survey.first_line,
        track.low,
        track.high,
        track.stride or 0,
        survey.in_order,
        stamp,
    )
    if not track.rises and (batch or not lr):  # epoch rows never repeat an epoch
        _no_duplicates(sidecar)
    return sidecar


def _epochs_repeat(path: Path, header: list[str]) -> bool:
    """Return True if some epoch has several rows (a second pass, for epochs that go back)."""
    seen: set[int] = set()
    with _open(path) as f:
        rows = _rows(f)
        with _readable(path):
            next(rows, None)
        for _, epoch, _, _, _, _ in _lr_rows(path, header, rows):
            if epoch in seen:
                return True
            seen.add(epoch)
    return False


def _no_duplicates(sidecar: Sidecar) -> None:
    seen: dict[tuple[str, int], int] = {}
    for p in sidecar.points():
        first = seen.setdefault((p.tag, p.step), p.line)
        if first != p.line:
            what = "step" if sidecar.rows == "batch" else "epoch"
            raise _fail(sidecar.path, p.line, what, f"{what} {p.step} appears twice (first on line {first})")


def discover(run_dir: Path) -> list[Path]:
    """Return the learning-rate sidecar beside a Keras run's ``train/`` and ``validation/``."""
    candidate = run_dir / DISCOVERED_NAME
    return [candidate] if candidate.is_file() else []

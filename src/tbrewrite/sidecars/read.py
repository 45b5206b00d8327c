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

Every malformation is a :class:`tbrewrite.errors.SidecarError` whose message names the
file, line and column.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.errors import SidecarError
from tbrewrite.output.files import special_file
from tbrewrite.producers.keras import TagMapping

LR_HEADER = ("epoch", "step", "wall_time", "learning_rate")
LR_SIDECAR = "learning-rate"
CSV_LOGGER = "csv-logger"
DISCOVERED_NAME = "learning_rate.csv"
_MISSING = {"NA", ""}
_LATEST_WALL_TIME = 1e11  # seconds since the Unix epoch: the year 5138


@dataclass
class SidecarPoint:
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


@dataclass
class Sidecar:
    """A parsed sidecar file.

    Attributes:
        path: Path.
        kind: str. ``"learning-rate"`` or ``"csv-logger"``.
        rows: str. ``"epoch"`` or ``"batch"`` (what the rows are).
        points: list of SidecarPoint, in file order.
        sidecar_wins: bool. True if the sidecar's value replaces the log's at the same
            tag and step (learning-rate sidecar); False if the log's value is kept.
    """

    path: Path
    kind: str
    rows: str
    points: list[SidecarPoint] = field(default_factory=list)

    @property
    def sidecar_wins(self) -> bool:
        """True if the sidecar's value replaces the log's at the same tag and step."""
        return self.kind == LR_SIDECAR

    @property
    def tags(self) -> set[str]:
        """The output tags of the sidecar's points."""
        return {p.tag for p in self.points}


def _fail(path: Path, line: int, column: str | None, problem: str) -> SidecarError:
    where = f"{path}: line {line}" + (f", column '{column}'" if column else "")
    return SidecarError(f"{where}: {problem}")


def _number(path: Path, line: int, column: str, text: str, *, integer: bool = False) -> float:
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
    if not 0 <= value < 1 << 63:
        raise _fail(path, line, column, f"{text} is out of range (0 to 2**63 - 1)")
    return value


def _wall_time(path: Path, line: int, text: str) -> float:
    value = _number(path, line, "wall_time", text)
    if not 0 <= value < _LATEST_WALL_TIME:
        raise _fail(path, line, "wall_time", f"{text} is not seconds since the Unix epoch")
    return value


def _no_duplicates(sidecar: Sidecar) -> None:
    seen: dict[tuple[str, int], int] = {}
    for p in sidecar.points:
        first = seen.setdefault((p.tag, p.step), p.line)
        if first != p.line:
            what = "step" if sidecar.rows == "batch" else "epoch"
            raise _fail(sidecar.path, p.line, what, f"{what} {p.step} appears twice (first on line {first})")


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    kind = special_file(path) if os.path.lexists(path) else None
    if kind is not None:  # reading a pipe or a device could block or never end
        raise SidecarError(f"{path}: not a regular file ({kind})")
    try:
        f = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the with below
    except FileNotFoundError:
        raise SidecarError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SidecarError(f"{path}: is a folder, not a CSV file") from None
    with f:  # a BOM, as Excel writes, is fine (utf-8-sig)
        try:
            yield from enumerate(csv.reader(f), start=1)
        except (csv.Error, UnicodeDecodeError) as e:
            raise SidecarError(f"{path}: not a readable CSV file ({e})") from None


def read_sidecar(path: str | os.PathLike[str], mapping: TagMapping | None = None) -> Sidecar:
    """Parse a learning-rate sidecar or a Keras CSVLogger file.

    Args:
        path: str or PathLike. The CSV file.
        mapping: TagMapping. Split names and tag pattern of the output.

    Returns:
        Sidecar. CSVLogger points have ``wall_time=None`` until :func:`place_epochs`.

    Raises:
        SidecarError: the file is missing, empty, has the wrong delimiter or missing
            columns, or a cell is non-numeric, NaN or infinite; the message names the
            file, line and column.
    """
    path = Path(path)
    mapping = mapping or TagMapping()
    rows = _rows(path)
    first = next(rows, None)
    if first is None or not any(cell.strip() for cell in first[1]):
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
    lr_like = "step" in header or "wall_time" in header
    if lr_like:
        for column in LR_HEADER:
            if column not in header:
                raise _fail(path, 1, column, f"missing column '{column}' (want {','.join(LR_HEADER)})")
        sidecar = _read_lr(path, header, rows, mapping)
    else:
        sidecar = _read_csv_logger(path, header, rows, mapping)
    if not sidecar.points:
        raise _fail(path, 2, None, "no data rows after the header")
    _no_duplicates(sidecar)
    return sidecar


def _cells(
    path: Path, header: list[str], rows: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, dict[str, str]]]:
    for line, row in rows:
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise _fail(path, line, None, f"{len(row)} cells, want {len(header)} as in the header")
        yield line, dict(zip(header, (c.strip() for c in row), strict=True))


def _read_lr(path: Path, header: list[str], rows: Iterator[tuple[int, list[str]]], mapping: TagMapping) -> Sidecar:
    extra = [c for c in header if c not in LR_HEADER]
    parsed = []
    per_epoch: dict[int, int] = {}
    for line, cells in _cells(path, header, rows):
        epoch = _index(path, line, "epoch", cells["epoch"])
        step = _index(path, line, "step", cells["step"])
        wall_time = _wall_time(path, line, cells["wall_time"])
        values = {"learning_rate": _number(path, line, "learning_rate", cells["learning_rate"])}
        for column in extra:
            if cells[column] not in _MISSING:
                values[column] = _number(path, line, column, cells[column])
        per_epoch[epoch] = per_epoch.get(epoch, 0) + 1
        parsed.append((line, epoch, step, wall_time, values))
    batch = any(n > 1 for n in per_epoch.values())
    sidecar = Sidecar(path, LR_SIDECAR, "batch" if batch else "epoch")
    for line, epoch, step, wall_time, values in parsed:
        for column, value in values.items():
            metric = f"batch_{column}" if batch else column
            sidecar.points.append(
                SidecarPoint(mapping.tag("train", metric), step if batch else epoch, value, wall_time, line)
            )
    return sidecar


def _read_csv_logger(
    path: Path, header: list[str], rows: Iterator[tuple[int, list[str]]], mapping: TagMapping
) -> Sidecar:
    sidecar = Sidecar(path, CSV_LOGGER, "epoch")
    columns = [c for c in header if c != "epoch"]
    if not columns:
        raise _fail(path, 1, None, "no metric columns besides 'epoch'")
    for line, cells in _cells(path, header, rows):
        epoch = _index(path, line, "epoch", cells["epoch"])
        for column in columns:
            if cells[column] in _MISSING:
                continue
            value = _number(path, line, column, cells[column])
            tag = mapping.map_flat(column) or mapping.tag("train", column)
            sidecar.points.append(SidecarPoint(tag, epoch, value, None, line))
    return sidecar


def discover(run_dir: Path) -> list[Path]:
    """Return the learning-rate sidecar beside a Keras run's ``train/`` and ``validation/``."""
    candidate = run_dir / DISCOVERED_NAME
    return [candidate] if candidate.is_file() else []

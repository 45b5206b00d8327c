"""``hparams --from``: the hyperparameters to attach, read from a CSV table or one YAML/JSON per run.

Four shapes of ``--from`` (decided by the text given, never by guessing at contents):

* ``FILE.csv``: a table with a ``run`` column naming each run (its folder relative to
  LOGDIR, ``.`` for LOGDIR itself) and one column per hparam; an empty cell gives the run
  no value for that hparam.
* a bare file name (no folder part), e.g. ``hparams.yaml``: looked for in every folder of
  LOGDIR, each found file giving that folder's hparams (PyTorch Lightning's
  ``TensorBoardLogger`` saves ``version_N/hparams.yaml`` beside the event file).
* a pattern holding ``{run}``, e.g. ``configs/{run}.yaml``: every file matching it gives
  the hparams of the run ``{run}`` stands for (it may span folders: ``a/b``).
* any other path to a ``.yaml``/``.yml``/``.json`` file (``./hparams.yaml``): the hparams
  of LOGDIR itself.

A YAML or JSON file holds one mapping; nested mappings are flattened with ``/``
(``optimizer: {lr: 0.1}`` is ``optimizer/lr``, as Lightning's ``_flatten_dict`` does for
TensorBoard), ``null`` gives no value, lists become their JSON text. Values are the three
types the HParams plugin knows (``api.proto`` ``DataType``): bool, number (float64) and
string; a CSV cell is a bool if it reads ``true``/``false`` (any case), a number if
Python's ``float`` reads it, else a string. NaN and infinities are refused: the plugin
cannot serialize them (``list_session_groups.py`` drops them as unset).

YAML needs PyYAML (``pip install 'tbrewrite[yaml]'``), imported only when a YAML file is read.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tbrewrite.errors import HParamsError, InputError
from tbrewrite.logdir import Folder

Value = bool | float | str
"""An hparam value: the plugin's ``DATA_TYPE_BOOL``, ``DATA_TYPE_FLOAT64`` or ``DATA_TYPE_STRING``."""

RUN_COLUMN = "run"
PLACEHOLDER = "{run}"
_FORMATS = {".csv": "csv", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}
_NOT_SHOWN = "TensorBoard's HParams dashboard cannot show it"


@dataclass(frozen=True)
class HParamSet:
    """The hparams given for one run.

    Attributes:
        run: str. The run's folder relative to LOGDIR, ``/``-separated; ``"."`` for LOGDIR.
        values: mapping name -> Value.
        origin: str. Where they were read, for messages: ``"runs.csv:3"`` or a file path.
    """

    run: str
    values: Mapping[str, Value]
    origin: str


def type_name(value: Value) -> str:
    """Return ``"bool"``, ``"number"`` or ``"string"``."""
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, float) else "string"


def read_sets(source: str, root: Path, folders: list[Folder]) -> list[HParamSet]:
    """Read ``--from`` (one of the four shapes of the module doc) into one HParamSet per run.

    Args:
        source: str. What ``--from`` says.
        root: Path. LOGDIR.
        folders: every Folder of LOGDIR (:func:`tbrewrite.logdir.walk`).

    Returns:
        list of HParamSet, in file (or folder) order; runs are not checked against LOGDIR.

    Raises:
        HParamsError: a file is malformed, names a run twice, or holds a value that
            cannot be an hparam.
        InputError: a file is missing, of no known format, or a name/pattern finds none.
    """
    if source.endswith(".csv"):
        return list(_read_csv(Path(source)))
    if PLACEHOLDER in source:
        return _read_pattern(source)
    if os.sep not in source and "/" not in source:
        _format_of(source)
        sets = [
            HParamSet(f.rel, read_mapping(f.path / source), str(f.path / source))
            for f in folders
            if (f.path / source).is_file()
        ]
        if not sets:
            raise InputError(f"{root}: no folder holds a file named {source}")
        return sets
    return [HParamSet(".", read_mapping(Path(source)), source)]


def _format_of(path: str | Path) -> str:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: --from must be a .csv, .yaml, .yml or .json file (or a {PLACEHOLDER} pattern)")
    return fmt


def _read_pattern(pattern: str) -> list[HParamSet]:
    """Every file matching ``pattern``, ``{run}`` standing for one or more path components."""
    if pattern.count(PLACEHOLDER) != 1:
        raise InputError(f"{pattern}: the --from pattern must hold {PLACEHOLDER} once")
    _format_of(pattern.replace(PLACEHOLDER, "x"))
    head, tail = pattern.split(PLACEHOLDER)
    base = os.path.dirname(head) or "."
    regex = re.compile(re.escape(head) + r"(?P<run>[^\0]+?)" + re.escape(tail))
    sets = []
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            shown = path[2:] if base == "." and not head.startswith("./") and path.startswith("./") else path
            match = regex.fullmatch(shown)
            if match is not None:
                sets.append(HParamSet(_normal_run(match["run"]), read_mapping(Path(path)), shown))
    if not sets:
        raise InputError(f"{pattern}: no file matches the --from pattern")
    return sets


def _normal_run(text: str) -> str:
    """``./a/b/`` -> ``a/b``; ``""`` and ``.`` -> ``.``."""
    parts = [p for p in text.strip().replace(os.sep, "/").split("/") if p not in ("", ".")]
    return "/".join(parts) or "."


def read_mapping(path: Path) -> dict[str, Value]:
    """Read one YAML or JSON file holding one run's hparams (flattened, typed).

    Raises:
        InputError: the file is missing or unreadable, or not .yaml/.yml/.json.
        HParamsError: it does not parse, is not a mapping, or holds a NaN or infinity.
    """
    fmt = _format_of(path)
    if fmt == "csv":
        raise InputError(f"{path}: a CSV table cannot be one run's hparams; give it as --from {path}")
    text = _read_text(path)
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise HParamsError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}") from None
    else:
        data = _load_yaml(path, text)
    return typed_values(data, str(path))


def typed_values(data: object, where: str) -> dict[str, Value]:
    """Flatten and type one run's mapping of hparams (YAML/JSON data, or a Python dict).

    Args:
        data: a mapping of names to values (nested mappings are flattened with ``/``).
        where: str. How messages name it.

    Raises:
        HParamsError: ``data`` is not a mapping, or holds a NaN or infinity.
    """
    if not isinstance(data, Mapping):
        raise HParamsError(f"{where}: must hold a mapping of hparam names to values; got {type(data).__name__}")
    values: dict[str, Value] = {}
    seen: set[str] = set()
    for name, raw in _flatten(data, "", where, ()):
        if not name:
            raise HParamsError(f"{where}: an hparam has an empty name")
        if name in seen:  # {"a": {"b": 1}, "a/b": 2}: both flatten to a/b
            raise HParamsError(f"{where}: hparam {name!r} given twice (a nested mapping and a name with '/')")
        seen.add(name)
        value = _typed(raw, where, name)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise HParamsError(f"{where}: hparam {name!r} is {value}; {_NOT_SHOWN}")
        values[name] = value
    return values


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise HParamsError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None


def _load_yaml(path: Path, text: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped]  # PyYAML ships no types (the yaml extra)
    except ImportError:
        raise InputError(f"{path}: reading YAML needs PyYAML: pip install 'tbrewrite[yaml]'") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise HParamsError(f"{where}: not valid YAML: {problem}") from None


def _flatten(data: Mapping[Any, Any], prefix: str, where: str, above: tuple[int, ...]) -> Iterator[tuple[str, Any]]:
    above = (*above, id(data))
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            if id(value) in above:  # a YAML alias to a mapping holding it (``a: &x {b: *x}``)
                raise HParamsError(f"{where}: hparam {name!r} holds itself; give it a value")
            yield from _flatten(value, name + "/", where, above)
        else:
            yield name, value


def _typed(raw: Any, where: str = "", name: str = "") -> Value | None:
    """A YAML/JSON value as an hparam: bool, float, str; None for null."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (list, tuple, Mapping)):
        try:
            return json.dumps(raw, default=str)
        except (ValueError, RecursionError):  # a YAML alias to a list holding it (``a: &x [*x]``)
            raise HParamsError(f"{where}: hparam {name!r} holds itself; give it a value") from None
    return str(raw)  # dates and times YAML reads as such


def cell_value(text: str) -> Value | None:
    """A CSV cell as an hparam: None if empty, else bool, number or string (module doc)."""
    text = text.strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    try:
        return float(text)
    except ValueError:
        return text


def _read_csv(path: Path) -> Iterator[HParamSet]:
    text = _read_text(path)
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise HParamsError(f"{path}: empty; want a header row with a {RUN_COLUMN!r} column")
        names = [h.strip() for h in header]
        if RUN_COLUMN not in names:
            raise HParamsError(f"{path}:1: no {RUN_COLUMN!r} column (columns: {', '.join(names)})")
        for k, name in enumerate(names):
            if not name:
                raise HParamsError(f"{path}:1: column {k + 1} has no name")
            if names.index(name) != k:
                raise HParamsError(f"{path}:1: column {name!r} appears twice")
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(names):
                raise HParamsError(f"{path}:{line}: {len(row)} cells; the header has {len(names)}")
            cells = dict(zip(names, row, strict=True))
            run = _normal_run(cells.pop(RUN_COLUMN))
            if run in seen:
                raise HParamsError(f"{path}:{line}: run {run!r} given twice (first on line {seen[run]})")
            seen[run] = line
            values = {name: cell_value(cell) for name, cell in cells.items()}
            for name, value in values.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise HParamsError(f"{path}:{line}: hparam {name!r} is {cells[name].strip()}; {_NOT_SHOWN}")
            yield HParamSet(run, {n: v for n, v in values.items() if v is not None}, f"{path}:{line}")
    except csv.Error as e:
        raise HParamsError(f"{path}:{reader.line_num}: not a valid CSV: {e}") from None

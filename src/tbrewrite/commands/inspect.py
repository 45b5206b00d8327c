"""``inspect``: what a log holds -- runs, files, tags, layouts and every damaged byte range.

Built on :func:`tbrewrite.engine.scan.scan_files`, the same streaming first pass ``convert``
uses, one run at a time, so memory grows with the number of runs and distinct tags,
never with the number of events.

Choices, each written down in the README:

* **Runs.** Every directory under PATH (PATH included) holding a file whose basename
  contains ``tfevents`` is one run, named by its path relative to PATH (``"."`` for PATH),
  as TensorBoard names runs (``data/server/logdir.rs``). Keras's ``train/`` and
  ``validation/`` are two runs, as TensorBoard shows them; ``convert`` would merge them.
* **Profiler placeholders.** ``*.profile-empty`` files are listed with
  ``loaded: false`` (TensorBoard's Python loader skips them, ``io_wrapper.py``): their
  records and damage are reported, but their events are not counted in the run's tags or
  events. A directory holding only such placeholders is still listed (its run has
  ``tensorboard_run: false``), so every file named like an event file is accounted for.
* **Layout.** A split run of a Keras ``log_dir`` (``train/``, ``validation/``, and
  ``test/``, ``eval/``, ... beside them: :func:`tbrewrite.producers.keras.split_sources`)
  reports the layout of that ``log_dir``: ``keras-split``, with ``log_dir`` and
  ``split`` naming it -- even when the ``log_dir`` is above PATH, since the layout is a
  fact about where the run came from. The ``log_dir`` folder's own files (e.g. an hparams
  summary) are ``keras-split`` with split ``""``. Any other run is ``keras-flat`` when its
  scalar tags look like Keras 2 / TF1's (:func:`tbrewrite.producers.keras.flat_keras_reason`),
  else ``generic`` -- exactly what ``convert`` decides.
* **A single event file** as PATH is one run ``"."`` holding that file; its path is
  reported relative to the file's folder (its name).
* **Sparklines.** :func:`sparklines` reads a run's scalar values with ``export``'s reader
  (:func:`tbrewrite.commands.export.iter_values`: a second pass over the run's loaded
  files, made only when the curves are drawn) and folds each tag into a
  :class:`tbrewrite.sparkline.Sparkline`, in memory bounded by the line's width.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.commands.export import iter_values
from tbrewrite.engine.scan import FileStats, StreamScan, TagStats, scan_files
from tbrewrite.errors import InputError
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import is_event_file, walk
from tbrewrite.output.files import special_file
from tbrewrite.producers import GENERIC
from tbrewrite.producers.keras import (
    KERAS_FLAT,
    KERAS_SPLIT,
    TF49109_PARTIAL_WARNING,
    TF49109_WARNING,
    TRAIN_DIR,
    is_flat_keras,
    is_split_run,
    split_sources,
    tf49109_warnings,
)
from tbrewrite.sparkline import Sparkline
from tbrewrite.storage import local_path

__all__ = [
    "EVENT_KINDS",
    "TF49109_PARTIAL_WARNING",
    "TF49109_WARNING",
    "InspectedFile",
    "InspectedRun",
    "LogdirReport",
    "inspect_logdir",
    "iter_runs",
    "sparklines",
]

EVENT_KINDS = (
    "file_version",
    "summary",
    "graph_def",
    "meta_graph_def",
    "session_log",
    "tagged_run_metadata",
    "log_message",
)
"""The ``Event.what`` fields always present in a run's ``events`` counts."""

SPARKLINE_WIDTH = 24
"""Characters of a sparkline: up to 24 points one each, else 12 min/max buckets."""

BACKWARDS_KEPT = 1
"""Per tag, only the first step that goes backwards is kept (the rest are counted), so a
log whose steps never increase (every value at step 0) is inspected in flat memory."""


@dataclass
class InspectedFile:
    """One file of a run.

    Attributes:
        path: Path. The file.
        name: str. Its path relative to PATH, ``/``-separated.
        loaded: bool. TensorBoard loads it (False for ``*.profile-empty`` placeholders).
        stats: FileStats. Valid records, size in bytes, damage, first wall_time.
    """

    path: Path
    name: str
    loaded: bool
    stats: FileStats

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of the file (several only with resync)."""
        return self.stats.damage


@dataclass
class InspectedRun:
    """What one run holds.

    Attributes:
        run: str. Path relative to PATH, ``/``-separated (``"."`` for PATH itself).
        path: Path. The run folder.
        layout: str. ``keras-split``, ``keras-flat`` or ``generic``.
        log_dir: str or None. For ``keras-split``, the Keras ``log_dir`` relative to
            PATH (may be ``".."`` when PATH is a ``train/`` folder); else None.
        split: str or None. For ``keras-split``: the split folder (``"train"``,
            ``"validation"``, ``"test"``, ...) or ``""`` (the ``log_dir`` folder itself);
            else None.
        files: list of InspectedFile, in TensorBoard's (lexicographic) order.
        scan: StreamScan of the loaded files, read in order as one stream.
        warnings: list of str.
    """

    run: str
    path: Path
    layout: str
    log_dir: str | None
    split: str | None
    files: list[InspectedFile]
    scan: StreamScan
    warnings: list[str] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of the run's files, placeholders included."""
        return [d for f in self.files for d in f.damage]

    @property
    def tensorboard_run(self) -> bool:
        """True if TensorBoard shows this folder as a run (it loads one of its files)."""
        return any(f.loaded for f in self.files)

    @property
    def tags(self) -> list[TagStats]:
        """The run's tags in order of first appearance."""
        return list(self.scan.tags.values())

    def restarts(self) -> list[TagStats]:
        """Return the tags whose step is, at least once, not above the previous value's."""
        return [t for t in self.scan.tags.values() if t.backwards]

    def to_dict(self) -> dict[str, object]:
        """Return this run in the ``inspect --json`` schema (see the README)."""
        events = {kind: self.scan.event_kinds.get(kind, 0) for kind in EVENT_KINDS}
        events.update(self.scan.event_kinds)
        return {
            "run": self.run,
            "layout": self.layout,
            "log_dir": self.log_dir,
            "split": self.split,
            "tensorboard_run": self.tensorboard_run,
            "files": [_file_dict(f) for f in self.files],
            "tags": [_tag_dict(t) for t in self.scan.tags.values()],
            "events": events,
            "restarts": [_restart_dict(t) for t in self.restarts()],
            "warnings": list(self.warnings),
        }


@dataclass
class LogdirReport:
    """What ``inspect`` found under PATH.

    Attributes:
        path: Path. PATH as given.
        runs: list of InspectedRun, sorted by run path.
    """

    path: Path
    runs: list[InspectedRun] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of every file under PATH."""
        return [d for r in self.runs for d in r.damage]

    def to_dict(self) -> dict[str, object]:
        """Return the whole ``inspect --json`` document."""
        files = [f for r in self.runs for f in r.files]
        return {
            "path": str(self.path),
            "runs": [r.to_dict() for r in self.runs],
            "files": len(files),
            "damaged_files": sum(1 for f in files if f.damage),
        }


def inspect_logdir(path: str | os.PathLike[str], *, resync: bool = False) -> LogdirReport:
    """Inspect every run under ``path`` (a logdir, a run folder, or one event file).

    Args:
        path: str or PathLike. A folder, or a single event file.
        resync: bool. After damage, continue from the next valid record (every damaged
            stretch is still reported).

    Returns:
        LogdirReport, runs sorted by their path relative to ``path``.

    Raises:
        InputError: ``path`` does not exist, or holds no file named like an event file.
        OSError: a file cannot be read.

    Example:
        >>> report = inspect_logdir("logs/fit")                      # doctest: +SKIP
        >>> [(r.run, r.layout, len(r.tags)) for r in report.runs]   # doctest: +SKIP
        [('20240101-120000/train', 'keras-split', 7), ...]
    """
    return LogdirReport(Path(path), list(iter_runs(path, resync=resync)))


def iter_runs(path: str | os.PathLike[str], *, resync: bool = False) -> Iterator[InspectedRun]:
    """Yield one :class:`InspectedRun` per run under ``path``, each scanned as it is yielded.

    Folders are walked as every command walks them (:func:`tbrewrite.logdir.walk`):
    sorted, symlinked folders followed once each, unreadable ones an error.

    Args:
        path: str or PathLike. A folder, or a single event file.
        resync: bool. After damage, continue from the next valid record.

    Yields:
        InspectedRun, in order of the run path.

    Raises:
        InputError: ``path`` does not exist, is a named pipe, socket or device, or
            holds no file named like an event file.
        OSError: a file cannot be read.
    """
    root = local_path(path)
    if not root.exists():
        raise InputError(f"{root}: no such file or directory")
    if not root.is_dir():
        kind = special_file(root)
        if kind is not None:  # reading a pipe or a device could block or never end
            raise InputError(f"{root}: not a regular file ({kind})")
        yield _inspect_run(".", root.parent, [root], root.parent, resync)
        return
    found = False
    for folder in walk(root):
        files = sorted((*folder.event_files, *folder.placeholders), key=lambda f: f.name)
        if not files:
            continue
        found = True
        yield _inspect_run(folder.rel, folder.path, files, root, resync)
    if not found:
        raise InputError(f"{root}: no event files found (names containing 'tfevents')")


def sparklines(run: InspectedRun, *, width: int = SPARKLINE_WIDTH, resync: bool = False) -> dict[str, Sparkline]:
    """Fold each scalar tag of ``run`` into a one-line curve.

    Args:
        run: InspectedRun. Its loaded files are read again, for their scalar values only.
        width: int, a multiple of 4. The most characters a line takes.
        resync: bool. After damage, continue from the next valid record (as the scan did).

    Returns:
        dict of tag -> Sparkline (with the tag's ``min``, ``max`` and ``last`` value), for
        the tags holding scalar values, in the order of :attr:`InspectedRun.tags`.

    Raises:
        OSError: a file cannot be read.
    """
    expected = {t.tag: t.count for t in run.tags if t.kind == "scalar"}
    if not expected:
        return {}
    lines: dict[str, Sparkline] = {}
    by_id: list[Sparkline | None] = []
    for block in iter_values([f.path for f in run.files if f.loaded], resync=resync):
        for tag in block.tags[len(by_id) :]:
            line = None
            if tag in expected:
                line = lines[tag] = Sparkline(width, expected=expected[tag])
            by_id.append(line)
        groups: dict[int, list[float]] = {}
        for tag_id, value in zip(block.tag_ids, block.values, strict=True):
            group = groups.get(tag_id)
            if group is None:
                group = groups[tag_id] = []
            group.append(value)
        for tag_id, group in groups.items():
            line = by_id[tag_id]
            if line is not None:
                line.extend(group)
    return {tag: lines[tag] for tag in expected if tag in lines and lines[tag].count}


def _inspect_run(run: str, run_dir: Path, files: list[Path], base: Path, resync: bool) -> InspectedRun:
    loaded = [f for f in files if is_event_file(f.name)]
    skipped = [f for f in files if not is_event_file(f.name)]
    scan = scan_files(loaded, resync=resync, backwards_limit=BACKWARDS_KEPT)
    stats = {s.path: s for s in scan.files}
    stats.update({s.path: s for s in scan_files(skipped, resync=resync, backwards_limit=0).files})
    inspected = [InspectedFile(f, _relative(f, base), is_event_file(f.name), stats[f]) for f in files]
    layout, log_dir, split = _layout(run_dir, scan)
    result = InspectedRun(
        run,
        run_dir,
        layout,
        _relative(log_dir, base) if log_dir is not None else None,
        split,
        inspected,
        scan,
    )
    if split == TRAIN_DIR:
        result.warnings.extend(tf49109_warnings(scan))
    return result


def _layout(run_dir: Path, scan: StreamScan) -> tuple[str, Path | None, str | None]:
    """Return ``(layout, Keras log_dir, split)`` of a run folder (see the module doc)."""
    if run_dir.name in split_sources(run_dir.parent):
        return KERAS_SPLIT, run_dir.parent, run_dir.name
    if is_split_run(run_dir):
        return KERAS_SPLIT, run_dir, ""
    if is_flat_keras(scan):
        return KERAS_FLAT, None, None
    return GENERIC, None, None


def _relative(path: Path, base: Path) -> str:
    rel = os.path.relpath(path, base)
    return Path(rel).as_posix()


def _finite(x: float) -> float | None:
    """JSON has no NaN or infinity: report a non-finite wall_time as null."""
    return x if math.isfinite(x) else None


def _file_dict(f: InspectedFile) -> dict[str, object]:
    damage = [d.to_dict() for d in f.damage]
    return {
        "path": f.name,
        "loaded": f.loaded,
        "records": f.stats.records,
        "bytes": f.stats.bytes,
        "damage": damage[0] if damage else None,
        "all_damage": damage,
    }


def _tag_dict(t: TagStats) -> dict[str, object]:
    return {
        "tag": t.tag,
        "kind": t.kind,
        "form": t.form,
        "plugin": (t.metadata.plugin_data.plugin_name or None) if t.metadata is not None else None,
        "count": t.count,
        "first_step": t.first_step,
        "last_step": t.last_step,
        "first_wall_time": _finite(t.first_wall_time),
        "last_wall_time": _finite(t.last_wall_time),
    }


def _restart_dict(t: TagStats) -> dict[str, object]:
    _, first_from, first_to = t.backwards[0]
    return {
        "tag": t.tag,
        "backwards": t.backwards_count - t.repeated,
        "repeated": t.repeated,
        "first_from_step": first_from,
        "first_to_step": first_to,
    }

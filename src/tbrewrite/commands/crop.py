"""``crop``: keep only the steps (and wall times) asked for, in every run of a tree.

tensorboard#6388 asks for "a new tfevents file ... only containing results of the 20
epochs". Each event file of each run becomes one file of the same name in which the
summary values of the cropped tags outside ``START <= step < STOP`` (and, with a
wall-time window, outside ``START <= wall_time < STOP``) are left out; an Event left
without values is left out whole. Everything else is kept byte for byte:

* events without a summary (``file_version``, ``graph_def``, ``meta_graph_def``,
  ``session_log``, ``tagged_run_metadata``): their step is not a point of a series;
* tags whose step means nothing (:data:`UNCROPPED_KINDS`: the Keras model config
  ``keras`` of the ``graph_keras_model`` plugin, hparams' ``_hparams_/...`` summaries,
  a ``custom_scalars`` layout), and with ``tags`` every tag it does not match.

A first value that is cropped away takes the tag's plugin metadata with it, so the tag's
first kept value gets it (TensorBoard reads a series' metadata from its first value).
Planning is one scan per file (:func:`tbrewrite.engine.scan.scan_files`); writing goes
through :mod:`tbrewrite.commands.perfile` (``--out`` mirror or ``--in-place`` swap).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tbrewrite.commands.perfile import (
    FileEdit,
    FileResult,
    RunEdit,
    backup_folder,
    check_no_pending_swap,
    write_in_place,
    write_tree,
)
from tbrewrite.engine.plan import SourceFile, TagAction, Window
from tbrewrite.engine.scan import TagStats, scan_files
from tbrewrite.errors import InputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.events.summary import STEPLESS_KINDS
from tbrewrite.logdir import check_dir, list_event_files
from tbrewrite.logdir import runs as run_folders
from tbrewrite.output.swap import recover
from tbrewrite.output.transaction import check_output_folder
from tbrewrite.storage import local_path

UNCROPPED_KINDS = STEPLESS_KINDS
"""Value kinds (:func:`tbrewrite.events.summary.value_kind`) always kept."""


def parse_steps(text: str) -> tuple[int | None, int | None]:
    """Parse ``START:STOP`` (integers; either may be empty, Python-slice style).

    Raises:
        UsageError: not two integers around one colon.
    """
    start, sep, stop = text.partition(":")
    if not sep:
        raise UsageError(f"--steps must be START:STOP (either side may be empty); got {text!r}")
    try:
        return (int(start) if start.strip() else None, int(stop) if stop.strip() else None)
    except ValueError:
        raise UsageError(f"--steps must be START:STOP of integers; got {text!r}") from None


def _instant(text: str) -> float | None:
    """Unix seconds or ISO 8601 (UTC unless it names an offset) -> seconds; None if neither."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_wall_times(text: str) -> tuple[float | None, float | None]:
    """Parse ``START:STOP`` of Unix seconds or ISO 8601 times (either may be empty).

    ISO times hold colons themselves: the one colon with a valid time (or nothing) on
    each side separates them. A time without a UTC offset is UTC.

    Raises:
        UsageError: no colon, or not exactly one way to read it.
    """
    readings = []
    for k, ch in enumerate(text):
        if ch != ":":
            continue
        left, right = text[:k], text[k + 1 :]
        start = _instant(left) if left.strip() else None
        stop = _instant(right) if right.strip() else None
        if (start is not None or not left.strip()) and (stop is not None or not right.strip()):
            readings.append((start, stop))
    if len(readings) != 1:
        why = "is ambiguous" if readings else "is not START:STOP of Unix seconds or ISO 8601 times"
        raise UsageError(f"--wall-time {text!r} {why}")
    return readings[0]


@dataclass
class CropRun:
    """One run: its planned edit and, once written, the results.

    Attributes:
        edit: RunEdit.
        tags: dict tag -> TagStats over the run (summed over files): what is cropped.
        cropped: frozenset of str. The tags the window applies to.
        damage: list of Damage the scan found.
        events: int. Events read (file_version included).
        files: list of FileResult (empty on a dry run or for a run left alone in place).
    """

    edit: RunEdit
    tags: dict[str, TagStats]
    cropped: frozenset[str]
    damage: list[Damage]
    events: int
    files: list[FileResult] = field(default_factory=list)

    @property
    def values_dropped(self) -> int:
        """Values left out of the run."""
        return sum(f.values_dropped for f in self.files)

    @property
    def events_out(self) -> int:
        """Records written (file_version included)."""
        return sum(f.events_out for f in self.files)


@dataclass
class CropReport:
    """What ``crop`` did.

    Attributes:
        window: Window.
        runs: list of CropRun, in LOGDIR order.
        backup_dir: Path or None. In place: where the originals went.
        recovered: list of str. Interrupted in-place swaps finished first.
        warnings: list of str. Files of the tree not copied to ``out``.
    """

    window: Window
    runs: list[CropRun] = field(default_factory=list)
    backup_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of input: the scan's, then any the write found."""
        return [d for r in self.runs for d in (*r.damage, *(d for f in r.files for d in f.damage))]

    @property
    def notes(self) -> list[str]:
        """Notes from writing, e.g. a file that grew while it was rewritten."""
        return [n for r in self.runs for f in r.files for n in f.notes]


def _outside(stats: TagStats, window: Window) -> bool:
    """True if some value of the tag may lie outside ``window`` (exact for steps)."""
    lo, hi = window.steps
    if (lo is not None and stats.min_step < lo) or (hi is not None and stats.max_step >= hi):
        return True
    return window.wall_times != (None, None)


def plan_run(run: str, run_dir: Path, window: Window, tags: re.Pattern[str] | None, *, resync: bool) -> CropRun:
    """Scan one run's event files and decide each tag's window.

    Raises:
        OSError: a file cannot be read.
    """
    files = []
    totals: dict[str, TagStats] = {}
    cropped: set[str] = set()
    damage: list[Damage] = []
    events = 0
    for path in list_event_files(run_dir):
        scan = scan_files([path], resync=resync, backwards_limit=0)
        (stats,) = scan.files
        damage += stats.damage
        events += scan.events
        actions = {}
        touched = False
        for tag, ts in scan.tags.items():
            known = totals.get(tag)
            if known is None:
                totals[tag] = TagStats(tag, ts.kind, ts.form, ts.count, min_step=ts.min_step, max_step=ts.max_step)
            else:
                known.count += ts.count
                known.min_step = min(known.min_step, ts.min_step)
                known.max_step = max(known.max_step, ts.max_step)
            if ts.kind in UNCROPPED_KINDS or (tags is not None and not tags.search(tag)):
                actions[tag] = TagAction(tag)
                continue
            cropped.add(tag)
            # The first value may be cropped away: the tag's first kept value gets its metadata.
            actions[tag] = TagAction(tag, ts.metadata, window=window)
            touched = touched or _outside(ts, window)
        files.append(
            FileEdit(SourceFile.from_stats(stats), actions, touched, stats.records, bool(stats.damage) and resync)
        )
    return CropRun(RunEdit(run, run_dir, tuple(files)), totals, frozenset(cropped), damage, events)


def crop(
    logdir: str | os.PathLike[str],
    *,
    steps: tuple[int | None, int | None] = (None, None),
    wall_times: tuple[float | None, float | None] = (None, None),
    tags: str | None = None,
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    dry_run: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    resync: bool = False,
    jobs: int = 1,
    on_progress: Callable[[str], None] | None = None,
) -> CropReport:
    """Keep only the values inside a step (and wall-time) window in every run under ``logdir``.

    Args:
        logdir: str or PathLike. A tree of runs.
        steps: ``(start, stop)``: keep ``start <= step < stop``; None is open.
        wall_times: ``(start, stop)`` in Unix seconds: keep ``start <= wall_time < stop``.
        tags: str or None. A regex (:func:`re.search`): crop only matching tags.
        out: folder for a mirrored output tree (new or empty unless ``force``).
        in_place: bool. Replace the runs' event files; originals go to ``backup_dir``.
        dry_run: bool. Plan and report; write nothing.
        backup_dir: with ``in_place``: where the originals go (default: a new sibling
            ``<logdir>.tbrewrite-backup-<n>``).
        force: bool. Write into a non-empty ``out``.
        resync: bool. After damage, continue from the next valid record.
        jobs: int. Processes (see :func:`tbrewrite.parallel.map_ordered`).
        on_progress: optional callback ``(run)`` as each run is written.

    Returns:
        CropReport.

    Raises:
        UsageError: no window, an empty window, a bad ``tags`` regex, or an invalid
            combination of ``out``, ``in_place`` and ``dry_run``.
        InputError: ``logdir`` is missing or holds no runs, or an in-place edit was
            interrupted there (without ``in_place``).
        OutputError: ``out`` or ``backup_dir`` is unsafe.
        OSError: reading or writing failed; nothing is left behind.
    """
    root = local_path(logdir, "LOGDIR")
    out_path = local_path(out, "--out") if out is not None else None
    check_dir(root, "LOGDIR")
    if out_path is not None and in_place:
        raise UsageError("give --out DIR or --in-place, not both")
    if out_path is None and not in_place and not dry_run:
        raise UsageError("give --out DIR or --in-place (or --dry-run)")
    if backup_dir is not None and not in_place:
        raise UsageError("--backup-dir needs --in-place")
    if steps == (None, None) and wall_times == (None, None):
        raise UsageError("give --steps START:STOP or --wall-time START:STOP")
    for name, (lo, hi) in (("--steps", steps), ("--wall-time", wall_times)):
        if lo is not None and hi is not None and hi <= lo:
            raise UsageError(f"{name}: STOP ({hi}) must be above START ({lo}); nothing would be kept")
    try:
        pattern = re.compile(tags) if tags is not None else None
    except re.error as e:
        raise UsageError(f"--tags {tags!r}: {e}") from None
    window = Window(steps, wall_times)
    report = CropReport(window)
    if in_place and not dry_run:
        report.recovered = recover(root)
    else:
        check_no_pending_swap(root, "crop")
    if out_path is not None:
        check_output_folder(root, out_path, force=force, src_label="LOGDIR", out_label="--out")
    chosen = local_path(backup_dir, "--backup-dir") if backup_dir is not None else None
    backup = backup_folder(root, chosen) if in_place else None
    folders = list(run_folders(root))
    if not folders:
        raise InputError(f"{root}: no event files found (names containing 'tfevents')")
    report.runs = [plan_run(f.rel, f.path, window, pattern, resync=resync) for f in folders]
    if dry_run:
        return report
    edits = [r.edit for r in report.runs]
    progress = on_progress or (lambda run: None)
    if out_path is not None:
        results, report.warnings = write_tree(
            root, out_path, edits, jobs=jobs, resync=resync, force=force, progress=progress
        )
    else:
        assert backup is not None
        results, report.backup_dir = write_in_place(
            root, backup, edits, jobs=jobs, resync=resync, command="crop", progress=progress
        )
    for run, files in zip(report.runs, results, strict=True):
        run.files = files
    return report


def describe_window(window: Window) -> str:
    """Return the window as one phrase, e.g. ``"steps 10 <= step < 20"``."""
    parts = []
    lo, hi = window.steps
    if (lo, hi) != (None, None):
        parts.append(_bounds("step", lo, hi))
    start, stop = window.wall_times
    if (start, stop) != (None, None):
        parts.append(_bounds("wall_time", _iso(start), _iso(stop)))
    return " and ".join(parts)


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def _bounds(what: str, lo: object, hi: object) -> str:
    if lo is None:
        return f"{what} < {hi}"
    if hi is None:
        return f"{what} >= {lo}"
    return f"{lo} <= {what} < {hi}"


__all__ = ["CropReport", "CropRun", "crop", "describe_window", "parse_steps", "parse_wall_times"]

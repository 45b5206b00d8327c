"""``compact``: make huge logs small and fast to load, keeping what a person looks for.

TensorBoard loads every event of a log before it samples (tensorboard#1002, #2411,
#1252; ray#24737; ClassyVision logged every 10th step only because TensorBoard became
too slow). ``compact`` thins each run, tag by tag:

* **scalars** with more than ``scalars`` points: the tag's step range is cut into
  ``scalars // 5`` equal buckets, and each bucket keeps its first, minimum, maximum and
  last point and its first NaN, so every spike, every divergence and the final value
  survive (at most ``scalars`` points);
* **images and audio** with more than ``images`` values, **histograms** with more than
  ``histograms``: that many values, evenly spaced over the tag's values, always the
  first and the last;
* with ``drop_graphs``: ``graph_def``, ``meta_graph_def`` and ``tagged_run_metadata``
  events and the Keras model config (tags of kind ``graph``) are left out.

Everything else is kept byte for byte. The choice is made per run (over all its event
files) from one scan per file and, for scalars, one read of their values
(:func:`tbrewrite.commands.export.iter_values`, bucketed with NumPy); the engine then keeps values by their
ordinal (:attr:`tbrewrite.engine.plan.TagAction.keep`). Writing goes through
:mod:`tbrewrite.commands.perfile` (``--out`` mirror or ``--in-place`` swap).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tbrewrite.commands.export import iter_values
from tbrewrite.commands.perfile import (
    FileEdit,
    FileResult,
    RunEdit,
    backup_folder,
    check_no_pending_swap,
    write_in_place,
    write_tree,
)
from tbrewrite.engine.plan import SourceFile, TagAction
from tbrewrite.engine.scan import StreamScan, scan_files
from tbrewrite.errors import InputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import check_dir, list_event_files
from tbrewrite.logdir import runs as run_folders
from tbrewrite.output.swap import recover
from tbrewrite.output.transaction import check_output_folder
from tbrewrite.storage import local_path

GRAPH_EVENTS = frozenset({"graph_def", "meta_graph_def", "tagged_run_metadata"})
"""``Event.what`` fields of the events ``drop_graphs`` leaves out."""
_Key = tuple[int, int]  # (file index in the run, ordinal of the value in that file)
_ORDINAL_BITS = 40  # a file holds fewer than 2**40 values of a tag (that would be > 10 TB)
_ORDINAL_MASK = (1 << _ORDINAL_BITS) - 1


@dataclass
class CompactRun:
    """One run: what is thinned and, once written, the results.

    Attributes:
        edit: RunEdit.
        kept: dict tag -> ``(values before, values kept)`` for every tag thinned or dropped.
        bytes_in: int. Bytes of the run's event files.
        events: int. Events read (file_version included).
        damage: list of Damage the scans found.
        notes: list of str, e.g. a tag whose values could not all be read as numbers
            (left whole).
        files: list of FileResult (empty on a dry run).
        bytes_out: int or None. Bytes of the run's event files after (None on a dry run).
    """

    edit: RunEdit
    kept: dict[str, tuple[int, int]]
    bytes_in: int
    events: int
    damage: list[Damage]
    notes: list[str] = field(default_factory=list)
    files: list[FileResult] = field(default_factory=list)
    bytes_out: int | None = None

    @property
    def events_out(self) -> int:
        """Records after (file_version included); on a dry run, the records read."""
        return sum(f.events_out for f in self.files) if self.files else self.events


@dataclass
class CompactReport:
    """What ``compact`` did: one CompactRun per run in LOGDIR order, and where backups went."""

    runs: list[CompactRun] = field(default_factory=list)
    backup_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of input: the scans', then any the write found."""
        return [d for r in self.runs for d in (*r.damage, *(d for f in r.files for d in f.damage))]


def _evenly(count: int, k: int) -> list[int]:
    """``k`` ordinals of ``count`` evenly spaced, the first and the last included."""
    if k <= 1:
        return [count - 1]
    return sorted({(2 * i * (count - 1) + k - 1) // (2 * (k - 1)) for i in range(k)})  # rounded half up


class _Buckets:
    """The buckets of one scalar tag, fed a batch of its values at a time.

    Per bucket: the keys of its first, last, lowest and highest value and of its first
    NaN (-1: none yet).
    A key is ``file << 40 | ordinal`` (the value's file in the run, its ordinal among the
    tag's values in that file), so keys order as the values do. Ties keep the earliest
    value; ``-0.0`` equals ``0.0``.
    """

    def __init__(self, count: int, lo: int, hi: int) -> None:
        self.count, self.lo, self.hi = count, lo, hi
        self.span = hi - lo + 1
        self.exact = self.span * count < 2**63  # (step - lo) * count fits in an int64
        none = np.full(count, -1, np.int64)
        self.first, self.last, self.nan, self.low_key, self.high_key = (none.copy() for _ in range(5))
        self.low = np.zeros(count)
        self.high = np.zeros(count)

    def _bucket(self, steps: NDArray[np.int64]) -> NDArray[np.int64]:
        if self.exact:
            b = (np.clip(steps, self.lo, self.hi) - self.lo) * self.count // self.span
            return np.minimum(b, self.count - 1)
        buckets = [min(self.count - 1, max(0, (s - self.lo) * self.count // self.span)) for s in steps.tolist()]
        return np.array(buckets, np.int64)

    def add(self, keys: NDArray[np.int64], steps: NDArray[np.int64], values: NDArray[np.float64]) -> None:
        """Add one batch of the tag's values (keys ascending)."""
        b = self._bucket(steps)
        at, i = np.unique(b, return_index=True)
        fresh = self.first[at] < 0
        self.first[at[fresh]] = keys[i[fresh]]
        at, i = np.unique(b[::-1], return_index=True)
        self.last[at] = keys[len(b) - 1 - i]
        nan = np.isnan(values)
        if nan.any():
            at, i = np.unique(b[nan], return_index=True)
            fresh = self.nan[at] < 0
            self.nan[at[fresh]] = keys[nan][i[fresh]]
            b, keys, values = b[~nan], keys[~nan], values[~nan]
        if not len(b):
            return
        for sign, best, best_key in ((1.0, self.low, self.low_key), (-1.0, self.high, self.high_key)):
            order = np.lexsort((keys, sign * values, b))  # by bucket, then value, then key
            sb = b[order]
            heads = order[np.flatnonzero(np.r_[True, sb[1:] != sb[:-1]])]
            at, v, k = b[heads], values[heads], keys[heads]
            better = (best_key[at] < 0) | (sign * v < sign * best[at])
            best[at[better]] = v[better]
            best_key[at[better]] = k[better]

    def kept(self) -> set[_Key]:
        """The ``(file, ordinal)`` of every value kept."""
        found = np.concatenate([self.first, self.last, self.nan, self.low_key, self.high_key])
        return {(key >> _ORDINAL_BITS, key & _ORDINAL_MASK) for key in found[found >= 0].tolist()}


def _scalar_keys(
    files: list[Path], scans: list[StreamScan], tags: dict[str, tuple[int, int]], n: int
) -> dict[str, set[_Key]]:
    """Bucket the values of ``tags`` (tag -> step range) and return tag -> kept keys.

    Values are read a batch at a time as columns (:func:`tbrewrite.commands.export.iter_values`)
    and bucketed with NumPy, per tag. A tag whose values the scalar reader did not all
    yield is left out (kept whole). Values past those the scan counted (a file still being
    written) are not bucketed: the rewrite stops where the scan did.
    """
    count = max(1, n // 5)
    buckets = {tag: _Buckets(count, lo, hi) for tag, (lo, hi) in tags.items()}
    whole: set[str] = set()
    for k, path in enumerate(files):
        seen: dict[str, int] = {}
        scanned = {tag: ts.count for tag, ts in scans[k].tags.items()}
        for block in iter_values([path]):
            tag_ids = np.asarray(block.tag_ids, np.int64)
            steps = np.asarray(block.steps, np.int64)
            values = np.asarray(block.values, np.float64)
            order = np.argsort(tag_ids, kind="stable")
            sorted_ids = tag_ids[order]
            cuts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1], True])
            for a, z in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
                tag = block.tags[int(sorted_ids[a])]
                rows = order[a:z]
                ordinal = seen.get(tag, 0)
                seen[tag] = ordinal + len(rows)
                rows = rows[: max(0, scanned.get(tag, 0) - ordinal)]
                bucket = buckets.get(tag)
                if bucket is not None and len(rows):
                    keys = (k << _ORDINAL_BITS) + ordinal + np.arange(len(rows), dtype=np.int64)
                    bucket.add(keys, steps[rows], values[rows])
        for tag, ts in scans[k].tags.items():
            if tag in buckets and seen.get(tag, 0) < ts.count:
                whole.add(tag)
    return {tag: b.kept() for tag, b in buckets.items() if tag not in whole}


def plan_run(
    run: str, run_dir: Path, *, scalars: int, images: int, histograms: int, drop_graphs: bool, resync: bool
) -> CompactRun:
    """Scan one run and decide which values of each tag are kept.

    Raises:
        OSError: a file cannot be read.
    """
    files = list_event_files(run_dir)
    scans = [scan_files([path], resync=resync, backwards_limit=0) for path in files]
    totals: dict[str, list[int]] = {}  # tag -> [count, min step, max step]
    kinds: dict[str, str] = {}
    for scan in scans:
        for tag, ts in scan.tags.items():
            kinds.setdefault(tag, ts.kind)
            t = totals.setdefault(tag, [0, ts.min_step, ts.max_step])
            t[0] += ts.count
            t[1], t[2] = min(t[1], ts.min_step), max(t[2], ts.max_step)
    limits = {"scalar": scalars, "image": images, "audio": images, "histogram": histograms}
    thin = {tag: limits[kinds[tag]] for tag, t in totals.items() if kinds[tag] in limits and t[0] > limits[kinds[tag]]}
    keys: dict[str, set[_Key]] = {}
    scalar_tags = {tag: (totals[tag][1], totals[tag][2]) for tag in thin if kinds[tag] == "scalar"}
    notes = []
    if scalar_tags:
        keys.update(_scalar_keys(files, scans, scalar_tags, scalars))
        for tag in sorted(scalar_tags.keys() - keys.keys()):
            notes.append(f"run '{run}': tag '{tag}': some values are not numbers; kept whole")
    for tag, k in thin.items():
        if kinds[tag] == "scalar":
            continue
        keep = _evenly(totals[tag][0], k)
        starts, at = [], 0
        for scan in scans:  # global ordinal -> (file, ordinal in the file)
            starts.append(at)
            at += scan.tags[tag].count if tag in scan.tags else 0
        keys[tag] = set()
        for g in keep:
            f = max(i for i, s in enumerate(starts) if s <= g and (tag in scans[i].tags))
            keys[tag].add((f, g - starts[f]))
    dropped = {tag for tag, kind in kinds.items() if drop_graphs and kind == "graph"}
    kept = {tag: (totals[tag][0], len(keys[tag])) for tag in keys}
    kept.update({tag: (totals[tag][0], 0) for tag in dropped})
    edits = []
    for k, scan in enumerate(scans):
        (stats,) = scan.files
        actions = {}
        for tag in scan.tags:
            if tag in dropped:
                actions[tag] = TagAction(None)
            elif tag in keys:
                actions[tag] = TagAction(
                    tag, scan.tags[tag].metadata, keep=frozenset(o for f, o in keys[tag] if f == k)
                )
            else:
                actions[tag] = TagAction(tag)
        drop = GRAPH_EVENTS if drop_graphs else frozenset()
        touched = any(a.new is None or a.keep is not None for a in actions.values())
        touched = touched or any(scan.event_kinds[w] for w in drop)
        edits.append(
            FileEdit(SourceFile.from_stats(stats), actions, touched, stats.records, bool(stats.damage) and resync, drop)
        )
    return CompactRun(
        RunEdit(run, run_dir, tuple(edits)),
        kept,
        sum(s.files[0].bytes for s in scans),
        sum(s.events for s in scans),
        [d for s in scans for d in s.damage],
        notes,
    )


def compact(
    logdir: str | os.PathLike[str],
    *,
    scalars: int = 2000,
    images: int = 10,
    histograms: int = 500,
    drop_graphs: bool = False,
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    dry_run: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    resync: bool = False,
    jobs: int = 1,
    on_progress: Callable[[str], None] | None = None,
) -> CompactReport:
    """Thin every run under ``logdir`` (see the module doc).

    Args:
        logdir: str or PathLike. A tree of runs.
        scalars: int >= 5. At most this many points per scalar tag and run.
        images: int >= 1. At most this many values per image or audio tag and run.
        histograms: int >= 1. At most this many values per histogram tag and run.
        drop_graphs: bool. Leave out graphs, run metadata and the Keras model config.
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
        CompactReport.

    Raises:
        UsageError: a limit out of range, or an invalid combination of ``out``,
            ``in_place`` and ``dry_run``.
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
    if scalars < 5:
        raise UsageError(f"--scalars must be at least 5 (a bucket keeps up to 5 points); got {scalars}")
    for name, value in (("--images", images), ("--histograms", histograms)):
        if value < 1:
            raise UsageError(f"{name} must be at least 1; got {value}")
    report = CompactReport()
    if in_place and not dry_run:
        report.recovered = recover(root)
    else:
        check_no_pending_swap(root, "compact")
    if out_path is not None:
        check_output_folder(root, out_path, force=force, src_label="LOGDIR", out_label="--out")
    chosen = local_path(backup_dir, "--backup-dir") if backup_dir is not None else None
    backup = backup_folder(root, chosen) if in_place else None
    folders = list(run_folders(root))
    if not folders:
        raise InputError(f"{root}: no event files found (names containing 'tfevents')")
    report.runs = [
        plan_run(
            f.rel, f.path, scalars=scalars, images=images, histograms=histograms, drop_graphs=drop_graphs, resync=resync
        )
        for f in folders
    ]
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
            root, backup, edits, jobs=jobs, resync=resync, command="compact", progress=progress
        )
    for run, files in zip(report.runs, results, strict=True):
        run.files = files
        if not files:  # in place and untouched
            run.bytes_out = run.bytes_in
            continue
        folder = out_path / run.edit.run if out_path is not None else run.edit.run_dir  # in place: swapped in
        run.bytes_out = sum(
            ((folder / f.name).stat().st_size if f.output is not None else e.source.size)
            for f, e in zip(files, run.edit.files, strict=True)
        )
    return report

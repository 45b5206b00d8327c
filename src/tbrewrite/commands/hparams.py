"""``hparams``: attach hyperparameters to runs after the fact, for TensorBoard's HParams dashboard.

Old runs logged without hparams (or each with its own, pytorch#37738 and
stable-baselines3#1099) become comparable: each run named by ``--from``
(:mod:`tbrewrite.commands.hparamsread`) becomes a *session* holding its hparams, and the
tree gets one *experiment* naming every session's hparams and the metrics
(:mod:`tbrewrite.commands.hparamsplan` says what the plugin reads and why).

What is written: one small event file per session folder,
``events.out.tfevents.<start>.tbrewrite-hparams`` (``<start>``: the folder's first wall
time, so the name depends only on the log and a re-run replaces it), holding its
``file_version`` and the ``_hparams_/session_start_info`` summary at step 0; LOGDIR's own
file of that name holds the ``_hparams_/experiment`` (as TensorFlow's ``hparams_config``
writes it at the logdir's root). A session folder need not hold event files itself: a
Keras ``log_dir`` is a session whose metrics are in its ``train/`` and ``validation/``
runs (metric groups ``train``, ``validation``), as ``hp.KerasCallback`` lays it out.

A run that has hparams already keeps them: the given ones are merged in, and a differing
value is refused unless ``replace``. Since TensorBoard reads a tag's first summary only,
the summaries being superseded are removed from the files holding them (the session's
``_hparams_/session_start_info``, and every other ``_hparams_/experiment`` of the tree:
only one may exist), every other record kept byte for byte. Those files and the new ones
go to a mirrored tree (``out``) or replace the originals in place through the journaled
swap of :mod:`tbrewrite.commands.perfile` (originals to a backup folder; each run wholly
old or wholly new). Running the same command again changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

from tbrewrite.commands import hparamsplan as hp
from tbrewrite.commands.hparamsread import HParamSet, Value, read_sets, typed_values
from tbrewrite.commands.perfile import (
    AddedFile,
    FileEdit,
    FileResult,
    RunEdit,
    backup_folder,
    check_no_pending_swap,
    write_in_place,
    write_tree,
)
from tbrewrite.engine.plan import SourceFile, TagAction
from tbrewrite.engine.scan import FileStats, TagStats, scan_files
from tbrewrite.errors import HParamsError, InputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.events.writer import output_file_name
from tbrewrite.logdir import Folder, check_dir, walk
from tbrewrite.output.swap import recover
from tbrewrite.output.transaction import check_output_folder
from tbrewrite.storage import local_path

SUFFIX = "tbrewrite-hparams"
"""The end of the name of the event files ``hparams`` writes."""


@dataclass
class SessionChange:
    """One session given hparams.

    Attributes:
        run: str. Its folder relative to LOGDIR (``"."``: LOGDIR).
        origin: str. Where its hparams were read (``runs.csv:3``, a file path).
        hparams: dict name -> Value. Every hparam the session holds afterwards.
        added: tuple of str. Names it did not have.
        replaced: tuple of ``(name, old, new)``: values ``replace`` overwrote.
        changed: bool. False: it had exactly these hparams already (nothing written).
        path: Path or None. The file holding its summary (written, or planned on a dry run).
    """

    run: str
    origin: str
    hparams: dict[str, Value]
    added: tuple[str, ...]
    replaced: tuple[tuple[str, Value, Value], ...]
    changed: bool
    path: Path | None = None


@dataclass
class HParamsReport:
    """What ``hparams`` did.

    Attributes:
        sessions: list of SessionChange, in ``--from`` order.
        experiment: Experiment. The one experiment of the tree afterwards.
        experiment_changed: bool. False: the tree held exactly this experiment already.
        metrics: list of ``(group, tag)``: the experiment's metrics.
        stripped: list of ``(run, file name, tags)``: files whose superseded hparams
            summaries are left out.
        retired: list of ``(run, file name)``: earlier ``tbrewrite-hparams`` files replaced.
        files: dict run -> list of FileResult (empty on a dry run).
        backup_dir: Path or None. In place: where the originals went.
        recovered: list of str. Interrupted in-place swaps finished first.
        warnings: list of str. Files of the tree not copied to ``out``.
        damage: list of Damage the scan and the writing found.
    """

    sessions: list[SessionChange] = field(default_factory=list)
    experiment: api_pb2.Experiment = field(default_factory=api_pb2.Experiment)
    experiment_changed: bool = False
    metrics: list[tuple[str, str]] = field(default_factory=list)
    stripped: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    retired: list[tuple[str, str]] = field(default_factory=list)
    files: dict[str, list[FileResult]] = field(default_factory=dict)
    backup_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)

    @property
    def notes(self) -> list[str]:
        """Notes from writing, e.g. a file that grew while it was rewritten."""
        return [n for files in self.files.values() for f in files for n in f.notes]


@dataclass
class _File:
    stats: FileStats
    tags: dict[str, TagStats]
    ours: bool


@dataclass
class _Folder:
    folder: Folder
    files: list[_File]
    start: plugin_data_pb2.SessionStartInfo | None = None
    start_in_ours: bool = False
    first_wall_time: float | None = None


def _scan(folder: Folder, resync: bool, report: HParamsReport) -> _Folder:
    files = []
    for path in folder.event_files:
        scan = scan_files([path], resync=resync, backwards_limit=0)
        (stats,) = scan.files
        report.damage += stats.damage
        files.append(_File(stats, scan.tags, path.name.endswith("." + SUFFIX)))
    result = _Folder(folder, files)
    for f in files:  # TensorBoard reads files in name order; a tag's first metadata counts
        ts = f.tags.get(hp.START_TAG)
        if ts is not None and ts.metadata is not None:
            result.start = hp.parse_start(ts.metadata, str(f.stats.path))
            result.start_in_ours = f.ours
            break
    times = [f.stats.first_wall_time for f in files if not f.ours and f.stats.first_wall_time is not None]
    result.first_wall_time = min((t for t in times if 0 <= t < 1e10), default=None)
    return result


def _start_time(rel: str, folders: Mapping[str, _Folder]) -> float:
    """A folder's first wall time, or the earliest of the runs below it (0.0 if none is valid)."""
    own = folders[rel].first_wall_time if rel in folders else None
    if own is not None:
        return own
    below = [
        f.first_wall_time
        for r, f in folders.items()
        if f.first_wall_time is not None and (rel == "." or r.startswith(rel + "/"))
    ]
    return min(below, default=0.0)


def _given_sets(
    source: str | os.PathLike[str] | Mapping[str, Mapping[str, Any]], root: Path, folders: list[Folder]
) -> list[HParamSet]:
    if isinstance(source, Mapping):
        return [
            HParamSet(run, typed_values(values, f"hparams[{run!r}]"), f"hparams[{run!r}]")
            for run, values in source.items()
        ]
    return read_sets(os.fspath(source), root, folders)


def attach_hparams(
    logdir: str | os.PathLike[str],
    source: str | os.PathLike[str] | Mapping[str, Mapping[str, Any]],
    *,
    metrics: tuple[str, ...] | list[str] = (),
    replace: bool = False,
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    dry_run: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    resync: bool = False,
    jobs: int = 1,
    on_progress: Callable[[str], None] | None = None,
) -> HParamsReport:
    """Attach hyperparameters to runs under ``logdir`` as HParams sessions and one experiment.

    Args:
        logdir: str or PathLike. A tree of runs.
        source: what ``--from`` says (:func:`tbrewrite.commands.hparamsread.read_sets`: a
            CSV, a file name found in run folders, a ``{run}`` pattern, or one YAML/JSON
            for LOGDIR), or a mapping run -> {name: value} (nested mappings flattened).
        metrics: scalar tags that are the experiment's metrics; empty: every scalar tag
            of every run at or below a session.
        replace: bool. Given values replace differing ones a run has (else refused).
        out: folder for a mirrored output tree (new or empty unless ``force``).
        in_place: bool. Change LOGDIR itself; replaced files go to ``backup_dir``.
        dry_run: bool. Plan and report; write nothing.
        backup_dir: with ``in_place``: where the originals go (default: a new sibling
            ``<logdir>.tbrewrite-backup-<n>``).
        force: bool. Write into a non-empty ``out``.
        resync: bool. After damage, continue from the next valid record.
        jobs: int. Processes writing runs.
        on_progress: optional callback ``(run)`` as each run is written.

    Returns:
        HParamsReport.

    Raises:
        UsageError: an invalid combination of ``out``, ``in_place`` and ``dry_run``.
        InputError: ``logdir`` is missing or holds no runs, a ``--from`` file is missing,
            or an in-place edit was interrupted there (without ``in_place``).
        HParamsError: a ``--from`` file is malformed, names a run that is no folder of
            LOGDIR holding event files (or one run twice), gives a value differing from
            the run's (without ``replace``) or of another type than another run's, or a
            ``metrics`` tag is no scalar of a session.
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
    report = HParamsReport()
    if in_place and not dry_run:
        report.recovered = recover(root)
    else:
        check_no_pending_swap(root, "hparams")
    if out_path is not None:
        check_output_folder(root, out_path, force=force, src_label="LOGDIR", out_label="--out")
    chosen = local_path(backup_dir, "--backup-dir") if backup_dir is not None else None
    backup = backup_folder(root, chosen) if in_place else None
    walked = list(walk(root))
    if not any(f.is_run for f in walked):
        raise InputError(f"{root}: no event files found (names containing 'tfevents')")
    given = _check_runs(_given_sets(source, root, walked), {f.rel for f in walked if f.is_run})
    folders = {f.rel: _scan(f, resync, report) for f in walked if f.is_run}
    edits = _plan(root, folders, given, tuple(metrics), replace, report, out_path or root, resync)
    if dry_run:
        return report
    progress = on_progress or (lambda run: None)
    if out_path is not None:
        results, report.warnings = write_tree(
            root, out_path, edits, jobs=jobs, resync=resync, force=force, progress=progress
        )
    else:
        assert backup is not None
        results, report.backup_dir = write_in_place(
            root, backup, edits, jobs=jobs, resync=resync, command="hparams", progress=progress
        )
    for edit, files in zip(edits, results, strict=True):
        report.files[edit.run] = files
        report.damage += [d for f in files for d in f.damage]
    return report


def _check_runs(sets: list[HParamSet], runs: set[str]) -> dict[str, HParamSet]:
    """Index the sets by run; refuse a run given twice or naming no folder holding event files."""
    given: dict[str, HParamSet] = {}
    for s in sets:
        if s.run in given:
            raise HParamsError(f"{s.origin}: run {s.run!r} is given hparams twice (also by {given[s.run].origin})")
        if s.run != "." and not any(r == s.run or r.startswith(s.run + "/") for r in runs):
            raise HParamsError(f"{s.origin}: run {s.run!r} is not a folder of LOGDIR holding event files")
        given[s.run] = s
    if not given:
        raise HParamsError("--from gives no run any hparams")
    return given


def _plan(
    root: Path,
    folders: dict[str, _Folder],
    given: dict[str, HParamSet],
    chosen: tuple[str, ...],
    replace: bool,
    report: HParamsReport,
    target: Path,
    resync: bool,
) -> list[RunEdit]:
    """Decide the sessions, the experiment, and each folder's edit; fill ``report``."""
    sessions = {rel: f.start for rel, f in folders.items() if f.start is not None}
    merges = {}
    for run, s in given.items():
        existing = folders[run].start if run in folders else None
        merges[run] = hp.merge(existing, s, replace=replace, start_time=_start_time(run, folders))
        sessions[run] = merges[run].start
    hp.check_types(sessions, given)
    scalars = {
        rel: {t for f in fo.files for t, ts in f.tags.items() if ts.kind == "scalar"} for rel, fo in folders.items()
    }
    report.metrics = hp.metric_names(scalars, sessions, chosen)
    below = [r for r in scalars if r != "." and scalars[r] and hp.longest_session(set(sessions), r) == "."]
    if below:  # metrics.py joins "." and the group: "./a", no run's name
        report.warnings.append(
            f"{root}: LOGDIR itself is the session of {len(below)} run(s) below it, whose metrics TensorBoard "
            "does not find (it looks for ./<run>); attach the hparams to those runs, or run hparams on LOGDIR's parent"
        )
    existing = [
        (rel, f, hp.parse_experiment(f.tags[hp.EXPERIMENT_TAG].metadata, str(f.stats.path)))
        for rel, fo in folders.items()
        for f in fo.files
        if hp.EXPERIMENT_TAG in f.tags and f.tags[hp.EXPERIMENT_TAG].metadata is not None
    ]
    created = min(_start_time(run, folders) for run in sessions)
    report.experiment = hp.experiment(
        sessions, report.metrics, previous=existing[0][2] if existing else None, time_created=created
    )
    report.experiment_changed = not (
        len(existing) == 1 and existing[0][0] == "." and existing[0][1].ours and existing[0][2] == report.experiment
    )
    writes = {run for run, m in merges.items() if m.changed}
    if report.experiment_changed:
        writes.add(".")
        writes.update(rel for rel, fo, _ in existing if fo.ours)
    edits = []
    for rel in sorted(set(folders) | writes, key=lambda r: (r != ".", r)):
        fo = folders.get(rel)
        files = fo.files if fo is not None else []
        drop = {hp.EXPERIMENT_TAG} if report.experiment_changed else set()
        if rel in writes and rel in given:
            drop.add(hp.START_TAG)
        file_edits = []
        for f in files:
            if f.ours:
                continue
            dropped = tuple(sorted(t for t in f.tags if t in drop))
            if dropped:
                report.stripped.append((rel, f.stats.path.name, dropped))
            actions = {t: TagAction(None if t in drop else t) for t in f.tags}
            resynced = bool(f.stats.damage) and resync
            file_edits.append(
                FileEdit(SourceFile.from_stats(f.stats), actions, bool(dropped), f.stats.records, resynced)
            )
        retired: tuple[str, ...] = ()
        added: tuple[AddedFile, ...] = ()
        if rel in writes:
            retired = tuple(f.stats.path.name for f in files if f.ours)
            report.retired += [(rel, name) for name in retired]
            wall = _start_time(rel, folders)
            events = []
            if rel == ".":
                events.append(hp.experiment_event(report.experiment, wall).SerializeToString())
            if rel in given or (fo is not None and fo.start_in_ours):
                events.append(hp.start_event(sessions[rel], wall).SerializeToString())
            if events:
                added = (AddedFile(output_file_name(wall, SUFFIX), wall, tuple(events)),)
        if any(e.touched for e in file_edits) or retired or added:
            edits.append(RunEdit(rel, root / rel, tuple(file_edits), added, retired))
    added_names = {e.run: e.added[0].name for e in edits if e.added}
    for run, s in given.items():
        m = merges[run]
        if run in added_names:
            path: Path | None = target / run / added_names[run]
        else:  # unchanged: its summary stays where it is
            path = next((f.stats.path for f in folders[run].files if f.ours), None) if run in folders else None
        report.sessions.append(
            SessionChange(run, s.origin, hp.values_of(m.start), m.added, m.replaced, m.changed, path)
        )
    return edits

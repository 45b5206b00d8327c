"""Editing each event file of a tree on its own: to a mirrored tree or in place.

The shared write side of the per-file editing commands (``crop``; ``rename`` predates it
and keeps its own copy): every event file of a run becomes one output file of the same
name (so TensorBoard orders them the same), written by the one engine
(:func:`tbrewrite.engine.rewrite.rewrite`) from a plan with :attr:`Header.KEEP`. Records
the plan does not change are written back byte-identical.

Output goes to a mirrored tree (every other file copied unchanged, a symlink as a
symlink) or replaces the runs in place through :mod:`tbrewrite.output.swap` (originals to
a backup folder outside the logdir; each run ends wholly old or wholly new, even after
SIGKILL).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.errors import InputError, OutputError
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import is_event_file, walk
from tbrewrite.output.files import copy_prefix, mirror_file, naming_output, special_file
from tbrewrite.output.swap import (
    JOURNAL_NAME,
    LEFTOVER_PREFIXES,
    Swap,
    commit,
    discard_staged,
    pending_journals,
    staged_name,
)
from tbrewrite.output.transaction import Transaction
from tbrewrite.parallel import map_ordered


@dataclass(frozen=True)
class FileEdit:
    """One event file and what happens to its tags.

    Attributes:
        source: SourceFile. The file as its scan read it.
        actions: mapping source tag -> TagAction.
        touched: bool. Some action may change a value (False: the file is copied, or
            left alone in place).
        records: int. Valid records the scan read (file_version included).
        resynced: bool. Damage was read past: the valid records are not one prefix.
        drop_events: frozenset of ``Event.what`` names whose events are left out
            (:attr:`tbrewrite.engine.plan.OutputPlan.drop_events`).
    """

    source: SourceFile
    actions: Mapping[str, TagAction]
    touched: bool
    records: int
    resynced: bool = False
    drop_events: frozenset[str] = frozenset()


@dataclass(frozen=True)
class AddedFile:
    """A new event file a command adds to a run, written whole (``hparams``' summaries).

    Attributes:
        name: str. Its file name in the run folder (holding ``tfevents``).
        wall_time: float. Its ``file_version`` event's wall_time.
        events: tuple of bytes. The serialized Events after the ``file_version``.
    """

    name: str
    wall_time: float
    events: tuple[bytes, ...]


@dataclass(frozen=True)
class RunEdit:
    """The planned edit of one run (a folder holding event files).

    Attributes:
        run: str. The run's path relative to LOGDIR (``"."`` for LOGDIR itself).
        run_dir: Path.
        files: tuple of FileEdit, in TensorBoard's order.
        added: tuple of AddedFile: new files of the run (in place: published by the
            run's swap; a file of the same name must be in ``retired``).
        retired: tuple of str. Names of event files of the run left out of the output
            (in place: moved to the backup folder), not in ``files``.
    """

    run: str
    run_dir: Path
    files: tuple[FileEdit, ...]
    added: tuple[AddedFile, ...] = ()
    retired: tuple[str, ...] = ()

    @property
    def touched(self) -> bool:
        """True if some file of the run may change."""
        return bool(self.added or self.retired) or any(f.touched or f.resynced for f in self.files)


@dataclass
class FileResult:
    """What rewriting one event file did.

    Attributes:
        name: str. The file name (input and output).
        events_in: int. Valid records read (file_version included).
        events_out: int. Records written (file_version included).
        values_dropped: int. Summary values left out (dropped, cropped or thinned) and
            non-summary events left out.
        changed: bool. Some record differs from the input's (damage aside).
        output: Path or None. The file written; None if nothing was (in place and
            unchanged, or no valid record).
        damage: list of Damage found while writing beyond the scan's.
        notes: list of str.
    """

    name: str
    events_in: int = 0
    events_out: int = 0
    values_dropped: int = 0
    changed: bool = False
    output: Path | None = None
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Task:
    run: RunEdit
    targets: tuple[Path, ...]
    keep_unchanged: bool
    resync: bool
    root: Path
    added_targets: tuple[Path, ...] = ()


def _write_run(task: _Task) -> list[FileResult]:
    """Write every file of one run to its target; on failure remove what was written."""
    results: list[FileResult] = []
    with Transaction(task.root) as outputs:
        for edit, dst in zip(task.run.files, task.targets, strict=True):
            src = edit.source.path
            if not edit.touched and not edit.resynced:
                result = FileResult(src.name, edit.records, edit.records)
                if not task.keep_unchanged or not edit.records:
                    results.append(result)
                    continue
                if copy_prefix(src, dst, edit.source.end, edit.source.stamp):
                    outputs.add_file(dst)
                    result.output = dst
                    results.append(result)
                    continue
            source = SourcePlan(src.name, (edit.source,), edit.actions)
            plan = OutputPlan(dst, (source,), Header.KEEP, resync=task.resync, drop_events=edit.drop_events)
            with _naming_output(src, dst):
                written = rewrite(plan, outputs)
            result = FileResult(
                src.name,
                written.events_in,
                written.events_out,
                written.values_dropped
                + written.values_cropped
                + written.values_superseded
                + written.values_thinned
                + written.events_dropped,
                written.changed,
                None,
                written.damage,
                written.notes,
            )
            if written.writer is not None:
                if written.changed or task.keep_unchanged:
                    with _naming_output(src, dst):
                        result.output = outputs.publish(outputs.stage(written.writer))
                else:
                    written.writer.abort()
            results.append(result)
        for added, dst in zip(task.run.added, task.added_targets, strict=True):
            with _naming_output(dst, dst):
                writer = outputs.open(dst, wall_time=added.wall_time)
                for record in added.events:
                    writer.write_record(record)
                output = outputs.publish(outputs.stage(writer))
            results.append(FileResult(added.name, 0, len(added.events) + 1, 0, True, output))
    return results


@contextlib.contextmanager
def _naming_output(src: Path, dst: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise naming_output(e, src, dst) from None


def check_no_pending_swap(logdir: Path, command: str) -> None:
    """Refuse to read a tree where an in-place swap was interrupted.

    Raises:
        InputError: naming the journal and the ``--recover`` command.
    """
    pending = pending_journals(logdir)
    if pending:
        raise InputError(
            f"{pending[0] / JOURNAL_NAME}: an in-place edit was interrupted here; "
            f"run 'tbrewrite {command} {logdir} --recover' first"
        )


def backup_folder(logdir: Path, chosen: Path | None) -> Path:
    """Return the absolute backup folder: ``chosen``, or a new sibling of ``logdir``.

    Raises:
        OutputError: ``chosen`` is inside ``logdir``, contains it, or is not a folder.
    """
    rl = logdir.resolve()
    if chosen is None:
        n = 1
        while (rl.parent / f"{rl.name}.tbrewrite-backup-{n}").exists():
            n += 1
        return rl.parent / f"{rl.name}.tbrewrite-backup-{n}"
    rb = chosen.resolve()
    if rb == rl or rl in rb.parents:
        raise OutputError(f"{chosen}: --backup-dir is inside LOGDIR; TensorBoard would load the originals too")
    if rb in rl.parents:
        raise OutputError(f"{chosen}: --backup-dir contains LOGDIR; choose a folder beside it")
    if rb.exists() and not rb.is_dir():
        raise OutputError(f"{chosen}: --backup-dir exists and is not a folder")
    return rb


def write_tree(
    logdir: Path,
    out: Path,
    runs: list[RunEdit],
    *,
    jobs: int,
    resync: bool,
    force: bool = False,
    progress: Callable[[str], None] = lambda run: None,
) -> tuple[list[list[FileResult]], list[str]]:
    """Write the mirrored tree ``out``: the runs' event files edited, every other file copied.

    Args:
        logdir: Path. The input tree.
        out: Path. The output root (checked by the caller).
        runs: RunEdit per run to write.
        jobs: int. Processes.
        resync: bool. Read past damage.
        force: bool. Delete event files already in ``out`` that this call does not write.
        progress: called with each run's name as it is written.

    Returns:
        ``(results, warnings)``: FileResults per run (in ``runs`` order: its files', then
        its added files'), and one line per file of the tree not copied (a named pipe,
        socket or device). A run's retired files are not copied.

    Raises:
        OSError: reading or writing failed; nothing is left behind.
    """
    rewritten = {f.source.path for r in runs for f in r.files}
    rewritten.update(r.run_dir / name for r in runs for name in r.retired)
    warnings: list[str] = []
    with Transaction(out) as outputs:
        tasks = []
        for run in runs:
            target_dir = outputs.makedirs(out / run.run)
            targets = tuple(target_dir / f.source.path.name for f in run.files)
            added = tuple(target_dir / a.name for a in run.added)
            for target in (*targets, *added):
                outputs.add_file(target)
            tasks.append(_Task(run, targets, True, resync, out, added))
        written = {t for task in tasks for t in (*task.targets, *task.added_targets)}
        for folder in walk(logdir):
            for src in sorted((*folder.event_files, *folder.placeholders, *folder.other_files)):
                if src in rewritten or src.name.startswith(LEFTOVER_PREFIXES):
                    continue
                skipped = special_file(src)
                if skipped is not None:
                    warnings.append(f"{src}: skipped: {skipped}")
                    continue
                dst = out / folder.rel / src.name
                if dst in written:  # an added file of the same name replaces it
                    continue
                outputs.makedirs(dst.parent)
                outputs.add_file(dst)
                mirror_file(src, dst)
                written.add(dst)
        results = map_ordered(_write_run, tasks, jobs, lambda i, _: progress(runs[i].run))
        if force:
            for dirpath, _, filenames in os.walk(out):
                for name in filenames:
                    path = Path(dirpath) / name
                    if is_event_file(name) and path not in written:
                        path.unlink()
    return results, warnings


def write_in_place(
    logdir: Path,
    backup: Path,
    runs: list[RunEdit],
    *,
    jobs: int,
    resync: bool,
    command: str,
    progress: Callable[[str], None] = lambda run: None,
) -> tuple[list[list[FileResult]], Path | None]:
    """Stage every touched run's new files, back up every original, then swap run by run.

    A run's added files are published and its retired files backed up by the same swap.

    Returns:
        ``(results, backup)``: FileResults per run (empty for runs left alone), and the
        backup folder, or None if no file changed.

    Raises:
        OutputError: a backup already exists or could not be written (every run is
            unchanged), or a swap failed after the backups (``--recover`` finishes it).
    """
    touched = [r for r in runs if r.touched]
    for run in runs:
        if not run.touched:
            progress(run.run)
    tasks = [
        _Task(
            r,
            tuple(r.run_dir / staged_name(f.source.path.name) for f in r.files),
            False,
            resync,
            logdir,
            tuple(r.run_dir / staged_name(a.name) for a in r.added),
        )
        for r in touched
    ]
    by_run: dict[str, list[FileResult]] = {}
    swaps = []
    try:
        results = map_ordered(_write_run, tasks, jobs, lambda i, _: progress(touched[i].run))
        for run, files in zip(touched, results, strict=True):
            by_run[run.run] = files
            replaced = tuple(f.name for f in files[: len(run.files)] if f.output is not None)
            added = tuple(a.name for a in run.added)
            retired = (*replaced, *(n for n in run.retired if n not in replaced))
            if retired or added:
                new = tuple((staged_name(n), n) for n in (*replaced, *added))
                swaps.append(Swap(run.run_dir, backup / run.run, retired, new))
    except BaseException:
        for run in touched:
            discard_staged(run.run_dir, [*(f.source.path.name for f in run.files), *(a.name for a in run.added)])
        raise
    existed = backup.exists()
    try:
        commit(swaps)
    except OSError as e:
        raise OutputError(
            f"{e.filename or logdir}: swap failed part-way ({e.strerror or e}); "
            f"run 'tbrewrite {command} {logdir} --recover' to finish it"
        ) from None
    if swaps and not any(s.names for s in swaps):  # only files added: no original went to the backup
        if not existed:
            _remove_empty_folders(backup)
        return [by_run.get(r.run, []) for r in runs], None
    return [by_run.get(r.run, []) for r in runs], backup if swaps else None


def _remove_empty_folders(folder: Path) -> None:
    """Remove ``folder`` and the folders below it, deepest first, as far as they are empty."""
    for dirpath, _, _ in sorted(os.walk(folder), key=lambda d: -len(Path(d[0]).parts)):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)

"""``rename``: ordered rename/drop rules over every run of a tree, previewed and safe.

Each run (a folder holding event files, as TensorBoard defines it) is handled on its
own, in parallel across processes (:mod:`tbrewrite.parallel`), in two streaming passes:

1. **Plan** (:mod:`tbrewrite.commands.renameplan`): every tag's new name or drop, and refusals
   of tags that would merge with overlapping steps. All runs are planned before a byte
   is written.
2. **Write** (:func:`tbrewrite.engine.rewrite.rewrite`): one output event file per input event file,
   with the same name, so TensorBoard orders them the same; untouched records are
   written back byte-identical.

Output goes to a mirrored tree (``out``; every other file is copied unchanged) or
replaces the runs in place through :mod:`tbrewrite.output.swap` (originals to a backup folder
outside the logdir; each run ends wholly old or wholly new, even after SIGKILL). The
result depends only on the input and the rules, never on the number of processes, and
renaming a renamed tree with the same rules changes nothing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.commands.renameplan import FilePlan, RunPlan, plan_run
from tbrewrite.engine.plan import Header, OutputPlan, SourcePlan
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.errors import InputError, OutputError, TagCollisionError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import check_dir, event_bytes, is_event_file, walk
from tbrewrite.logdir import runs as run_folders
from tbrewrite.output.files import copy_prefix, mirror_file, naming_output, special_file
from tbrewrite.output.swap import (
    JOURNAL_NAME,
    LEFTOVER_PREFIXES,
    Swap,
    commit,
    discard_staged,
    pending_journals,
    recover,
    staged_name,
)
from tbrewrite.output.transaction import Transaction, check_output_folder
from tbrewrite.parallel import map_ordered, worker_count
from tbrewrite.rules import RuleSet
from tbrewrite.storage import local_path


@dataclass
class RunResult:
    """What ``rename`` did to one run.

    Attributes:
        plan: RunPlan.
        files: list of FileResult (empty on a dry run or for a run left untouched).
        replaced: list of str. In place: the file names swapped for new versions.
    """

    plan: RunPlan
    files: list[FileResult] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)

    @property
    def events_out(self) -> int:
        """Records written (or that would be, for files left in place), file_version included."""
        return sum(f.events_out for f in self.files)


@dataclass
class RenameReport:
    """What ``rename`` did.

    Attributes:
        runs: list of RunResult, in LOGDIR order.
        backup_dir: Path or None. In place: where the originals went.
        recovered: list of str. Interrupted in-place swaps finished at the start.
        warnings: list of str. Files of the tree not copied to ``out``, one line each
            (``<path>: skipped: a named pipe``).
    """

    runs: list[RunResult] = field(default_factory=list)
    backup_dir: Path | None = None
    recovered: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of input, run by run.

        First the scan's, then any the write found (a file that changed after it was
        planned).
        """
        return [d for r in self.runs for d in (*r.plan.damage, *(d for f in r.files for d in f.damage))]

    @property
    def notes(self) -> list[str]:
        """Notes from writing, e.g. a file that grew while it was rewritten."""
        return [n for r in self.runs for f in r.files for n in f.notes]


def _plan_task(task: tuple[str, Path, RuleSet, bool]) -> RunPlan:
    run, run_dir, rules, resync = task
    return plan_run(run, run_dir, rules, resync=resync)


@dataclass
class FileResult:
    """What rewriting one event file did.

    Attributes:
        name: str. The file name (input and output).
        events_in: int. Valid records read (file_version included).
        events_out: int. Records written (file_version included).
        values_renamed: int. Summary values whose tag changed.
        values_dropped: int. Summary values removed.
        changed: bool. Some record differs from the input's (damage aside).
        output: Path or None. The file written; None if nothing was (no valid record,
            or in place and unchanged).
        damage: list of Damage found while writing beyond the scan's (a file changed
            after it was planned).
        notes: list of str.
    """

    name: str
    events_in: int = 0
    events_out: int = 0
    values_renamed: int = 0
    values_dropped: int = 0
    changed: bool = False
    output: Path | None = None
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _output_plan(plan: RunPlan, fp: FilePlan, dst: Path, resync: bool) -> OutputPlan:
    """Return the engine's plan for one event file.

    Its tags are renamed or dropped, the first value of each renamed tag gets the tag's
    metadata, hparams experiments name the renamed metrics (:meth:`RunPlan.action`),
    everything else is untouched.
    """
    actions = {tag: plan.action(tag) for tag in fp.tags}
    return OutputPlan(dst, (SourcePlan(fp.path.name, (fp.source,), actions),), Header.KEEP, resync=resync)


@dataclass(frozen=True)
class WriteTask:
    """One run's files to write, as sent to a worker process.

    Attributes:
        plan: RunPlan.
        targets: list of Path, one per ``plan.files``: where each is written.
        keep_unchanged: bool. Write files the rules do not touch too (``--out``); in
            place they are left alone.
        resync: bool. Read past damage.
        root: Path. The output root (``--out``, or LOGDIR in place): nothing is written
            outside its real path.
    """

    plan: RunPlan
    targets: list[Path]
    keep_unchanged: bool
    resync: bool
    root: Path


def write_run_files(task: WriteTask) -> list[FileResult]:
    """Write every file of one run to its target; on failure remove what was written.

    A file holding none of the tags the rules change is copied byte for byte (its valid
    records) when ``keep_unchanged`` -- unless it changed since it was planned, when the
    engine reads and checks it -- and left alone otherwise (in place).
    """
    plan, targets, keep_unchanged, resync = task.plan, task.targets, task.keep_unchanged, task.resync
    changes = plan.changes.keys() | plan.edited
    results: list[FileResult] = []
    with Transaction(task.root) as outputs:
        for fp, dst in zip(plan.files, targets, strict=False):
            if fp.tags.isdisjoint(changes) and not fp.resynced:
                result = FileResult(fp.path.name, fp.records, fp.records)
                if not keep_unchanged or not fp.records:
                    results.append(result)
                    continue
                if copy_prefix(fp.path, dst, fp.end, fp.source.stamp):
                    outputs.add_file(dst)
                    result.output = dst
                    results.append(result)
                    continue
            with _naming_output(fp.path, dst):
                written = rewrite(_output_plan(plan, fp, dst, resync), outputs)
            result = FileResult(
                fp.path.name,
                written.events_in,
                written.events_out,
                written.values_renamed,
                written.values_dropped,
                written.changed,
                None,
                written.damage,
                written.notes,
            )
            if written.writer is not None:
                if written.changed or keep_unchanged:
                    with _naming_output(fp.path, dst):
                        result.output = outputs.publish(outputs.stage(written.writer))
                else:
                    written.writer.abort()
            results.append(result)
    return results


@contextlib.contextmanager
def _naming_output(src: Path, dst: Path) -> Iterator[None]:
    """Name ``dst`` in write errors (``src`` in read errors that name it)."""
    try:
        yield
    except OSError as e:
        raise naming_output(e, src, dst) from None


def discover(logdir: Path, globs: Sequence[str] = ()) -> list[tuple[str, Path]]:
    """Return ``(run name, folder)`` of every run under ``logdir`` matching ``globs``.

    A run is a folder holding event files; its name is its path relative to
    ``logdir`` with ``/`` separators (``"."`` for ``logdir``). A run is selected if
    ``globs`` is empty or any glob matches its name (:func:`fnmatch.fnmatchcase`;
    ``*`` also matches ``/``).
    """
    return [
        (folder.rel, folder.path)
        for folder in run_folders(logdir)
        if not globs or any(fnmatch.fnmatchcase(folder.rel, g) for g in globs)
    ]


def rename(
    logdir: str | os.PathLike[str],
    rules: RuleSet,
    *,
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    dry_run: bool = False,
    runs: Sequence[str] = (),
    jobs: int = 1,
    auto_jobs: bool = False,
    allow_merge: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    resync: bool = False,
    on_progress: Callable[[str, str], None] | None = None,
) -> RenameReport:
    """Rename and drop tags in every run under ``logdir``.

    Args:
        logdir: str or PathLike. A tree of runs.
        rules: RuleSet. Ordered rename/drop rules.
        out: folder for a mirrored output tree (new or empty unless ``force``; neither
            ``logdir`` nor inside it). Every file that is not a rewritten event file is
            copied unchanged, a symlink as a symlink
            (:func:`tbrewrite.output.files.mirror_file`); a named pipe, socket or device is
            skipped with a line in ``warnings``.
        in_place: bool. Replace the runs' event files instead; originals go to
            ``backup_dir``. Exactly one of ``out`` and ``in_place`` (either or none
            with ``dry_run``).
        dry_run: bool. Plan and report; write nothing.
        runs: globs selecting runs by name (default all). With ``out``, unselected
            runs are copied unchanged.
        jobs: int. Processes. The default, 1, runs everything in this process; more
            start worker processes with ``spawn``, so a script calling this must
            guard its entry point with ``if __name__ == "__main__":``
            (:mod:`tbrewrite.parallel`). The CLI passes
            :func:`tbrewrite.parallel.default_jobs`.
        auto_jobs: bool. Start fewer workers than ``jobs`` where they would not repay
            their start (:func:`tbrewrite.parallel.worker_count`); the CLI's default when
            ``--jobs`` is not given.
        allow_merge: bool. Let tags with overlapping steps merge onto one name.
        backup_dir: folder for the originals with ``in_place`` (default: a new sibling
            ``<logdir>.tbrewrite-backup-<n>``); never ``logdir`` or inside it.
        force: bool. Write into a non-empty ``out``; event files already there that
            this command does not write are deleted.
        resync: bool. After damage, continue from the next valid record.
        on_progress: optional callback ``(phase, run)``, phase ``"planned"`` or
            ``"written"``, called as each run finishes a phase.

    Returns:
        RenameReport.

    Raises:
        UsageError: an option combination is invalid (``out`` with ``in_place``,
            neither without ``dry_run``, ``backup_dir`` without ``in_place``, ``jobs`` < 1).
        InputError: ``logdir`` is missing or holds no (selected) runs, or an interrupted
            in-place swap is pending (without ``in_place``).
        OutputError: ``out`` or ``backup_dir`` is unsafe.
        TagCollisionError: tags would merge with overlapping steps, or tags of different
            kinds would share a name (nothing written).
        OSError: reading or writing failed; nothing is left behind.
    """
    logdir = local_path(logdir, "LOGDIR")
    out = local_path(out, "--out") if out is not None else None
    backup_dir = local_path(backup_dir, "--backup-dir") if backup_dir is not None else None
    check_dir(logdir, "LOGDIR")
    if out is not None and in_place:
        raise UsageError("give --out DIR or --in-place, not both")
    if out is None and not in_place and not dry_run:
        raise UsageError("give --out DIR or --in-place (or --dry-run)")
    if backup_dir is not None and not in_place:
        raise UsageError("--backup-dir needs --in-place")
    if jobs < 1:
        raise UsageError(f"--jobs must be at least 1; got {jobs}")
    progress = on_progress or (lambda phase, run: None)
    report = RenameReport()
    if in_place and not dry_run:
        report.recovered = recover(logdir)
    else:
        pending = pending_journals(logdir)
        if pending:
            raise InputError(
                f"{pending[0] / JOURNAL_NAME}: an in-place rename was interrupted here; "
                f"run 'tbrewrite rename {logdir} --recover' first"
            )
    out_path = Path(out) if out is not None else None
    if out_path is not None:
        _check_out(logdir, out_path, force)
    backup = _backup_dir(logdir, Path(backup_dir) if backup_dir is not None else None) if in_place else None
    selected = discover(logdir, runs)
    if not selected:
        if runs and any(True for _ in run_folders(logdir)):
            raise InputError(f"{logdir}: no run matches --runs {' '.join(repr(g) for g in runs)}")
        raise InputError(f"{logdir}: no event files found (names containing 'tfevents')")
    tasks = [(rel, d, rules, resync) for rel, d in selected]
    if auto_jobs:
        jobs = worker_count([event_bytes(d) for _, d in selected], jobs)
    plans: list[RunPlan] = map_ordered(_plan_task, tasks, jobs, lambda i, p: progress("planned", p.run))
    refused = [c for p in plans for c in p.conflicts]
    if not allow_merge:
        refused += [c for p in plans for c in p.collisions]
    if refused:
        raise TagCollisionError(refused[0])
    report.runs = [RunResult(p) for p in plans]
    if dry_run:
        return report
    if out_path is not None:
        _write_out(logdir, out_path, report, jobs, force, resync, progress)
    else:
        assert backup is not None
        report.backup_dir = _write_in_place(logdir, backup, report, jobs, resync, progress)
    return report


def _check_out(logdir: Path, out: Path, force: bool) -> None:
    check_output_folder(logdir, out, force=force, src_label="LOGDIR", out_label="--out")


def _backup_dir(logdir: Path, chosen: Path | None) -> Path:
    """Return the absolute backup folder: ``chosen``, or a new sibling of ``logdir``."""
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


def _write_out(
    logdir: Path,
    out: Path,
    report: RenameReport,
    jobs: int,
    force: bool,
    resync: bool,
    progress: Callable[[str, str], None],
) -> None:
    """Write the mirrored tree: rewritten event files of the runs, every other file copied.

    The tree is walked as every command walks it (:func:`tbrewrite.logdir.walk`):
    symlinked folders are followed and come out as folders; other symlinks are copied
    as symlinks.
    """
    rewritten = {f.path for r in report.runs for f in r.plan.files}
    with Transaction(out) as outputs:
        tasks = []
        for run in report.runs:
            target_dir = outputs.makedirs(out / run.plan.run)
            targets = [target_dir / f.path.name for f in run.plan.files]
            for target in targets:
                outputs.add_file(target)
            tasks.append(WriteTask(run.plan, targets, True, resync, out))
        written = {t for task in tasks for t in task.targets}
        for folder in walk(logdir):
            for src in sorted((*folder.event_files, *folder.placeholders, *folder.other_files)):
                if src in rewritten or src.name.startswith(LEFTOVER_PREFIXES):
                    continue
                skipped = special_file(src)
                if skipped is not None:
                    report.warnings.append(f"{src}: skipped: {skipped}")
                    continue
                dst = out / folder.rel / src.name
                outputs.makedirs(dst.parent)
                outputs.add_file(dst)
                mirror_file(src, dst)
                written.add(dst)
        results = map_ordered(write_run_files, tasks, jobs, lambda i, r: progress("written", report.runs[i].plan.run))
        for run, files in zip(report.runs, results, strict=False):
            run.files = files
        if force:
            for dirpath, _, filenames in os.walk(out):
                for name in filenames:
                    path = Path(dirpath) / name
                    if is_event_file(name) and path not in written:
                        path.unlink()


def _write_in_place(
    logdir: Path,
    backup: Path,
    report: RenameReport,
    jobs: int,
    resync: bool,
    progress: Callable[[str, str], None],
) -> Path | None:
    """Stage every changed run's new files, back up every original, then swap run by run.

    Returns the backup folder, or None if no file changed.

    Raises:
        OutputError: a backup already exists or could not be written (a full disk):
            every run is unchanged (:func:`tbrewrite.output.swap.commit`); or a swap
            failed after the backups (its journal stays; ``--recover`` finishes it).
    """
    runs = [r for r in report.runs if r.plan.changes or r.plan.edited]
    for run in report.runs:
        if not (run.plan.changes or run.plan.edited):
            progress("written", run.plan.run)
    tasks = [
        WriteTask(r.plan, [r.plan.run_dir / staged_name(f.path.name) for f in r.plan.files], False, resync, logdir)
        for r in runs
    ]
    staged = {id(r): [f.path.name for f in r.plan.files] for r in runs}
    try:
        results = map_ordered(write_run_files, tasks, jobs, lambda i, _: progress("written", runs[i].plan.run))
        swaps = []
        for run, files in zip(runs, results, strict=False):
            run.files = files
            run.replaced = [f.name for f in files if f.output is not None]
            if run.replaced:
                swaps.append(Swap.replacing(run.plan.run_dir, backup / run.plan.run, tuple(run.replaced)))
    except BaseException:
        for run in runs:
            discard_staged(run.plan.run_dir, staged[id(run)])
        raise
    try:
        commit(swaps)
    except OSError as e:
        raise OutputError(
            f"{e.filename or logdir}: swap failed part-way ({e.strerror or e}); "
            f"run 'tbrewrite rename {logdir} --recover' to finish it"
        ) from None
    return backup if swaps else None

"""``convert``: Keras runs in, one hierarchical run each out, nothing lost.

A Keras run is either a ``log_dir`` holding ``train/`` and ``validation/`` runs
(tf.keras, tf_keras, Keras 3) or one flat folder of event files (Keras 2 / TF1); see
:mod:`tbrewrite.producers.keras`. Each becomes one output run whose single event file holds every
input event exactly once, scalars renamed to ``train/<metric>`` / ``val/<metric>``,
everything else byte-for-byte as it was:

1. A first streaming pass (:func:`tbrewrite.engine.scan.scan_files`) learns each source's
   tags, kinds, first plugin metadata, restarts and damage, and fixes the mapping and
   the engine's plan (:mod:`tbrewrite.commands.convertplan`).
2. The engine (:func:`tbrewrite.engine.rewrite.rewrite`) merges the sources' events in
   wall_time order, renames values, puts the plugin metadata on the first value of every
   tag, and writes records it did not change back unchanged.

This module runs the command: paths checked, runs found, sidecars read, runs written in
this process or in worker processes (a run is the unit of parallel work: its output is
one file, written by one process), and every output published only once all runs
succeeded (:class:`tbrewrite.output.transaction.Transaction`), so a failure leaves
nothing behind.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.commands.convertplan import KEEP_LAST, RESTART_POLICIES, SPLIT, RunPlan, plan_run, scan_run
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.errors import InputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import check_dir, event_bytes, list_event_files, walk
from tbrewrite.output.files import special_file
from tbrewrite.output.swap import JOURNAL_NAME, LEFTOVER_PREFIXES
from tbrewrite.output.transaction import Staged, Transaction, check_output_folder
from tbrewrite.parallel import map_ordered, worker_count
from tbrewrite.producers.keras import TagMapping, discover_runs, split_sessions, split_sources
from tbrewrite.sidecars.place import SidecarReport, plan_merges
from tbrewrite.sidecars.read import Sidecar, discover, read_sidecar
from tbrewrite.storage import local_path

__all__ = ["RESTART_POLICIES", "ConvertReport", "RunReport", "convert"]

PROJECTOR_CONFIG = "projector_config.pbtxt"


@dataclass
class RunReport:
    """What converting one run did.

    Attributes:
        plan: RunPlan.
        events_out: int. Events written, the file_version event included.
        values_dropped: int. Summary values left out (``--restarts keep-last``).
        output: Path or None. The file written (None on a dry run or with nothing to
            write).
        unchanged: bool. The output equals the input: nothing needed converting.
        sidecars: list of SidecarReport, one per sidecar merged.
        damage: list of Damage the write found beyond the scan's (a file changed
            while it was converted).
        notes: list of str (e.g. a file that grew while it was converted).
    """

    plan: RunPlan
    events_out: int = 0
    values_dropped: int = 0
    output: Path | None = None
    unchanged: bool = False
    sidecars: list[SidecarReport] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ConvertReport:
    """What ``convert`` did, per run.

    Attributes:
        runs: list of RunReport, in SRC order.
    """

    runs: list[RunReport] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of input: the scan's, then any the write found."""
        return [d for r in self.runs for d in (*r.plan.damage, *r.damage)]


def convert(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    mapping: TagMapping | None = None,
    restarts: str = "keep",
    force: bool = False,
    dry_run: bool = False,
    resync: bool = False,
    sidecars: Sequence[str | os.PathLike[str]] = (),
    jobs: int | None = None,
    auto_jobs: bool = False,
    on_run: Callable[[RunReport], None] | None = None,
) -> ConvertReport:
    """Convert the Keras run (or tree of runs) at ``src`` into hierarchical runs at ``out``.

    If ``src`` is one run (a Keras ``log_dir`` with ``train/``/``validation/``, or one
    flat folder of event files, with no other runs below it), ``out`` is the output run
    folder. Otherwise ``out`` mirrors ``src``: one output run per run found.

    Args:
        src: str or PathLike. A Keras run or a tree of runs.
        out: str or PathLike. The output folder; must not exist or must be empty
            (unless ``force``), and must be neither ``src`` nor inside it.
        mapping: TagMapping. Split names and pattern (default ``train``/``val``,
            ``{split}/{metric}``).
        restarts: str. With several event files in one run: ``"keep"`` every event
            in file order, ``"keep-last"`` only what TensorBoard's data server shows
            (per tag, a write at step s drops earlier writes at steps >= s), or
            ``"split"`` one output run per input event file (or per Keras process).
        force: bool. Replace event files already in ``out``.
        dry_run: bool. Plan and report; write nothing.
        resync: bool. After damage, continue from the next valid record.
        sidecars: paths of learning-rate sidecars or Keras CSVLogger files to merge
            (see :mod:`tbrewrite.sidecars.read`); only when ``src`` is one run. A
            ``learning_rate.csv`` beside a run's ``train/`` and ``validation/`` is
            merged without being named.
        jobs: int or None. Runs converted at once, in worker processes (``spawn``: a
            script calling this with ``jobs > 1`` needs ``if __name__ == "__main__":``);
            default 1, in this process. The CLI defaults to every core.
        auto_jobs: bool. Start fewer workers than ``jobs`` where they would not repay
            their start (:func:`tbrewrite.parallel.worker_count`: one run holding nearly
            all the input, or too little input); the CLI's default when ``--jobs`` is not
            given.
        on_run: optional callback given each RunReport as soon as its run is written
            (in completion order with ``jobs > 1``).

    Returns:
        ConvertReport.

    Raises:
        UsageError: ``restarts`` is not a known policy.
        InputError: ``src`` is missing, not a folder, or holds no event files;
            sidecars were given for a tree of runs.
        OutputError: ``out`` is unsafe (same as/inside ``src``) or already holds files.
        SidecarError: a sidecar is malformed or matches nothing in the run.
        OSError: reading or writing failed; nothing is left behind.
    """
    src, out = local_path(src, "SRC"), local_path(out, "OUT")
    sidecars = [local_path(s, "--sidecar") for s in sidecars]
    mapping = mapping or TagMapping()
    if restarts not in RESTART_POLICIES:
        raise UsageError(f"--restarts must be one of {', '.join(RESTART_POLICIES)}; got {restarts!r}")
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs must be at least 1; got {jobs}")
    check_dir(src)
    check_output_folder(src, out, force=force, src_label="SRC", out_label="OUT")
    runs = discover_runs(src, mapping)
    if not runs:
        raise InputError(f"{src}: no event files found (names containing 'tfevents')")
    if sidecars and len(runs) > 1:
        raise InputError(f"{src}: --sidecar needs SRC to be one run, but it holds {len(runs)} runs")
    given = tuple(read_sidecar(path, mapping) for path in sidecars)
    tasks = [
        _Task(rel, run_dir, out if rel == "." else out / rel, mapping, restarts, resync, dry_run, given, out)
        for rel, run_dir in runs
    ]
    report = ConvertReport()
    jobs = jobs or 1
    if auto_jobs and len(tasks) > 1:
        jobs = worker_count([event_bytes(t.run_dir, tree=True) for t in tasks], jobs)
    with Transaction(out) as outputs:
        if not dry_run and not out.exists():
            outputs.own(out)

        def done(_: int, batch: _Batch) -> None:
            outputs.adopt(batch.staged, batch.created)
            if on_run is not None:
                for run_report in batch.reports:
                    on_run(run_report)

        if dry_run or len(tasks) == 1 or jobs <= 1:
            batches = []
            for i, task in enumerate(tasks):
                batches.append(_Batch(_convert_run(task, outputs)))
                done(i, batches[-1])
        else:
            # A few batches per worker: fewer round trips, each batch one transaction.
            size = max(1, -(-len(tasks) // (jobs * 4)))
            chunks = [tasks[k : k + size] for k in range(0, len(tasks), size)]
            batches = map_ordered(_convert_batch, chunks, jobs, done)
        report.runs = [r for batch in batches for r in batch.reports]
        if not dry_run:
            outputs.publish_all()
    if force and not dry_run:
        _remove_stale(report)
    return report


@dataclass(frozen=True)
class _Task:
    """One run of ``convert``, as sent to a worker process."""

    rel: str
    run_dir: Path
    out_dir: Path
    mapping: TagMapping
    restarts: str
    resync: bool
    dry_run: bool
    given: tuple[Sidecar, ...]
    root: Path


@dataclass
class _Batch:
    """What a worker hands back: reports, and its files staged but not published."""

    reports: list[RunReport]
    staged: list[Staged] = field(default_factory=list)
    created: list[Path] = field(default_factory=list)


def _convert_run(task: _Task, outputs: Transaction) -> list[RunReport]:
    """Plan and write one run (several with ``--restarts split``), its files staged."""
    given_paths = {g.path.resolve() for g in task.given}
    found = tuple(read_sidecar(p, task.mapping) for p in discover(task.run_dir) if p.resolve() not in given_paths)
    reports = []
    for plan in _plans(task, task.given + found):
        if task.dry_run or not plan.has_output():
            reports.append(RunReport(plan, sidecars=plan.merge.reports))  # nothing to write
            continue
        with _name_write_errors(plan.output.path):
            result = rewrite(plan.output, outputs)
            assert result.writer is not None
            staged = outputs.stage(result.writer)
        reports.append(
            RunReport(
                plan,
                events_out=result.events_out,
                values_dropped=result.values_superseded,
                output=staged.final,
                unchanged=_same_bytes(plan, staged.temp),
                sidecars=plan.merge.reports,
                damage=result.damage,
                notes=result.notes,
            )
        )
    if reports and not task.dry_run and any(r.output is not None for r in reports):
        merged = {os.path.realpath(s.path) for s in task.given + found}
        reports[0].notes.extend(_carry_other_files(task, outputs, merged))
    return reports


def _other_files(run_dir: Path, mapping: TagMapping) -> Iterator[tuple[Path, str]]:
    """Yield ``(file, path relative to run_dir)`` of every file of the run but event files.

    These are projector configs and embeddings, profiler data, placeholders, anything.

    The run's own folders are walked (its ``train/``, ``validation/``, ... too); a folder
    below that holds event files of another run is that run's, with everything under it.
    """
    own = {".", *split_sources(run_dir, mapping)}
    others: list[str] = []
    for folder in walk(run_dir):
        if folder.rel != "." and any(folder.rel == o or folder.rel.startswith(o + "/") for o in others):
            continue
        if folder.rel not in own and folder.is_run:
            others.append(folder.rel)
            continue
        prefix = "" if folder.rel == "." else folder.rel + "/"
        for path in (*folder.placeholders, *folder.other_files):
            if not path.name.startswith(LEFTOVER_PREFIXES) and path.name != JOURNAL_NAME:
                yield path, prefix + path.name


def _carry_other_files(task: _Task, outputs: Transaction, merged: set[str]) -> list[str]:
    """Stage a copy of every non-event file of the run at the same path in its output.

    Returns notes: what was copied, what was left and why. TensorBoard's Projector reads
    ``projector_config.pbtxt`` from a run's own folder, so a config that stays in
    ``train/`` while the run's events moved up is named.
    """
    copied = 0
    notes = []
    for src, rel in _other_files(task.run_dir, task.mapping):
        if os.path.realpath(src) in merged:
            continue  # a sidecar merged into the event file
        kind = special_file(src)
        if kind is not None:
            notes.append(f"{src}: not copied: {kind}")
            continue
        outputs.stage_copy(src, task.out_dir / rel)
        copied += 1
        if src.name == PROJECTOR_CONFIG and "/" in rel:
            notes.append(
                f"{task.out_dir / rel}: TensorBoard's Projector reads {PROJECTOR_CONFIG} from the run folder "
                f"{task.out_dir}; move it there if the paths it names allow"
            )
    if copied:
        notes.insert(
            0, f"{task.rel}: copied {copied} other file(s) (not event files) to the same paths in {task.out_dir}"
        )
    return notes


def _convert_batch(tasks: list[_Task]) -> _Batch:
    """A worker process's job: some runs, staged; all removed again if one fails."""
    with Transaction(tasks[0].root) as outputs:
        reports = [r for task in tasks for r in _convert_run(task, outputs)]
        return _Batch(reports, list(outputs.staged), list(outputs.created))


@contextlib.contextmanager
def _name_write_errors(path: Path) -> Iterator[None]:
    """Name the output file in write errors that carry no file name (EFBIG, ENOSPC)."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def _plans(task: _Task, sidecars: tuple[Sidecar, ...]) -> Iterator[RunPlan]:
    """Yield the run's plan; with ``--restarts split``, one per Keras process.

    Sidecar rows go to the process that wrote them (:mod:`tbrewrite.sidecars.place`):
    into its own output run with ``--restarts split``, else replacing only its points.
    """
    if task.restarts != SPLIT:
        sessions = split_sessions(task.run_dir, task.mapping) if sidecars else []
        scan = scan_run(task.rel, task.run_dir, task.mapping, resync=task.resync, keep_last=task.restarts == KEEP_LAST)
        yield plan_run(
            scan,
            task.out_dir,
            restarts=task.restarts,
            resync=task.resync,
            sidecars=sidecars,
            mapping=task.mapping,
            sessions=[[path for files in session.values() for path in files] for _, session in sessions],
        )
        return
    sub = task.rel if task.rel != "." else ""
    names, scans = [], []
    for name, files in split_sessions(task.run_dir, task.mapping):
        names.append(name)
        scans.append(scan_run(str(Path(sub) / name), task.run_dir, task.mapping, resync=task.resync, files=files))
    merges = plan_merges(scans, sidecars, resync=task.resync, mapping=task.mapping)
    for name, scan, merge in zip(names, scans, merges, strict=True):
        yield plan_run(
            scan, task.out_dir / name, resync=task.resync, sidecars=sidecars, mapping=task.mapping, merge=merge
        )


def _same_bytes(plan: RunPlan, output: Path) -> bool:
    """True if the run was one file whose bytes equal ``output`` (nothing to convert)."""
    files = [f for s in plan.sources for f in s.files]
    if len(files) != 1 or plan.renamed() or plan.sidecars:
        return False
    try:
        return filecmp.cmp(files[0], output, shallow=False)
    except OSError:
        return False


def _remove_stale(report: ConvertReport) -> None:
    """With --force, delete event files left in output run folders by earlier runs."""
    keep = {r.output for r in report.runs if r.output is not None}
    for d in {r.plan.out_dir for r in report.runs}:
        for path in list_event_files(d):
            if path not in keep:
                path.unlink()

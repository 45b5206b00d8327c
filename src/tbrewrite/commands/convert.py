"""``convert``: Keras runs in, one hierarchical run each out, nothing lost.

A Keras run is either a ``log_dir`` holding ``train/`` and ``validation/`` runs
(tf.keras, tf_keras, Keras 3) or one flat folder of event files (Keras 2 / TF1); see
:mod:`tbrewrite.producers.keras`. Each becomes one output run whose single event file holds every
input event exactly once, scalars renamed to ``train/<metric>`` / ``val/<metric>``,
everything else byte-for-byte as it was:

1. A first streaming pass (:func:`tbrewrite.engine.scan.scan_files`) learns each source's
   tags, kinds, first plugin metadata, restarts and damage, and fixes the mapping
   (:mod:`tbrewrite.commands.convertplan`).
2. A second pass merges the sources' events in wall_time order, renames values, puts
   the plugin metadata on the first value of every tag, and writes records it did not
   change back unchanged (:mod:`tbrewrite.engine.rewrite`).

This module runs the command: paths checked, runs found, sidecars merged, runs written
in this process or in worker processes, and everything undone if any run fails.
"""

from __future__ import annotations

import contextlib
import filecmp
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.commands.convertplan import RunPlan, discover_runs, plan_run, split_sessions
from tbrewrite.engine.rewrite import RunReport, write_run
from tbrewrite.errors import InputError, UsageError
from tbrewrite.events.reader import is_event_file, list_event_files
from tbrewrite.producers.keras import (
    TagMapping,
    check_dir,
)
from tbrewrite.parallel import map_ordered
from tbrewrite.events.framing import Damage
from tbrewrite.sidecars.read import Sidecar, discover, read_sidecar
from tbrewrite.sidecars.place import plan_merge
from tbrewrite.events.writer import WRITER_NAME, OutputSet, check_output_folder

RESTART_POLICIES = ("keep", "keep-last", "split")


@dataclass
class ConvertReport:
    """What ``convert`` did, per run.

    Attributes:
        runs: list of RunReport, in SRC order.
    """

    runs: list[RunReport] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        return [d for r in self.runs for d in r.plan.damage]



def _check_paths(src: Path, out: Path, force: bool) -> None:
    check_dir(src)
    check_output_folder(src, out, force=force, src_label="SRC", out_label="OUT")


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
        on_run: optional callback given each RunReport as soon as it is done, in SRC
            order.

    Returns:
        ConvertReport.

    Raises:
        InputError: ``src`` is missing, not a folder, or holds no event files;
            sidecars were given for a tree of runs.
        OutputError: ``out`` is unsafe (same as/inside ``src``) or already holds files.
        SidecarError: a sidecar is malformed or matches nothing in the run.
        OSError: reading or writing failed; nothing is left behind.
    """
    src, out = Path(src), Path(out)
    mapping = mapping or TagMapping()
    if restarts not in RESTART_POLICIES:
        raise UsageError(f"--restarts must be one of {', '.join(RESTART_POLICIES)}; got {restarts!r}")
    _check_paths(src, out, force)
    runs = discover_runs(src)
    if not runs:
        raise InputError(f"{src}: no event files found (names containing 'tfevents')")
    if sidecars and len(runs) > 1:
        raise InputError(f"{src}: --sidecar needs SRC to be one run, but it holds {len(runs)} runs")
    given = [read_sidecar(path, mapping) for path in sidecars]
    report = ConvertReport()
    tasks = [
        _Task(rel, run_dir, out if rel == "." else out / rel, mapping, restarts, resync, dry_run, given)
        for rel, run_dir in runs
    ]

    def done(_: int, reports: list[RunReport]) -> None:
        for run_report in reports:
            if on_run is not None:
                on_run(run_report)

    jobs = jobs or 1
    if dry_run or len(tasks) == 1 or jobs <= 1:
        with OutputSet() as outputs:
            for i, task in enumerate(tasks):
                reports = _convert_run(task, outputs)
                report.runs.extend(reports)
                done(i, reports)
    else:
        # A few batches per worker: fewer round trips, and each batch overlaps its
        # files' fsyncs with writing the next ones.
        size = max(1, -(-len(tasks) // (jobs * 4)))
        batches = [tasks[k : k + size] for k in range(0, len(tasks), size)]
        existed = out.exists()
        started = time.time()
        try:
            results = map_ordered(_convert_batch, batches, jobs, done)
            report.runs = [r for reports in results for r in reports]
        except BaseException:
            _remove_outputs(tasks, out, existed, started)
            raise
    if force and not dry_run:
        _remove_stale(report)
    return report


@dataclass
class _Task:
    """One run of ``convert``, as sent to a worker process."""

    rel: str
    run_dir: Path
    out_dir: Path
    mapping: TagMapping
    restarts: str
    resync: bool
    dry_run: bool
    given: list[Sidecar]


def _convert_run(task: _Task, outputs: OutputSet) -> list[RunReport]:
    """Plan, merge sidecars into and write one run (several with ``--restarts split``)."""
    given_paths = {g.path.resolve() for g in task.given}
    found = [read_sidecar(p, task.mapping) for p in discover(task.run_dir) if p.resolve() not in given_paths]
    reports = []
    for plan in _plans(task.rel, task.run_dir, task.out_dir, task.mapping, task.restarts, task.resync):
        if task.restarts != "split":
            plan.sidecars = task.given + found
        merge = plan_merge(plan, plan.sidecars, resync=task.resync, mapping=task.mapping)
        if task.dry_run or not (plan.holds_events() or merge.events):
            reports.append(RunReport(plan, sidecars=merge.reports))  # nothing to write
            continue
        with _name_write_errors(plan.out_dir / plan.out_name):
            run_report = write_run(plan, outputs, restarts=task.restarts, resync=task.resync, merge=merge, publish=False)
            writer = run_report.pending
            assert writer is not None
            writer.flush()
            run_report.unchanged = _same_bytes(plan, writer.temp_path)
            run_report.output = outputs.publish(writer, wait=False)
            run_report.pending = None
        reports.append(run_report)
    return reports


def _convert_batch(tasks: list[_Task]) -> list[RunReport]:
    """A worker process's job: some runs, their output removed if one fails."""
    with OutputSet() as outputs:
        return [r for task in tasks for r in _convert_run(task, outputs)]


def _remove_outputs(tasks: list[_Task], out: Path, existed: bool, started: float) -> None:
    """Undo a failed parallel convert, including runs that finished after the failure.

    A new OUT goes whole. In an OUT that existed (``--force``), the event files this
    command wrote (our name suffix, written since it started) go, then empty folders.
    """
    if not existed:
        shutil.rmtree(out, ignore_errors=True)
        return
    for task in tasks:
        for path in list_event_files(task.out_dir):
            with contextlib.suppress(OSError):
                if path.name.endswith("." + WRITER_NAME) and path.stat().st_mtime >= started:
                    path.unlink()
    for dirpath, _, _ in sorted(os.walk(out), key=lambda w: -len(Path(w[0]).parts)):
        if Path(dirpath) != out:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


@contextlib.contextmanager
def _name_write_errors(path: Path) -> Iterator[None]:
    """Name the output file in write errors that carry no file name (EFBIG, ENOSPC)."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def _plans(
    rel: str, run_dir: Path, out_dir: Path, mapping: TagMapping, restarts: str, resync: bool
) -> Iterator[RunPlan]:
    if restarts != "split":
        yield plan_run(rel, run_dir, out_dir, mapping, resync=resync, keep_last=restarts == "keep-last")
        return
    for name, files in split_sessions(run_dir):
        sub = rel if rel != "." else ""
        yield plan_run(
            str(Path(sub) / name), run_dir, out_dir / name, mapping, resync=resync, files=files
        )


def _same_bytes(plan: RunPlan, output: Path | None) -> bool:
    """True if the run was one file whose bytes equal ``output`` (nothing to convert)."""
    files = [f for s in plan.sources for f in s.files]
    if output is None or len(files) != 1 or plan.renamed() or plan.sidecars:
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
            if path not in keep and is_event_file(path.name):
                path.unlink()

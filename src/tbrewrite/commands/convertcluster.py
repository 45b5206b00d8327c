"""``convert --scheduler``: the runs of a bucket converted on a ``dask.distributed`` cluster.

The client lists SRC (names only, nothing read), finds its runs as every command does
(:func:`tbrewrite.producers.keras.discover_runs` on a skeleton of empty files named like
the objects), and sends one task per run to the scheduler (:func:`tbrewrite.cluster.map_on_cluster`).
Each worker runs the same :func:`tbrewrite.commands.convert.convert` a local run does, on
that one run: inside its own storage session it mirrors the run from the store, converts
it into ``OUT/<run>`` and uploads the outputs under temporary keys without ``tfevents``
(:meth:`tbrewrite.storage.Session.prepare`), then hands back its reports and the keys.
When every run has succeeded the client publishes all outputs at once, journaled
(:func:`tbrewrite.storage.publish.finish`); when one fails, every temporary key is
deleted and nothing is published, as a local ``convert`` leaves nothing behind.

Workers stage under the client's staging path, so the reports they send back name the
same local paths a local run's would, and the client prints them as URLs.
"""

from __future__ import annotations

import dataclasses
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tbrewrite.cluster import aborted, map_on_cluster
from tbrewrite.commands.convert import ConvertReport, RunReport, convert
from tbrewrite.errors import InputError, OutputError, UsageError
from tbrewrite.producers.keras import TagMapping, discover_runs
from tbrewrite.storage import Session, as_url, publish
from tbrewrite.storage.session import activate, naming
from tbrewrite.storage.urls import split_url


@dataclass(frozen=True)
class RunTask:
    """One run of ``convert --scheduler``, as sent to a worker."""

    rel: str
    src: str
    out: str
    options: dict[str, Any]
    stage: Path
    mapping: TagMapping
    restarts: str
    resync: bool
    force: bool
    abort: str


@dataclass
class RunDone:
    """What a worker hands back: the run's reports and its uploads, not yet published."""

    reports: list[RunReport]
    publishes: list[publish.Publish]


def convert_on_cluster(
    src: str,
    out: str,
    *,
    scheduler: str,
    session: Session,
    mapping: TagMapping | None = None,
    restarts: str = "keep",
    force: bool = False,
    resync: bool = False,
    on_run: Callable[[RunReport], None] | None = None,
) -> ConvertReport:
    """Convert every run under the URL ``src`` into ``out`` on the Dask cluster at ``scheduler``.

    Args:
        src: str. A URL holding runs (``s3://bucket/logs``).
        out: str. A URL; must hold no objects (unless ``force``), and be neither ``src``
            nor inside it.
        scheduler: str. The Dask scheduler's address.
        session: Session. The caller's storage session: its options reach the workers,
            its staging path names their files.
        mapping: TagMapping, as :func:`tbrewrite.commands.convert.convert`.
        restarts: str, as :func:`tbrewrite.commands.convert.convert`.
        force: bool. Write into an OUT that holds objects (stale event files deleted).
        resync: bool. After damage, continue from the next valid record.
        on_run: optional callback given each RunReport as its run finishes.

    Returns:
        ConvertReport, runs in SRC order.

    Raises:
        UsageError: ``src`` or ``out`` is not a URL (every worker must reach both).
        InputError: ``src`` holds no event files; the scheduler is unreachable.
        OutputError: ``out`` is ``src``, inside it, or already holds objects.
        OSError: listing, reading or writing the store failed; nothing is published.
        Exception: a run's own error (e.g. a malformed sidecar), after cleanup.
    """
    src_url, out_url = as_url(src), as_url(out)
    if src_url is None or out_url is None:
        raise UsageError("--scheduler needs SRC and OUT in object storage (s3://, gs://, az://) every worker reaches")
    if out_url == src_url or out_url.startswith(src_url + "/"):
        raise OutputError(f"{out_url}: OUT must not be SRC or inside it")
    mapping = mapping or TagMapping()
    scheme, _ = split_url(src_url)
    fs = session.filesystem(scheme)
    out_fs = session.filesystem(split_url(out_url)[0])
    with naming(out_url):
        if not force and out_fs.exists(out_url) and out_fs.find(out_url, maxdepth=None):
            raise OutputError(f"{out_url}: OUT already holds files; choose an empty folder or use --force")
    with naming(src_url):
        rels = _runs(fs, src_url, session.stage / "skeleton", mapping)
    if not rels:
        raise InputError(f"{src_url}: no event files found (names containing 'tfevents')")
    abort = f"tbrewrite-abort-{uuid.uuid4().hex}"
    tasks = [
        RunTask(
            rel,
            src_url if rel == "." else f"{src_url}/{rel}",
            out_url if rel == "." else f"{out_url}/{rel}",
            dict(session.options),
            session.stage,
            mapping,
            restarts,
            resync,
            force,
            abort,
        )
        for rel in rels
    ]

    def done(_: int, result: RunDone) -> None:
        if on_run is not None:
            for report in result.reports:
                on_run(report)

    try:
        results = map_on_cluster(convert_run, tasks, scheduler, done, abort=abort)
    except BaseException:
        # Every upload finished before the abort is listed now; a task still running
        # sees the abort after its upload and deletes its own (convert_run).
        out_fs.invalidate_cache()
        left = out_fs.find(out_url) if out_fs.exists(out_url) else []
        publish.abandon(out_fs, [k for k in left if k.rpartition("/")[2].startswith(publish.UPLOAD_PREFIX)])
        raise
    moves = tuple(m for r in results for p in r.publishes for m in p.moves)
    deletes = tuple(d for r in results for p in r.publishes for d in p.deletes)
    publish.finish(out_fs, publish.Publish(out_url, moves, deletes))
    return ConvertReport([report for r in results for report in r.reports])


def _runs(fs: Any, src_url: str, skeleton: Path, mapping: TagMapping) -> list[str]:
    """Return the runs under ``src_url``, found on empty files named like its objects."""
    base = fs._strip_protocol(src_url).rstrip("/")
    shutil.rmtree(skeleton, ignore_errors=True)
    skeleton.mkdir(parents=True)
    for key in fs.find(src_url):
        if key.startswith(base + "/") and not key.endswith("/"):
            path = skeleton / key[len(base) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    rels = [rel for rel, _ in discover_runs(skeleton, mapping)]
    if "." in rels:  # SRC is itself a run: one task converts it with every run below it
        return ["."]
    # A run below another run is converted by the task of the run above it, as a tree.
    return [r for r in rels if not any(r.startswith(o + "/") for o in rels)]


def convert_run(task: RunTask) -> RunDone:
    """A worker's job: convert one run from the store, upload its outputs under temporary keys.

    Raises:
        Exception: as :func:`tbrewrite.commands.convert.convert`; nothing is left in the
            store (uploads of a failed run are removed by ``Session.prepare``).
    """
    current = Session(task.options, stage=task.stage)
    try:
        with activate(current):
            report = convert(
                task.src,
                task.out,
                mapping=task.mapping,
                restarts=task.restarts,
                force=task.force,
                resync=task.resync,
            )
            prepared = current.prepare()
            publishes = [p for _, p in prepared]
            if aborted(task.abort):  # another run failed: the client publishes nothing
                for fs, plan in prepared:
                    publish.abandon(fs, [t for t, _ in plan.moves])
                publishes = []
    finally:
        for url in (task.src, task.out):
            shutil.rmtree(current.local_of(url), ignore_errors=True)
    for run in report.runs:
        name = task.rel if run.plan.run == "." else f"{task.rel}/{run.plan.run}"
        if task.rel != ".":
            run.plan = dataclasses.replace(run.plan, scan=dataclasses.replace(run.plan.scan, run=name))
    return RunDone(report.runs, publishes)

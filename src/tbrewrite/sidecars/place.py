"""Merging sidecar points into the runs being written: which points, replacing which.

Used by ``convert --sidecar`` (also with ``--restarts split``) and ``tbrewrite merge``.
Before a run is written, one streaming pass reads the log's values of only the tags a
sidecar touches (none, for the usual per-batch sidecar), and, where counts or matches
need it, one more streams the sidecar's rows, so that:

* every sidecar row belongs to the writing **process** whose time it was written in
  (:mod:`tbrewrite.sidecars.processes`); with ``--restarts split`` it goes into that
  process's output run only;
* a learning-rate sidecar's point replaces, one for one, the log's point of the same
  tag and step *in the same process* (the sidecar holds the rate actually used); of
  several such points (two ``fit()`` calls in one process), the one nearest in
  wall_time. A log point is named to the engine by its ``(step, wall_time)``, so
  nothing else is left out -- a restarted log_dir keeps every other process's points --
  and the report counts the log values really replaced and how many of them differed
  beyond float32 rounding;
* a CSVLogger point (no wall_time of its own) belongs to the latest process with an
  event of that epoch to take its wall_time from (Keras's ``CSVLogger`` truncates its
  file in each new ``fit()`` unless ``append=True``); it is added only where that
  process has no point at that tag and step (the log's value is kept);
* a sidecar matching no step of the run is an error, not a silent no-op.

The points are not held: :class:`tbrewrite.sidecars.events.SidecarEvents` reads the
sidecar again, in wall_time order, while the engine writes (CSVLogger points, one per
epoch, are kept, placed). Memory grows only with the log values of the sidecar's own
tags (a sidecar merged again into a run that holds its points already).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from tbrewrite.errors import SidecarError
from tbrewrite.producers import GENERIC, KERAS_FLAT
from tbrewrite.producers.keras import TRAIN_DIR, VALIDATION_DIR, TagMapping
from tbrewrite.sidecars.events import SidecarEvents, wall
from tbrewrite.sidecars.logpoints import LogSeries, PointSet, read_log
from tbrewrite.sidecars.processes import NO_PROCESS, Processes, ScannedRun
from tbrewrite.sidecars.read import CSV_LOGGER, Sidecar, SidecarPoint

__all__ = ["MergePlan", "ScannedRun", "SidecarEvents", "SidecarReport", "plan_merge", "plan_merges"]

_F32 = struct.Struct("<f")
_Log = dict[int, dict[str, LogSeries]]
"""Per process, the log's values of the output tags placement needs."""
_NONE = LogSeries()


@dataclass
class SidecarReport:
    """What merging one sidecar into one output run did.

    Attributes:
        path: str. The sidecar file.
        kind: str. ``learning-rate`` or ``csv-logger``; rows: ``epoch`` or ``batch``.
        added: int. Points written from the sidecar.
        replaced: int. Log values replaced by the sidecar's (learning-rate sidecar).
        differed: int. Of those, how many differed beyond float32 rounding.
        kept: int. Sidecar points not written because the log has that point (CSVLogger).
    """

    path: str
    kind: str
    rows: str
    added: int = 0
    replaced: int = 0
    differed: int = 0
    kept: int = 0


@dataclass
class MergePlan:
    """Sidecar events to add and log values to leave out, for one output run.

    Attributes:
        events: SidecarEvents (re-iterable, sized), tags final.
        drop: dict output tag -> PointSet: ``(step, wall_time)`` of the log values replaced.
        reports: list of SidecarReport, one per sidecar with points in this run.
    """

    events: SidecarEvents = field(default_factory=SidecarEvents)
    drop: dict[str, PointSet] = field(default_factory=dict)
    reports: list[SidecarReport] = field(default_factory=list)


def _differs(a: float, b: float | None) -> bool:
    if b is None:
        return True
    try:
        return _F32.pack(a) != _F32.pack(b)
    except OverflowError:
        return a != b


def _epoch_range(plan: ScannedRun, batch: bool) -> tuple[int, int] | None:
    """Steps spanned by the run's epoch-level (or batch-level) scalar tags, if any."""
    lows, highs = [], []
    for source, scan in zip(plan.sources, plan.scans, strict=True):
        for tag, stats in scan.tags.items():
            if stats.kind != "scalar":
                continue
            if batch:
                hit = source.name == TRAIN_DIR and tag.startswith("batch_")
            elif plan.layout == KERAS_FLAT:
                hit = "/" not in tag
            elif plan.layout == GENERIC:  # e.g. a converted run: every scalar series
                hit = True
            else:
                hit = source.name in (TRAIN_DIR, VALIDATION_DIR) and tag.startswith("epoch_")
            if hit:
                lows.append(min(stats.first_step, stats.last_step))
                highs.append(max(stats.first_step, stats.last_step))
    return (min(lows), max(highs)) if lows else None


def _aliases(plan: ScannedRun, mapping: TagMapping, wanted: set[str]) -> dict[str, str]:
    """Output tags of the run that hold, unconverted, what a wanted tag names.

    E.g. in a run merged without converting, ``epoch_loss`` (split) or ``loss`` (flat)
    is the epoch-level ``train/loss`` a CSVLogger column maps to.
    """
    aliases = {}
    for source, scan, tmap in zip(plan.sources, plan.scans, plan.tag_map, strict=True):
        for tag, stats in scan.tags.items():
            if stats.kind != "scalar" or tmap[tag] in wanted:
                continue
            converted = mapping.map_split(source.name, tag) if source.name else mapping.map_flat(tag)
            if converted in wanted and not tag.startswith("batch_"):
                aliases[tmap[tag]] = converted
    return aliases


def _busiest_tag(plan: ScannedRun, source_name: str, prefix: str, suffix: str = "") -> str | None:
    """The output tag of the scalar with most values among ``source_name``'s matching tags."""
    best, count = None, 0
    for source, scan, tmap in zip(plan.sources, plan.scans, plan.tag_map, strict=True):
        if source.name != source_name:
            continue
        for tag, stats in scan.tags.items():
            if tag.startswith(prefix) and tag.endswith(suffix) and stats.kind == "scalar" and stats.count > count:
                best, count = tmap[tag], stats.count
    return best


@dataclass
class _Epochs:
    """The tags a CSVLogger file's epochs are placed by, in one run."""

    aliases: dict[str, str]
    evaluation: str | None
    batches: str | None


def plan_merge(
    plan: ScannedRun,
    sidecars: Sequence[Sidecar],
    *,
    sessions: Sequence[Collection[Path]] = (),
    resync: bool = False,
    mapping: TagMapping | None = None,
) -> MergePlan:
    """Decide which sidecar points to add to one output run and which log values they replace.

    See :func:`plan_merges`, of which this is the case of one output run.
    """
    return plan_merges([plan], sidecars, sessions=sessions, resync=resync, mapping=mapping)[0]


def plan_merges(
    runs: Sequence[ScannedRun],
    sidecars: Sequence[Sidecar],
    *,
    sessions: Sequence[Collection[Path]] = (),
    resync: bool = False,
    mapping: TagMapping | None = None,
) -> list[MergePlan]:
    """Decide, for each output run, which sidecar points to add and which log values they replace.

    Args:
        runs: the output runs the sidecars' log_dir is written to: one (``convert``,
            ``merge``), or one per process (``convert --restarts split``).
        sidecars: the checked sidecar files.
        sessions: groups of the runs' event files, one per writing process
            (:func:`tbrewrite.producers.keras.split_sessions`); without them each run is
            one process.
        resync: bool. Read past damage.
        mapping: TagMapping. How a Keras tag would be converted, so a CSVLogger file
            finds its epochs' wall_times in a run that was not converted
            (``epoch_loss``, ``loss``).

    Returns:
        list of MergePlan, one per run.

    Raises:
        SidecarError: a sidecar matches no step of the runs, or a CSVLogger epoch has no
            event in them to take its wall_time from, or a sidecar changed while read.
    """
    plans = [MergePlan() for _ in runs]
    if not sidecars:
        return plans
    mapping = mapping or TagMapping()
    processes = Processes(runs, sessions)
    wanted = {t for s in sidecars for t in s.tags}
    epochs: list[_Epochs] = []
    if any(s.kind == CSV_LOGGER for s in sidecars):
        for run in runs:
            found = _Epochs(
                _aliases(run, mapping, wanted),
                _busiest_tag(run, VALIDATION_DIR, "evaluation_", "_vs_iterations"),
                _busiest_tag(run, TRAIN_DIR, "batch_"),
            )
            epochs.append(found)
            wanted.update(found.aliases)
            wanted.update(t for t in (found.evaluation, found.batches) if t)
    log = read_log(runs, processes, wanted, resync)
    forms: dict[str, str] = {}
    for run in runs:
        for scan, tmap in zip(run.scans, run.tag_map, strict=True):
            for tag, stats in scan.tags.items():
                forms.setdefault(tmap[tag], stats.form)
    reports: list[dict[int, SidecarReport]] = [{} for _ in runs]
    placed: list[list[tuple[float, int, int, SidecarPoint]]] = [[] for _ in runs]
    for order, sidecar in enumerate(sidecars):
        if sidecar.kind == CSV_LOGGER:
            _fill(runs, processes, log, epochs, sidecar, order, reports, placed)
        else:
            _replace(runs, processes, log, sidecar, order, reports, plans)
    several = len(runs) > 1
    for r, (run, merge) in enumerate(zip(runs, plans, strict=True)):
        merge.drop = {tag: points.frozen() for tag, points in merge.drop.items()}
        merge.reports = [reports[r][k] for k in sorted(reports[r])]
        streams = tuple(
            (sidecar, processes.of_run(r) if several else None)
            for k, sidecar in enumerate(sidecars)
            if sidecar.kind != CSV_LOGGER and k in reports[r] and reports[r][k].added
        )
        merge.events = SidecarEvents(
            streams,
            processes.windows,
            tuple(sorted(placed[r])),
            forms,
            "simple_value" if run.layout == KERAS_FLAT else "tensor",
            sum(s.added for s in merge.reports),
        )
    for k, sidecar in enumerate(sidecars):  # a sidecar with points in no run is reported once
        if not any(k in reports[r] for r in range(len(runs))):
            plans[0].reports.append(SidecarReport(str(sidecar.path), sidecar.kind, sidecar.rows))
    return plans


def _report(reports: list[dict[int, SidecarReport]], r: int, order: int, sidecar: Sidecar) -> SidecarReport:
    report = reports[r].get(order)
    if report is None:
        report = reports[r][order] = SidecarReport(str(sidecar.path), sidecar.kind, sidecar.rows)
    return report


def _replace(
    runs: Sequence[ScannedRun],
    processes: Processes,
    log: _Log,
    sidecar: Sidecar,
    order: int,
    reports: list[dict[int, SidecarReport]],
    plans: list[MergePlan],
) -> None:
    """Stream a learning-rate sidecar: each row to its process, replacing that process's point one for one."""
    replaceable = any(not sidecar.tags.isdisjoint(tags) for tags in log.values())
    spans = [s for s in (_epoch_range(run, batch=sidecar.rows == "batch") for run in runs) if s is not None]
    known = [_overlaps(sidecar, low, high) for low, high in spans]
    matched = not spans or any(known)
    if not replaceable and len(runs) == 1 and (matched or None not in known):
        # Nothing to replace, every row into the one run: the counts need no pass.
        if matched:
            _report(reports, 0, order, sidecar).added = sidecar.count
            return
        _no_match(sidecar, runs, spans)
    owner = processes.windows.owner
    for point in sidecar.points():
        wall_time = wall(point)
        p = owner(wall_time)
        r = processes.run[p] if p != NO_PROCESS else 0
        report = _report(reports, r, order, sidecar)
        report.added += 1
        if not matched:
            matched = any(low <= point.step <= high for low, high in spans)
        series = log.get(p, {}).get(point.tag) if replaceable else None
        taken = series.take(point.step, wall_time) if series is not None else None
        if taken is not None:
            count, at, value = taken
            report.replaced += count
            report.differed += count if _differs(point.value, value) else 0
            plans[r].drop.setdefault(point.tag, PointSet()).add(point.step, at)
    if not matched:
        _no_match(sidecar, runs, spans)


def _overlaps(sidecar: Sidecar, low: int, high: int) -> bool | None:
    """Whether a step of ``sidecar`` lies in ``low..high``, from its range and stride; None if unknown."""
    if sidecar.max_step < low or sidecar.min_step > high:
        return False
    if low <= sidecar.min_step <= high or low <= sidecar.max_step <= high:
        return True
    if sidecar.stride:  # min_step < low <= high < max_step, steps min_step + k * stride
        first = sidecar.min_step + -(-(low - sidecar.min_step) // sidecar.stride) * sidecar.stride
        return first <= high
    return None


def _no_match(sidecar: Sidecar, runs: Sequence[ScannedRun], spans: list[tuple[int, int]]) -> NoReturn:
    """Raise the error of a sidecar none of whose steps is a step of the runs."""
    column = "step" if sidecar.rows == "batch" else "epoch"
    what = "batch steps" if sidecar.rows == "batch" else "epochs"
    names = ", ".join(run.run for run in runs)
    ranges = ", ".join(f"{low}..{high}" for low, high in spans)
    raise SidecarError(
        f"{sidecar.path}: line {sidecar.first_line}, column '{column}': {column}s "
        f"{sidecar.min_step}..{sidecar.max_step} match nothing in run{'s' if len(runs) > 1 else ''} {names} "
        f"({what} {ranges})"
    )


def _batches_per_epoch(at_epoch: dict[int, float], evaluations: LogSeries) -> int | None:
    """Infer batches per epoch from an evaluation point and the epoch it closes.

    Keras writes ``evaluation_*_vs_iterations`` at step ``optimizer.iterations`` in
    ``on_test_end``, just before the epoch's own summaries in ``on_epoch_end``; after
    epoch e (0-based) ``iterations`` is ``(e + 1) * batches_per_epoch``.
    """
    for iterations, wall_time, _ in evaluations:
        later = [(t, e) for e, t in at_epoch.items() if t >= wall_time]
        if later:
            epoch = min(later)[1]
            if iterations > 0 and iterations % (epoch + 1) == 0:
                return iterations // (epoch + 1)
    return None


class _Placer:
    """Where one process's events put a CSVLogger file's epochs in time.

    In order: the earliest log event at that epoch of a tag the file also holds; the
    evaluation event of that epoch; the last batch event inside that epoch (batches per
    epoch inferred as in :func:`_batches_per_epoch`) -- the case of tensorflow#49109,
    where the epoch's own summaries were never written.
    """

    def __init__(self, log: dict[str, LogSeries], sidecar: Sidecar, epochs: _Epochs, first_epoch: int) -> None:
        self.at_epoch: dict[int, float] = {}
        tags = sidecar.tags | {alias for alias, tag in epochs.aliases.items() if tag in sidecar.tags}
        for tag in tags:
            for step, logged_at, _ in log.get(tag, _NONE):
                self.at_epoch[step] = min(logged_at, self.at_epoch.get(step, math.inf))
        self.first_epoch = first_epoch
        self.evaluations = log.get(epochs.evaluation, _NONE) if epochs.evaluation else _NONE
        self.per_epoch = _batches_per_epoch(self.at_epoch, self.evaluations)
        self.batches = log.get(epochs.batches, _NONE) if epochs.batches else _NONE

    def place(self, epoch: int) -> float | None:
        """Return the wall_time of ``epoch`` in this process, or None if it has no event to take it from."""
        wall_time = self.at_epoch.get(epoch)
        if wall_time is None and self.per_epoch:
            low, high = epoch * self.per_epoch, (epoch + 1) * self.per_epoch
            inside = [t for step, t, _ in self.evaluations if step == high]
            inside = inside or [t for step, t, _ in self.batches if low < step <= high]
            wall_time = max(inside) if inside else None
        if wall_time is None and not self.per_epoch and 0 <= epoch - self.first_epoch < len(self.evaluations):
            wall_time = self.evaluations[epoch - self.first_epoch][1]
        return wall_time


def _fill(
    runs: Sequence[ScannedRun],
    processes: Processes,
    log: _Log,
    epochs: list[_Epochs],
    sidecar: Sidecar,
    order: int,
    reports: list[dict[int, SidecarReport]],
    placed: list[list[tuple[float, int, int, SidecarPoint]]],
) -> None:
    """Place a CSVLogger file's points (one row per epoch: held) in the latest process having the epoch."""
    points = list(sidecar.points())
    first_epoch = min(p.step for p in points)
    placers: dict[int, _Placer] = {}
    have: dict[tuple[int, str], set[int]] = {}
    for seq, point in enumerate(points):
        for p in processes.latest_first:
            placer = placers.get(p)
            if placer is None:
                r = processes.run[p]
                placer = placers[p] = _Placer(log.get(p, {}), sidecar, epochs[r], first_epoch)
            wall_time = placer.place(point.step)
            if wall_time is not None:
                break
        else:
            raise SidecarError(
                f"{sidecar.path}: line {point.line}, column 'epoch': epoch {point.step} matches nothing in run "
                f"{', '.join(run.run for run in runs)} (no epoch or evaluation event to take its wall_time from)"
            )
        r = processes.run[p]
        report = _report(reports, r, order, sidecar)
        steps = have.get((p, point.tag))
        if steps is None:
            steps = have[(p, point.tag)] = set(log.get(p, {}).get(point.tag, _NONE).steps)
        if point.step in steps:
            report.kept += 1
            continue
        report.added += 1
        placed[r].append((wall_time, order, seq, point._replace(wall_time=wall_time)))

"""Merging sidecar points into a run being written: placement, de-duplication, events.

Used by ``convert --sidecar`` and ``tbrewrite merge``. Before the run is written, one
extra streaming pass reads the log's values of only the tags a sidecar touches, so that:

* a learning-rate sidecar's point replaces the log's point at the same tag and step
  (the sidecar holds the rate actually used), and the report counts how many of those
  differed beyond float32 rounding;
* a CSVLogger point is added only where the log has none at that tag and step (the
  log's value is kept), and gets the wall_time of the run's own events of that epoch;
* a sidecar matching no step of the run is an error, not a silent no-op.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from tbrewrite.engine.scan import StreamScan
from tbrewrite.errors import SidecarError
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.summary import scalar_value
from tbrewrite.producers import GENERIC, KERAS_FLAT
from tbrewrite.producers.keras import TRAIN_DIR, VALIDATION_DIR, TagMapping
from tbrewrite.sidecars.read import CSV_LOGGER, Sidecar


class ScannedRun(Protocol):
    """What sidecar placement needs to know of a scanned run.

    ``convert``'s :class:`tbrewrite.commands.convertplan.RunScan` is one.
    """

    @property
    def run(self) -> str:
        """The run's path relative to the logdir, as messages name it."""
        ...

    @property
    def layout(self) -> str:
        """The run's layout (:data:`tbrewrite.producers.KERAS_FLAT`, ...)."""
        ...

    @property
    def sources(self) -> Sequence[_Source]:
        """The run's streams (``train/``, ``validation/``, the folder itself)."""
        ...

    @property
    def scans(self) -> Sequence[StreamScan]:
        """One scan per source, in the order of :attr:`sources`."""
        ...

    @property
    def tag_map(self) -> Sequence[Mapping[str, str]]:
        """One map source tag -> output tag per source, in the order of :attr:`sources`."""
        ...


class _Source(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def files(self) -> Sequence[Path]: ...


_DT_FLOAT = 1
_F32 = struct.Struct("<f")


@dataclass
class SidecarReport:
    """What merging one sidecar did.

    Attributes:
        path: str. The sidecar file.
        kind: str. ``learning-rate`` or ``csv-logger``; rows: ``epoch`` or ``batch``.
        added: int. Points written from the sidecar.
        replaced: int. Log points replaced by the sidecar's (learning-rate sidecar).
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
    """Sidecar events to add and log points to drop, for one output run.

    Attributes:
        events: list of Event, sorted by wall_time (stable), tags final.
        drop: dict output tag -> set of steps whose log values are replaced.
        reports: list of SidecarReport.
    """

    events: list[event_pb2.Event] = field(default_factory=list)
    drop: dict[str, set[int]] = field(default_factory=dict)
    reports: list[SidecarReport] = field(default_factory=list)


def _log_points(plan: ScannedRun, wanted: set[str], resync: bool) -> dict[str, list[tuple[int, float, float | None]]]:
    """Stream the run once and return ``(step, wall_time, value)`` of the wanted output tags."""
    points: dict[str, list[tuple[int, float, float | None]]] = {}
    for source, tmap in zip(plan.sources, plan.tag_map, strict=True):
        interesting = {tag for tag, out in tmap.items() if out in wanted}
        if not interesting:
            continue
        for path in source.files:
            for event in EventFileReader(path, resync=resync).events():
                if not event.HasField("summary"):
                    continue
                for value in event.summary.value:
                    if value.tag in interesting:
                        out = tmap[value.tag]
                        points.setdefault(out, []).append((event.step, event.wall_time, scalar_value(value)))
    return points


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


def plan_merge(
    plan: ScannedRun, sidecars: list[Sidecar], *, resync: bool = False, mapping: TagMapping | None = None
) -> MergePlan:
    """Decide which sidecar points to add and which log points they replace.

    ``mapping`` (how a Keras tag would be converted) lets a CSVLogger file find its
    epochs' wall_times in a run that was not converted (``epoch_loss``, ``loss``).

    Raises:
        SidecarError: a sidecar matches no step of the run, or a CSVLogger epoch has no
            event in the run to take its wall_time from.
    """
    merge = MergePlan()
    if not sidecars:
        return merge
    wanted = {t for s in sidecars for t in s.tags}
    aliases = _aliases(plan, mapping or TagMapping(), wanted)
    wanted.update(aliases)
    evaluation = _busiest_tag(plan, VALIDATION_DIR, "evaluation_", "_vs_iterations")
    batches = _busiest_tag(plan, TRAIN_DIR, "batch_")
    wanted.update(t for t in (evaluation, batches) if t)
    log = _log_points(plan, wanted, resync)
    forms: dict[str, str] = {}
    for scan, tmap in zip(plan.scans, plan.tag_map, strict=True):
        for tag, stats in scan.tags.items():
            forms.setdefault(tmap[tag], stats.form)
    default_form = "simple_value" if plan.layout == KERAS_FLAT else "tensor"
    pending: list[tuple[float, int, event_pb2.Event]] = []
    for sidecar in sidecars:
        report = SidecarReport(str(sidecar.path), sidecar.kind, sidecar.rows)
        merge.reports.append(report)
        _check_overlap(plan, sidecar)
        if sidecar.kind == CSV_LOGGER:
            _place_epochs(plan, sidecar, log, evaluation, batches, aliases)
        have = {tag: {step: value for step, _, value in log.get(tag, [])} for tag in sidecar.tags}
        for point in sidecar.points:
            existing = have[point.tag]
            if point.step in existing:
                if not sidecar.sidecar_wins:
                    report.kept += 1
                    continue
                report.replaced += 1
                report.differed += _differs(point.value, existing[point.step])
                merge.drop.setdefault(point.tag, set()).add(point.step)
            form = forms.get(point.tag, default_form)
            assert point.wall_time is not None
            pending.append(
                (point.wall_time, len(pending), _event(point.tag, point.step, point.wall_time, point.value, form))
            )
            report.added += 1
    pending.sort(key=lambda p: (p[0], p[1]))
    merge.events = [e for _, _, e in pending]
    return merge


def _check_overlap(plan: ScannedRun, sidecar: Sidecar) -> None:
    if sidecar.kind == CSV_LOGGER:
        return
    span = _epoch_range(plan, batch=sidecar.rows == "batch")
    if span is None:
        return
    low, high = span
    if not any(low <= p.step <= high for p in sidecar.points):
        first = sidecar.points[0]
        column = "step" if sidecar.rows == "batch" else "epoch"
        steps = sorted({p.step for p in sidecar.points})
        raise SidecarError(
            f"{sidecar.path}: line {first.line}, column '{column}': {column}s {steps[0]}..{steps[-1]} match "
            f"nothing in run {plan.run} ({'batch steps' if sidecar.rows == 'batch' else 'epochs'} {low}..{high})"
        )


def _batches_per_epoch(at_epoch: dict[int, float], evaluations: list[tuple[int, float, float | None]]) -> int | None:
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


def _place_epochs(
    plan: ScannedRun,
    sidecar: Sidecar,
    log: dict[str, list[tuple[int, float, float | None]]],
    evaluation: str | None,
    batches: str | None,
    aliases: dict[str, str],
) -> None:
    """Give each CSVLogger point the wall_time of the run's own events of that epoch.

    In order: the earliest log event at that epoch of a tag the file also holds; the
    evaluation event of that epoch; the last batch event inside that epoch (batches per
    epoch inferred as in :func:`_batches_per_epoch`) -- the case of tensorflow#49109,
    where the epoch's own summaries were never written.
    """
    at_epoch: dict[int, float] = {}
    epoch_tags = sidecar.tags | {alias for alias, tag in aliases.items() if tag in sidecar.tags}
    for tag in epoch_tags:
        for step, logged_at, _ in log.get(tag, []):
            at_epoch[step] = min(logged_at, at_epoch.get(step, math.inf))
    first_epoch = min(p.step for p in sidecar.points)
    evaluation_points = log.get(evaluation, []) if evaluation else []
    per_epoch = _batches_per_epoch(at_epoch, evaluation_points)
    batch_points = log.get(batches, []) if batches else []
    for point in sidecar.points:
        wall_time = at_epoch.get(point.step)
        if wall_time is None and per_epoch:
            low, high = point.step * per_epoch, (point.step + 1) * per_epoch
            inside = [t for step, t, _ in evaluation_points if step == high]
            inside = inside or [t for step, t, _ in batch_points if low < step <= high]
            wall_time = max(inside) if inside else None
        if wall_time is None and not per_epoch and 0 <= point.step - first_epoch < len(evaluation_points):
            wall_time = evaluation_points[point.step - first_epoch][1]
        if wall_time is None:
            raise SidecarError(
                f"{sidecar.path}: line {point.line}, column 'epoch': epoch {point.step} matches nothing in run "
                f"{plan.run} (no epoch or evaluation event to take its wall_time from)"
            )
        point.wall_time = wall_time


def _event(tag: str, step: int, wall_time: float, value: float, form: str) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=wall_time, step=step)
    v = event.summary.value.add(tag=tag)
    if form == "simple_value":
        v.simple_value = value
        return event
    v.tensor.CopyFrom(tensor_pb2.TensorProto(dtype=_DT_FLOAT, float_val=[value]))
    v.tensor.tensor_shape.SetInParent()
    v.metadata.plugin_data.plugin_name = "scalars"
    v.metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return event

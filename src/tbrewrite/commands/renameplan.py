"""Planning a rename: what happens to every tag of a run, decided before any write.

:func:`plan_run` scans a run's event files (:func:`tbrewrite.engine.scan.scan_files`, one
streaming pass; memory grows with the number of tags, not events) and applies the
rules (:class:`tbrewrite.rules.RuleSet`) to each tag given its value kind. Two source
tags landing on one name are a *collision* when their step ranges overlap -- they would
interleave in one TensorBoard series, where the data server keeps only the last write
of each step (``reservoir.rs`` "Preemption") -- and are always refused when their kinds
differ; tags whose ranges do not overlap simply merge.

The hparams plugin's experiment summary (``_hparams_/experiment``) names the metric tags
the HParams dashboard reads for every session; renaming or dropping those tags would
leave the dashboard's metric columns empty. So the metric names of every experiment are
renamed or dropped as the rules rename a scalar tag of that name
(:class:`ExperimentMetrics`, applied by the engine to each experiment value). The
sessions' own summaries (``session_start_info``, ``session_end_info``) name no metric
(``tensorboard/plugins/hparams/api.proto``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorboard.compat.proto import summary_pb2

from tbrewrite.engine.plan import SourceFile, TagAction
from tbrewrite.engine.scan import scan_files
from tbrewrite.events.framing import Damage
from tbrewrite.logdir import list_event_files
from tbrewrite.rules import RuleSet


@dataclass
class TagPlan:
    """One source tag of a run and what happens to it.

    Attributes:
        tag: str. The tag as stored.
        new: str or None. Its new name (equal to ``tag`` if unchanged); None if dropped.
        kind: str. Value kind (``scalar``, ``histogram``, ...).
        count: int. Values in the run.
        min_step, max_step: int (int64). Step range over the run's files.
        metrics: list of ``(group, metric, new metric or None)``: for an hparams
            experiment tag, the metrics it names that the rules rename or drop (as
            its first value in each file names them); the engine edits every value.
    """

    tag: str
    new: str | None
    kind: str
    count: int
    min_step: int
    max_step: int
    metrics: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True if the tag is renamed or dropped."""
        return self.new != self.tag


@dataclass
class FilePlan:
    """One event file of a run, as the first pass read it.

    Attributes:
        path: Path.
        tags: frozenset of str. Tags of its summary values.
        records: int. Valid records (file_version included).
        end: int. Bytes holding those records: the offset of the first damage, or the
            file size when the pass began.
        resynced: bool. Damage was read past (``resync``): the valid records are not
            one prefix of the file.
        source: SourceFile. The engine's view of the file (size, fingerprints).
    """

    path: Path
    tags: frozenset[str]
    records: int
    end: int
    resynced: bool
    source: SourceFile


@dataclass
class RunPlan:
    """Everything decided about one run before anything is written.

    Attributes:
        run: str. The run's path relative to LOGDIR (``"."`` for LOGDIR itself).
        run_dir: Path.
        files: list of FilePlan. Its event files, in TensorBoard's order.
        rules: RuleSet the plan was made with (the experiment edits apply it).
        tags: dict tag -> TagPlan, in order of first appearance.
        metadata: dict tag -> SummaryMetadata, the first metadata seen per tag.
        damage: list of Damage.
        events: int. Events read (file_version included).
        conflicts: list of str. Tags of different kinds landing on one name: always
            refused.
        collisions: list of str. Tags landing on one name with overlapping steps:
            refused unless merging is allowed.
        merges: list of str. Merges of tags whose step ranges do not overlap.
        unstable: list of (tag, new, newer): renames a second pass would change again.
    """

    run: str
    run_dir: Path
    rules: RuleSet | None = None
    files: list[FilePlan] = field(default_factory=list)
    tags: dict[str, TagPlan] = field(default_factory=dict)
    metadata: dict[str, summary_pb2.SummaryMetadata] = field(default_factory=dict)
    damage: list[Damage] = field(default_factory=list)
    events: int = 0
    conflicts: list[str] = field(default_factory=list)
    collisions: list[str] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)
    unstable: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changes(self) -> dict[str, str | None]:
        """Return tag -> new name (None: dropped) for every tag the rules change."""
        return {t: p.new for t, p in self.tags.items() if p.changed}

    @property
    def edited(self) -> set[str]:
        """Return the tags whose values' metadata changes (hparams experiments naming renamed metrics)."""
        return {t for t, p in self.tags.items() if p.metrics}

    def action(self, tag: str) -> TagAction:
        """Return the engine's action for ``tag``.

        A renamed tag's first value gets the tag's metadata; an hparams experiment that
        names a metric the rules change gets :class:`ExperimentMetrics`.
        """
        tp = self.tags[tag]
        first = self.metadata.get(tag) if tp.changed and tp.new is not None else None
        edit = ExperimentMetrics(self.rules) if tp.metrics and self.rules is not None else None
        return TagAction(tp.new, first, edit_metadata=edit)

    def renamed(self) -> list[TagPlan]:
        """Return the tags given a new name, in order of first appearance."""
        return [p for p in self.tags.values() if p.changed and p.new is not None]

    def dropped(self) -> list[TagPlan]:
        """Return the tags whose values are dropped, in order of first appearance."""
        return [p for p in self.tags.values() if p.new is None]


def plan_run(run: str, run_dir: Path, rules: RuleSet, *, resync: bool = False) -> RunPlan:
    """Scan one run and decide what happens to each of its tags.

    Args:
        run: str. The run's name relative to LOGDIR.
        run_dir: Path. The run folder.
        rules: RuleSet.
        resync: bool. Read past damage.

    Returns:
        RunPlan, with ``conflicts`` and ``collisions`` filled in (not raised).

    Raises:
        RuleError: a rule renames a tag to the empty string or to a name holding a
            control character.
        OSError: a file cannot be read.
    """
    plan = RunPlan(run, run_dir, rules)
    tags = plan.tags
    for path in list_event_files(run_dir):
        scan = scan_files([path], resync=resync, backwards_limit=0)
        (stats,) = scan.files
        damage = stats.damage
        end = damage[0].offset if damage and not resync else stats.bytes
        plan.files.append(
            FilePlan(
                path, frozenset(scan.tags), stats.records, end, bool(damage) and resync, SourceFile.from_stats(stats)
            )
        )
        plan.damage += damage
        plan.events += scan.events
        for tag, ts in scan.tags.items():
            known = tags.get(tag)
            if known is None:
                tags[tag] = TagPlan(tag, tag, ts.kind, ts.count, ts.min_step, ts.max_step)
            else:
                known.count += ts.count
                known.min_step = min(known.min_step, ts.min_step)
                known.max_step = max(known.max_step, ts.max_step)
                if known.kind == "tensor":
                    known.kind = ts.kind
            if ts.metadata is not None:
                plan.metadata.setdefault(tag, ts.metadata)
            if ts.kind == "hparams" and ts.metadata is not None:
                for change in ExperimentMetrics(rules).changes(ts.metadata):
                    if change not in tags[tag].metrics:
                        tags[tag].metrics.append(change)
    for tp in tags.values():
        tp.new = rules.apply(tp.tag, tp.kind)
        if tp.changed and tp.new is not None:
            again = rules.apply(tp.new, tp.kind, check=False)
            if again != tp.new:
                plan.unstable.append((tp.tag, tp.new, again or "(dropped)"))
    _find_collisions(plan)
    return plan


def _find_collisions(plan: RunPlan) -> None:
    groups: dict[str, list[TagPlan]] = {}
    for tp in plan.tags.values():
        if tp.new is not None:
            groups.setdefault(tp.new, []).append(tp)
    for new, members in groups.items():
        if len(members) < 2 or not any(m.changed for m in members):
            continue
        names = " and ".join(f"'{m.tag}'" for m in members)
        kinds = sorted({m.kind for m in members})
        if len(kinds) > 1:
            plan.conflicts.append(
                f"run '{plan.run}': tags {names} would all become '{new}' but are of different "
                f"kinds ({', '.join(kinds)}); change the rules"
            )
            continue
        ranges = sorted((m.min_step, m.max_step, m.tag) for m in members)
        overlap = next(((a, b) for a, b in itertools.pairwise(ranges) if b[0] <= a[1]), None)
        if overlap is None:
            plan.merges.append(f"run '{plan.run}': tags {names} merge into '{new}' (steps do not overlap)")
            continue
        (lo1, hi1, t1), (lo2, hi2, t2) = overlap
        plan.collisions.append(
            f"run '{plan.run}': tags '{t1}' (steps {lo1}..{hi1}) and '{t2}' (steps {lo2}..{hi2}) "
            f"would both become '{new}' with overlapping steps; use --allow-merge to merge them"
        )


@dataclass(frozen=True)
class ExperimentMetrics:
    """Rename the metrics an hparams experiment names as ``rules`` rename scalar tags.

    The HParams dashboard reads each session's metric values from the tags the
    experiment's ``metric_infos`` name (``hparams/list_session_groups.py``
    ``_build_session_groups``); this keeps them naming the tags ``rename`` writes. A
    :class:`tbrewrite.engine.plan.MetadataEdit`: the engine calls it on the metadata of
    every value of the experiment tag.

    Attributes:
        rules: RuleSet.
    """

    rules: RuleSet

    def changes(self, metadata: summary_pb2.SummaryMetadata) -> list[tuple[str, str, str | None]]:
        """Return ``(group, metric, new metric or None)`` for each metric the rules change.

        Args:
            metadata: SummaryMetadata of a value. Anything but an hparams experiment
                (other plugins, session summaries, undecodable content) has none.

        Raises:
            RuleError: a rule renames a metric to a name TensorBoard cannot show.
        """
        experiment = _experiment(metadata)
        if experiment is None:
            return []
        out = []
        for info in experiment.metric_infos:
            new = self.rules.apply(info.name.tag, "scalar")
            if new != info.name.tag:
                out.append((info.name.group, info.name.tag, new))
        return out

    def __call__(self, metadata: summary_pb2.SummaryMetadata) -> bool:
        """Rename the experiment's metric tags in place; drop the dropped ones.

        Two metrics landing on one ``(group, tag)`` become one (the first's display name
        and description kept). Returns False, leaving the bytes alone, when no metric
        changes.
        """
        data = _plugin_data(metadata)
        if data is None or data.WhichOneof("data") != "experiment":
            return False
        infos = data.experiment.metric_infos
        if not any(self.rules.apply(i.name.tag, "scalar") != i.name.tag for i in infos):
            return False
        kept = []
        seen: set[tuple[str, str]] = set()
        for info in infos:
            new = self.rules.apply(info.name.tag, "scalar")
            if new is None or (info.name.group, new) in seen:
                continue
            seen.add((info.name.group, new))
            info.name.tag = new
            kept.append(info)
        del infos[:]
        infos.extend(kept)
        metadata.plugin_data.content = data.SerializeToString()
        return True


_HPARAMS_PLUGIN = "hparams"  # tensorboard/plugins/hparams/metadata.py PLUGIN_NAME


def _plugin_data(metadata: summary_pb2.SummaryMetadata) -> Any:
    """Return the ``HParamsPluginData`` of an hparams value's metadata, or None."""
    if metadata.plugin_data.plugin_name != _HPARAMS_PLUGIN:
        return None
    from google.protobuf.message import DecodeError
    from tensorboard.plugins.hparams import plugin_data_pb2

    try:
        return plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content)
    except DecodeError:
        return None


def _experiment(metadata: summary_pb2.SummaryMetadata) -> Any:
    """Return the ``Experiment`` an hparams value's metadata holds, or None."""
    data = _plugin_data(metadata)
    return data.experiment if data is not None and data.WhichOneof("data") == "experiment" else None

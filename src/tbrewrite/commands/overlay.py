"""``overlay`` (and ``convert --overlay``): train and val of each metric in one chart.

TensorBoard draws ``train/loss`` and ``val/loss`` as two cards; users want one chart
with both curves (keras#6854, keras-contrib#395, tensorboardX#131), which TensorBoard's
Custom Scalars dashboard draws from a *layout* (``tensorboard/plugins/custom_scalar``:
``layout.proto``; the ``custom_scalars__config__`` tag, a rank-0 DT_STRING tensor holding
the serialized ``Layout``, with the plugin's metadata -- what its ``summary.pb`` writes,
built here without TensorFlow). Its plugin merges the layouts of every run, dropping
charts it has already (``custom_scalars_plugin.py`` ``layout_impl``), so each run gets
its own and the dashboard shows each chart once.

The layout of a run has one category, ``<train> vs <val> (<pattern>)``, with one
multiline chart per metric that both splits have, holding exactly ``train/<metric>`` and
``val/<metric>`` (anchored, escaped regexes), and the learning rate (a metric named
``learning_rate``, ``batch_learning_rate`` or ``lr``) in a chart of its own.

``overlay LOGDIR`` adds one small event file per run holding such tags,
``events.out.tfevents.<run start>.tbrewrite-overlay`` (a file_version and the layout at
step 0, at the run's first wall_time), replacing one an earlier ``overlay`` wrote; no
other file is touched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import metadata as custom_scalars

from tbrewrite.engine.scan import scan_files
from tbrewrite.errors import InputError
from tbrewrite.events.framing import Damage
from tbrewrite.events.writer import output_file_name
from tbrewrite.logdir import check_dir, list_event_files
from tbrewrite.logdir import runs as run_folders
from tbrewrite.output.transaction import Transaction
from tbrewrite.producers.keras import TagMapping
from tbrewrite.storage import local_path

SUFFIX = "tbrewrite-overlay"
LEARNING_RATES = ("learning_rate", "batch_learning_rate", "lr")
_DT_STRING = 7


def build_layout(tags: Iterable[str], mapping: TagMapping) -> layout_pb2.Layout | None:
    """Return the layout for a run holding ``tags``, or None if no chart would have two curves.

    Args:
        tags: the run's tags.
        mapping: TagMapping: the split names and the pattern the tags were written with.
    """
    splits = (mapping.train_name, mapping.val_name)
    pieces = re.split(r"(\{split\}|\{metric\})", mapping.pattern)
    regex = "".join(
        "(?P<split>" + "|".join(re.escape(s) for s in splits) + ")"
        if p == "{split}"
        else "(?P<metric>.+)"
        if p == "{metric}"
        else re.escape(p)
        for p in pieces
    )
    found: dict[str, dict[str, str]] = {}  # metric -> split -> tag
    for tag in tags:
        match = re.fullmatch(regex, tag)
        if match is not None:
            found.setdefault(match["metric"], {})[match["split"]] = tag
    charts = []
    for metric in sorted(m for m in found if m not in LEARNING_RATES):
        if len(found[metric]) == 2:
            charts.append(_chart(metric, [found[metric][s] for s in splits]))
    for metric in LEARNING_RATES:
        if metric in found:
            charts.append(_chart(metric, [found[metric][s] for s in splits if s in found[metric]]))
    if not any(len(c.multiline.tag) == 2 for c in charts):
        return None
    title = f"{mapping.train_name} vs {mapping.val_name} ({mapping.pattern})"
    return layout_pb2.Layout(category=[layout_pb2.Category(title=title, chart=charts)])


def _chart(title: str, tags: list[str]) -> layout_pb2.Chart:
    return layout_pb2.Chart(
        title=title, multiline=layout_pb2.MultilineChartContent(tag=[f"^{re.escape(t)}$" for t in tags])
    )


def layout_event(layout: layout_pb2.Layout, wall_time: float) -> event_pb2.Event:
    """The Event TensorBoard's custom_scalars plugin reads a layout from (step 0)."""
    tensor = tensor_pb2.TensorProto(
        dtype=_DT_STRING, tensor_shape=tensor_shape_pb2.TensorShapeProto(), string_val=[layout.SerializeToString()]
    )
    value = summary_pb2.Summary.Value(
        tag=custom_scalars.CONFIG_SUMMARY_TAG, metadata=custom_scalars.create_summary_metadata(), tensor=tensor
    )
    return event_pb2.Event(wall_time=wall_time, step=0, summary=summary_pb2.Summary(value=[value]))


@dataclass
class OverlayRun:
    """One run's layout.

    Attributes:
        run: str. Its path relative to LOGDIR.
        layout: Layout or None (no metric with both splits).
        path: Path or None. The layout file (written, or to be written on a dry run).
    """

    run: str
    layout: layout_pb2.Layout | None
    path: Path | None


@dataclass
class OverlayReport:
    """What ``overlay`` did: one OverlayRun per run of LOGDIR, in walk order.

    Attributes:
        runs: list of OverlayRun.
        damage: list of Damage. Every damaged stretch of the runs' event files (their tags
            are read up to it).
    """

    runs: list[OverlayRun] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)


def overlay(
    logdir: str | os.PathLike[str], *, mapping: TagMapping | None = None, dry_run: bool = False
) -> OverlayReport:
    """Add a custom_scalars layout to every run under ``logdir`` holding train and val tags.

    Args:
        logdir: str or PathLike. A tree of runs (e.g. ``convert``'s output).
        mapping: TagMapping the tags follow (default ``train``/``val``, ``{split}/{metric}``).
        dry_run: bool. Decide the layouts; write nothing.

    Returns:
        OverlayReport.

    Raises:
        InputError: ``logdir`` is missing or holds no runs.
        OSError: reading or writing failed; nothing is left behind.
    """
    root = local_path(logdir, "LOGDIR")
    check_dir(root, "LOGDIR")
    mapping = mapping or TagMapping()
    report = OverlayReport()
    folders = list(run_folders(root))
    if not folders:
        raise InputError(f"{root}: no event files found (names containing 'tfevents')")
    with Transaction(root) as outputs:
        for folder in folders:
            files = [p for p in list_event_files(folder.path) if not p.name.endswith("." + SUFFIX)]
            scan = scan_files(files, backwards_limit=0)
            report.damage += scan.damage
            layout = build_layout(scan.tags, mapping)
            if layout is None:
                report.runs.append(OverlayRun(folder.rel, None, None))
                continue
            start = scan.first_wall_time
            start = start if start is not None and 0 <= start < 1e10 else 0.0
            path = folder.path / output_file_name(start, SUFFIX)
            report.runs.append(OverlayRun(folder.rel, layout, path))
            if dry_run:
                continue
            writer = outputs.open(path, wall_time=start)
            writer.write_event(layout_event(layout, start))
            outputs.stage(writer)
            for old in folder.path.glob(f"events.out.tfevents.*.{SUFFIX}"):
                if old != path:
                    old.unlink()
        outputs.publish_all()
    return report

"""``plot``: the scalar curves of a run or a tree as one PNG or SVG, without TensorBoard.

One panel per metric, sorted by name; the splits (``train``, ``val``, ...) and runs of that
metric are overlaid in it; learning-rate metrics get panels of their own, after the others.
Series of up to :data:`MARKERS_UP_TO` points get a dot on each point. Values are
read with ``export``'s reader (:func:`tbrewrite.commands.export.iter_scalars`), so a panel
shows exactly the points ``export`` writes. matplotlib is an optional dependency
(``pip install 'tbrewrite[plot]'``), imported only when a figure is drawn.

How a tag becomes a panel and a line (:func:`panel_of`): a tag ``{split}/{metric}``
(``train/loss``, what ``convert`` writes) or ``{metric}/{split}`` (``--pattern
'{metric}/{split}'``) is the metric's line for that split; Keras 2's ``val_<metric>`` is
``val``'s line of ``<metric>``; any other tag is a metric of its own, whose line is named by
the run's split folder (Keras's ``train/`` and ``validation/`` runs, unconverted) or the run.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tbrewrite.commands.export import iter_scalars
from tbrewrite.errors import InputError, OutputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.storage import local_path

__all__ = ["FORMATS", "SPLITS", "X_AXES", "Plot", "Series", "panel_of", "plot", "read_series", "smooth"]

SPLITS = frozenset({"train", "training", "val", "validation", "valid", "test", "testing", "eval", "evaluation"})
"""Tag components and run folders read as the split a curve belongs to."""
LEARNING_RATES = frozenset({"learning_rate", "lr", "epoch_learning_rate", "epoch_lr", "batch_learning_rate"})
"""Metrics drawn on panels of their own, after the others."""
X_AXES = ("step", "wall_time", "relative")
FORMATS = ("png", "svg")
PANEL_WIDTH, PANEL_HEIGHT = 4.8, 3.2
"""Inches per panel."""
MAX_COLUMNS = 3
MARKERS_UP_TO = 50
DPI = 100
METADATA: dict[str, dict[str, Any]] = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
"""File metadata: none that changes between runs or versions, so the same log gives the same bytes."""
STYLE = {"svg.hashsalt": "tbrewrite", "svg.fonttype": "path", "font.family": "DejaVu Sans", "font.size": 9}
"""matplotlib settings in force while drawing: SVG ids from a fixed salt, text as paths in the
font matplotlib ships, so the picture does not depend on the fonts installed."""


def smooth(values: Sequence[float], weight: float) -> list[float]:
    """Return ``values`` smoothed as TensorBoard's scalar charts smooth them.

    TensorBoard's ``classicSmoothing`` (``tensorboard/webapp/widgets/line_chart_v2/
    data_transformer.ts``, tensorflow/tensorboard@412c86e5): a debiased exponential moving
    average. ``last = last * weight + (1 - weight) * value``, starting from ``last = 0``,
    and each finite value becomes ``last / (1 - weight ** n)`` (``n`` counts the finite
    values so far; no division when ``weight == 1``). Non-finite values are kept as they are
    and skipped by the average, and a constant series is returned unchanged
    (tensorflow/tensorboard#786); ``weight`` outside ``[0, 1]`` is clamped and a
    non-finite one is 0, as there.

    Args:
        values: the series, in step order.
        weight: float. TensorBoard's "Smoothing" slider, 0 (none) to 0.999.

    Returns:
        list of float, one per value.

    Example:
        >>> smooth([1.0, 0.0], 0.5)
        [1.0, 0.3333333333333333]
    """
    weight = max(0.0, min(weight, 1.0)) if math.isfinite(weight) else 0.0
    if all(v == values[0] for v in values):  # JavaScript's ==: NaN is never constant
        return list(values)
    last = 0.0
    finite = 0
    out = []
    for value in values:
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1 - weight) * value
        finite += 1
        debias = 1.0 if weight == 1 else 1 - weight**finite
        out.append(last / debias)
    return out


@dataclass
class Series:
    """The points of one tag of one run, in file order.

    Attributes:
        run: str. The run's folder relative to PATH (``"."`` for PATH).
        tag: str.
        metric: str. The panel it is drawn in.
        label: str. Its line's name in the legend (the split, with the run when a tree
            holds several).
        steps, wall_times, values: lists of int, float seconds, float.
    """

    run: str
    tag: str
    metric: str
    label: str
    steps: list[int] = field(default_factory=list)
    wall_times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


@dataclass
class Plot:
    """What ``plot`` drew.

    Attributes:
        panels: list of str. The metrics, one panel each, in drawing order.
        series: list of Series, every line's points.
        damage: list of Damage. Damaged input (everything before it is drawn).
        figure: the matplotlib ``Figure`` (its axes in ``panels`` order).
    """

    panels: list[str]
    series: list[Series]
    damage: list[Damage]
    figure: Any


def panel_of(run: str, tag: str) -> tuple[str, str, str]:
    """Return ``(metric, split, run group)`` of a tag (see the module doc).

    ``run group`` is the run with a trailing split folder removed (``"."`` if nothing is
    left), so that Keras's ``train/`` and ``validation/`` runs of one ``log_dir`` are one group.

    Example:
        >>> panel_of(".", "val/loss"), panel_of("fit/validation", "epoch_loss")
        (('loss', 'val', '.'), ('epoch_loss', 'validation', 'fit'))
    """
    folders = run.split("/")
    parts = tag.split("/")
    if len(parts) > 1 and parts[0] in SPLITS:
        return "/".join(parts[1:]), parts[0], run
    if len(parts) > 1 and parts[-1] in SPLITS:
        return "/".join(parts[:-1]), parts[-1], run
    if tag.startswith("val_") and len(tag) > 4:
        return tag[4:], "val", run
    if folders[-1] in SPLITS:
        return tag, folders[-1], "/".join(folders[:-1]) or "."
    return tag, "", run


def read_series(path: str | os.PathLike[str], *, tags: str | None = None) -> tuple[list[Series], list[Damage]]:
    """Read the scalars under ``path`` into one :class:`Series` per (run, tag).

    Args:
        path: a logdir, a run, or one event file.
        tags: str or None. A regular expression; only tags it matches (``re.search``, as
            TensorBoard's tag filter) are read.

    Returns:
        (series in order of first appearance, damage found).

    Raises:
        UsageError: ``tags`` is not a regular expression.
        InputError: ``path`` is missing or holds no event files.
    """
    try:
        pattern = re.compile(tags) if tags is not None else None
    except re.error as e:
        raise UsageError(f"--tags {tags!r}: not a regular expression ({e})") from None
    damage: list[Damage] = []
    found: dict[tuple[str, str], tuple[Series, str, str]] = {}
    for row in iter_scalars(path, damage=damage):
        key = (row.run, row.tag)
        entry = found.get(key)
        if entry is None:
            if pattern is not None and not pattern.search(row.tag):
                continue
            metric, split, group = panel_of(row.run, row.tag)
            entry = found[key] = (Series(row.run, row.tag, metric, ""), split, group)
        series = entry[0]
        series.steps.append(row.step)
        series.wall_times.append(row.wall_time)
        series.values.append(row.value)
    groups = {group for _, _, group in found.values()}
    for series, split, group in found.values():
        name = split or (series.tag if series.run == "." else series.run)
        series.label = name if len(groups) == 1 else f"{group} {split}".strip()
    return [series for series, _, _ in found.values()], damage


def _panels(series: Iterable[Series]) -> list[str]:
    """The metrics in drawing order: sorted as TensorBoard sorts tags, learning rates last."""
    metrics = sorted({s.metric for s in series})
    return [m for m in metrics if m not in LEARNING_RATES] + [m for m in metrics if m in LEARNING_RATES]


def _x(series: Series, x: str) -> tuple[list[Any], str]:
    """The x values of ``series`` and the axis label.

    ``relative`` is TensorBoard's: hours since the series' first value
    (``vz_chart_helpers/vz-chart-helpers.ts`` ``relativeAccessor``: ``(wall_time -
    data[0].wall_time) / (60 * 60 * 1000)`` over one run's points of one tag).
    """
    if x == "step":
        return list(series.steps), "step"
    if x == "wall_time":
        return [datetime.fromtimestamp(t, timezone.utc) for t in series.wall_times], "wall time (UTC)"
    start = series.wall_times[0] if series.wall_times else 0.0
    return [(t - start) / 3600 for t in series.wall_times], "relative time (hours)"


def draw(series: list[Series], *, x: str = "step", smoothing: float = 0.0, log_scale: bool = False) -> Any:
    """Return a matplotlib ``Figure`` of ``series``: one panel per metric (see the module doc).

    Each line has ``gid`` ``run + TAB + tag``; with ``smoothing`` the raw points are drawn
    faint under the smoothed line, whose ``gid`` ends in ``TAB + "smoothed"`` (as TensorBoard
    draws them).

    Raises:
        InputError: matplotlib is not installed.
    """
    _matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    panels = _panels(series)
    columns = min(MAX_COLUMNS, max(len(panels), 1))
    rows = max(math.ceil(len(panels) / columns), 1)
    figure = Figure(figsize=(PANEL_WIDTH * columns, PANEL_HEIGHT * rows), dpi=DPI, layout="constrained")
    colors: dict[str, str] = {}
    for k, metric in enumerate(panels):
        axes = figure.add_subplot(rows, columns, k + 1)
        axes.set_title(metric)
        label = "step"
        for s in (s for s in series if s.metric == metric):
            color = colors.setdefault(s.label, f"C{len(colors) % 10}")
            xs, label = _x(s, x)
            gid = f"{s.run}\t{s.tag}"
            marker = "o" if len(s.values) <= MARKERS_UP_TO else None
            if smoothing > 0:
                axes.plot(xs, s.values, color=color, alpha=0.25, linewidth=1, gid=gid)
                smoothed = smooth(s.values, smoothing)
                axes.plot(xs, smoothed, color=color, lw=1.5, marker=marker, ms=3, gid=f"{gid}\tsmoothed", label=s.label)
            else:
                axes.plot(xs, s.values, color=color, linewidth=1.5, marker=marker, ms=3, gid=gid, label=s.label)
        axes.set_xlabel(label)
        if x == "step":
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_scale:
            axes.set_yscale("log")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
    if x == "wall_time":
        figure.autofmt_xdate()
    return figure


def plot(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    x: str = "step",
    tags: str | None = None,
    smoothing: float = 0.0,
    log_scale: bool = False,
    force: bool = False,
) -> Plot:
    """Draw the scalar curves under ``path`` into ``out`` (``.png`` or ``.svg``).

    Args:
        path: a logdir, a run, or one event file.
        out: the picture; its suffix picks the format.
        x: ``"step"``, ``"wall_time"`` (UTC dates) or ``"relative"`` (hours since the
            curve's first value, as TensorBoard's "Relative").
        tags: str or None. A regular expression; only tags it matches are drawn.
        smoothing: float in [0, 1). TensorBoard's smoothing weight (:func:`smooth`).
        log_scale: bool. Logarithmic y axes.
        force: bool. Replace ``out`` if it exists.

    Returns:
        Plot: the panels, the series drawn and the damage found.

    Raises:
        UsageError: a bad ``x``, ``smoothing`` or ``tags``, or ``out`` not ``.png``/``.svg``.
        InputError: ``path`` is missing or holds no scalars (matching ``tags``), or
            matplotlib is not installed.
        OutputError: ``out`` exists and ``force`` is not set.

    Example:
        >>> plot("converted/keras3_run", "curves.png", smoothing=0.6)  # doctest: +SKIP
    """
    path = local_path(path)
    out = local_path(out, "OUT")
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UsageError(f"{out}: cannot tell the format; use a .png or .svg name")
    if x not in X_AXES:
        raise UsageError(f"--x {x!r}: use one of {', '.join(X_AXES)}")
    if not 0 <= smoothing < 1:
        raise UsageError(f"--smoothing {smoothing}: use a weight from 0 (none) to below 1, as TensorBoard's slider")
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists; use --force to replace it")
    matplotlib = _matplotlib()
    series, damage = read_series(path, tags=tags)
    if not series:
        raise InputError(f"{path}: no scalars" + (f" with tags matching {tags!r}" if tags is not None else ""))
    with matplotlib.rc_context(STYLE):
        figure = draw(series, x=x, smoothing=smoothing, log_scale=log_scale)
        temp = out.with_name(f".{out.name}.tbrewrite-partial")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(temp, format=fmt, metadata=METADATA[fmt])
            os.replace(temp, out)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
    return Plot(_panels(series), series, damage, figure)


def _matplotlib() -> Any:
    """Return the ``matplotlib`` module, or raise the one-line error saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        raise InputError("plot needs matplotlib: pip install 'tbrewrite[plot]'") from None
    return matplotlib

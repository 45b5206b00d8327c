"""``tbrewrite inspect PATH [--json]``."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tbrewrite.cli._app import app, err, errors_to_exit, exit_code, out, report_damage

if TYPE_CHECKING:  # the command's modules are imported when it runs: each command starts fast
    from tbrewrite.commands.inspect import InspectedRun, LogdirReport
    from tbrewrite.sparkline import Sparkline


@app.command("inspect")
def inspect_command(
    path: Annotated[Path, typer.Argument(help="A logdir, a run folder, or one event file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document (schema in the README).")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    no_sparklines: Annotated[
        bool, typer.Option("--no-sparklines", help="Do not draw each scalar tag's curve (saves a second read).")
    ] = False,
) -> None:
    """Show what a log holds: runs, files, tags and their curves, Keras layout, restarts and damage.

    Example: tbrewrite inspect logs/fit --json
    """
    with errors_to_exit():
        from tbrewrite.commands.inspect import inspect_logdir

        report = inspect_logdir(path, resync=resync)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=1, allow_nan=False))
    else:
        for run in report.runs:
            _print_run(run)
            if not no_sparklines:
                with errors_to_exit():
                    from tbrewrite.commands.inspect import sparklines

                    curves = sparklines(run, resync=resync)
                _print_curves(run, curves)
        _print_summary(report)
    report_damage(report.damage)
    for run in report.runs:
        for warning in run.warnings:
            err.print(f"tbrewrite: warning: {run.run}: {warning}", markup=False)
    raise typer.Exit(exit_code(report.damage))


def _time_range(first: float, last: float) -> str:
    """Return ``"YYYY-mm-dd HH:MM:SS +duration"`` (UTC) for a wall_time range in seconds."""
    try:
        start = datetime.fromtimestamp(first, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{first}..{last}"
    span = last - first
    if not span >= 0:
        return f"{start} .. {last}"
    minutes, seconds = divmod(int(span), 60)
    hours, minutes = divmod(minutes, 60)
    duration = f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s" if minutes else f"{span:.0f}s"
    return f"{start} +{duration}"


def _print_run(run: InspectedRun) -> None:
    from tbrewrite.commands.inspect import EVENT_KINDS

    where = run.layout
    if run.split:
        where += f": {run.split}/ of the Keras log_dir {run.log_dir}"
    elif run.split is not None:
        where += ": the Keras log_dir itself"
    if not run.tensorboard_run:
        where += "; TensorBoard does not load it: profiler placeholders only"
    out.print(f"\n[bold]{escape(run.run)}[/bold] ({escape(where)})")
    files = Table(title_justify="left", show_edge=False)
    for column in ("file", "records", "bytes", "damage"):
        files.add_column(column, justify="right" if column in ("records", "bytes") else "left", overflow="fold")
    for f in run.files:
        damage = "; ".join(f"{d.kind} at byte {d.offset}" for d in f.damage) or "-"
        name = Path(f.name).name + ("" if f.loaded else " (skipped by TensorBoard)")
        files.add_row(Text(name), str(f.stats.records), str(f.stats.bytes), Text(damage))
    out.print(files)
    if run.scan.tags:
        tags = Table(show_edge=False)
        for column in ("tag", "kind", "form", "values", "steps", "wall time (UTC)"):
            tags.add_column(column, justify="right" if column == "values" else "left", overflow="fold")
        for t in run.tags:
            tags.add_row(
                Text(t.tag),
                t.kind,
                t.form,
                str(t.count),
                f"{t.first_step}..{t.last_step}",
                _time_range(t.first_wall_time, t.last_wall_time),
            )
        out.print(tags)
    kinds = run.scan.event_kinds
    other = [f"{kinds[k]} {k}" for k in EVENT_KINDS[2:] if kinds.get(k)]
    other += [f"{n} {k}" for k, n in kinds.items() if k not in EVENT_KINDS]
    if other:
        out.print("other events: " + ", ".join(other), markup=False)
    for t in run.restarts():
        _, prev, step = t.backwards[0]
        out.print(
            f"steps of '{t.tag}' go backwards or repeat {t.backwards_count} time(s) (first {prev} -> {step})",
            markup=False,
        )


def _number(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _print_curves(run: InspectedRun, curves: dict[str, Sparkline]) -> None:
    """One row per scalar tag: its steps, sparkline (values in read order), min, max and last value."""
    if not curves:
        return
    steps = {t.tag: f"{t.first_step}..{t.last_step}" for t in run.tags}
    table = Table(show_edge=False)
    table.add_column("scalar", overflow="fold")
    table.add_column("steps", no_wrap=True)
    table.add_column("curve", no_wrap=True)
    for column in ("min", "max", "last"):
        table.add_column(column, justify="right", no_wrap=True)
    for tag, line in curves.items():
        other = [f"{n} {k}" for n, k in ((line.nan, "nan"), (line.posinf, "+inf"), (line.neginf, "-inf")) if n]
        curve = Text(line.render(), style="cyan")
        if other:
            curve.append(" " + ", ".join(other), style="red")
        table.add_row(Text(tag), steps[tag], curve, _number(line.min), _number(line.max), _number(line.last))
    out.print(table)


def _print_summary(report: LogdirReport) -> None:
    files = [f for r in report.runs for f in r.files]
    damaged = sum(1 for f in files if f.damage)
    tags = sum(len(r.scan.tags) for r in report.runs)
    events = sum(r.scan.events for r in report.runs)
    out.print(
        f"\n{len(report.runs)} run(s), {len(files)} file(s), {events} events, {tags} tags; {damaged} damaged file(s)",
        markup=False,
    )

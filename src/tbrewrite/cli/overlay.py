"""``tbrewrite overlay LOGDIR``: a Custom Scalars layout, train and val of each metric in one chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tbrewrite.cli._app import app, errors_to_exit, exit_code, out, report_damage

if TYPE_CHECKING:
    from tbrewrite.commands.overlay import OverlayReport


@app.command("overlay")
def overlay_command(
    logdir: Annotated[Path, typer.Argument(metavar="LOGDIR", help="A tree of runs with train/... and val/... tags.")],
    train_name: Annotated[str, typer.Option("--train-name", help="Split name of training tags.")] = "train",
    val_name: Annotated[str, typer.Option("--val-name", help="Split name of validation tags.")] = "val",
    pattern: Annotated[
        str, typer.Option("--pattern", help="Tag pattern: '{split}/{metric}' or '{metric}/{split}'.")
    ] = "{split}/{metric}",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the charts; write nothing.")] = False,
) -> None:
    """Add a Custom Scalars layout to each run: one chart per metric with its train and val curves.

    Adds one small event file per run (events.out.tfevents.<start>.tbrewrite-overlay); no other
    file changes.

    Example: tbrewrite overlay converted
    """
    from tbrewrite.commands.overlay import overlay
    from tbrewrite.producers.keras import TagMapping

    with errors_to_exit():
        report = overlay(logdir, mapping=TagMapping(train_name, val_name, pattern), dry_run=dry_run)
    print_overlay(report, dry_run)
    report_damage(report.damage)
    raise typer.Exit(exit_code(report.damage))


def print_overlay(report: OverlayReport, dry_run: bool) -> None:
    """Print each run's charts and one summary line."""
    runs = [r for r in report.runs if r.layout is not None]
    for run in runs:
        assert run.layout is not None
        for category in run.layout.category:
            for chart in category.chart:
                tags = " + ".join(t.strip("^$").replace("\\", "") for t in chart.multiline.tag)
                out.print(f"{run.run}: chart {chart.title!r}: {tags}", markup=False)
    verb = "would add" if dry_run else "added"
    charts = sum(len(c.chart) for r in runs if r.layout is not None for c in r.layout.category)
    out.print(
        f"overlay: {verb} a layout of {charts} chart(s) to {len(runs)} of {len(report.runs)} run(s)", markup=False
    )

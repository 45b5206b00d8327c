"""``tbrewrite plot PATH -o FILE.png|svg``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tbrewrite.cli._app import app, errors_to_exit, exit_code, out, report_damage


@app.command("plot")
def plot_command(
    path: Annotated[Path, typer.Argument(help="A logdir, a run folder, or one event file.")],
    dst: Annotated[
        Path, typer.Option("-o", "--out", metavar="FILE", help="The picture to write: FILE.png or FILE.svg.")
    ],
    x: Annotated[
        str, typer.Option("--x", help="x axis: step, wall_time (UTC) or relative (hours since a curve's first value).")
    ] = "step",
    tags: Annotated[str | None, typer.Option("--tags", metavar="REGEX", help="Draw only the tags it matches.")] = None,
    smoothing: Annotated[
        float, typer.Option("--smoothing", help="TensorBoard's smoothing weight, 0 (none) to below 1.")
    ] = 0.0,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="Logarithmic y axes.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
) -> None:
    """Draw the scalar curves: one panel per metric, train and val (and every run) overlaid.

    Needs matplotlib (pip install 'tbrewrite[plot]'); no TensorFlow, no TensorBoard server.

    Example: tbrewrite plot converted/keras3_run -o curves.png --smoothing 0.6
    """
    with errors_to_exit():
        from tbrewrite.commands.plot import plot

        drawn = plot(path, dst, x=x, tags=tags, smoothing=smoothing, log_scale=log_scale, force=force)
    report_damage(drawn.damage)
    points = sum(len(s.values) for s in drawn.series)
    out.print(
        f"plotted {len(drawn.series)} curve(s), {points} points, in {len(drawn.panels)} panel(s) to {dst}", markup=False
    )
    raise typer.Exit(exit_code(drawn.damage))

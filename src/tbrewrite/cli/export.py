"""``tbrewrite export PATH OUT``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tbrewrite.cli._app import app, errors_to_exit, exit_code, out, report_damage


@app.command("export")
def export_command(
    path: Annotated[Path, typer.Argument(help="A logdir, a run folder, or one event file.")],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="The table to write: OUT.csv or OUT.parquet.")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet (default: from OUT's suffix).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
) -> None:
    """Write every scalar as a tidy table: run, tag, step, wall_time, value, dtype.

    Example: tbrewrite export converted scalars.csv
    """
    with errors_to_exit():
        from tbrewrite.commands.export import export

        rows, damage = export(path, dst, fmt=fmt, force=force)
    report_damage(damage)
    out.print(f"exported {rows} scalar values to {dst}", markup=False)
    raise typer.Exit(exit_code(damage))

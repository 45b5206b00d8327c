"""``tbrewrite export PATH OUT [--kind KIND ...]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tbrewrite.cli._app import app, errors_to_exit, exit_code, out, report_damage

_TABLE_SUFFIXES = (".csv", ".parquet")


@app.command("export")
def export_command(
    path: Annotated[Path, typer.Argument(help="A logdir, a run folder, or one event file.")],
    dst: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            help="The table to write (OUT.csv or OUT.parquet), or with --kind a folder of one table per kind.",
        ),
    ],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or parquet (default: from OUT's suffix).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="scalars, histograms, text, hparams, images, audio or all (repeat or separate with commas); "
            "writes the folder OUT (Parquet unless --format csv) unless OUT names one table.",
        ),
    ] = None,
    tags: Annotated[str | None, typer.Option("--tags", help="Only tags this regular expression finds.")] = None,
    steps: Annotated[
        str | None, typer.Option("--steps", help="Only these steps: START:STOP, START:STOP:STRIDE or one step.")
    ] = None,
    partition: Annotated[
        bool,
        typer.Option(
            "--partition-by-run",
            help="With --kind: each table a Parquet dataset partitioned by run (TABLE.parquet/run=RUN/).",
        ),
    ] = False,
) -> None:
    """Write the log's data as tables: every scalar by default; every kind with --kind all.

    Without --kind: one table of scalars (run, tag, step, wall_time, value, dtype).
    With --kind: OUT is a folder with a table per kind, images and audio as files
    (OUT/images/RUN/TAG/STEP.png) with an index table, and export_summary.json; what was
    left out (graphs, tensors, other files, ...) is printed with the reason.

    Example: tbrewrite export logs exported --kind all
    """
    with errors_to_exit():
        from tbrewrite.frames.filters import parse_steps

        window = parse_steps(steps) if steps is not None else None
        if kind is None and tags is None and window is None and not partition:
            from tbrewrite.commands.export import export

            rows, damage = export(path, dst, fmt=fmt, force=force)
        else:
            kinds = ",".join(kind or ["scalars"])
            if dst.suffix.lower() in _TABLE_SUFFIXES or (fmt and kind is None):
                from tbrewrite.commands.export_kinds import export_table

                rows, damage = export_table(path, dst, kind=kinds, fmt=fmt, force=force, tags=tags, steps=window)
            else:
                from tbrewrite.commands.export_kinds import export_kinds

                summary = export_kinds(
                    path,
                    dst,
                    kinds=kinds,
                    fmt=fmt or "parquet",
                    force=force,
                    tags=tags,
                    steps=window,
                    partition=partition,
                )
                report_damage(summary.damage)
                print_summary(summary)
                raise typer.Exit(exit_code(summary.damage))
    report_damage(damage)
    out.print(f"exported {rows} {_noun(kind)} to {dst}", markup=False)
    raise typer.Exit(exit_code(damage))


def _noun(kind: list[str] | None) -> str:
    name = ",".join(kind or ["scalars"])
    return "scalar values" if name == "scalars" else f"{name} rows"


def print_summary(summary: object) -> None:
    """Print what an export wrote per kind, and what it left out and why."""
    from tbrewrite.commands.export_kinds import ExportSummary

    assert isinstance(summary, ExportSummary)
    for k in summary.exported:
        files = f", {k.files} files" if k.kind in ("images", "audio") else ""
        out.print(f"exported {k.rows} {k.kind} rows{files} to {summary.out}/{k.tables[0]}", markup=False)
    for x in summary.left_out:
        examples = f": {', '.join(x.examples)}" if x.examples else ""
        more = ", ..." if x.examples and x.count > len(x.examples) else ""
        out.print(f"left out {x.count} {x.what} ({x.reason}){examples}{more}", markup=False)

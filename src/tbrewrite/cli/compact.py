"""``tbrewrite compact LOGDIR [--scalars N] [--images K] [--histograms K] [--drop-graphs] (--out DIR | --in-place)``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tbrewrite.cli._app import (
    EXIT_USAGE,
    app,
    err,
    errors_to_exit,
    exit_code,
    out,
    report_damage,
    where_written,
)

if TYPE_CHECKING:  # the command's modules are imported when it runs
    from tbrewrite.commands.compact import CompactReport


@app.command("compact")
def compact_command(
    logdir: Annotated[Path, typer.Argument(metavar="LOGDIR", help="A tree of runs (folders holding event files).")],
    scalars: Annotated[
        int,
        typer.Option(
            "--scalars",
            metavar="N",
            help="At most N points per scalar tag: each step bucket keeps its first, min, max, last (and first NaN).",
        ),
    ] = 2000,
    images: Annotated[
        int, typer.Option("--images", metavar="K", help="At most K values per image or audio tag, evenly spaced.")
    ] = 10,
    histograms: Annotated[
        int, typer.Option("--histograms", metavar="K", help="At most K values per histogram tag, evenly spaced.")
    ] = 500,
    drop_graphs: Annotated[
        bool, typer.Option("--drop-graphs", help="Leave out graphs, run metadata and the Keras model config.")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Write a mirrored tree here (new or empty).")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace event files in place; originals go to --backup-dir.")
    ] = False,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir",
            metavar="DIR",
            help="Where --in-place keeps the originals (default: LOGDIR.tbrewrite-backup-N beside LOGDIR).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be thinned; write nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", metavar="N", help="Runs written in parallel.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    recover: Annotated[
        bool, typer.Option("--recover", help="Only finish in-place edits interrupted under LOGDIR, then exit.")
    ] = False,
) -> None:
    """Make huge logs small and fast to load: thin scalars (keeping every spike), images, histograms.

    Example: tbrewrite compact logs --scalars 2000 --out logs-compact
    """
    from tbrewrite.commands.compact import compact
    from tbrewrite.output.swap import recover_interrupted

    if recover:
        if out_dir or in_place or dry_run:
            err.print("tbrewrite: error: --recover takes no --out/--in-place/--dry-run", markup=False)
            raise typer.Exit(EXIT_USAGE)
        with errors_to_exit():
            lines = recover_interrupted(logdir, "LOGDIR")
        for line in lines:
            out.print(f"recovered {line}", markup=False)
        out.print(f"{len(lines)} folder(s) repaired" if lines else "nothing to recover", markup=False)
        raise typer.Exit(0)
    with errors_to_exit():
        report = compact(
            logdir,
            scalars=scalars,
            images=images,
            histograms=histograms,
            drop_graphs=drop_graphs,
            out=out_dir,
            in_place=in_place,
            dry_run=dry_run,
            backup_dir=backup_dir,
            force=force,
            resync=resync,
            jobs=jobs,
        )
    for line in report.recovered:
        err.print(f"tbrewrite: note: recovered {line}", markup=False)
    for line in report.warnings:
        err.print(f"tbrewrite: warning: {line}", markup=False)
    for run in report.runs:
        for line in run.notes:
            err.print(f"tbrewrite: note: {line}", markup=False)
    _print_table(report, dry_run)
    report_damage(report.damage)
    tags = sum(len(r.kept) for r in report.runs)
    before = sum(r.bytes_in for r in report.runs)
    if dry_run:
        out.print(f"dry run: would thin {tags} tag(s) in {len(report.runs)} run(s); nothing written", markup=False)
    else:
        after = sum(r.bytes_out or 0 for r in report.runs)
        where = where_written(out_dir, report.backup_dir)
        out.print(f"thinned {tags} tag(s): {_size(before)} -> {_size(after)}; {where}", markup=False)
    raise typer.Exit(exit_code(report.damage))


def _size(n: int) -> str:
    """``n`` bytes as ``"512 B"``, ``"14.4 kB"``, ``"1.2 GB"`` (powers of 1000)."""
    if n < 1000:
        return f"{n} B"
    size = float(n)
    for unit in ("kB", "MB", "GB"):
        size /= 1000
        if size < 1000 or unit == "GB":
            break
    return f"{size:.1f} {unit}"


def _print_table(report: CompactReport, dry_run: bool) -> None:
    table = Table(title="runs", title_justify="left")
    columns = ["run", "tags thinned", "values kept", "events in", "bytes in"]
    if not dry_run:
        columns += ["events out", "bytes out"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for run in report.runs:
        before = sum(b for b, _ in run.kept.values())
        kept = sum(k for _, k in run.kept.values())
        row = [run.edit.run, str(len(run.kept)), f"{kept} of {before}" if run.kept else "-", str(run.events)]
        row.append(_size(run.bytes_in))
        if not dry_run:
            row += [str(run.events_out), _size(run.bytes_out or 0)]
        table.add_row(*row)
    out.print(table)

"""``tbrewrite crop LOGDIR --steps START:STOP (--out DIR | --in-place)``."""

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
    from tbrewrite.commands.crop import CropReport


@app.command("crop")
def crop_command(
    logdir: Annotated[Path, typer.Argument(metavar="LOGDIR", help="A tree of runs (folders holding event files).")],
    steps: Annotated[
        str | None,
        typer.Option("--steps", metavar="START:STOP", help="Keep START <= step < STOP; either side may be empty."),
    ] = None,
    wall_time: Annotated[
        str | None,
        typer.Option(
            "--wall-time",
            metavar="START:STOP",
            help="Keep START <= wall_time < STOP: Unix seconds or ISO 8601 (UTC unless an offset is given).",
        ),
    ] = None,
    tags: Annotated[
        str | None, typer.Option("--tags", metavar="REGEX", help="Crop only tags matching REGEX (re.search).")
    ] = None,
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be cropped; write nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", metavar="N", help="Runs written in parallel.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    recover: Annotated[
        bool, typer.Option("--recover", help="Only finish in-place edits interrupted under LOGDIR, then exit.")
    ] = False,
) -> None:
    """Keep only the steps (and wall times) asked for in every run under LOGDIR.

    Events without a step that matters (file_version, graphs, the Keras model config,
    hparams) are kept.

    Example: tbrewrite crop logs --steps :20 --out logs-first-20
    """
    from tbrewrite.commands.crop import crop, describe_window, parse_steps, parse_wall_times
    from tbrewrite.output.swap import recover_interrupted

    if recover:
        if steps or wall_time or out_dir or in_place or dry_run:
            err.print("tbrewrite: error: --recover takes no window and no --out/--in-place/--dry-run", markup=False)
            raise typer.Exit(EXIT_USAGE)
        with errors_to_exit():
            lines = recover_interrupted(logdir, "LOGDIR")
        for line in lines:
            out.print(f"recovered {line}", markup=False)
        out.print(f"{len(lines)} folder(s) repaired" if lines else "nothing to recover", markup=False)
        raise typer.Exit(0)
    with errors_to_exit():
        report = crop(
            logdir,
            steps=parse_steps(steps) if steps is not None else (None, None),
            wall_times=parse_wall_times(wall_time) if wall_time is not None else (None, None),
            tags=tags,
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
    for line in report.notes:
        err.print(f"tbrewrite: note: {line}", markup=False)
    _print_table(report, dry_run)
    report_damage(report.damage)
    window = describe_window(report.window)
    cropped = sum(len(r.cropped) for r in report.runs)
    if dry_run:
        out.print(
            f"dry run: would keep {window} in {cropped} tag(s) of {len(report.runs)} run(s); nothing written",
            markup=False,
        )
    else:
        dropped = sum(r.values_dropped for r in report.runs)
        where = where_written(out_dir, report.backup_dir)
        out.print(f"kept {window}: {dropped} value(s) cropped from {cropped} tag(s); {where}", markup=False)
    raise typer.Exit(exit_code(report.damage))


def _print_table(report: CropReport, dry_run: bool) -> None:
    table = Table(title="runs", title_justify="left")
    columns = ["run", "files", "tags cropped", "steps before", "events in"]
    if not dry_run:
        columns += ["events out", "values cropped"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for run in report.runs:
        cropped = [run.tags[t] for t in run.tags if t in run.cropped]
        span = f"{min(t.min_step for t in cropped)}..{max(t.max_step for t in cropped)}" if cropped else "-"
        row = [run.edit.run, str(len(run.edit.files)), str(len(cropped)), span, str(run.events)]
        if not dry_run:
            row += [str(run.events_out) if run.files else "-", str(run.values_dropped)]
        table.add_row(*row)
    out.print(table)

"""``tbrewrite rename LOGDIR``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tbrewrite.cli._app import EXIT_USAGE, add_run_rows, app, err, errors_to_exit, exit_code, out, report_damage

if TYPE_CHECKING:  # the command's modules are imported when it runs: each command starts fast
    from tbrewrite.commands.rename import RenameReport


def _usage(message: str) -> typer.Exit:
    err.print(f"tbrewrite: error: {message}", markup=False)
    return typer.Exit(EXIT_USAGE)


@app.command("rename")
def rename_command(
    logdir: Annotated[Path, typer.Argument(metavar="LOGDIR", help="A tree of runs (folders holding event files).")],
    rule: Annotated[
        list[str] | None,
        typer.Option(
            "--rule",
            metavar="REGEX=REPLACEMENT",
            help="'REGEX=REPLACEMENT' (re.sub template: \\1, \\g<name>); repeatable, first match wins.",
        ),
    ] = None,
    rules_file: Annotated[
        Path | None, typer.Option("--rules", metavar="FILE", help="A TOML rules file (see README).")
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(
            "--drop", metavar="REGEX", help="Drop the values of tags matching REGEX; repeatable; tried before --rule."
        ),
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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print every planned mapping; write nothing.")] = False,
    runs: Annotated[
        list[str] | None,
        typer.Option(
            "--runs", metavar="GLOB", help="Only runs whose path relative to LOGDIR matches GLOB; repeatable."
        ),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", metavar="N", help="Runs processed in parallel (default: all cores).")
    ] = None,
    allow_merge: Annotated[
        bool, typer.Option("--allow-merge", help="Let two tags with overlapping steps merge onto one name.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Write into a non-empty --out, deleting event files there this command does not write."
        ),
    ] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    recover: Annotated[
        bool, typer.Option("--recover", help="Only finish in-place renames interrupted under LOGDIR, then exit.")
    ] = False,
) -> None:
    r"""Rename or drop tags in every run under LOGDIR, by ordered regex rules.

    Example: tbrewrite rename logs --rule '^epoch_(.*)$=train/\\1' --drop '_grad$' --out renamed
    """
    from tbrewrite.commands.rename import discover, rename
    from tbrewrite.output.swap import recover_interrupted
    from tbrewrite.parallel import default_jobs
    from tbrewrite.rules import build_rules

    if recover:
        if rule or rules_file or drop or out_dir or in_place or dry_run:
            raise _usage("--recover takes no rules and no --out/--in-place/--dry-run")
        with errors_to_exit():
            lines = recover_interrupted(logdir, "LOGDIR")
        for line in lines:
            out.print(f"recovered {line}", markup=False)
        out.print(f"{len(lines)} folder(s) repaired" if lines else "nothing to recover", markup=False)
        raise typer.Exit(0)
    if rule and rules_file:
        raise _usage("give --rule or --rules, not both")
    if not (rule or rules_file or drop):
        raise _usage("give at least one --rule, --rules FILE or --drop")
    with errors_to_exit():
        rules = build_rules(rule or (), rules_file=rules_file, drops=drop or ())
        with Progress(
            TextColumn("{task.fields[phase]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            console=err,
            transient=True,
            disable=not err.is_terminal,
        ) as progress:
            selected = len(discover(logdir, runs or ())) if logdir.is_dir() else 0
            task = progress.add_task("", total=selected * (1 if dry_run else 2), phase="scanning")

            def advance(phase: str, run: str) -> None:
                progress.update(task, advance=1, description=run, phase="scanning" if phase == "planned" else "writing")

            report = rename(
                logdir,
                rules,
                out=out_dir,
                in_place=in_place,
                dry_run=dry_run,
                runs=runs or (),
                jobs=default_jobs() if jobs is None else jobs,
                auto_jobs=jobs is None,
                allow_merge=allow_merge,
                backup_dir=backup_dir,
                force=force,
                resync=resync,
                on_progress=advance,
            )
    for line in report.recovered:
        err.print(f"tbrewrite: note: recovered {line}", markup=False)
    for line in report.warnings:
        err.print(f"tbrewrite: warning: {line}", markup=False)
    for line in report.notes:
        err.print(f"tbrewrite: note: {line}", markup=False)
    if dry_run:
        _print_mapping(report)
    else:
        _print_table(report)
    _print_notes(report)
    report_damage(report.damage)
    _print_summary(report, dry_run, out_dir)
    raise typer.Exit(exit_code(report.damage))


def _print_wide(table: Table) -> None:
    """Print ``table``; off a terminal as wide as it needs, so no tag is ever cut."""
    if out.is_terminal:
        out.print(table)
    else:
        Console(highlight=False, width=1 << 16).print(table)


def _print_mapping(report: RenameReport) -> None:
    table = Table(title="planned mapping", title_justify="left")
    for column in ("run", "old tag", "", "new tag", "kind", "values", "steps"):
        table.add_column(column, overflow="fold")
    for run in report.runs:
        for tp in run.plan.tags.values():
            if tp.changed:
                table.add_row(
                    run.plan.run,
                    tp.tag,
                    "->",
                    tp.new if tp.new is not None else "(dropped)",
                    tp.kind,
                    str(tp.count),
                    f"{tp.min_step}..{tp.max_step}",
                )
            for group, metric, new in tp.metrics:
                where = f" (group {group})" if group else ""
                table.add_row(
                    run.plan.run,
                    f"{tp.tag}: metric {metric}{where}",
                    "->",
                    new if new is not None else "(dropped)",
                    tp.kind,
                    str(tp.count),
                    f"{tp.min_step}..{tp.max_step}",
                )
    _print_wide(table)


def _print_table(report: RenameReport) -> None:
    table = Table(title="runs", title_justify="left")
    for column in ("run", "files", "events in", "events out", "tags renamed", "tags dropped", "result"):
        table.add_column(column, overflow="fold")
    rows = []
    for run in report.runs:
        plan = run.plan
        if run.replaced:
            result = f"replaced {len(run.replaced)} file(s)"
        elif run.files:
            result = "written"
        else:
            result = "unchanged"
        if plan.damage:
            result += "; damaged: " + ", ".join(f"{d.kind}@{d.offset}" for d in plan.damage)
        cells = (
            plan.run,
            str(len(plan.files)),
            str(plan.events),
            str(run.events_out) if run.files else "-",
            str(len(plan.renamed())),
            str(len(plan.dropped())),
            result,
        )
        rows.append((cells, bool(plan.damage)))
    left_out = add_run_rows(table, rows)
    if table.row_count:
        _print_wide(table)
    if left_out:
        out.print(left_out, markup=False)


def _print_notes(report: RenameReport) -> None:
    for run in report.runs:
        for line in run.plan.merges:
            err.print(f"tbrewrite: note: {line}", markup=False)
        for line in run.plan.collisions:
            err.print(f"tbrewrite: note: {line} (merged: --allow-merge)", markup=False)
        for tag, new, newer in run.plan.unstable:
            err.print(
                f"tbrewrite: warning: run '{run.plan.run}': the rules rename '{tag}' -> '{new}' but would "
                f"rename that again to '{newer}'; a second rename would change it",
                markup=False,
            )


def _print_summary(report: RenameReport, dry_run: bool, out_dir: Path | None) -> None:
    runs = len(report.runs)
    touched = sum(1 for r in report.runs if r.plan.changes)
    renamed = sum(len(r.plan.renamed()) for r in report.runs)
    dropped = sum(len(r.plan.dropped()) for r in report.runs)
    values = sum(t.count for r in report.runs for t in r.plan.tags.values() if t.changed)
    what = f"{renamed} tag(s) renamed and {dropped} dropped ({values} values) in {touched} of {runs} run(s)"
    experiments = sum(len(r.plan.edited) for r in report.runs)
    if dry_run:
        if experiments:
            what += f" would change, and the metric names of {experiments} hparams experiment(s)"
        else:
            what += " would change"
        out.print(f"dry run: {what}; nothing written", markup=False)
        return
    if experiments:
        what += f"; the metric names of {experiments} hparams experiment(s) follow"
    if out_dir is not None:
        out.print(f"{what}; wrote {out_dir}", markup=False)
    elif report.backup_dir is not None:
        files = sum(len(r.replaced) for r in report.runs)
        out.print(f"{what}; replaced {files} file(s) in place, originals in {report.backup_dir}", markup=False)
    else:
        out.print(f"{what}; nothing to change in place", markup=False)

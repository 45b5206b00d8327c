"""``tbrewrite convert SRC OUT``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from tbrewrite.cli._app import add_run_rows, app, err, errors_to_exit, exit_code, out, report_damage
from tbrewrite.errors import UsageError

if TYPE_CHECKING:  # the command's modules are imported when it runs: each command starts fast
    from tbrewrite.commands.convert import ConvertReport, RunReport
    from tbrewrite.producers.keras import TagMapping


@app.command("convert")
def convert_command(
    src: Annotated[
        Path, typer.Argument(help="A Keras log_dir (train/ + validation/), a flat Keras 2 folder, or a tree of runs.")
    ],
    dst: Annotated[Path, typer.Argument(metavar="OUT", help="Output run folder (or tree root); must be new or empty.")],
    train_name: Annotated[str, typer.Option("--train-name", help="Split name for training tags.")] = "train",
    val_name: Annotated[str, typer.Option("--val-name", help="Split name for validation tags.")] = "val",
    pattern: Annotated[
        str, typer.Option("--pattern", help="Tag pattern: '{split}/{metric}' or '{metric}/{split}'.")
    ] = "{split}/{metric}",
    split: Annotated[
        list[str] | None,
        typer.Option(
            "--split",
            metavar="NAME=SPLIT",
            help=(
                "The folder NAME beside train/ holds split SPLIT (repeatable), e.g. holdout=test; "
                "validation/, val/, eval/, evaluation/, test/ are known without it."
            ),
        ),
    ] = None,
    restarts: Annotated[
        str, typer.Option("--restarts", help="Several event files in a run: keep | keep-last | split.")
    ] = "keep",
    force: Annotated[bool, typer.Option("--force", help="Replace event files already in OUT.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the mapping per run; write nothing.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    jobs: Annotated[
        int | None, typer.Option("--jobs", min=1, help="Runs converted at once (default: every core).")
    ] = None,
    sidecar: Annotated[
        list[Path] | None,
        typer.Option(
            "--sidecar",
            help=(
                "Learning-rate sidecar or Keras CSVLogger file to merge (repeatable); "
                "learning_rate.csv beside train/ is found without it."
            ),
        ),
    ] = None,
    overlay: Annotated[
        bool,
        typer.Option(
            "--overlay",
            help="Also write a Custom Scalars layout: one chart per metric with its train and val curves.",
        ),
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            metavar="ADDRESS",
            help="Convert the runs on this dask.distributed scheduler (SRC and OUT in object storage).",
        ),
    ] = None,
) -> None:
    """Convert Keras runs into one run each with train/... and val/... tags.

    Example: tbrewrite convert logs/fit/20240101-120000 converted/run1
    """
    from tbrewrite.commands.convert import convert
    from tbrewrite.parallel import default_jobs
    from tbrewrite.producers.keras import TagMapping, discover_runs, parse_split
    from tbrewrite.storage import local_path

    with errors_to_exit():
        mapping = TagMapping(train_name, val_name, pattern, tuple(parse_split(s) for s in split or ()))
        if scheduler is not None and (dry_run or sidecar):
            raise UsageError("--scheduler converts a tree of runs in object storage; no --dry-run or --sidecar")
        local_src = src if scheduler is not None else local_path(src, "SRC")
        total = len(discover_runs(local_src, mapping)) if local_src.is_dir() else 0
        many = total > 1 or scheduler is not None
        if many and not dry_run:
            with Progress(
                TextColumn("converting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                console=err,
                transient=True,
                disable=not err.is_terminal,
            ) as progress:
                task = progress.add_task("", total=total or None)

                def advance(run: RunReport) -> None:
                    progress.update(task, advance=1, description=run.plan.run)

                if scheduler is not None:
                    report = _on_cluster(src, dst, scheduler, mapping, restarts, force, resync, advance)
                else:
                    report = convert(
                        src,
                        dst,
                        mapping=mapping,
                        restarts=restarts,
                        force=force,
                        resync=resync,
                        sidecars=sidecar or (),
                        jobs=jobs or default_jobs(),
                        auto_jobs=jobs is None,
                        on_run=advance,
                    )
        else:
            report = convert(
                src,
                dst,
                mapping=mapping,
                restarts=restarts,
                force=force,
                dry_run=dry_run,
                resync=resync,
                sidecars=sidecar or (),
            )
    overlaid = None
    if overlay and not dry_run:
        from tbrewrite.commands.overlay import overlay as add_overlay

        with errors_to_exit():
            overlaid = add_overlay(dst, mapping=mapping)
    if dry_run:
        _print_mapping(report)
    elif many:
        _print_table(report)
    print_sidecars(report.runs)
    report_damage(report.damage)
    _print_summary(report, dry_run, restarts)
    if overlaid is not None:
        from tbrewrite.cli.overlay import print_overlay

        print_overlay(overlaid, dry_run=False)
    raise typer.Exit(exit_code(report.damage))


def print_sidecars(runs: list[RunReport]) -> None:
    """Print one line per merged sidecar and output run: what it added, kept or replaced.

    With ``--restarts split`` a sidecar's rows go to the runs of the processes that wrote
    them, so the line names the run (a single run, ``.``, is not named).
    """
    for run in runs:
        into = f" into {run.plan.run}" if run.plan.run != "." else ""
        for s in run.sidecars:
            line = f"sidecar {s.path}{into} ({s.kind}, {s.rows} rows): {s.added} points added"
            if s.replaced:
                line += f", replacing {s.replaced} log points ({s.differed} differed beyond float32 rounding)"
            if s.kept:
                line += f"; {s.kept} points already in the log kept the log's value"
            out.print(line, markup=False)


def _on_cluster(
    src: Path,
    dst: Path,
    scheduler: str,
    mapping: TagMapping,
    restarts: str,
    force: bool,
    resync: bool,
    advance: Callable[[RunReport], None],
) -> ConvertReport:
    """Run ``convert --scheduler`` in the command's storage session."""
    from tbrewrite.commands.convertcluster import convert_on_cluster
    from tbrewrite.storage import active

    current = active()
    if current is None:
        raise UsageError("--scheduler needs the tbrewrite command's storage session")
    return convert_on_cluster(
        str(src),
        str(dst),
        scheduler=scheduler,
        session=current,
        mapping=mapping,
        restarts=restarts,
        force=force,
        resync=resync,
        on_run=advance,
    )


def _print_mapping(report: ConvertReport) -> None:
    for run in report.runs:
        plan = run.plan
        table = Table(title=f"{plan.run} ({plan.layout}) -> {plan.out_dir / plan.out_name}", title_justify="left")
        for column in ("source", "tag", "new tag", "kind", "values", "steps"):
            table.add_column(column, overflow="fold")
        for source, scan, tmap in zip(plan.sources, plan.scans, plan.tag_map, strict=False):
            for tag, stats in scan.tags.items():
                new = tmap[tag]
                table.add_row(
                    (source.name or ".") + "/",
                    tag,
                    new if new != tag else "(unchanged)",
                    stats.kind,
                    str(stats.count),
                    f"{stats.first_step}..{stats.last_step}",
                )
        out.print(table)


def _print_table(report: ConvertReport) -> None:
    table = Table(title="converted runs", title_justify="left")
    for column in ("run", "layout", "events in", "events out", "tags mapped", "damage"):
        table.add_column(column, overflow="fold")
    rows = []
    for run in report.runs:
        plan = run.plan
        damage = ", ".join(f"{d.kind}@{d.offset}" for d in plan.damage) or "-"
        cells = (plan.run, plan.layout, str(plan.events_in), str(run.events_out), str(len(plan.renamed())), damage)
        rows.append((cells, bool(plan.damage) or run.output is None))
    left_out = add_run_rows(table, rows)
    if table.row_count:
        out.print(table)
    if left_out:
        out.print(left_out, markup=False)


def _print_summary(report: ConvertReport, dry_run: bool, restarts: str) -> None:
    events_in = sum(r.plan.events_in for r in report.runs)
    events_out = sum(r.events_out for r in report.runs)
    mapped = sum(len(r.plan.renamed()) for r in report.runs)
    for run in report.runs:
        for note in run.notes:
            err.print(f"tbrewrite: note: {note}", markup=False)
        for note in run.plan.warnings():
            err.print(f"tbrewrite: note: {run.plan.run}: {note}", markup=False)
        if restarts != "keep":
            continue  # keep-last resolved them; split wrote one run per process
        for tag, (times, prev, step) in run.plan.backwards().items():
            err.print(
                f"tbrewrite: note: {run.plan.run}: steps of '{tag}' go backwards {times} time(s)"
                f" (first {prev} -> {step}); see --restarts",
                markup=False,
            )
    runs = len(report.runs)
    if dry_run:
        out.print(
            f"dry run: {runs} run(s), {events_in} events, {mapped} tags would be mapped; nothing written", markup=False
        )
        return
    unchanged = [r for r in report.runs if r.unchanged]
    written = sum(1 for r in report.runs if r.output is not None)
    line = f"converted {written} run(s): {events_in} events in -> {events_out} out, {mapped} tags mapped"
    if any(r.values_dropped for r in report.runs):
        line += f", {sum(r.values_dropped for r in report.runs)} values dropped (--restarts keep-last)"
    if runs == 1 and report.runs[0].output is not None:
        line += f"; wrote {report.runs[0].output}"
    out.print(line, markup=False)
    for run in report.runs:
        if run.output is None:
            out.print(
                f"{run.plan.run}: no event to convert (no valid record besides file_version); nothing written",
                markup=False,
            )
    if unchanged and len(unchanged) == runs:
        out.print("nothing to change: the input is already converted (output is byte-identical)", markup=False)

"""``tbrewrite concat RUN... OUT [--restarts keep-last|keep] [--step-offset auto|N]``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tbrewrite.cli._app import app, err, errors_to_exit, exit_code, out, report_damage

if TYPE_CHECKING:  # the command's modules are imported when it runs
    from tbrewrite.commands.concat import ConcatReport


@app.command("concat")
def concat_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN... OUT", help="Two or more runs (or Keras log_dirs) that are one training, then OUT."
        ),
    ],
    restarts: Annotated[
        str,
        typer.Option(
            "--restarts",
            metavar="keep-last|keep",
            help="keep-last: a later value at step s removes earlier values at steps >= s, as TensorBoard shows "
            "them; keep: keep every value.",
        ),
    ] = "keep-last",
    step_offset: Annotated[
        str | None,
        typer.Option(
            "--step-offset",
            metavar="auto|N",
            help="auto: tags whose steps restarted continue after the earlier run's last step; "
            "N: add k*N to the steps of the k-th later run.",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan; write nothing.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty OUT.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
) -> None:
    """Join runs that are one training (resumed in a new folder, restarted elsewhere) into one run.

    Keras log_dirs are joined pairwise: OUT/train from every train/, OUT/validation from
    every validation/.

    Example: tbrewrite concat logs/run1 logs/run1-resumed logs-joined
    """
    from tbrewrite.commands.concat import concat, parse_step_offset

    with errors_to_exit():
        if len(paths) < 3:
            from tbrewrite.errors import UsageError

            raise UsageError("give at least two RUNs to join, then OUT")
        *runs, dst = paths
        report = concat(
            runs,
            dst,
            restarts=restarts,
            step_offset=parse_step_offset(step_offset),
            dry_run=dry_run,
            force=force,
            resync=resync,
        )
    _print_table(report, dry_run)
    report_damage(report.damage)
    for run in report.runs:
        if run.result is not None:
            for note in run.result.notes:
                err.print(f"tbrewrite: note: {note}", markup=False)
    joined = f"joined {len(report.inputs)} runs into {len(report.runs)} run(s)"
    out.print(f"dry run: would have {joined}; nothing written" if dry_run else f"{joined} in {dst}", markup=False)
    raise typer.Exit(exit_code(report.damage))


def _print_table(report: ConcatReport, dry_run: bool) -> None:
    table = Table(title="runs", title_justify="left")
    columns = ["run", "from", "events", "steps", "step offset"]
    if not dry_run:
        columns += ["events out", "values superseded"]
    for column in columns:
        table.add_column(column, overflow="fold")
    for run in report.runs:
        for k, source in enumerate(run.sources):
            tags = source.scan.tags.values()
            steps = f"{min(t.min_step for t in tags)}..{max(t.max_step for t in tags)}" if tags else "-"
            offsets = sorted(set(source.offsets.values()))
            row = [run.run if k == 0 else "", str(source.run_dir), str(source.scan.events), steps]
            row.append(", ".join(f"+{o}" for o in offsets) if offsets else "-")
            if not dry_run:
                result = run.result if k == 0 else None
                row += [str(result.events_out), str(result.values_superseded)] if result is not None else ["", ""]
            table.add_row(*row)
    out.print(table)

"""``tbrewrite merge RUN --sidecar FILE (--out DIR | --in-place)``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tbrewrite.cli._app import app, err, errors_to_exit, exit_code, out, report_damage
from tbrewrite.cli.convert import print_sidecars
from tbrewrite.errors import UsageError


@app.command("merge")
def merge_command(
    run: Annotated[Path, typer.Argument(help="A run folder holding event files.")],
    sidecar: Annotated[
        list[Path] | None, typer.Option("--sidecar", help="Learning-rate sidecar or Keras CSVLogger file (repeatable).")
    ] = None,
    dst: Annotated[Path | None, typer.Option("--out", help="Write the merged run into this new folder.")] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Replace the run's event files; originals go to --backup-dir.")
    ] = False,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir", help="Where --in-place keeps the originals (default: <RUN>.tbrewrite-backup beside RUN)."
        ),
    ] = None,
    train_name: Annotated[str, typer.Option("--train-name", help="Split name for training tags.")] = "train",
    val_name: Annotated[str, typer.Option("--val-name", help="Split name for validation tags.")] = "val",
    pattern: Annotated[
        str, typer.Option("--pattern", help="Tag pattern: '{split}/{metric}' or '{metric}/{split}'.")
    ] = "{split}/{metric}",
    force: Annotated[bool, typer.Option("--force", help="Allow --out to hold files.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    recover: Annotated[
        bool, typer.Option("--recover", help="Only finish an in-place merge interrupted in RUN, then exit.")
    ] = False,
) -> None:
    """Add sidecar CSV columns to an existing run as scalars.

    Example: tbrewrite merge converted/run1 --sidecar learning_rate.csv --in-place
    """
    from tbrewrite.commands.merge import merge
    from tbrewrite.output.swap import recover_interrupted
    from tbrewrite.producers.keras import TagMapping

    if recover:
        with errors_to_exit():
            if sidecar or dst is not None or in_place:
                raise UsageError("--recover takes no --sidecar, --out or --in-place")
            lines = recover_interrupted(run, "RUN")
        for line in lines:
            out.print(f"recovered {line}", markup=False)
        out.print(f"{len(lines)} folder(s) repaired" if lines else "nothing to recover", markup=False)
        raise typer.Exit(0)
    with errors_to_exit():
        mapping = TagMapping(train_name, val_name, pattern)
        report = merge(
            run,
            sidecar or (),
            out=dst,
            in_place=in_place,
            backup_dir=backup_dir,
            mapping=mapping,
            force=force,
            resync=resync,
        )
    print_sidecars([report])
    damage = [*report.plan.damage, *report.damage]
    report_damage(damage)
    for note in report.notes:
        err.print(f"tbrewrite: note: {note}", markup=False)
    added = sum(s.added for s in report.sidecars)
    if report.output is None:
        out.print(
            f"nothing to merge into {run}: every sidecar point is already in the log; the run is unchanged",
            markup=False,
        )
        raise typer.Exit(exit_code(damage))
    out.print(
        f"merged {len(report.sidecars)} sidecar(s) into {report.plan.run if str(run) == '.' else run}: "
        f"{report.plan.events_in} events in -> {report.events_out} out, {added} points added; wrote {report.output}",
        markup=False,
    )
    raise typer.Exit(exit_code(damage))

"""``tbrewrite hparams LOGDIR --from FILE (--out DIR | --in-place)``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tbrewrite.cli._app import EXIT_USAGE, app, err, errors_to_exit, exit_code, out, report_damage

if TYPE_CHECKING:  # the command's modules are imported when it runs
    from tbrewrite.commands.hparams import HParamsReport


@app.command("hparams")
def hparams_command(
    logdir: Annotated[Path, typer.Argument(metavar="LOGDIR", help="A tree of runs (folders holding event files).")],
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            metavar="FILE",
            help="A CSV with a 'run' column; a file name found in run folders (hparams.yaml); "
            "a pattern with {run} (configs/{run}.yaml); or one YAML/JSON for LOGDIR itself (./hp.yaml).",
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric", metavar="TAG", help="A scalar tag shown as a metric (repeatable; default: every scalar tag)."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite hparams a run has with differing values (else refused).")
    ] = False,
    out_dir: Annotated[
        Path | None, typer.Option("--out", metavar="DIR", help="Write a mirrored tree here (new or empty).")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Change LOGDIR itself; replaced files go to --backup-dir.")
    ] = False,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            "--backup-dir",
            metavar="DIR",
            help="Where --in-place keeps the originals (default: LOGDIR.tbrewrite-backup-N beside LOGDIR).",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would be attached; write nothing.")] = False,
    jobs: Annotated[int, typer.Option("--jobs", metavar="N", help="Runs written in parallel.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Write into a non-empty --out.")] = False,
    resync: Annotated[
        bool, typer.Option("--resync", help="After damage, continue from the next valid record.")
    ] = False,
    recover: Annotated[
        bool, typer.Option("--recover", help="Only finish in-place edits interrupted under LOGDIR, then exit.")
    ] = False,
) -> None:
    """Attach hyperparameters to runs after the fact, for TensorBoard's HParams dashboard.

    Each run named by --from becomes a session holding its hparams (merged with any it
    has); LOGDIR gets one experiment listing every session's hparams and the metrics
    (the runs' last scalar values). Adds one small event file per run
    (events.out.tfevents.<start>.tbrewrite-hparams); superseded hparams summaries are
    left out of the files holding them, every other record kept byte for byte.

    Example: tbrewrite hparams lightning_logs --from hparams.yaml --in-place
    """
    from tbrewrite.commands.hparams import attach_hparams
    from tbrewrite.output.swap import recover_interrupted

    if recover:
        if source or out_dir or in_place or dry_run:
            err.print("tbrewrite: error: --recover takes no --from and no --out/--in-place/--dry-run", markup=False)
            raise typer.Exit(EXIT_USAGE)
        with errors_to_exit():
            lines = recover_interrupted(logdir, "LOGDIR")
        for line in lines:
            out.print(f"recovered {line}", markup=False)
        out.print(f"{len(lines)} folder(s) repaired" if lines else "nothing to recover", markup=False)
        raise typer.Exit(0)
    if source is None:
        err.print("tbrewrite: error: give --from FILE (a CSV, hparams.yaml, a {run} pattern)", markup=False)
        raise typer.Exit(EXIT_USAGE)
    with errors_to_exit():
        report = attach_hparams(
            logdir,
            source,
            metrics=metric or (),
            replace=replace,
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
    print_hparams(report, dry_run)
    report_damage(report.damage)
    changed = sum(1 for s in report.sessions if s.changed)
    if dry_run:
        out.print(
            f"dry run: would attach hparams to {changed} of {len(report.sessions)} run(s); nothing written",
            markup=False,
        )
    else:
        where = (
            f"wrote {out_dir}"
            if out_dir is not None
            else f"originals in {report.backup_dir}"
            if report.backup_dir is not None
            else f"added to {logdir} (no file replaced)"
            if report.files
            else "nothing to change in place"
        )
        out.print(f"attached hparams to {changed} of {len(report.sessions)} run(s); {where}", markup=False)
    raise typer.Exit(exit_code(report.damage))


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def print_hparams(report: HParamsReport, dry_run: bool) -> None:
    """Print one line per session, the files edited and the experiment."""
    for s in report.sessions:
        values = ", ".join(f"{k}={_shown(v)}" for k, v in sorted(s.hparams.items()))
        what = "unchanged" if not s.changed else "new" if not s.hparams.keys() - set(s.added) else "merged"
        extra = "".join(f"; {n}: {_shown(a)} -> {_shown(b)}" for n, a, b in s.replaced)
        out.print(f"{s.run}: {values or '(no hparams)'} ({what}, from {s.origin}{extra})", markup=False)
    verb = "would leave" if dry_run else "left"
    for run, name, tags in report.stripped:
        out.print(f"{run}/{name}: {verb} out {', '.join(tags)} (superseded)", markup=False)
    metrics = ", ".join(f"{g}/{t}" if g else t for g, t in report.metrics)
    state = "" if report.experiment_changed else " (unchanged)"
    out.print(
        f"experiment{state}: {len(report.experiment.hparam_infos)} hparam(s), "
        f"{len(report.metrics)} metric(s): {metrics or '-'}",
        markup=False,
    )

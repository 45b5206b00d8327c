"""``merge``: add sidecar points to an existing run, into a new folder or in place.

The run's tags are kept as they are (use ``convert --sidecar`` to convert and merge in
one go); the sidecar's points are added as scalars with the rules of
:mod:`tbrewrite.sidecars.place`. The run's event files are rewritten into one file in
file order by the engine, like ``convert`` does for a single folder. In place, the new
file replaces the run's files through the journaled swap
(:mod:`tbrewrite.output.swap`): killed at any point, the run is wholly old or wholly new
after ``tbrewrite merge RUN --recover``.
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
from collections.abc import Sequence
from pathlib import Path

from tbrewrite.commands.convert import RunReport
from tbrewrite.commands.convertplan import plan_run, scan_run
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.errors import InputError, OutputError, UsageError
from tbrewrite.logdir import check_dir, list_event_files
from tbrewrite.output.swap import JOURNAL_NAME, Swap, commit, pending_journals, staged_name
from tbrewrite.output.transaction import Transaction, check_output_folder
from tbrewrite.producers.keras import TagMapping, is_split_run, split_sessions
from tbrewrite.sidecars.read import read_sidecar
from tbrewrite.storage import local_path

BACKUP_SUFFIX = ".tbrewrite-backup"


def default_backup_dir(run: Path) -> Path:
    """Return a new sibling of ``run`` for its originals: ``<run>.tbrewrite-backup[-N]``."""
    run = run.resolve()
    candidate = run.with_name(run.name + BACKUP_SUFFIX)
    n = 2
    while candidate.exists():
        candidate = run.with_name(f"{run.name}{BACKUP_SUFFIX}-{n}")
        n += 1
    return candidate


def merge(
    run: str | os.PathLike[str],
    sidecars: Sequence[str | os.PathLike[str]],
    *,
    out: str | os.PathLike[str] | None = None,
    in_place: bool = False,
    backup_dir: str | os.PathLike[str] | None = None,
    mapping: TagMapping | None = None,
    force: bool = False,
    resync: bool = False,
) -> RunReport:
    """Merge sidecar CSVs into the run at ``run``.

    Args:
        run: str or PathLike. A folder holding event files (one TensorBoard run).
        sidecars: paths of learning-rate sidecars or Keras CSVLogger files.
        out: str or PathLike. Write the merged run here (a new or empty folder).
        in_place: bool. Replace the run's event files; the originals are moved to
            ``backup_dir`` (default: a sibling ``<run>.tbrewrite-backup``, never inside
            the run, so TensorBoard never loads both).
        backup_dir: where ``in_place`` keeps the originals.
        mapping: TagMapping for the sidecar tags (split names, pattern).
        force: bool. Allow ``out`` to hold files (event files there are replaced).
        resync: bool. Read past damage.

    Returns:
        RunReport; ``report.sidecars`` says what each sidecar added or replaced;
        ``report.output`` is None when the run was left alone (in place, nothing to add,
        or merged already: the new file would equal the run's one file byte for byte).

    Raises:
        InputError: ``run`` is not a folder of event files.
        UsageError: no sidecar given, neither/both of ``out`` and ``in_place``, or
            ``backup_dir`` without ``in_place``.
        OutputError: ``out`` is unsafe or holds files; ``backup_dir`` is inside ``run``.
        SidecarError: a sidecar is malformed or matches nothing in the run.
    """
    run = local_path(run, "RUN")
    sidecars = [local_path(s, "--sidecar") for s in sidecars]
    out = local_path(out, "--out") if out is not None else None
    backup_dir = local_path(backup_dir, "--backup-dir") if backup_dir is not None else None
    check_dir(run, "RUN")
    if not sidecars:
        raise UsageError("give at least one --sidecar FILE")
    if (out is None) == (not in_place):
        raise UsageError("give exactly one of --out DIR and --in-place")
    if backup_dir is not None and not in_place:
        raise UsageError("--backup-dir needs --in-place")
    pending = pending_journals(run)
    if pending:
        raise InputError(
            f"{pending[0] / JOURNAL_NAME}: an in-place swap was interrupted here; "
            f"run 'tbrewrite merge {run} --recover' first"
        )
    files = list_event_files(run)
    if not files:
        hint = "; it is a Keras log_dir: use 'tbrewrite convert --sidecar'" if is_split_run(run) else ""
        raise InputError(f"{run}: no event files directly in this folder{hint}")
    mapping = mapping or TagMapping()
    parsed = [read_sidecar(path, mapping) for path in sidecars]
    if in_place:
        target = run
        backup = Path(backup_dir) if backup_dir is not None else default_backup_dir(run)
        if backup.resolve() == run.resolve() or run.resolve() in backup.resolve().parents:
            raise OutputError(f"{backup}: the backup folder must be outside the run")
        if backup.exists() and any(backup.iterdir()):
            raise OutputError(f"{backup}: backup folder already holds files")
    else:
        assert out is not None
        target = Path(out)
        check_output_folder(run, target, force=force, src_label="RUN", out_label="--out")
    scan = scan_run(".", run, None, resync=resync, files={"": files})
    if not any(s.events for s in scan.scans):
        raise InputError(
            f"{run}: no valid event in its event files (see 'tbrewrite inspect {run}'); nothing to merge into"
        )
    sessions = [session[""] for _, session in split_sessions(run)]  # the folder's files by writing process
    plan = plan_run(scan, target, resync=resync, sidecars=parsed, mapping=mapping, sessions=sessions)
    report = RunReport(plan, sidecars=plan.merge.reports)
    if in_place and not plan.merge.events:
        return report  # nothing to add: leave the run alone
    output = plan.output
    if in_place:
        output = dataclasses.replace(output, path=run / staged_name(plan.out_name))
    with Transaction(target) as outputs:
        result = rewrite(output, outputs)
        assert result.writer is not None
        staged = outputs.stage(result.writer)
        if in_place and len(files) == 1 and filecmp.cmp(files[0], staged.temp, shallow=False):
            outputs.rollback()  # merged already: the same bytes; leave the run alone
            return report
        published = outputs.publish(staged)
        if not in_place:
            for stale in list_event_files(target):
                if stale != published:
                    stale.unlink()
    report.events_out = result.events_out
    report.damage = result.damage
    report.notes = result.notes
    if not in_place:
        report.output = published
        return report
    swap = Swap(run, backup.resolve(), tuple(f.name for f in files), ((published.name, plan.out_name),))
    try:
        commit([swap])
    except OSError as e:
        raise OutputError(
            f"{run}: swap failed part-way ({e.strerror or e}); run 'tbrewrite merge {run} --recover' to finish it"
        ) from None
    report.output = run / plan.out_name
    return report

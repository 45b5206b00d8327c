"""``merge``: add sidecar points to an existing run, into a new folder or in place.

The run's tags are kept as they are (use ``convert --sidecar`` to convert and merge in
one go); the sidecar's points are added as scalars with the rules of
:mod:`tbrewrite.sidecars.place`. The run's event files are rewritten into one file in
file order, like ``convert`` does for a single folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from tbrewrite.commands.convertplan import plan_run
from tbrewrite.engine.rewrite import RunReport, write_run
from tbrewrite.errors import InputError, OutputError, UsageError
from tbrewrite.events.reader import list_event_files
from tbrewrite.producers.keras import TagMapping, check_dir, is_split_run
from tbrewrite.sidecars.read import read_sidecar
from tbrewrite.sidecars.place import plan_merge
from tbrewrite.events.writer import OutputSet, check_output_folder

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
        RunReport; ``report.sidecars`` says what each sidecar added or replaced.

    Raises:
        InputError: ``run`` is not a folder of event files.
        UsageError: no sidecar given, or neither/both of ``out`` and ``in_place``.
        OutputError: ``out`` is unsafe or holds files; ``backup_dir`` is inside ``run``.
        SidecarError: a sidecar is malformed or matches nothing in the run.
    """
    run = Path(run)
    check_dir(run, "RUN")
    if not sidecars:
        raise UsageError("give at least one --sidecar FILE")
    if (out is None) == (not in_place):
        raise UsageError("give exactly one of --out DIR and --in-place")
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
        target = Path(out)
        _check_out(run, target, force)
    plan = plan_run(".", run, target, mapping, resync=resync, files={"": files})
    plan.tag_map = [{tag: tag for tag in tmap} for tmap in plan.tag_map]
    plan.sidecars = parsed
    merge_plan = plan_merge(plan, parsed, resync=resync, mapping=mapping)
    if in_place and not merge_plan.events:
        return RunReport(plan, sidecars=merge_plan.reports)  # nothing to add: leave the run alone
    with OutputSet() as outputs:
        if not in_place:
            report = write_run(plan, outputs, resync=resync, merge=merge_plan)
            for stale in list_event_files(target):
                if stale != report.output:
                    stale.unlink()
            return report
        report = write_run(plan, outputs, resync=resync, merge=merge_plan, publish=False)
        assert report.pending is not None
        outputs.makedirs(backup)
        moved: list[Path] = []
        try:
            for path in files:
                shutil.move(str(path), str(backup / path.name))
                moved.append(path)
            report.output = outputs.publish(report.pending)
        except BaseException:
            for path in moved:
                shutil.move(str(backup / path.name), str(path))
            raise
        report.pending = None
    return report


def _check_out(run: Path, out: Path, force: bool) -> None:
    check_output_folder(run, out, force=force, src_label="RUN", out_label="--out")

"""``concat``: join runs that are one training into one run.

A training resumed in a new folder, or restarted on another machine, leaves several
runs (tensorboard#2724, #6374, #3732; wandb#3888). ``concat RUN... OUT`` writes one run
per run name found under the inputs: a plain run folder is one run (``.``); a Keras
log_dir's ``train/`` and ``validation/`` are concatenated pairwise, ``OUT/train`` from
every input's ``train/``, ``OUT/validation`` from every ``validation/``.

Each output run is one event file and one :class:`~tbrewrite.engine.plan.OutputPlan`
with one :class:`~tbrewrite.engine.plan.SourcePlan` per input, the inputs in the order
of their first event's wall_time (inputs whose wall times overlap are refused: they are
not one training run after another). Every kept event is the input's bytes, except:

* ``--restarts keep-last`` (the default) keeps what TensorBoard's data server shows for
  the concatenation: a value at step *s* removes every earlier value of its tag at a
  step >= *s* (``data/server/reservoir.rs``, "Preemption"; :mod:`tbrewrite.engine.restarts`),
  across the inputs as within one; ``keep`` keeps every value;
* ``--step-offset``: ``auto`` continues each tag of a later input whose steps restarted
  (its first step is not above the tag's first step so far) after the tag's last step,
  spaced as before (``last + stride - first``, stride the tag's mean step spacing);
  ``N`` adds ``k * N`` to every step of the ``k``-th later input. The Event's step is
  rewritten, so those records are written anew;
* each output starts with its own ``file_version`` (the inputs' are left out).

Non-summary events keep their steps. Only event files are written: other files of the
inputs (sidecars, profiles) are not copied.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.rewrite import OutputResult, rewrite
from tbrewrite.engine.scan import StreamScan, scan_files
from tbrewrite.errors import InputError, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.events.summary import STEPLESS_KINDS
from tbrewrite.events.writer import output_file_name
from tbrewrite.logdir import check_dir, list_event_files
from tbrewrite.logdir import runs as run_folders
from tbrewrite.output.transaction import Transaction, check_output_folder
from tbrewrite.storage import local_path

KEEP_LAST = "keep-last"
_INT64 = range(-(1 << 63), 1 << 63)
"""The steps an Event can hold."""
KEEP = "keep"
AUTO = "auto"


@dataclass
class ConcatSource:
    """One input's run feeding an output run.

    Attributes:
        input: Path. The input folder given (a run or a Keras log_dir).
        run_dir: Path. Its run folder for this output run.
        scan: StreamScan of its event files, in TensorBoard's order.
        offsets: dict tag -> step offset applied (tags without one are absent).
    """

    input: Path
    run_dir: Path
    scan: StreamScan
    offsets: dict[str, int] = field(default_factory=dict)

    @property
    def first_wall_time(self) -> float:
        """The earliest wall_time of a summary value (the first event's without one), in seconds."""
        return min((t.first_wall_time for t in self.scan.tags.values()), default=self.scan.first_wall_time or 0.0)

    @property
    def last_wall_time(self) -> float:
        """The latest wall_time of a summary value, in seconds."""
        return max((t.last_wall_time for t in self.scan.tags.values()), default=self.scan.first_wall_time or 0.0)


@dataclass
class ConcatRun:
    """One output run.

    Attributes:
        run: str. Its name (path relative to each input and to OUT; ``"."`` for a run folder).
        sources: list of ConcatSource, in wall_time order.
        plan: OutputPlan.
        result: OutputResult or None (a dry run).
    """

    run: str
    sources: list[ConcatSource]
    plan: OutputPlan
    result: OutputResult | None = None


@dataclass
class ConcatReport:
    """What ``concat`` did.

    Attributes:
        inputs: list of Path, in wall_time order.
        runs: list of ConcatRun.
    """

    inputs: list[Path] = field(default_factory=list)
    runs: list[ConcatRun] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch of input: the scans', then any the write found."""
        found = [d for r in self.runs for s in r.sources for d in s.scan.damage]
        return found + [d for r in self.runs if r.result is not None for d in r.result.damage]


def parse_step_offset(text: str | None) -> int | str | None:
    """Parse ``--step-offset``: ``auto``, an integer, or None (no offset).

    Raises:
        UsageError: anything else.
    """
    if text is None or text == AUTO:
        return text
    try:
        offset = int(text)
    except ValueError:
        raise UsageError(f"--step-offset must be 'auto' or an integer; got {text!r}") from None
    if offset not in _INT64:
        raise UsageError(f"--step-offset must be an int64 (-2**63 to 2**63 - 1); got {text}")
    return offset


def _stride(first: int, last: int, count: int) -> int:
    """A tag's mean step spacing, at least 1."""
    return max(1, round((last - first) / (count - 1))) if count > 1 else 1


def _offsets(sources: list[ConcatSource], step_offset: int | str | None) -> None:
    """Fill in each source's per-tag offsets (see the module doc)."""
    if step_offset is None or step_offset == 0:
        return
    if isinstance(step_offset, int):
        for k, source in enumerate(sources[1:], start=1):
            source.offsets = {t: k * step_offset for t, ts in source.scan.tags.items() if ts.kind not in STEPLESS_KINDS}
        return
    seen: dict[str, tuple[int, int, int]] = {}  # tag -> (first step, last step, stride), offsets applied
    for k, source in enumerate(sources):
        restarted: dict[str, int] = {}
        for tag, ts in source.scan.tags.items():
            if k and tag in seen and ts.first_step <= seen[tag][0] and ts.kind not in STEPLESS_KINDS:
                _, last, stride = seen[tag]
                restarted[tag] = last + stride - ts.first_step
        if restarted:
            common = Counter(restarted.values()).most_common(1)[0][0]
            # Tags the earlier inputs lack continue with the rest of their input.
            for tag, ts in source.scan.tags.items():
                off = restarted.get(tag, common if tag not in seen else 0)
                if off and ts.kind not in STEPLESS_KINDS:
                    source.offsets[tag] = off
        for tag, ts in source.scan.tags.items():
            off = source.offsets.get(tag, 0)
            stride = _stride(ts.min_step, ts.max_step, ts.count)
            if tag in seen:
                first, last, _ = seen[tag]
                seen[tag] = (first, max(last, ts.max_step + off), stride)
            else:
                seen[tag] = (ts.first_step + off, ts.max_step + off, stride)


def _check_offsets(sources: list[ConcatSource]) -> None:
    """Refuse an offset that moves a step out of int64 (an Event cannot hold it).

    Raises:
        InputError: naming the run, the tag and the step.
    """
    for source in sources:
        for tag, off in source.offsets.items():
            ts = source.scan.tags[tag]
            for step in (ts.min_step, ts.max_step):
                if step + off not in _INT64:
                    raise InputError(
                        f"{source.run_dir}: tag {tag!r}: step {step} moved by the step offset {off:+d} "
                        "is beyond the int64 steps an event holds; give a smaller --step-offset"
                    )


def _actions(sources: list[ConcatSource], keep_last: bool) -> list[dict[str, TagAction]]:
    """Each source's TagActions: metadata for the first value, offsets, keep-last across sources."""
    actions: list[dict[str, TagAction]] = []
    for k, source in enumerate(sources):
        tags = {}
        for tag, ts in source.scan.tags.items():
            off = source.offsets.get(tag, 0)
            backwards: tuple[tuple[int, int, int], ...] = ()
            if keep_last:
                own = [(o, prev + off, step + off) for o, prev, step in ts.backwards]
                later = [
                    s.scan.tags[tag].min_step + s.offsets.get(tag, 0) for s in sources[k + 1 :] if tag in s.scan.tags
                ]
                if later:  # what the later inputs write at these steps supersedes this input's values
                    own.append((ts.count, ts.last_step + off, min(later)))
                backwards = tuple(own)
            tags[tag] = TagAction(tag, ts.metadata, backwards, step_offset=off)
        actions.append(tags)
    return actions


def plan_concat(
    inputs: Sequence[Path], out: Path, *, restarts: str, step_offset: int | str | None, resync: bool
) -> ConcatReport:
    """Scan every input and plan every output run.

    Raises:
        InputError: an input holds no runs, or two inputs overlap in wall time.
        OSError: a file cannot be read.
    """
    found: dict[Path, dict[str, Path]] = {}
    for folder in inputs:
        runs = {f.rel: f.path for f in run_folders(folder)}
        if not runs:
            raise InputError(f"{folder}: no event files found (names containing 'tfevents')")
        found[folder] = runs
    names = sorted({rel for runs in found.values() for rel in runs})
    scans: dict[tuple[Path, str], StreamScan] = {}
    for folder, runs in found.items():
        for rel, run_dir in runs.items():
            scans[folder, rel] = scan_files(list_event_files(run_dir), resync=resync)
    starts = {
        folder: min(
            (s.first_wall_time for (f, _), s in scans.items() if f == folder and s.first_wall_time is not None),
            default=0.0,
        )
        for folder in found
    }
    order = sorted(found, key=lambda f: (starts[f], str(f)))
    report = ConcatReport(order)
    for rel in names:
        sources = [ConcatSource(f, found[f][rel], scans[f, rel]) for f in order if rel in found[f]]
        for a, b in itertools.pairwise(sources):
            if b.first_wall_time < a.last_wall_time:
                raise InputError(
                    f"{b.run_dir}: starts (wall_time {b.first_wall_time:.3f}) before {a.run_dir} ends "
                    f"({a.last_wall_time:.3f}); concat joins runs written one after another"
                )
        _offsets(sources, step_offset)
        _check_offsets(sources)
        actions = _actions(sources, restarts == KEEP_LAST)
        start = min((t for t in (s.scan.first_wall_time for s in sources) if t is not None), default=0.0)
        start = start if 0 <= start < 1e10 else 0.0
        path = out / rel / output_file_name(start)
        plan = OutputPlan(
            path,
            tuple(
                SourcePlan(str(s.run_dir), tuple(SourceFile.from_stats(f) for f in s.scan.files), a)
                for s, a in zip(sources, actions, strict=True)
            ),
            Header.OWN,
            start,
            resync=resync,
        )
        report.runs.append(ConcatRun(rel, sources, plan))
    return report


def concat(
    runs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    restarts: str = KEEP_LAST,
    step_offset: int | str | None = None,
    dry_run: bool = False,
    force: bool = False,
    resync: bool = False,
) -> ConcatReport:
    """Join the runs ``runs`` (one training, in pieces) into ``out``.

    Args:
        runs: two or more folders: runs, or Keras log_dirs (their runs joined by name).
        out: str or PathLike. The output folder (new or empty unless ``force``).
        restarts: ``"keep-last"`` (TensorBoard's rule across the pieces) or ``"keep"``.
        step_offset: None, ``"auto"`` or an int (see the module doc).
        dry_run: bool. Plan and report; write nothing.
        force: bool. Write into a non-empty ``out``.
        resync: bool. After damage, continue from the next valid record.

    Returns:
        ConcatReport.

    Raises:
        UsageError: fewer than two runs, one given twice, or a bad option value.
        InputError: a run is missing or empty, or two overlap in wall time.
        OutputError: ``out`` is unsafe (inside an input, or not empty).
        OSError: reading or writing failed; nothing is left behind.
    """
    if restarts not in (KEEP_LAST, KEEP):
        raise UsageError(f"--restarts must be keep-last or keep; got {restarts!r}")
    if len(runs) < 2:
        raise UsageError("give at least two RUNs to join, then OUT")
    inputs = [local_path(r, "RUN") for r in runs]
    for folder in inputs:
        check_dir(folder, "RUN")
    if len({f.resolve() for f in inputs}) != len(inputs):
        raise UsageError("a RUN is given twice")
    out_path = local_path(out, "OUT")
    for folder in inputs:
        check_output_folder(folder, out_path, force=force, src_label="RUN", out_label="OUT")
    report = plan_concat(inputs, out_path, restarts=restarts, step_offset=step_offset, resync=resync)
    if dry_run:
        return report
    with Transaction(out_path) as outputs:
        for run in report.runs:
            outputs.makedirs(run.plan.path.parent)
            run.result = rewrite(run.plan, outputs)
            assert run.result.writer is not None
            outputs.stage(run.result.writer)
        outputs.publish_all()
    return report

"""``convert``: Keras runs in, one hierarchical run each out, nothing lost.

A Keras run is either a ``log_dir`` holding ``train/`` and ``validation/`` runs
(tf.keras, tf_keras, Keras 3) or one flat folder of event files (Keras 2 / TF1); see
:mod:`tbrewrite.layout`. Each becomes one output run whose single event file holds every
input event exactly once, scalars renamed to ``train/<metric>`` / ``val/<metric>``,
everything else byte-for-byte as it was:

1. A first streaming pass (:func:`tbrewrite.scan.scan_files`) learns each source's
   tags, kinds, first plugin metadata, restarts and damage, and fixes the mapping.
2. A second pass merges the sources' events in wall_time order (a stable merge: ties
   keep source order, and each source keeps its own order, so every tag keeps its step
   order), renames values, puts the plugin metadata on the first value of every tag,
   and writes records it did not change back unchanged.
"""

from __future__ import annotations

import bisect
import contextlib
import filecmp
import heapq
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tensorboard.compat.proto import event_pb2

from google.protobuf.message import DecodeError

from tbrewrite.errors import InputError, InvalidEventError, UsageError
from tbrewrite.events import EventFileReader, find_run_dirs, is_event_file, list_event_files
from tbrewrite.layout import (
    GENERIC,
    KERAS_FLAT,
    KERAS_SPLIT,
    TRAIN_DIR,
    VALIDATION_DIR,
    TagMapping,
    check_dir,
    is_flat_keras_tags,
    is_split_run,
    tf49109_warnings,
)
from tbrewrite.sidecar_merge import MergePlan, SidecarReport, plan_merge
from tbrewrite.parallel import map_ordered
from tbrewrite.records import Damage
from tbrewrite.scan import FileStats, StreamScan, TagStats, scan_files
from tbrewrite.sidecar import CSV_LOGGER, Sidecar, discover, read_sidecar
from tbrewrite.wire import REST_AT, SUMMARY_AT, TAG, WALL_TIME, Peek, retag_head
from tbrewrite.writer import WRITER_NAME, EventFileWriter, OutputSet, check_output_folder, output_file_name

RESTART_POLICIES = ("keep", "keep-last", "split")


@dataclass
class Source:
    """One input stream of a run: the root folder, ``train/`` or ``validation/``.

    Attributes:
        name: str. ``"train"``, ``"validation"``, or ``""`` for the run folder itself.
        files: list of Path, in TensorBoard's order.
    """

    name: str
    files: list[Path]


@dataclass
class RunPlan:
    """Everything decided about one run before a byte is written.

    Attributes:
        run: str. The run's path relative to SRC (``"."`` for SRC itself).
        src_dir: Path. The Keras run folder.
        out_dir: Path. The output run folder.
        layout: str. ``keras-split``, ``keras-flat`` or ``generic``.
        sources: list of Source.
        scans: list of StreamScan, one per source.
        tag_map: list of dict tag -> output tag, one per source (every tag present).
        out_name: str. The output event file's name.
        sidecars: list of Sidecar to merge into the output.
    """

    run: str
    src_dir: Path
    out_dir: Path
    layout: str
    sources: list[Source]
    scans: list[StreamScan]
    tag_map: list[dict[str, str]]
    out_name: str
    sidecars: list[Sidecar] = field(default_factory=list)

    def holds_events(self) -> bool:
        """True if the run has any event besides file_version (else there is nothing to
        write: e.g. only an empty, truncated or non-event file)."""
        return any(n for scan in self.scans for what, n in scan.event_kinds.items() if what != "file_version")

    def warnings(self) -> list[str]:
        """Return notes about problems the log itself shows.

        A keras-split run looks hit by tensorflow#49109 (Keras's TensorBoard callback
        dropping epoch summaries when an integer ``update_freq`` does not divide the
        batches per epoch) as :func:`tbrewrite.layout.tf49109_warnings` tells.
        """
        notes = []
        fixed = any(s.kind == CSV_LOGGER for s in self.sidecars)
        for source, scan in zip(self.sources, self.scans):
            if source.name == TRAIN_DIR:
                for note in tf49109_warnings(scan):
                    if fixed:
                        note = note.replace("merge a CSVLogger file with --sidecar", "the CSVLogger sidecar restores them")
                    notes.append(note)
        return notes

    @property
    def damage(self) -> list[Damage]:
        return [d for s in self.scans for d in s.damage]

    @property
    def events_in(self) -> int:
        return sum(s.events for s in self.scans)

    def renamed(self) -> list[tuple[str, str, str, TagStats]]:
        """Return ``(source, old tag, new tag, stats)`` for every tag whose name changes."""
        out = []
        for source, scan, tmap in zip(self.sources, self.scans, self.tag_map):
            for tag, stats in scan.tags.items():
                if tmap[tag] != tag:
                    out.append((source.name, tag, tmap[tag], stats))
        return out

    def backwards(self) -> dict[str, tuple[int, int, int]]:
        """Return, per output tag whose steps go back, ``(times, previous step, step)``
        of the first time."""
        out: dict[str, tuple[int, int, int]] = {}
        for scan, tmap in zip(self.scans, self.tag_map):
            for tag, stats in scan.tags.items():
                if stats.backwards:
                    _, prev, step = stats.backwards[0]
                    out[tmap[tag]] = (stats.backwards_count, prev, step)
        return out


@dataclass
class RunReport:
    """What converting one run did.

    Attributes:
        plan: RunPlan.
        events_out: int. Events written, the file_version event included.
        values_dropped: int. Summary values left out (``--restarts keep-last``).
        output: Path or None. The file written (None on a dry run).
        unchanged: bool. The output equals the input: nothing needed converting.
    """

    plan: RunPlan
    events_out: int = 0
    values_dropped: int = 0
    output: Path | None = None
    unchanged: bool = False
    sidecars: list[SidecarReport] = field(default_factory=list)
    pending: EventFileWriter | None = None


@dataclass
class ConvertReport:
    """What ``convert`` did, per run.

    Attributes:
        runs: list of RunReport, in SRC order.
    """

    runs: list[RunReport] = field(default_factory=list)

    @property
    def damage(self) -> list[Damage]:
        return [d for r in self.runs for d in r.plan.damage]


def discover_runs(src: Path) -> list[tuple[str, Path]]:
    """Return ``(relative name, folder)`` of every Keras run under ``src``.

    A folder holding ``train/`` or ``validation/`` event files is one keras-split run
    (its own event files, e.g. an hparams summary, belong to it too); any other folder
    holding event files is one run of its own.
    """
    roots: dict[Path, None] = {}
    for d in find_run_dirs(src):
        if d.name in (TRAIN_DIR, VALIDATION_DIR) and d != src and is_split_run(d.parent):
            roots.setdefault(d.parent, None)
        else:
            roots.setdefault(d, None)
    for d in list(roots):
        if is_split_run(d):
            roots.setdefault(d, None)
    ordered = sorted(roots, key=lambda p: p.relative_to(src).parts)
    return [(str(p.relative_to(src)) if p != src else ".", p) for p in ordered]


def plan_run(
    run: str,
    src_dir: Path,
    out_dir: Path,
    mapping: TagMapping,
    *,
    resync: bool = False,
    files: dict[str, list[Path]] | None = None,
    keep_last: bool = False,
) -> RunPlan:
    """Scan one Keras run and decide its layout, tag mapping and output name.

    Args:
        run: str. Name of the run relative to SRC.
        src_dir: Path. The run folder.
        out_dir: Path. Where its output event file goes.
        mapping: TagMapping.
        resync: bool. Read past damage.
        files: optional dict source name -> files, to convert a subset (restart split).

    Raises:
        OSError: if a file cannot be read.
    """
    if files is None:
        files = {
            "": list_event_files(src_dir),
            TRAIN_DIR: list_event_files(src_dir / TRAIN_DIR),
            VALIDATION_DIR: list_event_files(src_dir / VALIDATION_DIR),
        }
    sources = [Source(name, paths) for name, paths in files.items() if paths]
    # Only --restarts keep-last needs every backwards step; reporting needs the first.
    limit = None if keep_last else 1
    scans = [scan_files(s.files, resync=resync, backwards_limit=limit) for s in sources]
    if any(s.name in (TRAIN_DIR, VALIDATION_DIR) for s in sources):
        layout = KERAS_SPLIT
    elif scans and is_flat_keras_tags(scans[0].scalar_tags()):
        layout = KERAS_FLAT
    else:
        layout = GENERIC
    tag_map = _assign_tags(sources, scans, layout, mapping)
    out_name = output_file_name(start_wall_time(scans))
    return RunPlan(run, src_dir, out_dir, layout, sources, scans, tag_map, out_name)


def _assign_tags(
    sources: list[Source], scans: list[StreamScan], layout: str, mapping: TagMapping
) -> list[dict[str, str]]:
    """Map every source tag to a unique output tag.

    Scalars get the Keras mapping; all other tags keep their name. Tags that keep their
    name claim it first, in source order (run folder, train, validation); a later claim
    on a taken name -- e.g. the ``keras`` model config in both train and validation --
    is prefixed with its split name (``val/keras``).
    """
    proposals = []
    for i, (source, scan) in enumerate(zip(sources, scans)):
        for tag, stats in scan.tags.items():
            new = None
            if stats.kind == "scalar":
                if layout == KERAS_SPLIT and source.name:
                    new = mapping.map_split(source.name, tag)
                elif layout == KERAS_FLAT:
                    new = mapping.map_flat(tag)
            proposals.append((new is not None, i, tag, new or tag))
    proposals.sort(key=lambda p: p[0])  # stable: unchanged names claim first
    taken: set[str] = set()
    result: list[dict[str, str]] = [{} for _ in sources]
    for _, i, tag, out in proposals:
        if out in taken:
            split = {TRAIN_DIR: mapping.train_name, VALIDATION_DIR: mapping.val_name}
            base = f"{split.get(sources[i].name, 'run')}/{tag}"
            out, n = base, 2
            while out in taken:
                out, n = f"{base}_{n}", n + 1
        taken.add(out)
        result[i][tag] = out
    return result


def start_wall_time(scans: Sequence[StreamScan]) -> float:
    """Return the output's start: the earliest first wall_time of ``scans``, in seconds.

    Values no event-file name can hold (NaN, infinite, negative, 10**10 s or more:
    damaged or hostile input) are skipped; with none left, 0.0.
    """
    starts = [s.first_wall_time for s in scans if s.first_wall_time is not None]
    return min((t for t in starts if 0 <= t < 1e10), default=0.0)


_Item = tuple[float, int, int, "Peek | None", "event_pb2.Event | None", "bytes | None"]


def _events(index: int, files: list[FileStats], resync: bool) -> Iterator[_Item]:
    """Yield ``(wall_time, source index, sequence, peek, event, record bytes)`` of one source.

    ``(wall_time, source index, sequence)`` is unique and orders a stable merge.

    Common-shape records come peeked, not decoded (:mod:`tbrewrite.wire`). Exactly the
    bytes the scan read are read: a writer still appending to a file must not add
    events (or tags) that the plan has not seen.
    """
    seq = 0
    for stats in files:
        if resync:
            reader = EventFileReader(stats.path, resync=True, limit=stats.bytes).lazy()
        else:
            # Stop where the scan stopped; it checked every record before that.
            end = min((d.offset for d in stats.damage), default=stats.bytes)
            reader = EventFileReader(stats.path, limit=end).lazy(check=False)
        for peeked, event, raw in reader:
            seq += 1
            yield (peeked[WALL_TIME] if peeked is not None else event.wall_time), index, seq, peeked, event, raw


class _Survivors:
    """Decide which values ``--restarts keep-last`` keeps for one source tag.

    TensorBoard's data server keeps, per series, only the last write of each step: a
    value at step s removes every earlier value at a step >= s (``reservoir.rs``
    "Preemption"). So value number ``o`` at step ``s`` survives iff no later value of
    the tag has a step <= ``s``. It suffices to look at values whose step is not above
    their predecessor's: any later value at a step <= ``s`` ends an increasing stretch
    that starts at such a value, with a step lower still.
    """

    def __init__(self, backwards: list[tuple[int, int, int]]) -> None:
        self.ordinals = [o for o, _, _ in backwards]
        mins = []
        low = None
        for _, _, step in reversed(backwards):
            low = step if low is None else min(low, step)
            mins.append(low)
        self.suffix_min = mins[::-1]
        self.count = 0

    def keep(self, step: int) -> bool:
        o = self.count
        self.count += 1
        k = bisect.bisect_right(self.ordinals, o)
        return k >= len(self.ordinals) or step < self.suffix_min[k]


def write_run(
    plan: RunPlan,
    outputs: OutputSet,
    *,
    restarts: str = "keep",
    resync: bool = False,
    merge: MergePlan | None = None,
    publish: bool = True,
) -> RunReport:
    """Write ``plan``'s output event file through ``outputs``, sidecar points merged in.

    With ``publish=False`` the file is left under its temporary name and the open
    writer is returned in ``report.pending``, for a caller that must do something
    (move originals away) before the new file becomes visible.

    Raises:
        OSError: on read or write errors (the OutputSet removes partial output).
    """
    report = RunReport(plan)
    merge = merge or MergePlan()
    report.sidecars = merge.reports
    writer = outputs.open(plan.out_dir / plan.out_name, wall_time=start_wall_time(plan.scans))
    write_record = writer.write_record
    write_event = writer.write_event
    metadata = [{t: s.metadata for t, s in scan.tags.items()} for scan in plan.scans]
    # Tags whose values pass through untouched once their first value is written.
    settled: list[set[str]] = [set() for _ in plan.sources]
    survivors: list[dict[str, _Survivors]] = [{} for _ in plan.sources]
    if restarts == "keep-last":
        for i, scan in enumerate(plan.scans):
            for tag, stats in scan.tags.items():
                if stats.backwards:
                    survivors[i][tag] = _Survivors(stats.backwards)
    written: set[str] = set()
    dropped = 0
    replaced = merge.drop
    # Per source, tag bytes -> new tag bytes (None: unchanged) for tags whose first value
    # is written and whose later common-shape records only need their tag spliced.
    fast: list[dict[bytes, bytes | None]] = [{} for _ in plan.sources]
    streams: list[Iterator[_Item]] = [_events(i, scan.files, resync) for i, scan in enumerate(plan.scans)]
    if merge.events:
        streams.append((e.wall_time, len(streams), n, None, e, None) for n, e in enumerate(merge.events))
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    heads: dict[tuple[bytes, int], bytes] = {}
    for _, i, _, peeked, event, raw in merged:
        if raw is None:  # a sidecar point: tag final, metadata attached
            written.update(v.tag for v in event.summary.value)
            write_event(event)
            continue
        if peeked is not None:
            new = fast[i].get(peeked[TAG], _SLOW)
            if new is None:
                write_record(raw)
                continue
            rest_at = peeked[REST_AT]
            if new is not _SLOW and peeked[TAG] not in raw[rest_at:]:
                key = (new, len(raw) - rest_at)
                head = heads.get(key)
                if head is None:
                    head = heads[key] = retag_head(new, key[1])
                write_record(raw[: peeked[SUMMARY_AT]] + head + raw[rest_at:])
                continue
            event = _decode(raw)
        what = event.WhichOneof("what")
        if what == "file_version":
            continue
        if what != "summary":
            write_record(raw)
            continue
        tmap = plan.tag_map[i]
        done = settled[i]
        keepers = survivors[i]
        changed = False
        drop: list[int] = []
        for k, value in enumerate(event.summary.value):
            tag = value.tag
            if tag in done:
                continue
            if tag in keepers and not keepers[tag].keep(event.step):
                drop.append(k)
                dropped += 1
                continue
            out = tmap.get(tag, tag)  # a tag the scan never saw: the file changed since
            if out in replaced and event.step in replaced[out]:
                drop.append(k)
                continue
            if out != tag:
                value.tag = out
                changed = True
                if value.HasField("metadata") and value.metadata.display_name == tag:
                    value.metadata.display_name = out
            if out not in written:
                written.add(out)
                first = metadata[i].get(tag)
                if not value.HasField("metadata") and first is not None:
                    value.metadata.CopyFrom(first)
                    if value.metadata.display_name == tag:
                        value.metadata.display_name = out
                    changed = True
            elif out == tag and tag not in keepers and out not in replaced:
                done.add(tag)
            if tag not in keepers and out not in replaced:
                fast[i][tag.encode()] = None if out == tag else out.encode()
        if drop:
            for k in reversed(drop):
                del event.summary.value[k]
            if not event.summary.value:
                continue
            changed = True
        if changed:
            write_event(event)
        else:
            write_record(raw)
    report.events_out = writer.records
    report.values_dropped = dropped
    if publish:
        report.output = outputs.publish(writer)
    else:
        report.pending = writer
    return report


_SLOW = b"\x00slow"  # not a tag: fast-path lookups that miss


def _decode(raw: bytes) -> event_pb2.Event:
    """Decode a peeked record that needs protobuf after all."""
    try:
        return event_pb2.Event.FromString(raw)
    except DecodeError as e:
        raise InvalidEventError(f"a record whose checksums hold is not an Event protobuf ({e})") from None


def _check_paths(src: Path, out: Path, force: bool) -> None:
    check_dir(src)
    check_output_folder(src, out, force=force, src_label="SRC", out_label="OUT")


def convert(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    mapping: TagMapping | None = None,
    restarts: str = "keep",
    force: bool = False,
    dry_run: bool = False,
    resync: bool = False,
    sidecars: Sequence[str | os.PathLike[str]] = (),
    jobs: int | None = None,
    on_run: Callable[[RunReport], None] | None = None,
) -> ConvertReport:
    """Convert the Keras run (or tree of runs) at ``src`` into hierarchical runs at ``out``.

    If ``src`` is one run (a Keras ``log_dir`` with ``train/``/``validation/``, or one
    flat folder of event files, with no other runs below it), ``out`` is the output run
    folder. Otherwise ``out`` mirrors ``src``: one output run per run found.

    Args:
        src: str or PathLike. A Keras run or a tree of runs.
        out: str or PathLike. The output folder; must not exist or must be empty
            (unless ``force``), and must be neither ``src`` nor inside it.
        mapping: TagMapping. Split names and pattern (default ``train``/``val``,
            ``{split}/{metric}``).
        restarts: str. With several event files in one run: ``"keep"`` every event
            in file order, ``"keep-last"`` only what TensorBoard's data server shows
            (per tag, a write at step s drops earlier writes at steps >= s), or
            ``"split"`` one output run per input event file (or per Keras process).
        force: bool. Replace event files already in ``out``.
        dry_run: bool. Plan and report; write nothing.
        resync: bool. After damage, continue from the next valid record.
        sidecars: paths of learning-rate sidecars or Keras CSVLogger files to merge
            (see :mod:`tbrewrite.sidecar`); only when ``src`` is one run. A
            ``learning_rate.csv`` beside a run's ``train/`` and ``validation/`` is
            merged without being named.
        jobs: int or None. Runs converted at once, in worker processes (``spawn``: a
            script calling this with ``jobs > 1`` needs ``if __name__ == "__main__":``);
            default 1, in this process. The CLI defaults to every core.
        on_run: optional callback given each RunReport as soon as it is done, in SRC
            order.

    Returns:
        ConvertReport.

    Raises:
        InputError: ``src`` is missing, not a folder, or holds no event files;
            sidecars were given for a tree of runs.
        OutputError: ``out`` is unsafe (same as/inside ``src``) or already holds files.
        SidecarError: a sidecar is malformed or matches nothing in the run.
        OSError: reading or writing failed; nothing is left behind.
    """
    src, out = Path(src), Path(out)
    mapping = mapping or TagMapping()
    if restarts not in RESTART_POLICIES:
        raise UsageError(f"--restarts must be one of {', '.join(RESTART_POLICIES)}; got {restarts!r}")
    _check_paths(src, out, force)
    runs = discover_runs(src)
    if not runs:
        raise InputError(f"{src}: no event files found (names containing 'tfevents')")
    if sidecars and len(runs) > 1:
        raise InputError(f"{src}: --sidecar needs SRC to be one run, but it holds {len(runs)} runs")
    given = [read_sidecar(path, mapping) for path in sidecars]
    report = ConvertReport()
    tasks = [
        _Task(rel, run_dir, out if rel == "." else out / rel, mapping, restarts, resync, dry_run, given)
        for rel, run_dir in runs
    ]

    def done(_: int, reports: list[RunReport]) -> None:
        for run_report in reports:
            if on_run is not None:
                on_run(run_report)

    jobs = jobs or 1
    if dry_run or len(tasks) == 1 or jobs <= 1:
        with OutputSet() as outputs:
            for i, task in enumerate(tasks):
                reports = _convert_run(task, outputs)
                report.runs.extend(reports)
                done(i, reports)
    else:
        # A few batches per worker: fewer round trips, and each batch overlaps its
        # files' fsyncs with writing the next ones.
        size = max(1, -(-len(tasks) // (jobs * 4)))
        batches = [tasks[k : k + size] for k in range(0, len(tasks), size)]
        existed = out.exists()
        started = time.time()
        try:
            results = map_ordered(_convert_batch, batches, jobs, done)
            report.runs = [r for reports in results for r in reports]
        except BaseException:
            _remove_outputs(tasks, out, existed, started)
            raise
    if force and not dry_run:
        _remove_stale(report)
    return report


@dataclass
class _Task:
    """One run of ``convert``, as sent to a worker process."""

    rel: str
    run_dir: Path
    out_dir: Path
    mapping: TagMapping
    restarts: str
    resync: bool
    dry_run: bool
    given: list[Sidecar]


def _convert_run(task: _Task, outputs: OutputSet) -> list[RunReport]:
    """Plan, merge sidecars into and write one run (several with ``--restarts split``)."""
    given_paths = {g.path.resolve() for g in task.given}
    found = [read_sidecar(p, task.mapping) for p in discover(task.run_dir) if p.resolve() not in given_paths]
    reports = []
    for plan in _plans(task.rel, task.run_dir, task.out_dir, task.mapping, task.restarts, task.resync):
        if task.restarts != "split":
            plan.sidecars = task.given + found
        merge = plan_merge(plan, plan.sidecars, resync=task.resync, mapping=task.mapping)
        if task.dry_run or not (plan.holds_events() or merge.events):
            reports.append(RunReport(plan, sidecars=merge.reports))  # nothing to write
            continue
        with _name_write_errors(plan.out_dir / plan.out_name):
            run_report = write_run(plan, outputs, restarts=task.restarts, resync=task.resync, merge=merge, publish=False)
            writer = run_report.pending
            assert writer is not None
            writer.flush()
            run_report.unchanged = _same_bytes(plan, writer.temp_path)
            run_report.output = outputs.publish(writer, wait=False)
            run_report.pending = None
        reports.append(run_report)
    return reports


def _convert_batch(tasks: list[_Task]) -> list[RunReport]:
    """A worker process's job: some runs, their output removed if one fails."""
    with OutputSet() as outputs:
        return [r for task in tasks for r in _convert_run(task, outputs)]


def _remove_outputs(tasks: list[_Task], out: Path, existed: bool, started: float) -> None:
    """Undo a failed parallel convert, including runs that finished after the failure.

    A new OUT goes whole. In an OUT that existed (``--force``), the event files this
    command wrote (our name suffix, written since it started) go, then empty folders.
    """
    if not existed:
        shutil.rmtree(out, ignore_errors=True)
        return
    for task in tasks:
        for path in list_event_files(task.out_dir):
            with contextlib.suppress(OSError):
                if path.name.endswith("." + WRITER_NAME) and path.stat().st_mtime >= started:
                    path.unlink()
    for dirpath, _, _ in sorted(os.walk(out), key=lambda w: -len(Path(w[0]).parts)):
        if Path(dirpath) != out:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


@contextlib.contextmanager
def _name_write_errors(path: Path) -> Iterator[None]:
    """Name the output file in write errors that carry no file name (EFBIG, ENOSPC)."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e


def _plans(
    rel: str, run_dir: Path, out_dir: Path, mapping: TagMapping, restarts: str, resync: bool
) -> Iterator[RunPlan]:
    if restarts != "split":
        yield plan_run(rel, run_dir, out_dir, mapping, resync=resync, keep_last=restarts == "keep-last")
        return
    for name, files in split_sessions(run_dir):
        sub = rel if rel != "." else ""
        yield plan_run(
            str(Path(sub) / name), run_dir, out_dir / name, mapping, resync=resync, files=files
        )


def split_sessions(run_dir: Path) -> list[tuple[str, dict[str, list[Path]]]]:
    """Group a run's event files into one session per writing process.

    tf.keras / Keras 3 file names end in ``.<pid>.<uid>.v2`` (TF
    ``summary_ops_v2.py``); the ``train/`` and ``validation/`` files of one ``fit``
    share the pid. Files without that shape are a session each, paired by position.
    Each session is named after the seconds field of its first file name.
    """
    by_source = {
        "": list_event_files(run_dir),
        TRAIN_DIR: list_event_files(run_dir / TRAIN_DIR),
        VALIDATION_DIR: list_event_files(run_dir / VALIDATION_DIR),
    }
    sessions: dict[str, dict[str, list[Path]]] = {}
    for source, files in by_source.items():
        for position, path in enumerate(files):
            parts = path.name.split(".")
            key = parts[-3] if parts[-1] == "v2" and len(parts) >= 6 else f"#{position}"
            sessions.setdefault(key, {"": [], TRAIN_DIR: [], VALIDATION_DIR: []})[source].append(path)
    named: list[tuple[str, dict[str, list[Path]]]] = []
    used: set[str] = set()
    for files in sorted(sessions.values(), key=lambda s: min(p.name for v in s.values() for p in v)):
        first = min((p for v in files.values() for p in v), key=lambda p: p.name)
        parts = first.name.split(".")
        base = parts[3] if len(parts) > 3 and parts[3].isdigit() else first.name
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        named.append((name, files))
    return named


def _same_bytes(plan: RunPlan, output: Path | None) -> bool:
    """True if the run was one file whose bytes equal ``output`` (nothing to convert)."""
    files = [f for s in plan.sources for f in s.files]
    if output is None or len(files) != 1 or plan.renamed() or plan.sidecars:
        return False
    try:
        return filecmp.cmp(files[0], output, shallow=False)
    except OSError:
        return False


def _remove_stale(report: ConvertReport) -> None:
    """With --force, delete event files left in output run folders by earlier runs."""
    keep = {r.output for r in report.runs if r.output is not None}
    for d in {r.plan.out_dir for r in report.runs}:
        for path in list_event_files(d):
            if path not in keep and is_event_file(path.name):
                path.unlink()

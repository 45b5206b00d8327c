"""One streaming pass over event files: per-file framing stats and per-tag statistics.

This is the first pass of every command (``inspect`` prints it, ``convert`` and
``rename`` plan their mapping from it). Memory grows with the number of distinct tags
and restarts, never with the number of events.

Plugin metadata is taken from the *first* value of each tag that carries it, as
TensorBoard does (``plugin_event_accumulator.py`` ``_ProcessEvent``; Rust ``run.rs``
reads metadata when it creates a series).
"""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

from tensorboard.compat.proto import event_pb2, summary_pb2

from tbrewrite.engine import select
from tbrewrite.events.framing import Checkpoint, Damage, DamageKind, FileStamp
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.summary import value_form, value_kind
from tbrewrite.events.wire import STEP, TAG, WALL_TIME, has_metadata


@dataclass
class TagStats:
    """What one tag holds in one stream of events (a run, or one source of a run).

    Attributes:
        tag: str.
        kind: str. ``scalar``, ``histogram``, ``image``, ... (see ``events.value_kind``).
        form: str. How the first value is stored: ``simple_value``, ``tensor``, ``histo``...
        count: int. Values seen.
        first_step, last_step: int (int64). Steps of the first and last value, in file order.
        min_step, max_step: int (int64). The lowest and highest step of any value.
        first_wall_time, last_wall_time: float seconds since the Unix epoch.
        metadata: SummaryMetadata or None. The first metadata seen for the tag.
        backwards: list of (ordinal, previous_step, step): every value whose step is
            not above the step of the tag's previous value (a restart, or a duplicate
            step). ``ordinal`` counts this tag's values from 0 in stream order.
            Only the first ``backwards_limit`` are kept when ``scan_files`` is given one.
        backwards_count: int. How many values' steps are not above the previous value's
            (``len(backwards)`` unless limited).
        repeated: int. How many of those equal the previous value's step.
    """

    tag: str
    kind: str
    form: str
    count: int = 0
    first_step: int = 0
    last_step: int = 0
    min_step: int = 0
    max_step: int = 0
    first_wall_time: float = 0.0
    last_wall_time: float = 0.0
    metadata: summary_pb2.SummaryMetadata | None = None
    backwards: list[tuple[int, int, int]] = field(default_factory=list)
    backwards_count: int = 0
    repeated: int = 0


@dataclass
class FileStats:
    """Framing facts of one event file.

    Attributes:
        path: Path.
        records: int. Valid records read (file_version included).
        bytes: int. File size.
        damage: list of Damage.
        first_wall_time: float or None. wall_time of the first event.
        checkpoints: tuple of Checkpoint: fingerprints of the records read, the last
            one covering them all, so a rewrite can prove it reads the same records.
        stamp: FileStamp or None. The file as the scan opened it.
    """

    path: Path
    records: int = 0
    bytes: int = 0
    damage: list[Damage] = field(default_factory=list)
    first_wall_time: float | None = None
    checkpoints: tuple[Checkpoint, ...] = ()
    stamp: FileStamp | None = None

    @property
    def end(self) -> int:
        """Bytes holding the records a rewrite reads without resync.

        That is up to the first damage, else the whole file as scanned.
        """
        return min((d.offset for d in self.damage), default=self.bytes)


@dataclass
class StreamScan:
    """The result of scanning the files of one stream in order.

    Attributes:
        files: list of FileStats, in reading order.
        tags: dict of tag -> TagStats, in order of first appearance.
        event_kinds: Counter of ``Event.what`` fields (``summary``, ``graph_def``, ...).
        events: int. Events read (file_version included).
    """

    files: list[FileStats] = field(default_factory=list)
    tags: dict[str, TagStats] = field(default_factory=dict)
    event_kinds: Counter[str] = field(default_factory=Counter)
    events: int = 0

    @property
    def damage(self) -> list[Damage]:
        """Every file's damage, in reading order."""
        return [d for f in self.files for d in f.damage]

    @property
    def first_wall_time(self) -> float | None:
        """The wall_time of the stream's first event, or None if it has none."""
        for f in self.files:
            if f.first_wall_time is not None:
                return f.first_wall_time
        return None

    def scalar_tags(self) -> set[str]:
        """Return the tags whose kind is ``scalar``."""
        return {t for t, s in self.tags.items() if s.kind == "scalar"}


def scan_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    resync: bool = False,
    backwards_limit: int | None = None,
) -> StreamScan:
    """Read ``paths`` in order as one stream and return their :class:`StreamScan`.

    Args:
        paths: event files, in the order TensorBoard reads them.
        resync: bool. Continue after damage from the next valid record.
        backwards_limit: int or None. Keep at most this many ``TagStats.backwards``
            entries per tag (they are still counted), so memory stays flat on logs whose
            steps never increase (e.g. every value at step 0); None keeps all.

    Raises:
        OSError: if a file cannot be opened.
    """
    native = select.native()
    if native is not None:
        return _scan_files_native(native, paths, resync=resync, backwards_limit=backwards_limit)
    scan = StreamScan()
    tags = scan.tags
    kinds = scan.event_kinds
    names: dict[bytes, str] = {}
    for path in paths:
        reader = EventFileReader(path, resync=resync)
        stats = FileStats(Path(path))
        for record in reader:
            peeked = record.peek
            if peeked is not None:
                if stats.first_wall_time is None:
                    stats.first_wall_time = peeked[WALL_TIME]
                name = names.get(peeked[TAG])
                ts = tags.get(name) if name is not None else None
                if ts is not None and (ts.metadata is not None or has_metadata(record.data, peeked) is False):
                    kinds["summary"] += 1
                    _observe(ts, peeked[STEP], peeked[WALL_TIME], backwards_limit)
                    continue
            event = record.event
            if peeked is not None and name is None and len(event.summary.value) == 1:
                names[peeked[TAG]] = event.summary.value[0].tag
            what = event.WhichOneof("what")
            kinds[what or "empty"] += 1
            if stats.first_wall_time is None:
                stats.first_wall_time = event.wall_time
            if what != "summary":
                continue
            step = event.step
            wall_time = event.wall_time
            for value in event.summary.value:
                ts = tags.get(value.tag)
                if ts is None:
                    has_meta = value.HasField("metadata")
                    plugin = value.metadata.plugin_data.plugin_name if has_meta else ""
                    tags[value.tag] = TagStats(
                        value.tag,
                        value_kind(value, plugin),
                        value_form(value),
                        count=1,
                        first_step=step,
                        last_step=step,
                        min_step=step,
                        max_step=step,
                        first_wall_time=wall_time,
                        last_wall_time=wall_time,
                        metadata=_copy(value.metadata) if has_meta else None,
                    )
                    continue
                if ts.metadata is None and value.HasField("metadata"):
                    ts.metadata = _copy(value.metadata)
                    if ts.kind in ("tensor", "scalar") and ts.form == "tensor":
                        ts.kind = value_kind(value, value.metadata.plugin_data.plugin_name)
                _observe(ts, step, wall_time, backwards_limit)
        stats.records = reader.records
        stats.bytes = reader.size
        stats.damage = reader.damage
        stats.checkpoints = tuple(reader.checkpoints)
        stats.stamp = reader.stamp
        scan.events += reader.records
        scan.files.append(stats)
    return scan


def _observe(ts: TagStats, step: int, wall_time: float, backwards_limit: int | None) -> None:
    """Count one more value of ``ts`` at ``step``; note steps that go back."""
    if step <= ts.last_step:
        ts.backwards_count += 1
        ts.repeated += step == ts.last_step
        if backwards_limit is None or len(ts.backwards) < backwards_limit:
            ts.backwards.append((ts.count, ts.last_step, step))
        if step < ts.min_step:
            ts.min_step = step
    elif step > ts.max_step:
        ts.max_step = step
    ts.count += 1
    ts.last_step = step
    ts.last_wall_time = wall_time


def _copy(metadata: summary_pb2.SummaryMetadata) -> summary_pb2.SummaryMetadata:
    copy = summary_pb2.SummaryMetadata()
    copy.CopyFrom(metadata)
    return copy


# --- The native engine: the same StreamScan from tbrewrite._native's columns ---------------

_BATCH_RECORDS = 1 << 16
"""Records per call into the native scanner: its columns for a batch take ~4 MiB."""
_WHATS: dict[int, str] = {f.number: f.name for f in event_pb2.Event.DESCRIPTOR.oneofs_by_name["what"].fields}
_FORMS: dict[int, str] = {f.number: f.name for f in summary_pb2.Summary.Value.DESCRIPTOR.oneofs_by_name["value"].fields}


def _what_name(number: int) -> str:
    return _WHATS.get(number, "empty")


def _form_name(number: int) -> str:
    return _FORMS.get(number, "empty")


@functools.lru_cache(maxsize=256)
def _kind(form: int, plugin: str) -> str:
    """``value_kind`` of a value whose ``value`` oneof is field ``form`` (0: unset)."""
    value = summary_pb2.Summary.Value()
    name = _FORMS.get(form)
    if name is not None:
        field_ = value.DESCRIPTOR.fields_by_name[name]
        if field_.message_type is not None:
            getattr(value, name).SetInParent()
        else:
            setattr(value, name, field_.default_value)
    return str(value_kind(value, plugin))


def _scan_files_native(
    native: ModuleType,
    paths: Iterable[str | os.PathLike[str]],
    *,
    resync: bool,
    backwards_limit: int | None,
) -> StreamScan:
    """Return :func:`scan_files` on the native core.

    Each file is read by ``_native.FileScanner`` a batch of records at a time (memory
    stays flat), and each batch's columns are folded with numpy into the same
    :class:`StreamScan` the Python loop builds.
    """
    scan = StreamScan()
    for path in paths:
        name = os.fspath(path)
        stats = FileStats(Path(path))
        scanner = native.FileScanner(name, resync=resync)
        names: list[str] = []  # the file's tags by the scanner's ids
        metadata: dict[int, bytes] = {}  # tag id -> its first metadata in the file
        while True:
            batch = scanner.read(_BATCH_RECORDS)
            names.extend(batch["tags"])
            metadata.update(batch["metadata"])
            _fold(native, scan, stats, batch, names, metadata, backwards_limit)
            if batch["done"]:
                break
        stats.records = batch["records"]
        stats.bytes = batch["size"]
        stats.damage = [
            Damage(name, DamageKind(kind), offset, before, detail, resumed)
            for kind, offset, before, detail, resumed in batch["damage"]
        ]
        stats.checkpoints = tuple(Checkpoint(*c) for c in batch["checkpoints"])
        stats.stamp = FileStamp(*batch["stamp"]) if batch["stamp"] is not None else None
        scan.events += stats.records
        scan.files.append(stats)
    return scan


def _wants_numpy(records: int) -> bool:
    """Whether to fold a batch of ``records`` with numpy rather than a Python loop.

    Importing numpy costs ~0.1 s of CPU, more than a Python loop over a few thousand
    records: small logs (``inspect`` of one tiny run) go without it unless something
    imported it already. Both ways give the same StreamScan (``tests/native``).
    """
    return records >= _NUMPY_FROM or "numpy" in sys.modules or sys.byteorder != "little"


_NUMPY_FROM = 4096


def _fold(
    native: ModuleType,
    scan: StreamScan,
    stats: FileStats,
    batch: dict[str, Any],
    names: list[str],
    metadata: dict[int, bytes],
    backwards_limit: int | None,
) -> None:
    """Add one batch of a file's records to ``scan``, as the Python loop would."""
    if _wants_numpy(len(batch["whats"])):
        _fold_columns(native, scan, stats, batch, names, metadata, backwards_limit)
    else:
        _fold_rows(native, scan, stats, batch, names, metadata, backwards_limit)


def _fold_rows(
    native: ModuleType,
    scan: StreamScan,
    stats: FileStats,
    batch: dict[str, Any],
    names: list[str],
    metadata: dict[int, bytes],
    backwards_limit: int | None,
) -> None:
    """:func:`_fold` value by value in Python (little-endian machines), for small batches."""
    whats = batch["whats"]
    if not whats:
        return
    wall_times = memoryview(batch["wall_times"]).cast("d").tolist()
    if stats.first_wall_time is None:
        stats.first_wall_time = wall_times[0]
    kinds = scan.event_kinds
    for what in whats:
        kinds[_what_name(what)] += 1
    has_metadata = native.FLAG_HAS_METADATA
    steps = memoryview(batch["steps"]).cast("q").tolist()
    tag_ids = memoryview(batch["tag_ids"]).cast("I").tolist()
    forms = batch["value_kinds"]
    flags = batch["flags"]
    # (row, order within the row, tag id, value oneof, has metadata), in file order.
    values: list[tuple[int, int, int, int, bool]] = [
        (row, 0, tag_ids[row], forms[row], bool(flags[row] & has_metadata))
        for row, count in enumerate(memoryview(batch["values"]).cast("I").tolist())
        if count
    ]
    if batch["more_rows"]:
        more = zip(
            memoryview(batch["more_rows"]).cast("I").tolist(),
            memoryview(batch["more_tag_ids"]).cast("I").tolist(),
            batch["more_kinds"],
            batch["more_flags"],
            strict=True,
        )
        values.extend(
            (row, k, tid, form, bool(flag & has_metadata)) for k, (row, tid, form, flag) in enumerate(more, 1)
        )
        values.sort()
    tags = scan.tags
    for row, _, tid, form, meta in values:
        step = steps[row]
        wall_time = wall_times[row]
        name = names[tid]
        ts = tags.get(name)
        if ts is None:
            md = _metadata(metadata[tid]) if meta else None
            tags[name] = TagStats(
                name,
                _kind(form, md.plugin_data.plugin_name if md is not None else ""),
                _form_name(form),
                count=1,
                first_step=step,
                last_step=step,
                min_step=step,
                max_step=step,
                first_wall_time=wall_time,
                last_wall_time=wall_time,
                metadata=md,
            )
            continue
        if ts.metadata is None and meta:
            md = _metadata(metadata[tid])
            ts.metadata = md
            if ts.kind in ("tensor", "scalar") and ts.form == "tensor":
                ts.kind = _kind(form, md.plugin_data.plugin_name)
        _observe(ts, step, wall_time, backwards_limit)


def _fold_columns(
    native: ModuleType,
    scan: StreamScan,
    stats: FileStats,
    batch: dict[str, Any],
    names: list[str],
    metadata: dict[int, bytes],
    backwards_limit: int | None,
) -> None:
    """:func:`_fold` with numpy: values grouped by tag, statistics per group."""
    import numpy as np

    whats = np.frombuffer(batch["whats"], np.uint8)
    if not len(whats):
        return
    wall_times = np.frombuffer(batch["wall_times"], "<f8")
    if stats.first_wall_time is None:
        stats.first_wall_time = float(wall_times[0])
    found, first = np.unique(whats, return_index=True)
    counts = np.bincount(whats)
    for what in found[np.argsort(first)].tolist():
        scan.event_kinds[_what_name(what)] += int(counts[what])

    # One observation per summary value, in file order: the first value of each record
    # from the per-record columns, the others from the more_* columns.
    has_metadata = native.FLAG_HAS_METADATA
    rows = np.flatnonzero(np.frombuffer(batch["values"], "<u4"))
    tag = np.frombuffer(batch["tag_ids"], "<u4")[rows]
    form = np.frombuffer(batch["value_kinds"], np.uint8)[rows]
    meta = (np.frombuffer(batch["flags"], np.uint8)[rows] & has_metadata) != 0
    more_rows = np.frombuffer(batch["more_rows"], "<u4")
    if len(more_rows):
        rows = np.concatenate([rows, more_rows])
        tag = np.concatenate([tag, np.frombuffer(batch["more_tag_ids"], "<u4")])
        form = np.concatenate([form, np.frombuffer(batch["more_kinds"], np.uint8)])
        meta = np.concatenate([meta, (np.frombuffer(batch["more_flags"], np.uint8) & has_metadata) != 0])
        order = np.argsort(rows, kind="stable")
        rows, tag, form, meta = rows[order], tag[order], form[order], meta[order]
    n = len(rows)
    if not n:
        return
    steps = np.frombuffer(batch["steps"], "<i8")[rows]
    walls = wall_times[rows]

    # Group by tag (stable: each group in file order), groups by first appearance.
    order = np.argsort(tag.astype(np.uint16) if len(names) <= 0xFFFF else tag, kind="stable")
    tag, form, meta, steps, walls = tag[order], form[order], meta[order], steps[order], walls[order]
    starts = np.flatnonzero(np.concatenate([[True], tag[1:] != tag[:-1]]))
    ends = np.append(starts[1:], n)
    # Steps not above the previous step of the same tag; a group's first is compared below.
    back = np.empty(n, dtype=bool)
    back[0] = False
    np.less_equal(steps[1:], steps[:-1], out=back[1:])
    back[starts] = False
    repeated = np.zeros(n, dtype=bool)
    np.equal(steps[1:], steps[:-1], out=repeated[1:])
    repeated[starts] = False
    back_count = np.add.reduceat(back, starts).tolist()
    repeated_count = np.add.reduceat(repeated, starts).tolist()
    min_steps = np.minimum.reduceat(steps, starts).tolist()
    max_steps = np.maximum.reduceat(steps, starts).tolist()
    # Each group's first value with metadata (-1: none).
    with_meta = np.flatnonzero(meta)
    if len(with_meta):
        k = np.searchsorted(with_meta, starts)
        candidate = with_meta[np.minimum(k, len(with_meta) - 1)]
        first_meta = np.where((k < len(with_meta)) & (candidate < ends), candidate, -1).tolist()
    else:
        first_meta = [-1] * len(starts)
    last = ends - 1
    groups = sorted(
        map(
            _Group._make,
            zip(
                tag[starts].tolist(),
                starts.tolist(),
                ends.tolist(),
                order[starts].tolist(),
                steps[starts].tolist(),
                walls[starts].tolist(),
                form[starts].tolist(),
                meta[starts].tolist(),
                steps[last].tolist(),
                walls[last].tolist(),
                back_count,
                repeated_count,
                min_steps,
                max_steps,
                first_meta,
                strict=True,
            ),
        ),
        key=lambda g: g.appears,
    )
    tags = scan.tags
    for g in groups:
        name = names[g.tag_id]
        ts = tags.get(name)
        if ts is None:
            md = _metadata(metadata[g.tag_id]) if g.first_has_metadata else None
            ts = TagStats(
                name,
                _kind(g.first_form, md.plugin_data.plugin_name if md is not None else ""),
                _form_name(g.first_form),
                first_step=g.first_step,
                last_step=g.first_step,
                min_step=g.first_step,
                max_step=g.first_step,
                first_wall_time=g.first_wall_time,
                last_wall_time=g.first_wall_time,
                metadata=md,
            )
            tags[name] = ts
            before = 0
        else:
            before = ts.count
            if g.first_step <= ts.last_step:
                ts.backwards_count += 1
                ts.repeated += g.first_step == ts.last_step
                if backwards_limit is None or len(ts.backwards) < backwards_limit:
                    ts.backwards.append((before, ts.last_step, g.first_step))
        if ts.metadata is None and g.metadata_at >= 0:
            md = _metadata(metadata[g.tag_id])
            ts.metadata = md
            if ts.kind in ("tensor", "scalar") and ts.form == "tensor":
                ts.kind = _kind(int(form[g.metadata_at]), md.plugin_data.plugin_name)
        if g.backwards:
            ts.backwards_count += g.backwards
            ts.repeated += g.repeated
            room = None if backwards_limit is None else backwards_limit - len(ts.backwards)
            if room is None or room > 0:
                at = np.flatnonzero(back[g.start : g.end])[:room]
                group_steps = steps[g.start : g.end]
                ts.backwards.extend(
                    zip((at + before).tolist(), group_steps[at - 1].tolist(), group_steps[at].tolist(), strict=True)
                )
        ts.count = before + g.end - g.start
        ts.min_step = min(ts.min_step, g.min_step)
        ts.max_step = max(ts.max_step, g.max_step)
        ts.last_step = g.last_step
        ts.last_wall_time = g.last_wall_time


class _Group(NamedTuple):
    """One tag's values in a batch, and what they say.

    They are positions ``start:end`` of the batch's values grouped by tag (in file order
    within the group).
    """

    tag_id: int
    start: int
    end: int
    appears: int  # position of the group's first value in file order
    first_step: int
    first_wall_time: float
    first_form: int
    first_has_metadata: bool
    last_step: int
    last_wall_time: float
    backwards: int  # values after the first whose step is not above the previous one's
    repeated: int  # ... equal to it
    min_step: int
    max_step: int
    metadata_at: int  # grouped position of the first value with metadata, -1 if none


def _metadata(raw: bytes) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata.FromString(raw)

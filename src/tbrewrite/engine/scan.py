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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

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
    stays flat), folded per tag in the native core (``FileScanner.fold``); each batch's
    groups are added here to the same :class:`StreamScan` the Python loop builds.
    """
    scan = StreamScan()
    for path in paths:
        name = os.fspath(path)
        stats = FileStats(Path(path))
        scanner = native.FileScanner(name, resync=resync)
        names: list[str] = []  # the file's tags by the scanner's ids
        metadata: dict[int, bytes] = {}  # tag id -> its first metadata in the file
        while True:
            batch = scanner.fold(_BATCH_RECORDS, backwards_limit)
            names.extend(batch["tags"])
            metadata.update(batch["metadata"])
            _fold(scan, stats, batch, names, metadata, backwards_limit)
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


def _fold(
    scan: StreamScan,
    stats: FileStats,
    batch: dict[str, Any],
    names: list[str],
    metadata: dict[int, bytes],
    backwards_limit: int | None,
) -> None:
    """Add one batch of a file's records, folded per tag, to ``scan``, as the Python loop would."""
    if stats.first_wall_time is None:
        stats.first_wall_time = batch["first_wall_time"]
    kinds = scan.event_kinds
    for what, count in batch["whats"]:
        kinds[_what_name(what)] += count
    tags = scan.tags
    for head, tail in batch["groups"]:
        tag_id, count, first_step, first_wall_time, first_form, first_has_metadata, last_step = head
        last_wall_time, min_step, max_step, backwards, repeated, metadata_form, backwards_at = tail
        name = names[tag_id]
        ts = tags.get(name)
        if ts is None:
            md = _metadata(metadata[tag_id]) if first_has_metadata else None
            ts = TagStats(
                name,
                _kind(first_form, md.plugin_data.plugin_name if md is not None else ""),
                _form_name(first_form),
                first_step=first_step,
                last_step=first_step,
                min_step=first_step,
                max_step=first_step,
                first_wall_time=first_wall_time,
                last_wall_time=first_wall_time,
                metadata=md,
            )
            tags[name] = ts
            before = 0
        else:
            before = ts.count
            if first_step <= ts.last_step:
                ts.backwards_count += 1
                ts.repeated += first_step == ts.last_step
                if backwards_limit is None or len(ts.backwards) < backwards_limit:
                    ts.backwards.append((before, ts.last_step, first_step))
        if ts.metadata is None and metadata_form is not None:
            md = _metadata(metadata[tag_id])
            ts.metadata = md
            if ts.kind in ("tensor", "scalar") and ts.form == "tensor":
                ts.kind = _kind(metadata_form, md.plugin_data.plugin_name)
        if backwards:
            ts.backwards_count += backwards
            ts.repeated += repeated
            room = None if backwards_limit is None else backwards_limit - len(ts.backwards)
            if room is None or room > 0:
                ts.backwards.extend((at + before, prev, step) for at, prev, step in backwards_at[:room])
        ts.count = before + count
        ts.min_step = min(ts.min_step, min_step)
        ts.max_step = max(ts.max_step, max_step)
        ts.last_step = last_step
        ts.last_wall_time = last_wall_time


def _metadata(raw: bytes) -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata.FromString(raw)

"""The one rewrite engine.

An :class:`~tbrewrite.engine.plan.OutputPlan` carried out in one streaming pass.

The sources' records are merged in wall_time order with the plan's extra events; each
summary value is renamed, dropped or kept as its :class:`~tbrewrite.engine.plan.TagAction`
says, and the plugin metadata goes on the first value of every output tag. Records
needing no change are written back as their bytes; common one-value records that only
need a new tag are retagged from their bytes (:mod:`tbrewrite.events.wire`); anything
else is decoded, changed and serialized.

The pass never trusts the scan the plan was built from blindly: it reads the files
again and compares fingerprints of their records with the scan's
(:class:`tbrewrite.events.framing.Checkpoint`). A file that shrank or whose records
differ (replaced or rewritten in between) is reported as damage with its byte offset;
a file that grew is read only as far as the scan read it, and a note says so.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType

from tensorboard.compat.proto import event_pb2

from tbrewrite.engine import select
from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.restarts import Survivors
from tbrewrite.errors import InputError
from tbrewrite.events.framing import CHANGED, TRUNCATED, Checkpoint, Damage, DamageKind
from tbrewrite.events.reader import EventFileReader, Record
from tbrewrite.events.wire import REST_AT, SUMMARY_AT, TAG, WALL_TIME, retag_head
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.output.transaction import Transaction

_SLOW = b"\x00slow"  # not a tag: fast-path lookups that miss
_Item = tuple[float, int, int, "Record | None", "event_pb2.Event | None"]
_Fast = list[tuple[bytes, bytes | None]]
_PerValueSpec = tuple[int, "list[int] | None", "int | None", "int | None", "float | None", "float | None"]
_PerValue = list[tuple[bytes, bytes | None, _PerValueSpec]]
_Ordinals = list[tuple[bytes, int]]
_NativeDamage = list[tuple[str, int, int, str, int | None]]


@dataclass
class OutputResult:
    """What rewriting one output file did.

    Attributes:
        events_in: int. Valid records read from the sources (file_version included).
        events_out: int. Records written (file_version included).
        values_renamed: int. Summary values whose tag changed.
        values_dropped: int. Summary values left out by a drop.
        values_superseded: int. Values left out by ``--restarts keep-last``.
        values_cropped: int. Values left out because they lie outside their tag's
            :class:`~tbrewrite.engine.plan.Window`.
        values_thinned: int. Values left out because their ordinal is not in their
            tag's ``keep``.
        events_dropped: int. Non-summary events left out by ``drop_events``.
        values_replaced: int. Values left out because an extra point replaces them.
        changed: bool. Some record written differs from the input's.
        damage: list of Damage found by this pass that the scan had not seen.
        notes: list of str, e.g. a source that grew while it was rewritten.
        writer: EventFileWriter or None. The output, complete under its temporary name
            and not yet published; None if there was nothing to write.
    """

    events_in: int = 0
    events_out: int = 0
    values_renamed: int = 0
    values_dropped: int = 0
    values_superseded: int = 0
    values_replaced: int = 0
    values_cropped: int = 0
    values_thinned: int = 0
    events_dropped: int = 0
    changed: bool = False
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writer: EventFileWriter | None = None


def rewrite(plan: OutputPlan, outputs: Transaction) -> OutputResult:
    """Write ``plan``'s output file through ``outputs``, unpublished.

    The native core (:mod:`tbrewrite.engine.select`) runs the per-record loop when it is
    the engine in use, calling back into :class:`_Pass` only for records off the fast
    path; the Python loop below is the reference. Both give the same bytes and results.

    Args:
        plan: OutputPlan.
        outputs: Transaction that owns the file (and removes it if the command fails).

    Returns:
        OutputResult; ``result.writer`` is the written file, for the caller to publish
        (:meth:`Transaction.publish`) or stage for a swap. None when nothing valid was
        read with :attr:`Header.KEEP` (an output needs at least one event).

    Raises:
        OSError: reading or writing failed (``outputs`` removes partial output).
    """
    native = select.native()
    state = _Pass(plan, outputs, per_value_fast=native is not None)
    try:
        if native is not None:
            _run_native(native, state)
        else:
            _run_python(state)
        if state.writer is not None:
            state.writer.flush()
    except OSError as e:
        if e.filename is None:  # a buffered write of the output (ENOSPC, EFBIG): name the file
            raise OSError(e.errno, e.strerror or str(e), str(plan.path)) from None
        raise
    result = state.result
    if state.writer is not None:
        result.events_out = state.writer.records
    result.writer = state.writer
    return result


class _Pass:
    """The decisions of one rewrite, record by record, and what they changed.

    Records on the fast path (a tag passed through, or only renamed, in a one-value
    record of the common shape) are handled by the loops themselves from :attr:`fast`;
    every other record goes through :meth:`slow`, which also says which tags are on the
    fast path from then on. With ``per_value_fast`` (the native loop), tags thinned by
    ordinal or cropped by a window go on the fast path too, with their rule
    (:attr:`new_per_value`); the loop counts their ordinals and says so
    (:meth:`counted`), and :attr:`new_ordinals` tells it what :meth:`slow` counted.
    """

    def __init__(self, plan: OutputPlan, outputs: Transaction, *, per_value_fast: bool = False) -> None:
        self.plan = plan
        self.outputs = outputs
        self.result = OutputResult()
        self.writer: EventFileWriter | None = None
        if plan.header is Header.OWN:
            self.writer = outputs.open(plan.path, wall_time=plan.wall_time)
        self.actions = [s.tags for s in plan.sources]
        self.survivors: list[dict[str, Survivors]] = [
            {tag: Survivors(a.backwards) for tag, a in s.tags.items() if a.backwards} for s in plan.sources
        ]
        # Output tags whose first value is written; source tags whose values now pass
        # through untouched; per source, tag bytes -> new tag bytes (None: unchanged)
        # for tags whose later common-shape records only need their tag spliced.
        self.written: set[str] = set()
        self.settled: list[set[str]] = [set() for _ in plan.sources]
        self.fast: list[dict[bytes, bytes | None]] = [{} for _ in plan.sources]
        self.new_fast: list[tuple[bytes, bytes | None]] = []
        # Per source, tag -> values of it seen so far, for tags thinned by ordinal.
        self.ordinals: list[dict[str, int]] = [{} for _ in plan.sources]
        # Per-value tags on the native fast path, per source (tag -> its bytes), and what
        # goes back to the loop at the end of this call.
        self.per_value_fast = per_value_fast
        self.per_value: list[dict[str, bytes]] = [{} for _ in plan.sources]
        self.new_per_value: _PerValue = []
        self.new_ordinals: _Ordinals = []

    def counted(self, i: int, counted: _Ordinals) -> None:
        """Add the ordinals the native loop counted for source ``i``'s per-value tags."""
        counts = self.ordinals[i]
        for key, n in counted:
            tag = key.decode()
            counts[tag] = counts.get(tag, 0) + n

    def extra(self, event: event_pb2.Event) -> None:
        """Note that an extra point (tags final, metadata attached) was written."""
        self.written.update(v.tag for v in event.summary.value)

    def slow(self, i: int, record: Record) -> bytes | None:
        """Decide a record of source ``i`` off the fast path; return what to write.

        May open the output (:attr:`Header.KEEP`: at the first record).
        """
        result = self.result
        raw = record.data
        event = record.event
        what = event.WhichOneof("what")
        if self.writer is None:
            if what == "file_version":
                self.writer = self.outputs.open(self.plan.path, wall_time=event.wall_time, header=raw)
                return None
            self.writer = self.outputs.open(self.plan.path, wall_time=event.wall_time)
            result.changed = True
        if what == "file_version" and self.plan.header is Header.OWN:
            return None
        if what != "summary":
            if what in self.plan.drop_events:
                result.events_dropped += 1
                result.changed = True
                return None
            return raw
        replaced = self.plan.replaced
        tags = self.actions[i]
        done = self.settled[i]
        keepers = self.survivors[i]
        written = self.written
        changed = False
        drop: list[int] = []
        shift: int | None = None  # the step offset of the event's values
        for k, value in enumerate(event.summary.value):
            tag = value.tag
            action = tags.get(tag) or TagAction(tag)
            if shift is None:
                shift = action.step_offset
            elif action.step_offset != shift:
                raise InputError(
                    f"{self.plan.sources[i].name}: the values of one event at step {event.step} would need "
                    f"step offsets {shift} and {action.step_offset}; give one --step-offset N"
                )
            if tag in done:
                continue
            thinned = False
            if action.keep is not None:  # every value is counted, whatever else drops it
                counts = self.ordinals[i]
                ordinal = counts.get(tag, 0)
                counts[tag] = ordinal + 1
                thinned = ordinal not in action.keep
                if tag in self.per_value[i]:
                    self.new_ordinals.append((self.per_value[i][tag], ordinal + 1))
            step = event.step + shift
            if tag in keepers and not keepers[tag].keep(step):
                drop.append(k)
                result.values_superseded += 1
                continue
            if thinned:
                drop.append(k)
                result.values_thinned += 1
                continue
            window = action.window
            if window is not None and not window.holds(step, event.wall_time):
                drop.append(k)
                result.values_cropped += 1
                continue
            out = action.new
            if out is None:
                drop.append(k)
                result.values_dropped += 1
                continue
            if out in replaced and (event.step, event.wall_time) in replaced[out]:
                drop.append(k)
                result.values_replaced += 1
                continue
            if out != tag:
                value.tag = out
                changed = True
                result.values_renamed += 1
                if value.HasField("metadata") and value.metadata.display_name == tag:
                    value.metadata.display_name = out
            edit = action.edit_metadata
            if out not in written:
                written.add(out)
                first = action.first_metadata
                if not value.HasField("metadata") and first is not None:
                    value.metadata.CopyFrom(first)
                    if value.metadata.display_name == tag:
                        value.metadata.display_name = out
                    changed = True
            elif out == tag and tag not in keepers and out not in replaced and edit is None and not action.per_value:
                done.add(tag)
            if edit is not None and value.HasField("metadata") and edit(value.metadata):
                changed = True
            if tag not in keepers and out not in replaced and edit is None:
                if not action.per_value:
                    key, new = tag.encode(), None if out == tag else out.encode()
                    self.fast[i][key] = new
                    self.new_fast.append((key, new))
                elif self.per_value_fast and action.step_offset == 0 and tag not in self.per_value[i]:
                    self._per_value(i, tag, out, action)
        if shift:
            event.step += shift
            changed = True
        if drop:
            for k in reversed(drop):
                del event.summary.value[k]
            result.changed = True
            if not event.summary.value:
                return None
            changed = True
        if changed:
            result.changed = True
            serialized: bytes = event.SerializeToString()
            return serialized
        return raw

    def _per_value(self, i: int, tag: str, out: str, action: TagAction) -> None:
        """Put source ``i``'s per-value ``tag`` on the native fast path with its rule."""
        key = tag.encode()
        self.per_value[i][tag] = key
        keep = None
        if action.keep is not None:
            following = self.ordinals[i].get(tag, 0)
            keep = sorted(o for o in action.keep if o >= following)
        window = action.window
        steps, wall_times = (window.steps, window.wall_times) if window is not None else ((None, None), (None, None))
        spec = (self.ordinals[i].get(tag, 0), keep, *steps, *wall_times)
        self.new_per_value.append((key, None if out == tag else out.encode(), spec))


def _run_python(state: _Pass) -> None:
    """The reference loop: merge, fast path from :attr:`_Pass.fast`, else :meth:`_Pass.slow`."""
    plan = state.plan
    result = state.result
    streams: list[Iterator[_Item]] = [_source(k, s, plan.resync, result) for k, s in enumerate(plan.sources)]
    if plan.extra:
        n = len(streams)
        streams.append((e.wall_time, n, seq, None, e) for seq, e in enumerate(plan.extra))
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    fast = state.fast
    heads: dict[tuple[bytes, int], bytes] = {}
    for _, i, _, record, event in merged:
        writer = state.writer
        if record is None:
            assert writer is not None and event is not None
            state.extra(event)
            writer.write_event(event)
            continue
        raw = record.data
        peeked = record.peek
        if peeked is not None and writer is not None:
            new = fast[i].get(peeked[TAG], _SLOW)
            if new is None:
                writer.write_record(raw)
                continue
            rest_at = peeked[REST_AT]
            if new is not _SLOW and peeked[TAG] not in raw[rest_at:]:
                key = (new, len(raw) - rest_at)
                head = heads.get(key)
                if head is None:
                    head = heads[key] = retag_head(new, key[1])
                writer.write_record(raw[: peeked[SUMMARY_AT]] + head + raw[rest_at:])
                result.values_renamed += 1
                result.changed = True
                continue
        data = state.slow(i, record)
        if data is not None:
            assert state.writer is not None
            state.writer.write_record(data)


class _NativeHost:
    """What the native loop calls back: :meth:`_Pass.slow` and the extra events."""

    def __init__(self, state: _Pass) -> None:
        self.state = state
        self.extras = iter(state.plan.extra)
        # Only extras bringing a tag not seen before wait to be noted, with their ordinal:
        # the others add nothing to `written`, and millions of them must not pile up.
        self.pending: deque[tuple[int, event_pb2.Event]] = deque()
        self.fetched = 0
        self.seen: set[str] = set()

    def next_extra(self) -> tuple[float, bytes] | None:
        event = next(self.extras, None)
        if event is None:
            return None
        self.fetched += 1
        tags = [v.tag for v in event.summary.value]
        if not self.seen.issuperset(tags):
            self.seen.update(tags)
            self.pending.append((self.fetched, event))
        return event.wall_time, event.SerializeToString()

    def slow(
        self, i: int, data: bytes, offset: int, extras_done: int, counted: _Ordinals
    ) -> tuple[bytes | None, _Fast, _PerValue, _Ordinals, int]:
        state = self.state
        while self.pending and self.pending[0][0] <= extras_done:
            state.extra(self.pending.popleft()[1])
        if counted:
            state.counted(i, counted)
        had_writer = state.writer is not None
        out = state.slow(i, Record(data, offset, None, None))
        fd = -1
        if not had_writer and state.writer is not None:
            fd = state.writer.native_fd()
        fast, state.new_fast = state.new_fast, []
        per_value, state.new_per_value = state.new_per_value, []
        ordinals, state.new_ordinals = state.new_ordinals, []
        return out, fast, per_value, ordinals, fd


def _run_native(native: ModuleType, state: _Pass) -> None:
    """The native loop (``tbrewrite._native.rewrite``) over the same plan."""
    plan = state.plan
    result = state.result
    sources = [
        [
            (
                f.path,
                f.size if plan.resync else f.end,
                plan.resync,
                plan.resync,
                [(c.records, c.end, c.digest) for c in f.checkpoints],
            )
            for f in source.files
        ]
        for source in plan.sources
    ]
    fd = state.writer.native_fd() if state.writer is not None else None
    host = _NativeHost(state)
    done = native.rewrite(sources, host, bool(plan.extra), fd, plan.path)
    for s, k, changed, verified, damage, last, size, events in done["files"]:
        planned = plan.sources[s].files[k]
        if changed:
            expected = planned.checkpoints
            _changed(result, planned, expected[verified - 1].end if verified else 0, events)
        else:
            _finish_native(result, planned, damage, Checkpoint(*last), size)
        result.events_in += events
    if done["renamed"]:
        result.values_renamed += done["renamed"]
        result.changed = True
    if done["thinned"] or done["cropped"]:
        result.values_thinned += done["thinned"]
        result.values_cropped += done["cropped"]
        result.changed = True
    if state.writer is not None:
        state.writer.native_wrote(done["records"], done["bytes"])


def _source(index: int, source: SourcePlan, resync: bool, result: OutputResult) -> Iterator[_Item]:
    """Yield ``(wall_time, source index, sequence, record, None)`` of one source's files.

    ``(wall_time, source index, sequence)`` is unique and orders a stable merge. Exactly
    the bytes the scan read are read, and the records are checked against its
    fingerprints (see the module doc); what differs lands in ``result``.
    """
    seq = 0
    for planned in source.files:
        if resync:
            reader = EventFileReader(planned.path, resync=True, limit=planned.size)
        else:
            # The scan checked every record before its end; the checkpoints prove these
            # are the same records.
            reader = EventFileReader(planned.path, limit=planned.end, check=False)
        expected = planned.checkpoints
        periodic = reader.periodic_checkpoints
        verified = 0
        for record in reader:
            seq += 1
            peeked = record.peek
            yield (peeked[WALL_TIME] if peeked is not None else record.event.wall_time), index, seq, record, None
            if len(periodic) > verified:
                if verified >= len(expected) or periodic[verified] != expected[verified]:
                    _changed(result, planned, expected[verified - 1].end if verified else 0, reader.records)
                    break
                verified += 1
        else:
            _finish(result, planned, reader.damage, reader.checkpoints[-1], reader.file_size)
        result.events_in += reader.records


def _finish_native(
    result: OutputResult,
    planned: SourceFile,
    damage: list[tuple[str, int, int, str, int | None]],
    final: Checkpoint,
    size: int,
) -> None:
    """:func:`_finish` for a file the native loop read to its end."""
    path = str(planned.path)
    found = [
        Damage(path, DamageKind(kind), offset, before, detail, resumed)
        for kind, offset, before, detail, resumed in damage
    ]
    _finish(result, planned, found, final, size)


def _finish(result: OutputResult, planned: SourceFile, damage: list[Damage], final: Checkpoint, size: int) -> None:
    """Compare a file read to its end with its scan; record what differs.

    ``damage`` is what the read found, ``final`` the fingerprint of every record read,
    ``size`` the file's size when it was opened.
    """
    known = {(d.kind, d.offset) for d in planned.damage}
    new = [d for d in damage if (d.kind, d.offset) not in known]
    result.damage.extend(new)
    expected = planned.checkpoints[-1] if planned.checkpoints else None
    if new:
        return
    if final == expected:
        if size > planned.size:
            result.notes.append(
                f"{planned.path}: grew from {planned.size} to {size} bytes while being rewritten; "
                f"the {planned.size} bytes scanned were used (run again for the rest)"
            )
        return
    if size < planned.size:
        result.damage.append(
            Damage(
                str(planned.path),
                TRUNCATED,
                final.end,
                final.records,
                f"file shrank after it was scanned ({size} bytes, was {planned.size}): "
                "it was truncated while tbrewrite ran",
            )
        )
        return
    _changed(result, planned, planned.checkpoints[-2].end if len(planned.checkpoints) > 1 else 0, final.records)


def _changed(result: OutputResult, planned: SourceFile, offset: int, records: int) -> None:
    result.damage.append(
        Damage(
            str(planned.path),
            CHANGED,
            offset,
            records,
            "its records differ from what the first pass read from this byte on: "
            "the file was replaced or rewritten while tbrewrite ran",
        )
    )

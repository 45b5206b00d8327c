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
from collections.abc import Iterator
from dataclasses import dataclass, field

from tensorboard.compat.proto import event_pb2

from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.restarts import Survivors
from tbrewrite.events.framing import CHANGED, TRUNCATED, Damage
from tbrewrite.events.reader import EventFileReader, Record
from tbrewrite.events.wire import REST_AT, SUMMARY_AT, TAG, WALL_TIME, retag_head
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.output.transaction import Transaction

_SLOW = b"\x00slow"  # not a tag: fast-path lookups that miss
_Item = tuple[float, int, int, "Record | None", "event_pb2.Event | None"]


@dataclass
class OutputResult:
    """What rewriting one output file did.

    Attributes:
        events_in: int. Valid records read from the sources (file_version included).
        events_out: int. Records written (file_version included).
        values_renamed: int. Summary values whose tag changed.
        values_dropped: int. Summary values left out by a drop.
        values_superseded: int. Values left out by ``--restarts keep-last``.
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
    changed: bool = False
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    writer: EventFileWriter | None = None


def rewrite(plan: OutputPlan, outputs: Transaction) -> OutputResult:
    """Write ``plan``'s output file through ``outputs``, unpublished.

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
    result = OutputResult()
    writer: EventFileWriter | None = None
    if plan.header is Header.OWN:
        writer = outputs.open(plan.path, wall_time=plan.wall_time)
    streams: list[Iterator[_Item]] = [_source(k, s, plan.resync, result) for k, s in enumerate(plan.sources)]
    if plan.extra:
        n = len(streams)
        streams.append((e.wall_time, n, seq, None, e) for seq, e in enumerate(plan.extra))
    merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
    actions = [s.tags for s in plan.sources]
    replaced = plan.replaced
    survivors: list[dict[str, Survivors]] = [
        {tag: Survivors(a.backwards) for tag, a in s.tags.items() if a.backwards} for s in plan.sources
    ]
    # Output tags whose first value is written; source tags whose values now pass through
    # untouched; per source, tag bytes -> new tag bytes (None: unchanged) for tags whose
    # later common-shape records only need their tag spliced.
    written: set[str] = set()
    settled: list[set[str]] = [set() for _ in plan.sources]
    fast: list[dict[bytes, bytes | None]] = [{} for _ in plan.sources]
    heads: dict[tuple[bytes, int], bytes] = {}
    for _, i, _, record, event in merged:
        if record is None:  # an extra point: tag final, metadata attached
            assert writer is not None and event is not None
            written.update(v.tag for v in event.summary.value)
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
        event = record.event
        what = event.WhichOneof("what")
        if writer is None:
            if what == "file_version":
                writer = outputs.open(plan.path, wall_time=event.wall_time, header=raw)
                continue
            writer = outputs.open(plan.path, wall_time=event.wall_time)
            result.changed = True
        if what == "file_version" and plan.header is Header.OWN:
            continue
        if what != "summary":
            writer.write_record(raw)
            continue
        tags = actions[i]
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
                result.values_superseded += 1
                continue
            action = tags.get(tag) or TagAction(tag)
            out = action.new
            if out is None:
                drop.append(k)
                result.values_dropped += 1
                continue
            if out in replaced and event.step in replaced[out]:
                drop.append(k)
                result.values_replaced += 1
                continue
            if out != tag:
                value.tag = out
                changed = True
                result.values_renamed += 1
                if value.HasField("metadata") and value.metadata.display_name == tag:
                    value.metadata.display_name = out
            if out not in written:
                written.add(out)
                first = action.first_metadata
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
            result.changed = True
            if not event.summary.value:
                continue
            changed = True
        if changed:
            result.changed = True
            writer.write_event(event)
        else:
            writer.write_record(raw)
    if writer is not None:
        writer.flush()
        result.events_out = writer.records
    result.writer = writer
    return result


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
            _finish(result, planned, reader)
        result.events_in += reader.records


def _finish(result: OutputResult, planned: SourceFile, reader: EventFileReader) -> None:
    """Compare a file read to its end with its scan; record what differs."""
    known = {(d.kind, d.offset) for d in planned.damage}
    new = [d for d in reader.damage if (d.kind, d.offset) not in known]
    result.damage.extend(new)
    final = reader.checkpoints[-1]
    expected = planned.checkpoints[-1] if planned.checkpoints else None
    if new:
        return
    if final == expected:
        if reader.file_size > planned.size:
            result.notes.append(
                f"{planned.path}: grew from {planned.size} to {reader.file_size} bytes while being rewritten; "
                f"the {planned.size} bytes scanned were used (run again for the rest)"
            )
        return
    if reader.file_size < planned.size:
        result.damage.append(
            Damage(
                str(planned.path),
                TRUNCATED,
                final.end,
                final.records,
                f"file shrank after it was scanned ({reader.file_size} bytes, was {planned.size}): "
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

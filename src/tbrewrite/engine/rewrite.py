"""The second pass of ``convert``: one run's sources merged into one event file.

The sources' events are merged in wall_time order (a stable merge: ties keep source
order, and each source keeps its own order, so every tag keeps its step order); values
are renamed as the plan says, the plugin metadata goes on the first value of every tag,
records needing no change are written back unchanged, and common one-value records
that only need a new tag are retagged from their bytes (:mod:`tbrewrite.events.wire`).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from tbrewrite.commands.convertplan import RunPlan, start_wall_time
from tbrewrite.errors import InvalidEventError
from tbrewrite.events.reader import EventFileReader
from tbrewrite.engine.scan import FileStats
from tbrewrite.sidecars.place import MergePlan, SidecarReport
from tbrewrite.events.wire import REST_AT, SUMMARY_AT, TAG, WALL_TIME, Peek, retag_head
from tbrewrite.events.writer import EventFileWriter, OutputSet


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


_Item = tuple[float, int, int, "Peek | None", "event_pb2.Event | None", "bytes | None"]


def _events(index: int, files: list[FileStats], resync: bool) -> Iterator[_Item]:
    """Yield ``(wall_time, source index, sequence, peek, event, record bytes)`` of one source.

    ``(wall_time, source index, sequence)`` is unique and orders a stable merge.

    Common-shape records come peeked, not decoded (:mod:`tbrewrite.events.wire`). Exactly the
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

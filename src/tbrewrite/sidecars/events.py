"""A sidecar's points as the Events the engine writes, read from the file while it writes.

:class:`SidecarEvents` is what ``convert`` and ``merge`` give the engine as an output's
extra events (:attr:`tbrewrite.engine.plan.OutputPlan.extra`): sized and re-iterable,
it reads the learning-rate sidecars again at every iteration (millions of batch rows
are never held) and builds each Event from bytes.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tensorboard.compat.proto import event_pb2

from tbrewrite.sidecars.processes import Windows
from tbrewrite.sidecars.read import Sidecar, SidecarPoint

_F32 = struct.Struct("<f")


@dataclass(frozen=True)
class SidecarEvents:
    """The sidecar points of one output run, as Events in wall_time order.

    Re-iterable: every iteration reads the learning-rate sidecars again
    (:meth:`tbrewrite.sidecars.read.Sidecar.points`) and yields each point as it is
    read, so memory does not grow with the rows; ties keep sidecar order, then file
    order. Only a sidecar whose rows go back in time (not what ``LearningRateLogger``
    writes) is sorted in memory. This is :attr:`tbrewrite.engine.plan.OutputPlan.extra`
    of ``convert`` and ``merge``.

    Attributes:
        streams: tuple of ``(sidecar, processes)``: a learning-rate sidecar and the
            processes whose rows this output gets (None: every row).
        windows: Windows. Which process a row belongs to.
        placed: tuple of ``(wall_time, sidecar index, position in its file, point)``,
            sorted: the CSVLogger points, placed in time already.
        forms: mapping output tag -> how the log stores it (``tensor`` or ``simple_value``).
        default_form: str. The form of a tag the log does not have.
        count: int. Events an iteration yields.
    """

    streams: tuple[tuple[Sidecar, frozenset[int] | None], ...] = ()
    windows: Windows = field(default_factory=Windows)
    placed: tuple[tuple[float, int, int, SidecarPoint], ...] = ()
    forms: Mapping[str, str] = field(default_factory=dict)
    default_form: str = "tensor"
    count: int = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[event_pb2.Event]:
        """Yield the events; raises SidecarError if a sidecar changed since it was checked."""
        parse = event_pb2.Event.FromString
        if len(self.streams) == 1 and not self.placed and self.streams[0][1] is None and self.streams[0][0].in_order:
            # The common case, e.g. millions of batch rows: one sidecar, all of it, in order.
            makers = self._makers()
            for point in self.streams[0][0].points():
                yield parse(makers[point.tag](point.step, wall(point), point.value))
            return
        streams: list[Iterator[tuple[float, int, int, SidecarPoint]]] = [
            self._stream(order, sidecar, keep) for order, (sidecar, keep) in enumerate(self.streams)
        ]
        if self.placed:
            streams.append(iter(self.placed))
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams)
        makers = self._makers()
        for wall_time, _, _, point in merged:
            yield parse(makers[point.tag](point.step, wall_time, point.value))

    def _makers(self) -> dict[str, EventMaker]:
        """One :class:`EventMaker` per tag of the events."""
        tags = {tag for sidecar, _ in self.streams for tag in sidecar.tags} | {p.tag for *_, p in self.placed}
        return {tag: EventMaker(tag, self.forms.get(tag, self.default_form)) for tag in tags}

    def _stream(
        self, order: int, sidecar: Sidecar, keep: frozenset[int] | None
    ) -> Iterator[tuple[float, int, int, SidecarPoint]]:
        owner = self.windows.owner
        points: Iterator[SidecarPoint] = (p for p in sidecar.points() if keep is None or owner(wall(p)) in keep)
        if not sidecar.in_order:  # rows written out of time order: sorted in memory (stable)
            points = iter(sorted(points, key=wall))
        for seq, point in enumerate(points):
            yield wall(point), order, seq, point


def wall(point: SidecarPoint) -> float:
    """The wall_time of a placed point (a learning-rate row's own)."""
    assert point.wall_time is not None
    return point.wall_time


def _varint(n: int) -> bytes:
    if n < 0x4000:  # most steps
        return bytes((n,)) if n < 0x80 else bytes((n & 0x7F | 0x80, n >> 7))
    if n < 0x200000:
        return bytes((n & 0x7F | 0x80, n >> 7 & 0x7F | 0x80, n >> 14))
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_F64 = struct.Struct("<d")
_TENSOR_HEAD = b"\x42\x0a\x08\x01\x12\x00\x2a\x04"
"""``Summary.Value.tensor`` (field 8): ``dtype: DT_FLOAT``, an empty ``tensor_shape``, packed
``float_val`` of one float (its 4 bytes follow)."""
_SCALARS_METADATA = b"\x4a\x0d\x0a\x09\x0a\x07scalars\x20\x01"
"""``Summary.Value.metadata`` (field 9): ``plugin_data.plugin_name: "scalars"``,
``data_class: DATA_CLASS_SCALAR``."""


class EventMaker:
    """Serialized scalar Events of one tag and form, built from bytes (millions of sidecar rows).

    The bytes parse to the Event protobuf's setters build (``tests/unit/sidecars/test_place.py``
    checks it): ``wall_time`` (field 1), ``step`` (field 2, omitted at 0), ``summary``
    (field 5) holding one value with the tag (field 1) and either ``simple_value``
    (field 2) or the float32 tensor and scalars metadata, as TF2's ``tf.summary.scalar``
    writes them (``DT_FLOAT``, shape ``[]``, plugin ``scalars``, ``DATA_CLASS_SCALAR``).
    """

    def __init__(self, tag: str, form: str) -> None:
        name = tag.encode()
        value = b"\x0a" + _varint(len(name)) + name
        if form == "simple_value":
            head, self.tail = value + b"\x15", b""
        else:
            head, self.tail = value + _TENSOR_HEAD, _SCALARS_METADATA
        size = len(head) + 4 + len(self.tail)
        summary = b"\x0a" + _varint(size)
        self.head = b"\x2a" + _varint(len(summary) + size) + summary + head

    def __call__(self, step: int, wall_time: float, value: float) -> bytes:
        """Return the serialized Event of ``value`` at ``step`` and ``wall_time``."""
        try:
            f32 = _F32.pack(value)
        except OverflowError:  # rounds beyond float32: infinite, as protobuf's own conversion
            f32 = _F32.pack(math.copysign(math.inf, value))
        stamp = b"\x09" + _F64.pack(wall_time) + (b"\x10" + _varint(step) if step else b"")
        return stamp + self.head + f32 + self.tail

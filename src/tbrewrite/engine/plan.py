"""A rewrite decided before a byte is written: the plan the one engine carries out.

Every editing command is a plan for :func:`tbrewrite.engine.rewrite.rewrite`: ``convert``
merges a Keras run's sources into one output file with the Keras mapping, ``rename``
rewrites each event file on its own with the rules' mapping, ``merge`` adds sidecar
points. A plan says, per output file, which sources feed it, what happens to each of
their tags (:class:`TagAction`), which extra events join the stream, and how the file
starts (:class:`Header`). Plans are frozen: built once from a scan, never mutated.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Protocol

from tensorboard.compat.proto import event_pb2, summary_pb2

from tbrewrite.engine.scan import FileStats
from tbrewrite.events.framing import Checkpoint, Damage, FileStamp


class Header(Enum):
    """How an output file starts (every event file starts with a ``file_version`` event)."""

    OWN = "own"
    """The inputs' ``file_version`` events are left out and the output starts with its
    own, at :attr:`OutputPlan.wall_time` (``convert``, ``merge``: one file from many)."""
    KEEP = "keep"
    """The single source's leading ``file_version`` record is kept byte for byte (a file
    without one gets the writer's own at its first event's wall_time); later ones pass
    through (``rename``: one file from one)."""


class MetadataEdit(Protocol):
    """A change to the plugin metadata a tag's values carry, decided by a command.

    E.g. ``rename`` gives the hparams plugin's ``_hparams_/experiment`` tag one that
    renames the metrics its experiment names (:class:`tbrewrite.commands.renameplan.ExperimentMetrics`).
    Plans go to worker processes, so an edit must be picklable (a module-level class).
    """

    def __call__(self, metadata: summary_pb2.SummaryMetadata) -> bool:
        """Edit ``metadata`` in place; return True if it changed (False: leave the bytes)."""
        ...


@dataclass(frozen=True)
class Window:
    """Which values a cropped tag keeps: ``START <= x < STOP`` per bound, None open.

    Attributes:
        steps: ``(start, stop)`` of int or None: the steps kept (Python-slice style).
        wall_times: ``(start, stop)`` of float seconds since the Unix epoch, or None.
    """

    steps: tuple[int | None, int | None] = (None, None)
    wall_times: tuple[float | None, float | None] = (None, None)

    def holds(self, step: int, wall_time: float) -> bool:
        """Return whether a value at ``step`` and ``wall_time`` is kept (NaN wall_time: only if unbounded)."""
        lo, hi = self.steps
        if (lo is not None and step < lo) or (hi is not None and step >= hi):
            return False
        start, stop = self.wall_times
        if start is not None and not wall_time >= start:
            return False
        return stop is None or wall_time < stop


@dataclass(frozen=True)
class TagAction:
    """What happens to the values of one source tag.

    Attributes:
        new: str or None. The output tag (equal to the source tag if unchanged); None
            drops every value of the tag.
        first_metadata: SummaryMetadata or None. Put on the output tag's first value in
            the output file when that value carries none (TensorBoard reads a series'
            plugin metadata from its first value only: ``plugin_event_accumulator.py``
            ``_ProcessEvent``, ``data/server/run.rs``).
        backwards: tuple of ``(ordinal, previous_step, step)``: with ``--restarts
            keep-last``, every value whose step is not above its predecessor's, so the
            engine keeps only what TensorBoard's data server shows
            (:mod:`tbrewrite.engine.restarts`); empty keeps every value.
        edit_metadata: MetadataEdit or None. Applied to the metadata of every value of
            the tag that carries metadata (after ``first_metadata`` is put on); the tag's
            records then never take the fast path.
        window: Window or None. Keep only the values inside it (``crop``); None keeps
            every value. The tag's records then never take the fast path.
        step_offset: int. Added to the step of every value of the tag (``concat`` of a
            run whose steps restarted), before ``backwards`` and ``window`` are applied;
            the values' Event gets the new step, so all values of one Event must have the
            same offset. Non-zero keeps the tag's records off the fast path.
        keep: frozenset of int, or None. Keep only the values whose ordinal (the tag's
            values in this source counted from 0 in stream order, every value counted,
            as :attr:`backwards` counts them) is in it (``compact``); None keeps every
            value. The tag's records then never take the fast path.
    """

    new: str | None
    first_metadata: summary_pb2.SummaryMetadata | None = None
    backwards: tuple[tuple[int, int, int], ...] = ()
    edit_metadata: MetadataEdit | None = None
    window: Window | None = None
    step_offset: int = 0
    keep: frozenset[int] | None = None

    @property
    def per_value(self) -> bool:
        """True if a value's fate depends on its step, wall_time or ordinal (never the fast path)."""
        return self.window is not None or self.step_offset != 0 or self.keep is not None


@dataclass(frozen=True)
class SourceFile:
    """One event file of a source, as its first pass read it.

    Attributes:
        path: Path.
        size: int. Bytes scanned (the file size when the scan opened it).
        end: int. Bytes a rewrite without resync reads: up to the first damage.
        checkpoints: tuple of Checkpoint. The scan's fingerprints of the records read;
            the rewrite compares its own with them.
        damage: tuple of Damage the scan found (the rewrite reports only new damage).
        stamp: FileStamp or None. The file as the scan opened it.
    """

    path: Path
    size: int
    end: int
    checkpoints: tuple[Checkpoint, ...]
    damage: tuple[Damage, ...]
    stamp: FileStamp | None = None

    @classmethod
    def from_stats(cls, stats: FileStats) -> SourceFile:
        """Return the plan's view of a scanned file."""
        return cls(stats.path, stats.bytes, stats.end, stats.checkpoints, tuple(stats.damage), stats.stamp)


@dataclass(frozen=True)
class SourcePlan:
    """One input stream of an output file: event files read in order as one stream.

    Attributes:
        name: str. What the source is (``"train"``, ``"validation"``, ``""`` for a run
            folder itself, or a file name), for messages.
        files: tuple of SourceFile, in TensorBoard's order.
        tags: mapping source tag -> TagAction. A tag missing from it (only possible if
            a file changed after its scan) keeps its name and gets no metadata.
    """

    name: str
    files: tuple[SourceFile, ...]
    tags: Mapping[str, TagAction] = field(default_factory=dict)


class ExtraEvents(Protocol):
    """Events a plan adds to its output: sized, and re-iterable in wall_time order.

    A tuple of Events is one; ``convert`` and ``merge`` give
    :class:`tbrewrite.sidecars.place.SidecarEvents`, which reads its sidecar files again at
    every iteration instead of holding millions of points. Each Event has its final tags
    and metadata; ``len`` is the number an iteration yields.
    """

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[event_pb2.Event]: ...


@dataclass(frozen=True)
class OutputPlan:
    """One output event file and everything that goes into it.

    The sources' events are merged in wall_time order (a stable merge: ties keep source
    order, and each source keeps its own order, so every tag keeps its step order), the
    extra events among them by their wall_time.

    Attributes:
        path: Path. Where the output file goes (its folder must exist when written).
        sources: tuple of SourcePlan.
        header: Header.
        wall_time: float seconds since the Unix epoch: the own ``file_version``'s
            wall_time with :attr:`Header.OWN`.
        extra: ExtraEvents: events with final tags (sidecar points), sorted by
            wall_time, read once per rewrite (the sources are streamed alongside).
        replaced: mapping output tag -> ``(step, wall_time)`` of the values from the
            sources that are left out because an extra event replaces them (one value
            each: the same step of another process, at another wall_time, is kept); a
            frozenset, or any container (``convert`` and ``merge`` give
            :class:`tbrewrite.sidecars.logpoints.PointSet`, two sorted arrays).
        resync: bool. Read past damage in the sources.
        drop_events: frozenset of ``Event.what`` field names (``graph_def``,
            ``meta_graph_def``, ``tagged_run_metadata``, ...) whose events are left out.
    """

    path: Path
    sources: tuple[SourcePlan, ...]
    header: Header
    wall_time: float = 0.0
    extra: ExtraEvents = ()
    replaced: Mapping[str, Container[tuple[int, float]]] = field(default_factory=dict)
    resync: bool = False
    drop_events: frozenset[str] = frozenset()

"""Which writing process each event file and each sidecar row of a run belongs to.

A log_dir that training wrote more than once (two ``fit()`` processes, or a resumed run)
holds one group of event files per process
(:func:`tbrewrite.producers.keras.split_sessions`: tf.keras and Keras 3 name their files
``<secs>.<host>.<pid>.<uid>.v2``). A sidecar row carries no process, only its wall_time:
each process owns the wall_times from its first event to the next process's first event,
and a row belongs to the process owning its wall_time. That is what
``LearningRateLogger`` writes: it opens its file in ``on_train_begin`` (truncating it
unless ``append=True``), after the TensorBoard callback's writers have written their
first event, and writes a row only once a batch or an epoch ran.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tbrewrite.engine.scan import StreamScan

NO_PROCESS = -1
"""The owner of every row when no process has an event; the first run gets them."""


class ScannedRun(Protocol):
    """What sidecar placement needs to know of a scanned run.

    ``convert``'s :class:`tbrewrite.commands.convertplan.RunScan` is one.
    """

    @property
    def run(self) -> str:
        """The run's path relative to the logdir, as messages name it."""
        ...

    @property
    def layout(self) -> str:
        """The run's layout (:data:`tbrewrite.producers.KERAS_FLAT`, ...)."""
        ...

    @property
    def sources(self) -> Sequence[_Source]:
        """The run's streams (``train/``, ``validation/``, the folder itself)."""
        ...

    @property
    def scans(self) -> Sequence[StreamScan]:
        """One scan per source, in the order of :attr:`sources`."""
        ...

    @property
    def tag_map(self) -> Sequence[Mapping[str, str]]:
        """One map source tag -> output tag per source, in the order of :attr:`sources`."""
        ...


class _Source(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def files(self) -> Sequence[Path]: ...


@dataclass(frozen=True)
class Windows:
    """Which process owns a wall_time: the one with the latest first event at or before it.

    Attributes:
        starts: tuple of float, ascending: the processes' first wall_times.
        owners: tuple of int: the process of each start.
    """

    starts: tuple[float, ...] = ()
    owners: tuple[int, ...] = ()

    def owner(self, wall_time: float) -> int:
        """Return the process owning ``wall_time`` (before every start: the first's).

        :data:`NO_PROCESS` if no process has an event (each run is then one, owning no rows).
        """
        if not self.owners:
            return NO_PROCESS
        return self.owners[max(0, bisect.bisect_right(self.starts, wall_time) - 1)]


class Processes:
    """The writing processes of the runs being planned, and which output each goes to.

    A process is a group of ``sessions`` (files of one writing process) within one run;
    a run's files in no group form one process; without ``sessions``, each run is one.
    Processes are numbered from 0 in the order of the runs and their sources' files.

    Attributes:
        of_file: dict ``(run index, path)`` -> process.
        run: list of int: the run (output) index of each process.
        windows: Windows. Which process owns a wall_time; only processes with an event
            (a first wall_time from their scan) own any.
        latest_first: list of int: the processes with an event, latest start first.
    """

    def __init__(self, runs: Sequence[ScannedRun], sessions: Sequence[Collection[Path]]) -> None:
        group = {path: g for g, files in enumerate(sessions) for path in files}
        ids: dict[tuple[int, int], int] = {}
        self.of_file: dict[tuple[int, Path], int] = {}
        self.run: list[int] = []
        first: list[float] = []
        for r, run in enumerate(runs):
            for source, scan in zip(run.sources, run.scans, strict=True):
                starts = {f.path: f.first_wall_time for f in scan.files}
                for path in source.files:
                    key = (r, group.get(path, -1))
                    p = ids.get(key)
                    if p is None:
                        p = ids[key] = len(self.run)
                        self.run.append(r)
                        first.append(math.inf)
                    self.of_file[(r, path)] = p
                    start = starts.get(path)
                    if start is not None and 0 <= start < first[p]:
                        first[p] = start
        known = sorted((t, p) for p, t in enumerate(first) if t != math.inf)
        self.windows = Windows(tuple(t for t, _ in known), tuple(p for _, p in known))
        self.latest_first = [p for _, p in reversed(known)]

    def of_run(self, r: int) -> frozenset[int]:
        """The processes of run ``r`` (the first run also owns :data:`NO_PROCESS`)."""
        return frozenset([p for p, run in enumerate(self.run) if run == r] + ([NO_PROCESS] if r == 0 else []))

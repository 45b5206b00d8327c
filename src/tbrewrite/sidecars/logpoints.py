"""The log's own values of the tags a sidecar touches, per process, in compact columns.

Sidecar placement (:mod:`tbrewrite.sidecars.place`) reads the run once for the values of
the tags its sidecars name (a learning-rate sidecar's tags, and for a CSVLogger file the
tags that date its epochs). Usually there are few; but a per-batch sidecar merged again
into a run that holds its points already (``merge --in-place`` twice) meets as many log
values as it has rows, so they are kept as typed arrays (24 bytes a value), never as
Python objects, and so is what they replace (:class:`PointSet`).
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.summary import scalar_value
from tbrewrite.sidecars.processes import Processes, ScannedRun


def _order(steps: array[int], walls: array[float]) -> Any:
    """Return None if ``(steps, walls)`` pairs are sorted, else the sorting permutation (numpy)."""
    pairs = zip(steps, walls, strict=True)
    previous = next(pairs, (0, 0.0))
    for pair in pairs:
        if not pair >= previous:  # (also a NaN wall_time; numpy's lexsort puts NaN last)
            import numpy as np

            return np.lexsort((np.frombuffer(walls, dtype=np.float64), np.frombuffer(steps, dtype=np.int64)))
        previous = pair
    return None


def _take(column: array[Any], order: Any) -> array[Any]:
    """Return ``column`` permuted by ``order``, as a new array of the same type."""
    import numpy as np

    dtype = np.int64 if column.typecode == "q" else np.float64
    return array(column.typecode, np.frombuffer(column, dtype=dtype)[order].tobytes())


class LogSeries:
    """One process's values of one output tag, in file order: ``(step, wall_time, value)``.

    A value that is not a plain number (:func:`tbrewrite.events.summary.scalar_value`
    gives None) is stored as NaN. Iterating and indexing give tuples in file order;
    :meth:`take` finds and claims values by step, through a sorted copy made on first use.
    """

    __slots__ = ("_sorted", "_taken", "steps", "values", "walls")

    def __init__(self) -> None:
        self.steps: array[int] = array("q")
        self.walls: array[float] = array("d")
        self.values: array[float] = array("d")
        self._sorted: tuple[array[int], array[float], array[float]] | None = None
        self._taken = bytearray()

    def append(self, step: int, wall_time: float, value: float | None) -> None:
        """Add a value read from the log."""
        self.steps.append(step)
        self.walls.append(wall_time)
        self.values.append(math.nan if value is None else value)

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[tuple[int, float, float]]:
        return zip(self.steps, self.walls, self.values, strict=True)

    def __getitem__(self, k: int) -> tuple[int, float, float]:
        return self.steps[k], self.walls[k], self.values[k]

    def take(self, step: int, wall_time: float) -> tuple[int, float, float] | None:
        """Claim the unclaimed values at ``step`` nearest ``wall_time`` (all of that wall_time).

        Returns:
            ``(count, wall_time, value)`` of the values claimed, or None if every value
            at that step is claimed already (or there is none). Values whose wall_time
            is NaN are never claimed: no point can name them.
        """
        if self._sorted is None:
            order = _order(self.steps, self.walls)
            if order is None:
                self._sorted = (self.steps, self.walls, self.values)
            else:
                self._sorted = (_take(self.steps, order), _take(self.walls, order), _take(self.values, order))
            self._taken = bytearray(len(self.steps))
        steps, walls, values = self._sorted
        taken = self._taken
        lo = bisect.bisect_left(steps, step)
        hi = bisect.bisect_right(steps, step, lo)
        best, distance = -1, math.inf
        for k in range(lo, hi):
            if not taken[k] and abs(walls[k] - wall_time) < distance:
                best, distance = k, abs(walls[k] - wall_time)
        if best < 0:
            return None
        at, count = walls[best], 0
        for k in range(best, hi):
            if walls[k] == at and not taken[k]:
                taken[k] = 1
                count += 1
        return count, at, values[best]


class PointSet:
    """A set of ``(step, wall_time)`` pairs in two sorted typed arrays (16 bytes a pair).

    What a sidecar replaces in one output tag (:attr:`tbrewrite.engine.plan.OutputPlan.replaced`):
    the engine asks ``(step, wall_time) in points`` of every value of that tag.
    """

    __slots__ = ("steps", "walls")

    def __init__(self, steps: array[int] | None = None, walls: array[float] | None = None) -> None:
        self.steps: array[int] = steps if steps is not None else array("q")
        self.walls: array[float] = walls if walls is not None else array("d")

    def add(self, step: int, wall_time: float) -> None:
        """Add a pair; call :meth:`frozen` before asking for members."""
        self.steps.append(step)
        self.walls.append(wall_time)

    def frozen(self) -> PointSet:
        """Return the set sorted for lookups (itself if it is sorted already)."""
        order = _order(self.steps, self.walls)
        if order is None:
            return self
        return PointSet(_take(self.steps, order), _take(self.walls, order))

    def __contains__(self, pair: object) -> bool:
        if not isinstance(pair, tuple) or len(pair) != 2:
            return False
        step, wall_time = pair
        steps, walls = self.steps, self.walls
        k = bisect.bisect_left(steps, step)
        while k < len(steps) and steps[k] == step:
            if walls[k] == wall_time:
                return True
            k += 1
        return False

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[tuple[int, float]]:
        return zip(self.steps, self.walls, strict=True)

    def __reduce__(self) -> tuple[type[PointSet], tuple[array[int], array[float]]]:
        return PointSet, (self.steps, self.walls)


def read_log(
    runs: Sequence[ScannedRun], processes: Processes, wanted: set[str], resync: bool
) -> dict[int, dict[str, LogSeries]]:
    """Stream the runs once; return, per process, the values of the wanted output tags.

    Only files of sources holding one of those tags are read.
    """
    points: dict[int, dict[str, LogSeries]] = {}
    for r, run in enumerate(runs):
        for source, tmap in zip(run.sources, run.tag_map, strict=True):
            interesting = {tag for tag, out in tmap.items() if out in wanted}
            if not interesting:
                continue
            for path in source.files:
                mine = points.setdefault(processes.of_file[(r, path)], {})
                for event in EventFileReader(path, resync=resync).events():
                    if not event.HasField("summary"):
                        continue
                    for value in event.summary.value:
                        if value.tag in interesting:
                            out = tmap[value.tag]
                            series = mine.get(out)
                            if series is None:
                                series = mine[out] = LogSeries()
                            series.append(event.step, event.wall_time, scalar_value(value))
    return points

"""The log's values a sidecar may replace, and what it replaces, in compact arrays."""

from __future__ import annotations

import math
import pickle

from tbrewrite.sidecars.logpoints import LogSeries, PointSet


def series(*points: tuple[int, float, float | None]) -> LogSeries:
    s = LogSeries()
    for p in points:
        s.append(*p)
    return s


def test_take_claims_the_nearest_unclaimed_value_of_the_step() -> None:
    # Two fit() calls in one process logged steps 0..1 twice; file order is kept for iteration.
    s = series((0, 10.0, 0.5), (1, 11.0, 0.4), (0, 50.0, 0.25), (1, 51.0, 0.2))
    assert list(s) == [(0, 10.0, 0.5), (1, 11.0, 0.4), (0, 50.0, 0.25), (1, 51.0, 0.2)]
    assert s.take(0, 50.5) == (1, 50.0, 0.25)
    assert s.take(0, 50.5) == (1, 10.0, 0.5)  # the nearest is claimed already
    assert s.take(0, 50.5) is None
    assert s.take(7, 0.0) is None
    assert s[1] == (1, 11.0, 0.4) and len(s) == 4


def test_values_at_one_step_and_wall_time_are_claimed_together() -> None:
    s = series((3, 5.0, 1.0), (3, 5.0, 1.0), (3, 9.0, 2.0))
    assert s.take(3, 5.25) == (2, 5.0, 1.0)
    assert s.take(3, 5.25) == (1, 9.0, 2.0)


def test_nan_wall_times_and_non_numbers_are_never_claimed_wrongly() -> None:
    s = series((-2, math.nan, 1.0), (-2, 4.0, None), (-5, 1.0, 3.0))  # unsorted, negative steps
    count, at, value = s.take(-2, 100.0) or (0, 0.0, 0.0)
    assert (count, at) == (1, 4.0) and math.isnan(value)
    assert s.take(-2, 100.0) is None  # the NaN wall_time cannot be named to the engine
    assert s.take(-5, 1.0) == (1, 1.0, 3.0)


def test_point_set_membership_sorted_or_not() -> None:
    points = PointSet()
    for step, wall_time in [(5, 2.0), (1, 9.0), (5, 1.0), (2**62, 0.5)]:
        points.add(step, wall_time)
    frozen = points.frozen()
    assert list(frozen) == [(1, 9.0), (5, 1.0), (5, 2.0), (2**62, 0.5)]
    assert (5, 2.0) in frozen and (5, 1.0) in frozen and (2**62, 0.5) in frozen
    assert (5, 3.0) not in frozen and (4, 2.0) not in frozen and "x" not in frozen
    assert len(frozen) == 4
    again = pickle.loads(pickle.dumps(frozen))  # plans travel to and from worker processes
    assert list(again) == list(frozen)


def test_a_million_points_take_a_few_bytes_each() -> None:
    points = PointSet()
    for step in range(1_000_000):
        points.add(step, 1e9 + step)
    frozen = points.frozen()
    assert frozen is points  # sorted already: no copy
    assert frozen.steps.itemsize + frozen.walls.itemsize == 16
    assert (999_999, 1e9 + 999_999) in frozen

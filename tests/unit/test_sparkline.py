"""``tbrewrite.sparkline``: min/max buckets keep spikes, in memory bounded by the width."""

from __future__ import annotations

import array
import math
import tracemalloc

import pytest

from tbrewrite.sparkline import BLOCKS, NAN, NEGINF, POSINF, Sparkline

LOW, HIGH = BLOCKS[0], BLOCKS[-1]


def line(values, width=24, expected=None, one_by_one=False) -> Sparkline:
    s = Sparkline(width, expected=expected)
    if one_by_one:
        for v in values:
            s.add(v)
    else:
        s.extend(values)
    return s


@pytest.mark.parametrize("one_by_one", [False, True])
@pytest.mark.parametrize("expected", [None, 10_000])
@pytest.mark.parametrize("where", [0, 1, 4_999, 9_998, 9_999])
def test_a_single_spike_survives_anywhere(where: int, expected: int | None, one_by_one: bool) -> None:
    values = [1.0] * 10_000
    values[where] = 50.0
    drawn = line(values, expected=expected, one_by_one=one_by_one).render()
    assert drawn.count(HIGH) == 1
    assert set(drawn) == {LOW, HIGH}
    assert 12 <= len(drawn) <= 24
    # The spike is drawn where it is: its bucket's position within the line.
    assert abs(drawn.index(HIGH) / len(drawn) - where / 10_000) < 0.1


def test_a_negative_spike_survives_too() -> None:
    values = [1.0] * 100_000
    values[77_777] = -3.0
    drawn = line(values, expected=100_000).render()
    assert drawn.count(LOW) == 1 and set(drawn) == {LOW, HIGH}


def test_min_and_max_are_drawn_in_the_order_they_occurred() -> None:
    up_down = [0.0, 10.0] * 50 + [10.0, 0.0] * 50  # each bucket holds both extremes
    drawn = line(up_down, width=8, expected=200).render()
    assert drawn == LOW + HIGH + LOW + HIGH + HIGH + LOW + HIGH + LOW


def test_short_series_one_character_per_point() -> None:
    s = line([0.0, 7.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert s.render() == "▁█▂▃▄▅▆▇"
    assert (s.count, s.min, s.max, s.last) == (8, 0.0, 7.0, 6.0)


def test_one_point() -> None:
    s = line([0.25])
    assert s.render() == LOW
    assert (s.count, s.min, s.max, s.last) == (1, 0.25, 0.25, 0.25)


def test_nothing() -> None:
    s = Sparkline(8)
    assert s.render() == ""
    assert (s.count, s.min, s.max, s.last) == (0, None, None, None)


@pytest.mark.parametrize("n", [5, 24, 1000])
def test_flat_series_is_one_level(n: int) -> None:
    drawn = line([3.5] * n, expected=n).render()
    assert set(drawn) == {LOW}


def test_a_range_too_small_to_scale_is_flat() -> None:
    drawn = line([0.0, 5e-324, 0.0]).render()
    assert len(drawn) == 3


def test_nan_and_infinities_are_counted_and_never_scale_the_line() -> None:
    s = line([1.0, math.nan, 2.0, math.inf, 3.0, -math.inf, 2.0])
    assert s.render() == LOW + NAN + "▅" + POSINF + HIGH + NEGINF + "▅"
    assert (s.nan, s.posinf, s.neginf) == (1, 1, 1)
    assert (s.min, s.max) == (1.0, 3.0)
    assert s.last == 2.0


@pytest.mark.parametrize("one_by_one", [False, True])
def test_nan_inside_a_bucket_of_finite_values(one_by_one: bool) -> None:
    values = [float(i) for i in range(1000)]
    values[500] = math.nan
    values[600] = math.inf
    s = line(values, expected=1000, one_by_one=one_by_one)
    assert (s.nan, s.posinf, s.min, s.max) == (1, 1, 0.0, 999.0)
    assert NAN not in s.render() and POSINF not in s.render()  # the buckets have finite values to draw


def test_all_nan() -> None:
    s = line([math.nan] * 100, expected=100)
    assert s.render() == NAN * 24
    assert (s.min, s.max, s.nan) == (None, None, 100)
    assert math.isnan(s.last)


def test_huge_finite_values_whose_sum_overflows() -> None:
    s = line([1e308, 1e308, -1e308, 1e308] * 10, expected=40)
    assert (s.min, s.max, s.nan, s.posinf) == (-1e308, 1e308, 0, 0)


def test_add_and_extend_agree() -> None:
    values = [math.sin(i / 50) * (i % 97) for i in range(5_000)]
    values[123] = math.nan
    for expected in (None, 5_000, 100):  # also a count hint that is too low
        a = line(values, expected=expected)
        b = line(values, expected=expected, one_by_one=True)
        c = Sparkline(24, expected=expected)
        for i in range(0, 5_000, 333):
            c.extend(values[i : i + 333])
        assert a.render() == b.render() == c.render()
        assert len(a.render()) <= 24


def test_ten_million_points_in_bounded_memory() -> None:
    chunk = array.array("d", (math.cos(i / 1000) for i in range(100_000)))
    spiked = array.array("d", chunk)
    spiked[31_337] = 1e6
    s = Sparkline(24)  # no count hint: buckets merge as they fill
    tracemalloc.start()
    for k in range(100):
        s.extend(memoryview(spiked if k == 63 else chunk))
        assert len(s._buckets) <= 24
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert s.count == 10_000_000
    assert peak < 100_000  # a few buckets, never the series (80 MB as floats) nor a chunk (800 kB)
    drawn = s.render()
    assert drawn.count(HIGH) == 1 and 12 <= len(drawn) <= 24


@pytest.mark.parametrize("width", [0, 2, 6, 25])
def test_width_must_be_a_multiple_of_four(width: int) -> None:
    with pytest.raises(ValueError, match=f"Received: width={width}"):
        Sparkline(width)

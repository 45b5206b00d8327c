"""One-line sparklines of long series, downsampled by min/max buckets in bounded memory.

A series of any length is cut into buckets of consecutive points (in the order they were
read, which for one tag is its step order unless the run restarted); each bucket keeps its
smallest and largest finite value and where they occurred, and is drawn as those two
values in the order they occurred (the "min/max" or M4 way of downsampling a line chart),
so a single spike in ten million points still shows as a full-height block. Points are
added one at a time or a slice at a time; the buckets never number more than the width, and
when they would, neighbours are merged in pairs and the bucket span doubles, so memory
is bounded by the width whatever the length, and no list of all the points is kept.

NaN and infinities are counted apart and never scale the drawing: a bucket holding only
non-finite values is drawn as ``×`` (NaN), ``↑`` (+inf) or ``↓`` (-inf).

Imports nothing outside the standard library (``inspect`` draws sparklines without
loading NumPy).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["BLOCKS", "Sparkline"]

BLOCKS = "▁▂▃▄▅▆▇█"
"""The eight levels, lowest first."""
NAN, POSINF, NEGINF = "×", "↑", "↓"
_FLAG_NAN, _FLAG_POSINF, _FLAG_NEGINF = 1, 2, 4


@dataclass
class _Bucket:
    """Consecutive points ``first .. first + span - 1``.

    ``lo``/``hi`` are the smallest/largest finite value (None if the bucket has none),
    ``lo_at``/``hi_at`` the index of their first occurrence, ``flags`` the kinds of
    non-finite value seen.
    """

    lo: float | None = None
    lo_at: int = 0
    hi: float | None = None
    hi_at: int = 0
    flags: int = 0

    def merge(self, other: _Bucket) -> None:
        """Fold ``other`` (the bucket right after this one) into this one."""
        if other.lo is not None and (self.lo is None or other.lo < self.lo):
            self.lo, self.lo_at = other.lo, other.lo_at
        if other.hi is not None and (self.hi is None or other.hi > self.hi):
            self.hi, self.hi_at = other.hi, other.hi_at
        self.flags |= other.flags


class Sparkline:
    """Fold a series of floats into at most ``width`` characters.

    Args:
        width: int, a multiple of 4. Characters drawn at most. Up to ``width`` points are drawn
            one character each; a longer series as ``width // 2`` buckets of two
            characters each (the bucket's min and max in the order they occurred).
        expected: int or None. How many points will come (e.g. a tag's count from the
            scan). With it, the bucket span is chosen up front so that the line is close
            to ``width`` wide; without it (or if more points come), buckets are merged in
            pairs as they fill, and the line is between ``width / 2`` and ``width`` wide.

    Attributes:
        count: int. Points added.
        nan, posinf, neginf: int. Non-finite points added, by kind.
        min, max: float or None. Smallest and largest finite value (None if none).
        last: float or None. The last point added.

    Raises:
        ValueError: ``width`` is not a positive multiple of 4.

    Example:
        >>> line = Sparkline(8)
        >>> line.extend([0.0, 1.0, 0.0, 0.0, 5.0, 0.0, 0.0, 1.0])
        >>> line.render()
        '▁▂▁▁█▁▁▂'
    """

    def __init__(self, width: int, *, expected: int | None = None) -> None:
        if width < 4 or width % 4:
            raise ValueError(f"sparkline width must be a positive multiple of 4. Received: width={width}")
        self.width = width
        self.count = 0
        self.nan = 0
        self.posinf = 0
        self.neginf = 0
        self.min: float | None = None
        self.max: float | None = None
        self.last: float | None = None
        self._span = 1 if expected is None or expected <= width else -(-expected // (width // 2))
        self._buckets: list[_Bucket] = []

    def _capacity(self) -> int:
        return self.width if self._span == 1 else self.width // 2

    def _open(self) -> _Bucket:
        """Return the bucket the next point goes into, opening (and merging) as needed."""
        if self.count % self._span == 0:
            while len(self._buckets) == self._capacity():  # twice when leaving one point per bucket
                merged = []
                for a, b in zip(self._buckets[::2], self._buckets[1::2], strict=True):
                    a.merge(b)
                    merged.append(a)
                self._buckets = merged
                self._span *= 2  # count is len(buckets) * span, len even: a new bucket starts
            self._buckets.append(_Bucket())
        return self._buckets[-1]

    def add(self, value: float) -> None:
        """Add one point."""
        bucket = self._open()
        self._add_to(bucket, value, self.count)
        self.count += 1
        self.last = value

    def _add_to(self, bucket: _Bucket, value: float, at: int) -> None:
        if math.isfinite(value):
            if bucket.lo is None or value < bucket.lo:
                bucket.lo, bucket.lo_at = value, at
            if bucket.hi is None or value > bucket.hi:
                bucket.hi, bucket.hi_at = value, at
            if self.min is None or value < self.min:
                self.min = value
            if self.max is None or value > self.max:
                self.max = value
        elif value != value:
            bucket.flags |= _FLAG_NAN
            self.nan += 1
        elif value > 0:
            bucket.flags |= _FLAG_POSINF
            self.posinf += 1
        else:
            bucket.flags |= _FLAG_NEGINF
            self.neginf += 1

    def extend(self, values: Sequence[float]) -> None:
        """Add the points of ``values`` in order, a bucket's slice at a time.

        A slice of finite values is folded by the builtins ``sum``, ``min``, ``max`` and
        ``operator.indexOf`` (C loops, no copy); one holding a NaN or infinity point by point.
        """
        i, n = 0, len(values)
        while i < n:
            bucket = self._open()
            take = min(n - i, self._span - self.count % self._span)
            part = values[i : i + take]
            if take > 1 and math.isfinite(sum(part)):  # a NaN or inf makes the sum non-finite
                lo, hi = min(part), max(part)
                self._add_to(bucket, lo, self.count + operator.indexOf(part, lo))
                self._add_to(bucket, hi, self.count + operator.indexOf(part, hi))
                self.count += take
            else:
                for value in part:
                    self._add_to(bucket, value, self.count)
                    self.count += 1
            self.last = values[i + take - 1]
            i += take

    def render(self) -> str:
        """Return the line: one character per point, or two per bucket (see the class).

        The levels span the finite minimum to the finite maximum; a flat series is drawn
        at the lowest level.
        """
        lo, hi = self.min, self.max
        scale = (len(BLOCKS) - 1) / (hi - lo) if lo is not None and hi is not None and hi > lo else 0.0
        if math.isinf(scale):  # a range below the smallest normal float
            scale = 0.0

        def block(value: float) -> str:
            assert lo is not None
            level = round((value - lo) * scale) if scale else 0
            return BLOCKS[min(max(level, 0), len(BLOCKS) - 1)]

        def nonfinite(flags: int) -> str:
            return NAN if flags & _FLAG_NAN else POSINF if flags & _FLAG_POSINF else NEGINF

        chars = []
        for b in self._buckets:
            if b.lo is None or b.hi is None:
                chars.append(nonfinite(b.flags) * (1 if self._span == 1 else 2))
            elif self._span == 1:
                chars.append(block(b.lo))
            elif b.lo_at <= b.hi_at:
                chars.append(block(b.lo) + block(b.hi))
            else:
                chars.append(block(b.hi) + block(b.lo))
        return "".join(chars)

"""``--restarts keep-last``: which values of a tag TensorBoard's data server would show.

TensorBoard's data server keeps, per series, only the last write of each step: a value
at step s removes every earlier value at a step >= s (``data/server/reservoir.rs``,
"Preemption"). So value number ``o`` at step ``s`` survives iff no later value of the tag
has a step <= ``s``. It suffices to look at values whose step is not above their
predecessor's (``TagStats.backwards``): any later value at a step <= ``s`` ends an
increasing stretch that starts at such a value, with a step lower still.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence


class Survivors:
    """Decide, value by value in stream order, which values of one tag survive.

    Args:
        backwards: sequence of ``(ordinal, previous_step, step)``: every value of the tag
            whose step is not above its predecessor's, ``ordinal`` counting the tag's
            values from 0 in stream order (``tbrewrite.engine.scan.TagStats.backwards``).
    """

    def __init__(self, backwards: Sequence[tuple[int, int, int]]) -> None:
        self.ordinals = [o for o, _, _ in backwards]
        mins: list[int] = []
        low: int | None = None
        for _, _, step in reversed(backwards):
            low = step if low is None else min(low, step)
            mins.append(low)
        self.suffix_min = mins[::-1]
        self.count = 0

    def keep(self, step: int) -> bool:
        """Return whether the tag's next value, at ``step``, survives."""
        o = self.count
        self.count += 1
        k = bisect.bisect_right(self.ordinals, o)
        return k >= len(self.ordinals) or step < self.suffix_min[k]

"""The reader's filters: which kinds, which tags (a regular expression), which steps (a slice).

They are applied while reading: a value whose tag or step is filtered out is never
decoded, and a chunk of scalars is masked before it is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tbrewrite.errors import UsageError

KINDS = ("scalars", "tensors", "histograms", "images", "audio", "text", "hparams")
"""Every kind :func:`tbrewrite.frames.read` returns, in its order."""


def parse_kinds(kinds: str | Iterable[str] | None) -> tuple[str, ...]:
    """Return the kinds asked for, in :data:`KINDS` order.

    Args:
        kinds: None or ``"all"`` for every kind; a name; names separated by commas; or an
            iterable of names.

    Raises:
        UsageError: an unknown kind.
    """
    if kinds is None:
        return KINDS
    names = kinds.split(",") if isinstance(kinds, str) else list(kinds)
    wanted = {n.strip().lower() for n in names if n.strip()}
    if "all" in wanted:
        return KINDS
    unknown = sorted(wanted - set(KINDS))
    if unknown or not wanted:
        raise UsageError(f"unknown kind {', '.join(unknown) or '(none)'}; expected all or {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in wanted)


def parse_steps(text: str) -> slice:
    """Parse ``START:STOP[:STRIDE]`` (each part optional) or a single step ``N``.

    Raises:
        UsageError: not of that form.
    """
    parts = text.split(":")
    try:
        numbers = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        raise UsageError(f"--steps {text!r}: expected START:STOP, START:STOP:STRIDE or one step") from None
    if len(numbers) == 1:
        if numbers[0] is None:
            raise UsageError(f"--steps {text!r}: expected a step")
        return slice(numbers[0], numbers[0] + 1)
    if len(numbers) > 3:
        raise UsageError(f"--steps {text!r}: expected START:STOP, START:STOP:STRIDE or one step")
    return slice(*numbers)


@dataclass
class Filters:
    """Tag and step filters.

    Args:
        tags: a regular expression (``re.search``: ``"loss"`` keeps every tag containing
            ``loss``, ``"^val/"`` those starting with ``val/``), a compiled pattern, or None.
        steps: a ``slice`` or ``range`` of steps (``slice(100, None)``: from step 100;
            ``range(0, 1000, 10)``: every tenth step below 1000), or None.

    Raises:
        UsageError: a bad pattern, or a stride that is not positive.
    """

    tags: re.Pattern[str] | None = None
    steps: slice | None = None
    _seen: dict[str, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def make(cls, tags: str | re.Pattern[str] | None, steps: slice | range | None) -> Filters:
        """Build the filters from the reader's ``tags`` and ``steps`` arguments."""
        pattern = None
        if tags is not None:
            try:
                pattern = tags if isinstance(tags, re.Pattern) else re.compile(tags)
            except re.error as e:
                raise UsageError(f"tags {tags!r}: not a regular expression ({e})") from None
        window = None
        if steps is not None:
            if not isinstance(steps, (slice, range)):
                raise UsageError(f"steps: expected a slice or range, got {type(steps).__name__}")
            if steps.step is not None and steps.step <= 0:
                raise UsageError(f"steps: the stride must be positive, got {steps.step}")
            window = slice(steps.start, steps.stop, steps.step)
        return cls(pattern, window)

    @property
    def active(self) -> bool:
        """True if any filter is set."""
        return self.tags is not None or self.steps is not None

    def tag(self, tag: str) -> bool:
        """True if ``tag`` passes the tag filter."""
        if self.tags is None:
            return True
        passes = self._seen.get(tag)
        if passes is None:
            passes = self._seen[tag] = self.tags.search(tag) is not None
        return passes

    def step(self, step: int) -> bool:
        """True if ``step`` passes the step filter."""
        s = self.steps
        if s is None:
            return True
        if s.start is not None and step < s.start:
            return False
        if s.stop is not None and step >= s.stop:
            return False
        return not s.step or (step - (s.start or 0)) % s.step == 0

    def step_mask(self, steps: Any) -> Any:
        """The NumPy boolean mask of the int64 array ``steps`` that pass the step filter."""
        import numpy as np

        s = self.steps
        keep = np.ones(len(steps), dtype=bool)
        if s is None:
            return keep
        if s.start is not None:
            keep &= steps >= s.start
        if s.stop is not None:
            keep &= steps < s.stop
        if s.step:
            keep &= (steps - (s.start or 0)) % s.step == 0
        return keep

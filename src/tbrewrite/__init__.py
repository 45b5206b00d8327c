"""tbrewrite: fix TensorBoard event logs after training.

Convert Keras's flat tags into ``train/...`` and ``val/...`` runs, rename tags across a
tree of runs, and merge learning-rate sidecars into event logs, losing nothing.
Importing this package never imports TensorFlow or Keras; only
:mod:`tbrewrite.keras` (the training callback) does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tbrewrite.frames import Frames

__version__ = "0.1.0"

__all__ = ["__version__", "read"]


def read(
    path: str | os.PathLike[str],
    *,
    kinds: str | Iterable[str] | None = None,
    tags: str | re.Pattern[str] | None = None,
    steps: slice | range | None = None,
    pivot: bool = False,
) -> Frames:
    """Read a log into one pandas DataFrame per kind: :func:`tbrewrite.frames.read`.

    Example:
        >>> import tbrewrite
        >>> frames = tbrewrite.read("logs", kinds="scalars,text", steps=slice(0, 100))  # doctest: +SKIP
        >>> frames.scalars.head()  # doctest: +SKIP
    """
    from tbrewrite.frames import read as read_frames

    return read_frames(path, kinds=kinds, tags=tags, steps=steps, pivot=pivot)

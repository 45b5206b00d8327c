"""Histograms in tbparse's ``limits``/``counts`` form, from either way they are stored.

* **TF1** (``Summary.Value.histo``, a ``HistogramProto``; TF1 ``tf.summary.histogram``,
  PyTorch and tensorboardX ``add_histogram``): ``limits`` is ``bucket_limit`` (each
  bucket's right edge), ``counts`` is ``bucket``; ``min``, ``max``, ``num``, ``sum`` and
  ``sum_squares`` as stored (tbparse's ``_get_histogram_cols``).
* **TF2** (a ``[k, 3]`` tensor of ``(left, right, count)`` rows under the ``histograms``
  plugin; ``tf.summary.histogram``, Keras): ``limits`` is the first left edge then every
  right edge, ``counts`` a leading 0 then every count, ``min``/``max`` the outer edges,
  ``num`` the total count and ``sum``/``sum_squares`` NaN (tbparse's
  ``tensor_to_histogram``). An empty ``[0, 3]`` tensor gives empty arrays and ``num`` 0.

The long bucket table (:func:`buckets`) has one row per bucket with its left and right
edge as TensorBoard draws it (``data_compat.py`` ``_migrate_histogram``: a TF1 bucket
starts where the previous one ends, the first at ``min``, and the last ends at ``max``).
"""

from __future__ import annotations

import math
from typing import Any

from tbrewrite.frames.tensors import ndarray

Histogram = tuple[Any, Any, float, float, float, float, float]
"""``(limits, counts, min, max, num, sum, sum_squares)``: two float64 NumPy arrays, five floats."""


def from_histo(histo: Any) -> Histogram:
    """Return the :data:`Histogram` of a ``HistogramProto``."""
    import numpy as np

    limits = np.array(histo.bucket_limit, dtype=np.float64)
    counts = np.array(histo.bucket, dtype=np.float64)
    return limits, counts, histo.min, histo.max, histo.num, histo.sum, histo.sum_squares


def from_tensor(tensor: Any) -> Histogram:
    """Return the :data:`Histogram` of a TF2 ``[k, 3]`` histogram tensor.

    Raises:
        ValueError: the tensor is not of shape ``[k, 3]``.
        TypeError: its dtype is not a number.
    """
    import numpy as np

    array = ndarray(tensor)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"a histogram tensor of shape {list(array.shape)}, not [k, 3]")
    if array.dtype.kind not in "fiub":
        raise TypeError(f"a histogram tensor of dtype {array.dtype}")
    cells = array.astype(np.float64)
    if not len(cells):
        empty = np.zeros(0)
        return empty, empty.copy(), math.nan, math.nan, 0.0, math.nan, math.nan
    limits = np.concatenate([cells[:1, 0], cells[:, 1]])
    counts = np.concatenate([[0.0], cells[:, 2]])
    return limits, counts, float(limits[0]), float(limits[-1]), float(counts.sum()), math.nan, math.nan


def buckets(limits: Any, counts: Any, low: float, high: float) -> tuple[Any, Any, Any]:
    """Return the ``(left, right, count)`` float64 arrays of one histogram's buckets.

    Bucket ``i`` spans ``limits[i - 1]`` (``low`` for the first) to ``limits[i]`` (``high``
    for the last); a first bucket of no width and no count (the leading 0 of the TF2 form)
    is dropped.
    """
    import numpy as np

    n = len(limits)
    if n == 0:
        empty = np.zeros(0)
        return empty, empty, empty
    left = np.empty(n)
    right = np.empty(n)
    left[0] = low
    left[1:] = limits[:-1]
    right[:-1] = limits[:-1]
    right[-1] = high
    count = np.asarray(counts, dtype=np.float64)
    if count[0] == 0 and left[0] == right[0]:
        return left[1:], right[1:], count[1:]
    return left, right, count

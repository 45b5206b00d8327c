"""Tensor values and text, decoded from their ``TensorProto`` without TensorFlow.

NumPy arrays come from TensorBoard's own ``tensor_util.make_ndarray`` (pure NumPy, the
function tbparse copies), so a tensor reads as TensorBoard and tbparse read it. Text is
the ``text`` plugin's string tensor (``tf.summary.text``: rank 0; PyTorch and
tensorboardX ``add_text``: shape ``[1]`` under the tag ``<name>/text_summary``).
"""

from __future__ import annotations

from typing import Any

TEXT_SUFFIX = "/text_summary"
"""What PyTorch and tensorboardX append to a text tag; dropped, as tbparse drops it."""


def ndarray(tensor: Any) -> Any:  # a NumPy array
    """Return the ``TensorProto`` ``tensor`` as a NumPy array of its shape and type.

    Raises:
        TypeError: a ``DataType`` NumPy has no type for (variant, resource, ...).
    """
    from tensorboard.util import tensor_util

    return tensor_util.make_ndarray(tensor)


def dtype_name(code: int) -> str:
    """The name of a ``DataType`` code (``float32``, ``string``, ...), or ``dtype_<code>``."""
    from tensorboard.compat.tensorflow_stub import dtypes

    try:
        name: str = dtypes.as_dtype(code).name
    except TypeError:
        return f"dtype_{code}"
    return name


def tensor_value(tensor: Any) -> tuple[Any, str, tuple[int, ...]]:
    """Return a tensor's value, dtype name and shape, as tbparse's ``.tensors`` gives the value.

    The value is the NumPy array, or its one element as a Python object when the tensor has
    rank 0 (``ndarray.item()``: a float, int, bool or bytes).

    Raises:
        TypeError: as :func:`ndarray`.
    """
    array = ndarray(tensor)
    shape = tuple(int(d.size) for d in tensor.tensor_shape.dim)
    value = array.item() if array.shape == () else array
    return value, dtype_name(tensor.dtype), shape


def text_tag(tag: str) -> str:
    """The text tag as shown: without PyTorch's and tensorboardX's ``/text_summary``."""
    return tag[: -len(TEXT_SUFFIX)] if tag.endswith(TEXT_SUFFIX) else tag


def text_value(tensor: Any) -> Any:
    """Return the text of a ``text`` plugin tensor.

    One element (rank 0, or shape ``[1]``): that string. More (a table of strings, which
    TensorBoard renders as a table; tbparse fails on them): a NumPy array of ``str`` of the
    tensor's shape. Bytes that are not UTF-8 are decoded with replacement characters.

    Raises:
        TypeError: the tensor is not a string tensor.
    """
    array = ndarray(tensor)
    if array.dtype.kind not in "OSU":
        raise TypeError(f"a text tensor of dtype {dtype_name(tensor.dtype)}")
    if array.size == 1:
        return _text(array.reshape(()).item())
    import numpy as np

    flat = [_text(item) for item in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape)


def _text(item: Any) -> str:
    return item.decode("utf-8", "replace") if isinstance(item, bytes) else str(item)

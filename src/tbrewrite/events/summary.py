"""What a summary value is.

Its kind as TensorBoard's dashboards show it, its stored form, and its number when it is a
scalar.

Kinds follow the plugin named in the tag's first metadata, as TensorBoard classifies
series (``plugin_event_accumulator.py`` ``_ProcessEvent``; ``data/server/run.rs``);
values without metadata are classified by their stored form.
"""

from __future__ import annotations

import struct

from tensorboard.compat.proto import event_pb2, summary_pb2

Event = event_pb2.Event
Summary = summary_pb2.Summary
SummaryMetadata = summary_pb2.SummaryMetadata

FILE_VERSION = "brain.Event:2"
"""The ``file_version`` every TensorFlow and TensorBoard writer puts in a file's first
event (``tensorboard/summary/writer/event_file_writer.py``)."""
_DT_FLOAT = 1
_DT_BOOL = 10

SCALAR_DTYPES: dict[int, tuple[str, str, str]] = {
    1: ("float32", "float_val", "<f"),
    2: ("float64", "double_val", "<d"),
    3: ("int32", "int_val", "<i"),
    4: ("uint8", "int_val", "<B"),
    5: ("int16", "int_val", "<h"),
    6: ("int8", "int_val", "<b"),
    9: ("int64", "int64_val", "<q"),
    10: ("bool", "bool_val", "<B"),
    17: ("uint16", "int_val", "<H"),
    19: ("float16", "half_val", "<e"),
    22: ("uint32", "uint32_val", "<I"),
    23: ("uint64", "uint64_val", "<Q"),
}
"""The ``DataType`` codes (``tensorboard/compat/proto/types.proto``) of rank-0 tensors that
are scalars: ``code -> (name, typed TensorProto field, little-endian struct format of one
element in tensor_content)``.

They are the types whose rank-0 tensors TensorBoard's data provider turns into a plotted
number (``data_provider.py`` ``_convert_scalar_event``: ``tensor_util.make_ndarray(...)
.item()``), which makes no number of strings, complex, quantized or bfloat16 tensors.
(Its ``make_ndarray`` reads uint32 and uint64 from ``tensor_content`` only, although its
own ``make_tensor_proto`` writes a rank-0 one to ``uint32_val`` / ``uint64_val``, as
TensorFlow's ``MakeNdarray`` reads them: both are read here. TensorBoard's Rust data
server plots DT_FLOAT only: ``data_compat.rs`` ``into_scalar``.)
"""
_STRUCTS = {code: struct.Struct(fmt) for code, (_, _, fmt) in SCALAR_DTYPES.items()}

_PLUGIN_KINDS = {
    "scalars": "scalar",
    "histograms": "histogram",
    "images": "image",
    "audio": "audio",
    "text": "text",
    "hparams": "hparams",
    "pr_curves": "pr_curve",
    "mesh": "mesh",
    "custom_scalars": "custom_scalars",
}

STEPLESS_KINDS = frozenset({"graph", "hparams", "custom_scalars"})
"""Kinds whose step is not a point of a series (the Keras model config ``keras``, hparams'
``_hparams_/...`` summaries, a custom_scalars layout, all at step 0): ``crop`` keeps them
and ``concat`` never offsets them."""


def value_kind(value: summary_pb2.Summary.Value, plugin_name: str) -> str:
    """Classify a summary value as TensorBoard's dashboards would.

    Args:
        value: Summary.Value.
        plugin_name: str. The plugin name from the first metadata seen for this tag
            (empty if none was seen).

    Returns:
        str: ``scalar``, ``histogram``, ``image``, ``audio``, ``text``, ``hparams``,
        ``graph``, ``pr_curve``, ``mesh``, ``custom_scalars`` or ``tensor``.
    """
    which = value.WhichOneof("value")
    if which == "simple_value":
        return "scalar"
    if which == "histo" or which == "obsolete_old_style_histogram":
        return "histogram"
    if which == "image":
        return "image"
    if which == "audio":
        return "audio"
    if plugin_name.startswith("graph"):
        return "graph"
    return _PLUGIN_KINDS.get(plugin_name, "tensor")


def scalar_value(value: summary_pb2.Summary.Value) -> float | None:
    """Return a scalar summary value as a float, or None if it is not a scalar (see :func:`scalar_number`)."""
    number = scalar_number(value)
    return number[0] if number is not None else None


def scalar_number(value: summary_pb2.Summary.Value) -> tuple[float, int] | None:
    """Return a scalar summary value and its ``DataType`` code, or None if it is not a scalar.

    A scalar is a ``simple_value`` (a float32: code 1) or a rank-0 tensor of a type of
    :data:`SCALAR_DTYPES`, holding its element in the typed field (the first one; an
    integer field holding a narrower type is cut to its width, as a C cast does; float16
    keeps its bits in the low 16 bits of ``half_val``) or else in exactly one element's
    bytes of ``tensor_content``. Where a tensor has both (no writer does that) the typed
    field wins, as it always did for float32. A NaN float16 is the quiet NaN of its sign.

    Args:
        value: Summary.Value.

    Returns:
        ``(number, dtype)``: the number widened to a float64 (``bool`` is 1.0 or 0.0;
        64-bit integers beyond 2**53 round to the nearest float64) and the ``DataType``
        code; or None.
    """
    which = value.WhichOneof("value")
    if which == "simple_value":
        return float(value.simple_value), _DT_FLOAT
    if which != "tensor" or value.tensor.tensor_shape.dim:
        return None
    t = value.tensor
    spec = SCALAR_DTYPES.get(t.dtype)
    if spec is None:
        return None
    element = _STRUCTS[t.dtype]
    typed = getattr(t, spec[1])
    if typed:
        first = typed[0]
        if isinstance(first, float):
            return float(first), t.dtype
        raw = (int(first) & ((1 << (8 * element.size)) - 1)).to_bytes(element.size, "little")
    elif len(t.tensor_content) == element.size:
        raw = t.tensor_content
    else:
        return None
    if t.dtype == _DT_BOOL:
        return (1.0 if raw != b"\0" else 0.0), t.dtype
    return float(element.unpack(raw)[0]), t.dtype


def value_form(value: summary_pb2.Summary.Value) -> str:
    """Return the stored form of a value: ``simple_value``, ``tensor``, ``histo``, ..."""
    return value.WhichOneof("value") or "empty"


def event_kind(event: event_pb2.Event) -> str:
    """Return which field of the ``Event.what`` oneof is set (``summary``, ``graph_def``, ...)."""
    return event.WhichOneof("what") or "empty"

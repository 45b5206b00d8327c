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
_DT_DOUBLE = 2
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")

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
    """Return a scalar summary value as a float, or None if it is not a scalar."""
    which = value.WhichOneof("value")
    if which == "simple_value":
        return float(value.simple_value)
    if which != "tensor" or value.tensor.tensor_shape.dim:
        return None
    t = value.tensor
    if t.dtype == _DT_FLOAT:
        if t.float_val:
            return float(t.float_val[0])
        if len(t.tensor_content) == 4:
            return float(_F32.unpack(t.tensor_content)[0])
    if t.dtype == _DT_DOUBLE:
        if t.double_val:
            return float(t.double_val[0])
        if len(t.tensor_content) == 8:
            return float(_F64.unpack(t.tensor_content)[0])
    return None


def value_form(value: summary_pb2.Summary.Value) -> str:
    """Return the stored form of a value: ``simple_value``, ``tensor``, ``histo``, ..."""
    return value.WhichOneof("value") or "empty"


def event_kind(event: event_pb2.Event) -> str:
    """Return which field of the ``Event.what`` oneof is set (``summary``, ``graph_def``, ...)."""
    return event.WhichOneof("what") or "empty"

"""Hand-built event records for unit tests: serialized ``Event`` bytes, framed with :mod:`support.tfrecord`.

Only TensorBoard's protobuf messages are used (no tbrewrite), so what a test feeds a reader or
the rewrite engine is exactly what it says.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

from support.tfrecord import frame

T0 = 1_700_000_000.0
"""A wall_time in seconds (2023-11-14), exactly representable."""
DT_FLOAT = 1


def metadata(plugin: str, content: bytes = b"", display_name: str = "") -> summary_pb2.SummaryMetadata:
    """``SummaryMetadata`` naming ``plugin``, with plugin ``content`` and an optional display name."""
    return summary_pb2.SummaryMetadata(
        display_name=display_name,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content),
    )


def simple(tag: str, x: float, meta: summary_pb2.SummaryMetadata | None = None) -> summary_pb2.Summary.Value:
    """A TF1 / PyTorch scalar (``simple_value``), with metadata only if given."""
    value = summary_pb2.Summary.Value(tag=tag, simple_value=x)
    if meta is not None:
        value.metadata.CopyFrom(meta)
    return value


def tensor(tag: str, x: float, meta: summary_pb2.SummaryMetadata | None = None) -> summary_pb2.Summary.Value:
    """A rank-0 float32 tensor (TF2's ``tf.summary.scalar`` form), with metadata only if given."""
    t = tensor_pb2.TensorProto(
        dtype=DT_FLOAT, tensor_shape=tensor_shape_pb2.TensorShapeProto(), tensor_content=struct.pack("<f", x)
    )
    value = summary_pb2.Summary.Value(tag=tag, tensor=t)
    if meta is not None:
        value.metadata.CopyFrom(meta)
    return value


def summary(wall_time: float, step: int, *values: summary_pb2.Summary.Value) -> bytes:
    """A serialized summary ``Event``."""
    return event_pb2.Event(
        wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=list(values))
    ).SerializeToString()


def file_version(wall_time: float = T0, writer: str = "tensorflow.core.util.events_writer") -> bytes:
    """A serialized ``file_version`` Event, as TensorFlow's writer starts every file."""
    event = event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
    event.source_metadata.writer = writer
    return event.SerializeToString()


def graph(wall_time: float, graph_def: bytes = b"\n\x07\n\x01x\x12\x02Op") -> bytes:
    """A serialized ``graph_def`` Event."""
    return event_pb2.Event(wall_time=wall_time, graph_def=graph_def).SerializeToString()


def write(path: Path, records: list[bytes]) -> Path:
    """Write ``records`` framed as a TFRecord file at ``path`` (folders made); return ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(frame(r) for r in records))
    return path


def offsets(records: list[bytes]) -> list[int]:
    """Byte offset of each framed record in a file of ``records``, and of its end."""
    out = [0]
    for r in records:
        out.append(out[-1] + len(r) + 16)
    return out


def decode(data: bytes) -> event_pb2.Event:
    return event_pb2.Event.FromString(data)

"""Sidecar placement details: the Events built from bytes, and the range check without a pass."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2

from tbrewrite.sidecars.events import EventMaker
from tbrewrite.sidecars.place import _overlaps
from tbrewrite.sidecars.read import read_sidecar

T0 = 1_700_000_000.0


def reference(tag: str, step: int, wall_time: float, value: float, form: str) -> event_pb2.Event:
    """The sidecar point as protobuf's own setters build it (what merge wrote before)."""
    event = event_pb2.Event(wall_time=wall_time, step=step)
    v = event.summary.value.add(tag=tag)
    if form == "simple_value":
        v.simple_value = value
        return event
    v.tensor.CopyFrom(tensor_pb2.TensorProto(dtype=1, float_val=[value]))
    v.tensor.tensor_shape.SetInParent()
    v.metadata.plugin_data.plugin_name = "scalars"
    v.metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
    return event


@pytest.mark.parametrize("form", ["tensor", "simple_value"])
@pytest.mark.parametrize("tag", ["train/batch_learning_rate", "t" * 300, "é/ünïcode", ""])
def test_events_built_from_bytes_equal_protobufs(tag: str, form: str) -> None:
    rng = random.Random(0)
    values = [0.0, -0.0, 1e300, -1e300, 3.40282356e38, 3.40282357e38, 1e-50, 5e-324, 0.1, -2.5]
    values += [rng.uniform(-10, 10) for _ in range(50)]
    make = EventMaker(tag, form)
    for value in values:
        for step in (0, 1, 127, 128, 16383, 16384, 2**21 - 1, 2**21, 2**31, 2**63 - 1):
            wall_time = rng.choice([0.0, T0 + 0.123456, 1e10 + 0.5])
            got = event_pb2.Event.FromString(make(step, wall_time, value)).SerializeToString()
            assert got == reference(tag, step, wall_time, value, form).SerializeToString(), (value, step)


@pytest.mark.parametrize(
    ("steps", "low", "high", "want"),
    [
        ((4, 8, 12), 13, 20, False),  # after
        ((4, 8, 12), 0, 3, False),  # before
        ((4, 8, 12), 8, 20, True),  # holds the first or last step
        ((4, 8, 12), 0, 4, True),
        ((4, 8, 12), 5, 7, False),  # between two steps of a constant stride
        ((4, 8, 12), 5, 9, True),
        ((4, 5, 12), 6, 7, None),  # no constant stride: unknown without a pass
    ],
)
def test_overlap_from_range_and_stride(
    tmp_path: Path, steps: tuple[int, ...], low: int, high: int, want: object
) -> None:
    path = tmp_path / "lr.csv"
    path.write_text("epoch,step,wall_time,learning_rate\n" + "".join(f"0,{s},{T0 + s},0.1\n" for s in steps))
    assert _overlaps(read_sidecar(path), low, high) is want

"""``convert`` on real Keras logs, checked with TensorBoard's and TensorFlow's readers."""

from __future__ import annotations

from pathlib import Path

from support.expect import assert_converted
from support.logs import event_files
from support.paths import FIXTURES
from tbrewrite.commands.convert import convert
from tbrewrite.events.framing import RecordReader


def test_convert_shipped_keras3_fixture(tmp_path: Path) -> None:
    convert(FIXTURES / "keras3_run", tmp_path / "out")
    assert_converted(FIXTURES / "keras3_run", tmp_path / "out", "keras-split")


def test_plugin_metadata_on_first_value_of_every_tag(tmp_path: Path) -> None:
    from tensorboard.compat.proto import event_pb2

    convert(FIXTURES / "keras3_run", tmp_path / "out")
    (output,) = event_files(tmp_path / "out")
    seen = set()
    for data in RecordReader(output):
        event = event_pb2.Event.FromString(data)
        for v in event.summary.value:
            if v.tag not in seen:
                seen.add(v.tag)
                assert v.HasField("metadata"), v.tag
                assert v.metadata.plugin_data.plugin_name
    assert "train/loss" in seen


def test_output_is_merged_in_wall_time_order_and_deterministic(tmp_path: Path) -> None:
    from tensorboard.compat.proto import event_pb2

    convert(FIXTURES / "keras3_run", tmp_path / "a")
    convert(FIXTURES / "keras3_run", tmp_path / "b")
    (a,) = event_files(tmp_path / "a")
    (b,) = event_files(tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    times = [event_pb2.Event.FromString(d).wall_time for d in RecordReader(a)]
    assert times == sorted(times)

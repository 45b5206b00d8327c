"""``convert`` on real Keras logs, checked with TensorBoard's and TensorFlow's readers."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FIXTURES, event_files, loader_values
from expect import assert_converted, assert_tensorflow_reads
from tbrewrite.commands.convert import convert
from tbrewrite.events.framing import RecordReader


@pytest.mark.slow
def test_convert_keras3_run_trained_in_session(keras3_logdir: Path, tmp_path: Path) -> None:
    report = convert(keras3_logdir, tmp_path / "out")
    output = assert_converted(keras3_logdir, tmp_path / "out", "keras-split")
    tags = {t for t, *_ in loader_values([output])}
    assert {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "train/learning_rate",
            "train/batch_loss", "val/loss_vs_iterations"} <= tags
    assert not any(t.startswith(("epoch_", "batch_", "evaluation_")) for t in tags)
    assert report.damage == []
    (run,) = report.runs
    assert run.plan.layout == "keras-split"


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


def test_real_tensorflow_files_read_record_for_record(keras3_logdir: Path) -> None:
    for path in event_files(keras3_logdir):
        assert assert_tensorflow_reads(path) > 1


def test_our_writer_is_read_identically_by_tensorflow_and_tensorboard(tmp_path: Path) -> None:
    from tensorboard.compat.proto import event_pb2, tensor_pb2

    from tbrewrite.events.writer import EventFileWriter

    events = []
    for step in range(50):
        e = event_pb2.Event(wall_time=1.7e9 + step, step=step)
        e.summary.value.add(tag="loss", simple_value=1.0 / (step + 1))
        e.summary.value.add(tag="blob", tensor=tensor_pb2.TensorProto(dtype=7, string_val=[bytes(step * 97)]))
        events.append(e)
    path = tmp_path / "events.out.tfevents.0000000001.test"
    with EventFileWriter(path, wall_time=1.7e9) as w:
        for e in events:
            w.write_event(e)
    assert not [p for p in tmp_path.iterdir() if p != path]
    assert assert_tensorflow_reads(path) == 51
    from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader

    loaded = list(LegacyEventFileLoader(str(path)).Load())
    assert loaded[0].file_version == "brain.Event:2"
    assert loaded[1:] == events

"""``convert`` on real Keras logs, checked with TensorBoard's and TensorFlow's readers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from conftest import FIXTURES, event_files, loader_events, loader_values
from tbrewrite.convert import convert
from tbrewrite.records import RecordReader


def expected_tag(source: str, tag: str, scalar: bool) -> str:
    """The DESIGN.md default mapping, written out independently of the library."""
    if not scalar:
        return tag
    if source == "train":
        if tag in ("epoch_lr", "epoch_learning_rate"):
            return "train/learning_rate"
        if tag.startswith("epoch_"):
            return "train/" + tag[len("epoch_"):]
        if tag.startswith("batch_"):
            return "train/" + tag
    if source == "validation":
        if tag.startswith("epoch_"):
            return "val/" + tag[len("epoch_"):]
        if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
            return "val/" + tag[len("evaluation_"):]
    return tag


def scalar_tags(files: list[Path]) -> set[str]:
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = set()
    for f in files:
        for e in EventFileLoader(str(f)).Load():
            for v in e.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    tags.add(v.tag)
    return tags


def expected_values(logdir: Path) -> Counter:
    expected: Counter = Counter()
    for source in ("train", "validation"):
        files = event_files(logdir / source)
        scalars = scalar_tags(files)
        for tag, step, wall_time, value in loader_values(files):
            expected[(expected_tag(source, tag, tag in scalars), step, wall_time, value)] += 1
    return expected


def assert_tensorflow_reads(path: Path) -> int:
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    ours = list(RecordReader(path))
    assert records == ours
    return len(records)


def assert_converted(src: Path, out: Path) -> Path:
    (output,) = event_files(out)
    got = Counter(loader_values([output]))
    assert got == expected_values(src)
    assert loader_events([output]) == loader_events(event_files(src))
    first = next(iter(RecordReader(output)))
    from tensorboard.compat.proto import event_pb2

    assert event_pb2.Event.FromString(first).file_version == "brain.Event:2"
    assert_tensorflow_reads(output)
    return output


@pytest.mark.slow
def test_convert_keras3_run_trained_in_session(keras3_logdir: Path, tmp_path: Path) -> None:
    report = convert(keras3_logdir, tmp_path / "out")
    output = assert_converted(keras3_logdir, tmp_path / "out")
    tags = {t for t, *_ in loader_values([output])}
    assert {"train/loss", "val/loss", "train/accuracy", "val/accuracy", "train/learning_rate",
            "train/batch_loss", "val/loss_vs_iterations"} <= tags
    assert not any(t.startswith(("epoch_", "batch_", "evaluation_")) for t in tags)
    assert report.damage == []
    (run,) = report.runs
    assert run.plan.layout == "keras-split"


def test_convert_shipped_keras3_fixture(tmp_path: Path) -> None:
    convert(FIXTURES / "keras3_run", tmp_path / "out")
    assert_converted(FIXTURES / "keras3_run", tmp_path / "out")


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

    from tbrewrite.writer import EventFileWriter

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

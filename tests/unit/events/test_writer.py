"""EventFileWriter: the bytes it writes, read back by three readers, and its temporary name.

Every file is read back by tbrewrite's own ``RecordReader``, by TensorBoard's
``RawEventFileLoader`` (what the data server's Python path reads) and by the strict parser of
:mod:`support.tfrecord`, which shares no code with the writer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing import io_wrapper
from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader, RawEventFileLoader
from tensorboard.compat.proto import event_pb2, tensor_pb2

from support.expect import assert_tensorflow_reads
from support.tfrecord import read_frames
from tbrewrite.events.framing import RecordReader
from tbrewrite.events.writer import TEMP_PREFIX, EventFileWriter, output_file_name, temp_path

T0 = 1_700_000_000.25
NAME = "events.out.tfevents.1700000000.host"


def scalar(step: int, value: float, tag: str = "loss") -> event_pb2.Event:
    event = event_pb2.Event(wall_time=T0 + step, step=step)
    event.summary.value.add(tag=tag, simple_value=value)
    return event


def three_readers(path: Path) -> list[bytes]:
    """The records of ``path``; asserts the three readers agree and ours found no damage."""
    ours = RecordReader(path)
    records = list(ours)
    assert ours.damage == []
    assert [bytes(r) for r in RawEventFileLoader(str(path)).Load()] == records
    assert read_frames(path) == records
    return records


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_file_version_first_then_the_events_in_order(tmp_path: Path) -> None:
    events = [scalar(step, 1.0 / (step + 1)) for step in range(20)]
    with EventFileWriter(tmp_path / NAME, wall_time=T0) as w:
        for e in events:
            w.write_event(e)
    records = three_readers(tmp_path / NAME)
    first = event_pb2.Event.FromString(records[0])
    assert first.file_version == "brain.Event:2"
    assert first.wall_time == T0
    assert first.source_metadata.writer == "tbrewrite"
    assert not first.HasField("summary") and first.step == 0
    assert records[1:] == [e.SerializeToString() for e in events]
    assert w.records == 21
    assert w.bytes == (tmp_path / NAME).stat().st_size == sum(len(r) + 16 for r in records)


def test_small_large_and_buffer_filling_records_keep_their_order(tmp_path: Path) -> None:
    # Small records are batched, records of 64 KiB and more are written directly: a large
    # record must not overtake the small ones still batched before it, and a batch that
    # reaches 1 MiB is flushed in place.
    sizes = [0, 1, 100, (1 << 16) - 1, 1 << 16, 5, (1 << 16) + 1, 3] + [40_000] * 30 + [2 << 20, 7]
    data = [bytes([k % 251]) * n for k, n in enumerate(sizes)]
    w = EventFileWriter(tmp_path / NAME, wall_time=T0)
    for d in data:
        w.write_record(d)
    w.close()
    assert three_readers(tmp_path / NAME)[1:] == data


def test_temporary_name_without_tfevents_until_close(tmp_path: Path) -> None:
    final = tmp_path / NAME
    w = EventFileWriter(final, wall_time=T0)
    for step in range(1000):
        w.write_event(scalar(step, 0.5))
    w.flush()  # the bytes reach the file, the name stays temporary
    assert w.temp_path == temp_path(final) == tmp_path / (TEMP_PREFIX + "events.out.ev.1700000000.host")
    assert listing(tmp_path) == [w.temp_path.name]
    assert "tfevents" not in w.temp_path.name and not io_wrapper.IsTensorFlowEventsFile(str(w.temp_path))
    assert w.temp_path.stat().st_size == w.bytes
    assert w.finish() == w.temp_path  # fsynced and closed, still not published
    assert listing(tmp_path) == [w.temp_path.name]
    assert w.close() == final
    assert listing(tmp_path) == [NAME]
    assert len(three_readers(final)) == 1001
    assert w.close() == final  # closing twice is harmless


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    w = EventFileWriter(tmp_path / NAME, wall_time=T0)
    for step in range(10):
        w.write_event(scalar(step, 0.5))
    w.flush()
    w.abort()
    assert listing(tmp_path) == []
    w.abort()  # twice: still nothing, no error
    w.close()  # after an abort, close publishes nothing
    assert listing(tmp_path) == []


def test_an_exception_in_the_with_block_aborts(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), EventFileWriter(tmp_path / NAME, wall_time=T0) as w:
        w.write_event(scalar(0, 1.0))
        raise RuntimeError("stop")
    assert listing(tmp_path) == []


def test_abort_after_close_keeps_the_published_file(tmp_path: Path) -> None:
    w = EventFileWriter(tmp_path / NAME, wall_time=T0)
    w.write_event(scalar(0, 1.0))
    w.close()
    w.abort()
    assert listing(tmp_path) == [NAME] and len(three_readers(tmp_path / NAME)) == 2


def test_given_header_is_kept_byte_for_byte(tmp_path: Path) -> None:
    # A TensorFlow writer's header: another wall_time, its own writer name; field order and
    # everything else must survive, so a rewrite of a file starting with it stays identical.
    header = event_pb2.Event(wall_time=1234.5, file_version="brain.Event:2")
    header.source_metadata.writer = "tensorflow.core.util.events_writer"
    raw = header.SerializeToString() + b"\x90\x01\x07"  # plus an unknown field 18 (varint 7)
    with EventFileWriter(tmp_path / NAME, wall_time=T0, header=raw) as w:
        w.write_event(scalar(1, 2.0))
    records = three_readers(tmp_path / NAME)
    assert records[0] == raw
    assert len(records) == 2 and w.records == 2


def test_output_file_name_is_derived_from_the_wall_time_only() -> None:
    assert output_file_name(1_700_000_000.9) == "events.out.tfevents.1700000000.tbrewrite"
    assert output_file_name(12.0, "host") == "events.out.tfevents.0000000012.host"
    assert output_file_name(12.0) == output_file_name(12.999)


def test_our_writer_is_read_identically_by_tensorflow_and_tensorboard(tmp_path: Path) -> None:
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
    assert list(RecordReader(path)) == read_frames(path)
    loaded = list(LegacyEventFileLoader(str(path)).Load())
    assert loaded[0].file_version == "brain.Event:2"
    assert loaded[1:] == events

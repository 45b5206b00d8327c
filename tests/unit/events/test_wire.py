"""The protobuf-free fast path agrees with protobuf on every record it accepts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2

from support.logs import event_files
from support.paths import CORPUS, FIXTURES, needs_corpus
from tbrewrite.events.framing import RecordReader
from tbrewrite.events.wire import REST_AT, STEP, TAG, WALL_TIME, has_metadata, peek, retag


def check(data: bytes, new_tag: str = "renamed/tag") -> bool:
    """Assert peek/retag/has_metadata match protobuf for ``data``; return whether peeked."""
    event = event_pb2.Event.FromString(data)
    peeked = peek(data)
    if peeked is None:
        return False
    (value,) = event.summary.value
    assert (peeked[WALL_TIME], peeked[STEP], peeked[TAG]) == (event.wall_time, event.step, value.tag.encode())
    assert has_metadata(data, peeked) in (value.HasField("metadata"), None)
    changed = event_pb2.Event.FromString(retag(data, peeked, new_tag.encode()))
    event.summary.value[0].tag = new_tag
    assert changed == event
    assert data[peeked[REST_AT] :] in retag(data, peeked, new_tag.encode())
    return True


@needs_corpus
def test_every_common_record_of_the_corpus_and_fixtures() -> None:
    peeked = total = 0
    for path in event_files(CORPUS) + event_files(FIXTURES):
        for data in RecordReader(path):
            total += 1
            peeked += check(data)
    assert peeked > 0.9 * total  # nearly every real record takes the fast path


def test_other_shapes_are_refused() -> None:
    e = event_pb2.Event(wall_time=1.5, step=3, file_version="brain.Event:2")
    assert peek(e.SerializeToString()) is None
    e = event_pb2.Event(wall_time=1.5, step=3)
    e.summary.value.add(tag="a", simple_value=1.0)
    e.summary.value.add(tag="b", simple_value=2.0)
    assert peek(e.SerializeToString()) is None  # two values
    e = event_pb2.Event(step=3)
    e.summary.value.add(tag="a", simple_value=1.0)
    assert peek(e.SerializeToString()) is None  # wall_time 0.0 is not serialized
    e = event_pb2.Event(wall_time=1.0, step=3)
    e.summary.value.add(tag="a", simple_value=1.0)
    e.source_metadata.writer = "x"
    assert peek(e.SerializeToString()) is None  # a field after the summary


@settings(max_examples=300, deadline=None)
@given(
    wall_time=st.floats(min_value=1e-3, allow_nan=False, allow_infinity=False),
    step=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    tag=st.text(min_size=1, max_size=300),
    new_tag=st.text(min_size=1, max_size=300),
    payload=st.binary(max_size=400),
    simple=st.booleans(),
    meta=st.booleans(),
)
def test_random_events(
    wall_time: float, step: int, tag: str, new_tag: str, payload: bytes, simple: bool, meta: bool
) -> None:
    e = event_pb2.Event(wall_time=wall_time, step=step)
    v = e.summary.value.add(tag=tag)
    if simple:
        v.simple_value = 0.5
    else:
        v.tensor.dtype = 7
        v.tensor.string_val.append(payload)
    if meta:
        v.metadata.plugin_data.plugin_name = "scalars"
    assert check(e.SerializeToString(), new_tag)


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    peeked = peek(data)
    if peeked is not None:
        has_metadata(data, peeked)

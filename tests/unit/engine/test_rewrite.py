"""The one rewrite engine, driven by hand-built :class:`OutputPlan`s (no command in between).

Each test scans hand-made inputs (:mod:`support.events`), builds a plan the way a command
would, rewrites it through a :class:`Transaction` and reads the output back with the
independent parser of :mod:`support.tfrecord`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2

from support import events as ev
from support.events import T0, decode
from support.tfrecord import read_frames
from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.rewrite import OutputResult, rewrite
from tbrewrite.engine.scan import scan_files
from tbrewrite.events.framing import CHANGED, TRUNCATED
from tbrewrite.output.transaction import Transaction

OUT = "events.out.tfevents.1700000000.out"


def source(name: str, paths: list[Path], tags: Mapping[str, TagAction] | None = None) -> SourcePlan:
    """A source planned from a fresh scan of ``paths``, as every command plans it."""
    scan = scan_files(paths)
    return SourcePlan(name, tuple(SourceFile.from_stats(f) for f in scan.files), tags or {})


def run(plan: OutputPlan) -> tuple[OutputResult, list[bytes]]:
    """Rewrite ``plan``, publish the output, return the result and the output's records."""
    with Transaction() as outputs:
        result = rewrite(plan, outputs)
        assert result.writer is not None
        outputs.publish(outputs.stage(result.writer))
    return result, read_frames(plan.path)


def values(records: list[bytes]) -> list[tuple[float, int, str, float]]:
    """(wall_time, step, tag, simple_value) of every summary value, in output order."""
    return [(e.wall_time, e.step, v.tag, v.simple_value) for e in map(decode, records) for v in e.summary.value]


def test_rename_drop_and_keep(tmp_path: Path) -> None:
    records = [ev.file_version(), ev.graph(T0)]
    for s in range(6):
        records.append(ev.summary(T0 + s, s, ev.simple("loss", float(s))))  # after the first: retagged from bytes
        records.append(ev.summary(T0 + s, s, ev.simple("acc", 0.5)))  # dropped: the event goes
        records.append(ev.summary(T0 + s, s, ev.simple("keep", 2.0)))  # unmapped: bytes copied
    records.append(ev.summary(T0 + 9, 9, ev.simple("loss", 9.0), ev.simple("acc", 0.5), ev.simple("other", 1.0)))
    path = ev.write(tmp_path / "in" / "events.out.tfevents.1.a", records)
    tags = {"loss": TagAction("train/loss"), "acc": TagAction(None), "other": TagAction("other")}
    result, out = run(OutputPlan(tmp_path / OUT, (source("", [path], tags),), Header.KEEP))

    assert out[:2] == records[:2]  # header and graph_def untouched
    expected = []
    for s in range(6):
        expected += [(T0 + s, s, "train/loss", float(s)), (T0 + s, s, "keep", 2.0)]
    expected += [(T0 + 9, 9, "train/loss", 9.0), (T0 + 9, 9, "other", 1.0)]
    assert values(out) == expected
    assert len(out) == 2 + 12 + 1
    # Every record is what protobuf makes of the input with the tag changed: the byte-level
    # retag equals a decode, change and serialize.
    for data in out[2:]:
        assert decode(data).SerializeToString() == data
    keep = [r for r in records if b"keep" in r]
    assert [r for r in out if b"keep" in r and b"other" not in r] == keep  # unchanged records: same bytes
    assert (result.values_renamed, result.values_dropped) == (7, 7)
    assert (result.events_in, result.events_out, result.changed) == (len(records), len(out), True)
    assert result.damage == [] and result.notes == []


def test_an_unchanged_file_is_copied_byte_for_byte(tmp_path: Path) -> None:
    records = [ev.file_version(), *(ev.summary(T0 + s, s, ev.simple("loss", 1.0)) for s in range(5))]
    path = ev.write(tmp_path / "in" / "events.out.tfevents.1.a", records)
    result, _ = run(OutputPlan(tmp_path / OUT, (source("", [path], {"loss": TagAction("loss")}),), Header.KEEP))
    assert (tmp_path / OUT).read_bytes() == path.read_bytes()
    assert not result.changed and result.values_renamed == 0


def test_first_value_metadata_goes_on_the_first_output_value_only(tmp_path: Path) -> None:
    meta = ev.metadata("scalars", b"\x08\x01", display_name="loss")
    own = ev.metadata("scalars", b"own")
    a = ev.write(
        tmp_path / "a" / "events.out.tfevents.1.a",
        [
            ev.file_version(),
            ev.summary(T0 + 1, 1, ev.simple("loss", 1.0)),  # no metadata: gets the plan's
            ev.summary(T0 + 2, 2, ev.simple("acc", 0.5, own)),  # has metadata: kept as it is
            ev.summary(T0 + 3, 3, ev.simple("loss", 3.0)),
            ev.summary(T0 + 4, 4, ev.simple("acc", 0.25)),
        ],
    )
    b = ev.write(
        tmp_path / "b" / "events.out.tfevents.1.b",
        [
            ev.file_version(),
            ev.summary(T0 + 2.5, 2, ev.simple("epoch_loss", 2.0)),  # merged into train/loss: not its first value
            ev.summary(T0 + 5, 5, ev.simple("lonely", 0.5, ev.metadata("scalars", display_name="lonely"))),
        ],
    )
    plan = OutputPlan(
        tmp_path / OUT,
        (
            source("a", [a], {"loss": TagAction("train/loss", meta), "acc": TagAction("train/acc", meta)}),
            source("b", [b], {"epoch_loss": TagAction("train/loss", meta), "lonely": TagAction("solo")}),
        ),
        Header.OWN,
        wall_time=T0,
    )
    _, out = run(plan)
    first = {}
    seen = []
    for e in map(decode, out[1:]):
        for v in e.summary.value:
            seen.append((v.tag, e.step, v.HasField("metadata")))
            first.setdefault(v.tag, v.metadata)
    assert seen == [
        ("train/loss", 1, True),
        ("train/acc", 2, True),
        ("train/loss", 2, False),  # from b
        ("train/loss", 3, False),
        ("train/acc", 4, False),
        ("solo", 5, True),
    ]
    assert first["train/loss"].plugin_data == meta.plugin_data
    assert first["train/loss"].display_name == "train/loss"  # the old tag as display name follows the rename
    assert first["train/acc"] == own
    assert first["solo"].display_name == "solo"


def test_header_keep_keeps_the_file_version_bytes(tmp_path: Path) -> None:
    header = ev.file_version(T0 - 50, writer="some.other.writer") + b"\x90\x01\x07"  # plus an unknown field
    records = [header, ev.summary(T0, 0, ev.simple("a", 1.0)), ev.file_version(T0 + 1)]
    path = ev.write(tmp_path / "in" / "events.out.tfevents.1.a", records)
    result, out = run(OutputPlan(tmp_path / OUT, (source("", [path], {"a": TagAction("b")}),), Header.KEEP))
    assert out[0] == header  # byte for byte, unknown field included
    assert out[2] == records[2]  # a later file_version passes through
    assert values(out) == [(T0, 0, "b", 1.0)]

    # A file that does not start with a file_version gets the writer's own, at its first event's time.
    bare = ev.write(tmp_path / "bare" / "events.out.tfevents.1.a", records[1:2])
    result, out = run(OutputPlan(tmp_path / "bare.out", (source("", [bare]),), Header.KEEP))
    assert decode(out[0]).file_version == "brain.Event:2" and decode(out[0]).wall_time == T0
    assert out[1:] == records[1:2] and result.changed


def test_header_own_writes_its_own_and_leaves_the_sources_out(tmp_path: Path) -> None:
    a = ev.write(tmp_path / "a" / "f", [ev.file_version(T0 - 10), ev.summary(T0, 0, ev.simple("x", 1.0))])
    b = ev.write(tmp_path / "b" / "f", [ev.file_version(T0 - 5), ev.summary(T0 + 1, 1, ev.simple("y", 1.0))])
    _, out = run(OutputPlan(tmp_path / OUT, (source("a", [a]), source("b", [b])), Header.OWN, wall_time=T0 - 99))
    header = decode(out[0])
    assert (header.file_version, header.wall_time, header.source_metadata.writer) == (
        "brain.Event:2",
        T0 - 99,
        "tbrewrite",
    )
    assert [decode(r).WhichOneof("what") for r in out] == ["file_version", "summary", "summary"]


def test_sources_and_extra_events_merge_by_wall_time(tmp_path: Path) -> None:
    a = ev.write(
        tmp_path / "a" / "f", [ev.file_version()] + [ev.summary(T0 + t, t, ev.simple("a", 0.0)) for t in (0, 2, 4, 3)]
    )
    b = ev.write(
        tmp_path / "b" / "f", [ev.file_version()] + [ev.summary(T0 + t, t, ev.simple("b", 0.0)) for t in (1, 2, 5)]
    )
    extra = []
    for t in (2, 6):
        e = event_pb2.Event(wall_time=T0 + t, step=t)
        e.summary.value.add(tag="extra", simple_value=9.0)
        extra.append(e)
    plan = OutputPlan(
        tmp_path / OUT, (source("a", [a]), source("b", [b])), Header.OWN, wall_time=T0, extra=tuple(extra)
    )
    _, out = run(plan)
    assert [(tag, step) for _, step, tag, _ in values(out)] == [
        ("a", 0),
        ("b", 1),
        ("a", 2),  # a tie: sources in plan order, then the extra events
        ("b", 2),
        ("extra", 2),
        ("a", 4),
        ("a", 3),  # a's own order is kept even where its wall_time goes back
        ("b", 5),
        ("extra", 6),
    ]


@pytest.mark.parametrize("tag", ["lr", "train/learning_rate"], ids=["renamed", "final-name"])
def test_replaced_values_are_left_out_for_the_extra_points(tmp_path: Path, tag: str) -> None:
    # merge replaces points of a converted run, whose tags have their final names already.
    records = [ev.file_version()]
    for s in range(4):
        records += [ev.summary(T0 + s, s, ev.simple(tag, 0.5)), ev.summary(T0 + s, s, ev.simple("loss", 1.0))]
    # A second process (a restart) wrote steps 2 and 3 again, later: not replaced.
    records += [ev.summary(T0 + 10 + s, s, ev.simple(tag, 0.75)) for s in (2, 3)]
    path = ev.write(tmp_path / "in" / "f", records)
    extra = []
    for s in (2, 3):  # step 1 is a value of the tag neither first nor replaced
        e = event_pb2.Event(wall_time=T0 + s + 0.5, step=s)
        e.summary.value.add(tag="train/learning_rate", simple_value=0.25)
        extra.append(e)
    plan = OutputPlan(
        tmp_path / OUT,
        (source("", [path], {tag: TagAction("train/learning_rate")}),),
        Header.OWN,
        wall_time=T0,
        extra=tuple(extra),
        replaced={"train/learning_rate": frozenset({(2, T0 + 2), (3, T0 + 3)})},
    )
    result, out = run(plan)
    assert [(tag, step, x) for _, step, tag, x in values(out) if tag != "loss"] == [
        ("train/learning_rate", 0, 0.5),
        ("train/learning_rate", 1, 0.5),
        ("train/learning_rate", 2, 0.25),
        ("train/learning_rate", 3, 0.25),
        ("train/learning_rate", 2, 0.75),
        ("train/learning_rate", 3, 0.75),
    ]
    assert [step for _, step, tag, _ in values(out) if tag == "loss"] == [0, 1, 2, 3]
    assert result.values_replaced == 2


def test_keep_last_leaves_out_what_a_restart_superseded(tmp_path: Path) -> None:
    steps = [0, 1, 2, 3, 1, 2, 5]
    path = ev.write(
        tmp_path / "in" / "f",
        [ev.file_version()] + [ev.summary(T0 + k, s, ev.simple("loss", float(k))) for k, s in enumerate(steps)],
    )
    scan = scan_files([path])
    action = TagAction("loss", backwards=tuple(scan.tags["loss"].backwards))
    plan = OutputPlan(
        tmp_path / OUT, (SourcePlan("", (SourceFile.from_stats(scan.files[0]),), {"loss": action}),), Header.KEEP
    )
    result, out = run(plan)
    # TensorBoard's data server: a value at step s removes every earlier value at a step >= s.
    assert [(step, x) for _, step, _, x in values(out)] == [(0, 0.0), (1, 4.0), (2, 5.0), (5, 6.0)]
    assert result.values_superseded == 3


def test_a_source_changed_after_its_scan_is_reported_never_silently_short(tmp_path: Path) -> None:
    records = [ev.file_version()] + [ev.summary(T0 + s, s, ev.simple("x", 1.0)) for s in range(5)]
    path = ev.write(tmp_path / "in" / "f", records)
    planned = source("", [path])

    ev.write(path, [*records, ev.summary(T0 + 9, 9, ev.simple("x", 1.0))])  # appended to
    result, out = run(OutputPlan(tmp_path / "grown", (planned,), Header.KEEP))
    assert out == records and result.damage == []
    assert result.notes and "grew from" in result.notes[0]

    ev.write(path, records[:3])  # truncated
    result, out = run(OutputPlan(tmp_path / "shrunk", (planned,), Header.KEEP))
    assert [d.kind for d in result.damage] == [TRUNCATED] and out == records[:3]

    changed = list(records)
    changed[4] = ev.summary(T0 + 3, 3, ev.simple("x", 2.0))  # replaced: same size, other bytes
    ev.write(path, changed)
    result, _ = run(OutputPlan(tmp_path / "changed", (planned,), Header.KEEP))
    assert [d.kind for d in result.damage] == [CHANGED]


def test_window_offset_thinning_and_dropped_events(tmp_path: Path) -> None:
    """Per-value decisions (crop, concat, compact): exact values kept, steps rewritten, the rest bytes."""
    from tbrewrite.engine.plan import Window

    meta = ev.metadata("scalars")
    records = [ev.file_version(), ev.graph(T0)]
    for s in range(8):
        records.append(ev.summary(T0 + s, s, ev.simple("a", float(s), meta if s == 0 else None)))
        records.append(ev.summary(T0 + s, s, ev.simple("b", float(s))))
        records.append(ev.summary(T0 + s, s, ev.simple("c", float(s))))
    path = ev.write(tmp_path / "in" / "events.out.tfevents.1.a", records)
    tags = {
        "a": TagAction("a", meta, window=Window((2, 5))),
        "b": TagAction("b", step_offset=100),
        "c": TagAction("c", keep=frozenset({0, 7})),
    }
    plan = OutputPlan(tmp_path / OUT, (source("", [path], tags),), Header.KEEP, drop_events=frozenset({"graph_def"}))
    result, out = run(plan)
    got = values(out)
    assert [(s, x) for _, s, t, x in got if t == "a"] == [(2, 2.0), (3, 3.0), (4, 4.0)]
    assert [s for _, s, t, _ in got if t == "b"] == list(range(100, 108))
    assert [s for _, s, t, _ in got if t == "c"] == [0, 7]
    first_a = next(decode(r) for r in out if decode(r).summary.value and decode(r).summary.value[0].tag == "a")
    assert first_a.summary.value[0].metadata.plugin_data.plugin_name == "scalars"  # moved to the first kept
    assert len(out) == 1 + 3 + 8 + 2  # header, no graph_def
    assert (result.values_cropped, result.values_thinned, result.events_dropped) == (5, 6, 1)
    c7 = ev.summary(T0 + 7, 7, ev.simple("c", 7.0))
    assert c7 in out  # a kept value is the input's bytes


def test_values_of_one_event_with_different_offsets_are_refused(tmp_path: Path) -> None:
    from tbrewrite.errors import InputError

    path = ev.write(
        tmp_path / "in" / "events.out.tfevents.1.a",
        [ev.file_version(), ev.summary(T0, 3, ev.simple("a", 1.0), ev.simple("b", 2.0))],
    )
    tags = {"a": TagAction("a", step_offset=10), "b": TagAction("b")}
    with pytest.raises(InputError, match="would need step offsets 10 and 0; give one --step-offset N"):
        run(OutputPlan(tmp_path / OUT, (source("run", [path], tags),), Header.KEEP))

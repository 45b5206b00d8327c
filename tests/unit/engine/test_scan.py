"""The first pass (:func:`tbrewrite.engine.scan.scan_files`): per-tag statistics, damage, fingerprints.

Inputs are built record by record (:mod:`support.events`), so every expected number is known.
Common one-value records take the scan's fast path (the tag is peeked, not decoded) once a
tag is known; the tests mix them with multi-value records, which are always decoded.
"""

from __future__ import annotations

from pathlib import Path

from support import events as ev
from support.events import T0
from tbrewrite.engine.scan import scan_files
from tbrewrite.events.framing import CHECKPOINT_RECORDS, CRC_MISMATCH, TRUNCATED

NAME = "events.out.tfevents.1700000000.host"


def test_tag_counts_step_ranges_and_event_kinds(tmp_path: Path) -> None:
    records = [ev.file_version(), ev.graph(T0)]
    for step in range(10):
        records.append(ev.summary(T0 + step, step, ev.simple("loss", 1.0 / (step + 1))))
        if step % 3 == 0:  # two tags in one event
            records.append(ev.summary(T0 + step + 0.5, step, ev.simple("acc", 0.5), ev.tensor("lr", 0.1)))
    path = ev.write(tmp_path / NAME, records)
    scan = scan_files([path])
    assert list(scan.tags) == ["loss", "acc", "lr"]  # order of first appearance
    loss, acc, lr = scan.tags.values()
    assert (loss.kind, loss.form, loss.count) == ("scalar", "simple_value", 10)
    assert (loss.first_step, loss.last_step, loss.min_step, loss.max_step) == (0, 9, 0, 9)
    assert (loss.first_wall_time, loss.last_wall_time) == (T0, T0 + 9)
    assert (acc.count, acc.first_step, acc.last_step, acc.last_wall_time) == (4, 0, 9, T0 + 9.5)
    assert (lr.kind, lr.form, lr.count) == ("tensor", "tensor", 4)  # no metadata: a plain tensor
    assert all(t.backwards == [] and t.backwards_count == 0 for t in scan.tags.values())
    assert scan.event_kinds == {"file_version": 1, "graph_def": 1, "summary": 14}
    assert scan.events == len(records) == 16
    (stats,) = scan.files
    assert (stats.path, stats.records, stats.bytes, stats.damage) == (path, 16, path.stat().st_size, [])
    assert stats.first_wall_time == T0 and scan.first_wall_time == T0
    assert stats.end == stats.bytes
    assert scan.scalar_tags() == {"loss", "acc"}


def test_metadata_is_the_first_seen_even_after_values_without_it(tmp_path: Path) -> None:
    first = ev.metadata("histograms", b"first", display_name="w")
    later = ev.metadata("histograms", b"later")
    records = [ev.file_version()]
    # "w": five values without metadata (the fast path is taken for them), then two with.
    records += [ev.summary(T0 + s, s, ev.tensor("w", 1.0)) for s in range(5)]
    records += [ev.summary(T0 + 5, 5, ev.tensor("w", 1.0, first)), ev.summary(T0 + 6, 6, ev.tensor("w", 1.0, later))]
    # "s": metadata on every value, the first one's kept.
    records += [ev.summary(T0 + s, s, ev.tensor("s", 1.0, ev.metadata("scalars", bytes([s])))) for s in range(3)]
    # "m", "n": in two-value events, which are always decoded; "n" has none at first.
    for step in range(3):
        m = ev.tensor("m", 1.0, ev.metadata("scalars", bytes([step])))
        n = ev.tensor("n", 1.0, ev.metadata("text", bytes([step])) if step else None)
        records.append(ev.summary(T0 + step, step, m, n))
    scan = scan_files([ev.write(tmp_path / NAME, records)])
    assert scan.tags["m"].metadata == ev.metadata("scalars", b"\x00")
    assert scan.tags["n"].metadata == ev.metadata("text", b"\x01") and scan.tags["n"].kind == "text"
    w, s = scan.tags["w"], scan.tags["s"]
    assert w.metadata == first and w.metadata is not None and w.metadata.display_name == "w"
    assert w.kind == "histogram"  # a tensor's kind follows the metadata found later
    assert w.count == 7
    assert s.metadata == ev.metadata("scalars", b"\x00") and s.kind == "scalar"


def test_steps_going_back_are_listed_and_counted(tmp_path: Path) -> None:
    steps = [10, 11, 12, 3, 4, 4, 20, -5, 0]
    records = [ev.file_version()] + [ev.summary(T0 + k, s, ev.simple("loss", 1.0)) for k, s in enumerate(steps)]
    path = ev.write(tmp_path / NAME, records)
    loss = scan_files([path]).tags["loss"]
    # (ordinal of the value, previous step, step) for every step not above its predecessor
    assert loss.backwards == [(3, 12, 3), (5, 4, 4), (7, 20, -5)]
    assert (loss.backwards_count, loss.repeated) == (3, 1)
    assert (loss.first_step, loss.last_step, loss.min_step, loss.max_step) == (10, 0, -5, 20)
    limited = scan_files([path], backwards_limit=1).tags["loss"]
    assert limited.backwards == [(3, 12, 3)] and (limited.backwards_count, limited.repeated) == (3, 1)


def test_files_of_one_stream_add_up_in_order(tmp_path: Path) -> None:
    a = ev.write(
        tmp_path / "a",
        [ev.file_version(T0 + 100)] + [ev.summary(T0 + 100 + s, s, ev.simple("x", 1.0)) for s in range(3)],
    )
    b = ev.write(tmp_path / "b", [ev.file_version(T0)] + [ev.summary(T0 + s, s, ev.simple("x", 1.0)) for s in (1, 2)])
    scan = scan_files([a, b])
    assert [f.path for f in scan.files] == [a, b]
    x = scan.tags["x"]
    assert x.count == 5 and x.backwards == [(3, 2, 1)]  # b's steps continue after a's
    assert scan.first_wall_time == T0 + 100  # the stream's first event, not the smallest
    assert scan.events == 7


def test_damage_stops_the_scan_and_resync_reads_on(tmp_path: Path) -> None:
    records = [ev.file_version()] + [ev.summary(T0 + s, s, ev.simple("loss", 1.0)) for s in range(6)]
    at = ev.offsets(records)
    data = bytearray((ev.write(tmp_path / NAME, records)).read_bytes())
    data[at[3] + 14] ^= 0x01  # a bit inside record 3's data: its data CRC fails
    path = tmp_path / NAME
    path.write_bytes(bytes(data))

    stopped = scan_files([path])
    (damage,) = stopped.damage
    assert (damage.kind, damage.offset, damage.records_before, damage.resumed_at) == (CRC_MISMATCH, at[3], 3, None)
    assert stopped.tags["loss"].count == 2 and stopped.files[0].records == 3
    assert stopped.files[0].end == at[3]  # a rewrite without resync reads up to the damage

    resynced = scan_files([path], resync=True)
    (damage,) = resynced.damage
    assert (damage.offset, damage.resumed_at) == (at[3], at[4])
    assert resynced.tags["loss"].count == 5 and resynced.files[0].records == 6
    assert resynced.tags["loss"].backwards == []  # step 2 is followed by step 4: nothing went back


def test_a_truncated_file_reports_where_it_ends(tmp_path: Path) -> None:
    records = [ev.file_version()] + [ev.summary(T0 + s, s, ev.simple("loss", 1.0)) for s in range(3)]
    at = ev.offsets(records)
    path = ev.write(tmp_path / NAME, records)
    path.write_bytes(path.read_bytes()[: at[3] + 5])
    scan = scan_files([path])
    (damage,) = scan.damage
    assert (damage.kind, damage.offset, damage.records_before) == (TRUNCATED, at[3], 3)
    assert scan.files[0].bytes == at[3] + 5 and scan.files[0].end == at[3]


def many_records(n: int) -> list[bytes]:
    return [ev.file_version()] + [ev.summary(T0 + s, s, ev.simple("x", float(s))) for s in range(n - 1)]


def test_checkpoints_equal_for_two_reads_and_differ_after_any_record_changes(tmp_path: Path) -> None:
    records = many_records(CHECKPOINT_RECORDS + 1000)  # one periodic checkpoint and the final one
    path = ev.write(tmp_path / NAME, records)
    first, again = scan_files([path]).files[0], scan_files([path]).files[0]
    assert len(first.checkpoints) == 2
    assert first.checkpoints == again.checkpoints
    assert [(c.records, c.end) for c in first.checkpoints] == [
        (CHECKPOINT_RECORDS, ev.offsets(records)[CHECKPOINT_RECORDS]),
        (len(records), path.stat().st_size),
    ]
    assert first.stamp == again.stamp and first.stamp is not None and first.stamp.size == path.stat().st_size

    # The same file rewritten with one value changed, framing valid: no damage, but the
    # fingerprint of the records from there on differs (and only from there).
    for index, same_prefix in ((CHECKPOINT_RECORDS + 10, True), (5, False)):
        changed = list(records)
        changed[index] = ev.summary(T0 + index, index - 1, ev.simple("x", -1.0))
        other = ev.write(tmp_path / f"changed-{index}", changed)
        stats = scan_files([other]).files[0]
        assert stats.damage == [] and stats.bytes == first.bytes
        assert (stats.checkpoints[0] == first.checkpoints[0]) is same_prefix
        assert stats.checkpoints[-1] != first.checkpoints[-1]

    # Appended to: the records scanned before are a prefix with the same fingerprints.
    grown = ev.write(tmp_path / "grown", [*records, ev.summary(T0, 0, ev.simple("x", 0.0))])
    stats = scan_files([grown]).files[0]
    assert stats.checkpoints[0] == first.checkpoints[0] and stats.checkpoints[-1] != first.checkpoints[-1]

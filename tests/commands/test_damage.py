"""Damaged and hostile input, unsafe output (issue 7), run against every writing command.

Each damaged-input case is one row of ``DAMAGED``: a builder for the bytes of one event
file, the damage it must be reported as, and how many records before the damage must be
recovered. Every row runs against every entry of ``COMMANDS`` (today ``convert``; adding
a command is one entry). For every case: the documented exit code, one stderr line naming
the file, the damage kind and the byte offset, no traceback, the input unchanged (hashed
before and after), and every record before the damage in the output.

Synthetic logs use generic tags (``metrics/...``), which ``convert`` copies record for
record, so the output can be compared byte for byte with the records of the input.
"""

from __future__ import annotations

import hashlib
import os
import random
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.backend.event_processing import io_wrapper
from tensorboard.compat.proto import event_pb2, summary_pb2
from typer.testing import CliRunner

from support.logs import event_files, loader_values
from support.paths import require_corpus
from tbrewrite.cli import app
from tbrewrite.commands.convert import convert
from tbrewrite.commands.convertplan import plan_run, scan_run
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.events.framing import (
    CRC_MISMATCH,
    INVALID_EVENT,
    NOT_AN_EVENT_FILE,
    TRUNCATED,
    RecordReader,
    encode_record,
    masked_crc32c,
)
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.writer import TEMP_PREFIX
from tbrewrite.logdir import is_event_file, list_event_files
from tbrewrite.output.transaction import Transaction
from tbrewrite.producers.keras import TagMapping

runner = CliRunner()
T0 = 1_700_000_000.0
EVENT_FILE = "events.out.tfevents.1700000000.host"


@dataclass(frozen=True)
class Command:
    """How to run one writing command from SRC to OUT.

    Attributes:
        name: str. The command (test id).
        argv: callable (src, out) -> list of str, without the program name.
    """

    name: str
    argv: Callable[[Path, Path], list[str]]


COMMANDS = [Command("convert", lambda src, out: ["convert", str(src), str(out)])]


def event(**fields: object) -> bytes:
    return event_pb2.Event(**fields).SerializeToString()


def scalar(step: int, tag: str, value: float, wall_time: float | None = None) -> bytes:
    e = event_pb2.Event(wall_time=T0 + step if wall_time is None else wall_time, step=step)
    e.summary.value.add(tag=tag, simple_value=value)
    return e.SerializeToString()


FILE_VERSION = event(wall_time=T0, file_version="brain.Event:2")
GOOD = [FILE_VERSION] + [scalar(k, f"metrics/m{k % 2}", 1.0 / k) for k in range(1, 6)]
FRAMES = [encode_record(r) for r in GOOD]
START = [sum(len(f) for f in FRAMES[:k]) for k in range(len(FRAMES) + 1)]
WHOLE = b"".join(FRAMES)
PETABYTES = struct.pack("<Q", 1 << 50)
NOT_AN_EVENT = b"\xff\xff\xff\xff"  # a field key whose varint never ends: no protobuf parses it


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


def broken_value(record: bytes) -> bytes:
    """The same record with its simple_value field (key 0x15 + 4 bytes) replaced by 5
    bytes of 0xff: same lengths, so still the common one-value shape up to the tag
    (``tbrewrite.events.wire.peek`` reads it), but no longer protobuf."""
    at = record.rindex(b"\x15", 0, len(record) - 4)
    return record[:at] + b"\xff" * 5 + record[at + 5 :]


def with_metadata(record: bytes) -> bytes:
    e = event_pb2.Event.FromString(record)
    e.summary.value[0].metadata.plugin_data.plugin_name = "scalars"
    return e.SerializeToString()


# As GOOD, but the first value of the tag carries plugin metadata (as TF2 writers do).
GOOD_META = [FILE_VERSION] + [
    (with_metadata if k == 1 else lambda r: r)(scalar(k, "metrics/m", 1.0 / k)) for k in range(1, 6)
]
WHOLE_META = b"".join(encode_record(r) for r in GOOD_META)
START_META = [sum(len(r) + 16 for r in GOOD_META[:k]) for k in range(len(GOOD_META) + 1)]


@dataclass(frozen=True)
class Damaged:
    """One damaged-input case.

    Attributes:
        name: str. Test id.
        data: callable () -> bytes. The event file's bytes.
        kind: str or None. The damage kind reported (None: the file is clean).
        offset: int. Byte offset reported.
        detail: str. How the reported detail starts.
        recovered: int. Records before the damage (file_version included), all of
            which must be in the output.
        good: tuple of bytes. The undamaged records the case is made from.
    """

    name: str
    data: Callable[[], bytes]
    kind: str | None
    offset: int = 0
    detail: str = ""
    recovered: int = 0
    good: tuple[bytes, ...] = tuple(GOOD)


DAMAGED = [
    Damaged("zero-length", lambda: b"", TRUNCATED, 0, "file is empty", 0),
    Damaged("file-version-only", lambda: FRAMES[0], None, recovered=1),
    Damaged(
        "truncated-in-header",
        lambda: WHOLE[: START[3] + 5],
        TRUNCATED,
        START[3],
        "truncated record in header: needs 12 bytes, 5 left",
        3,
    ),
    Damaged(
        "truncated-in-length-crc",
        lambda: WHOLE[: START[3] + 10],
        TRUNCATED,
        START[3],
        "truncated record in header crc: needs 12 bytes, 10 left",
        3,
    ),
    Damaged(
        "truncated-in-data",
        lambda: WHOLE[: START[3] + 15],
        TRUNCATED,
        START[3],
        f"truncated record in data: needs {len(FRAMES[3])} bytes, 15 left",
        3,
    ),
    Damaged(
        "truncated-in-data-crc",
        lambda: WHOLE[: START[4] - 2],
        TRUNCATED,
        START[3],
        f"truncated record in data crc: needs {len(FRAMES[3])} bytes, {len(FRAMES[3]) - 2} left",
        3,
    ),
    Damaged(
        "data-crc-mismatch-mid-file",
        lambda: flip(WHOLE, START[3] + 12),
        CRC_MISMATCH,
        START[3],
        "data checksum mismatch: got 0x",
        3,
    ),
    Damaged(
        "length-crc-mismatch-mid-file",
        lambda: flip(WHOLE, START[3]),
        CRC_MISMATCH,
        START[3],
        "length checksum mismatch: got 0x",
        3,
    ),
    Damaged(
        "garbage-tail",
        lambda: WHOLE + b"garbage\n" * 8,
        CRC_MISMATCH,
        START[6],
        "length checksum mismatch: got 0x",
        6,
    ),
    Damaged(
        "text-named-like-event-file",
        lambda: b"epoch,loss\n0,0.5\n1,0.25\n",
        NOT_AN_EVENT_FILE,
        0,
        "first record is invalid: length checksum mismatch: got 0x",
        0,
    ),
    Damaged(
        "length-claiming-petabytes",
        lambda: WHOLE[: START[3]] + PETABYTES + struct.pack("<I", masked_crc32c(PETABYTES)) + WHOLE[START[3] + 12 :],
        TRUNCATED,
        START[3],
        f"truncated record in data: needs {(1 << 50) + 16} bytes",
        3,
    ),
    Damaged(
        "valid-crcs-not-an-event",
        lambda: WHOLE[: START[3]] + encode_record(NOT_AN_EVENT) + WHOLE[START[3] :],
        INVALID_EVENT,
        START[3],
        "record is not an Event protobuf",
        3,
    ),
    Damaged(
        "valid-crcs-common-shape-not-an-event",
        lambda: WHOLE[: START[3]] + encode_record(broken_value(GOOD[3])) + WHOLE[START[3] :],
        INVALID_EVENT,
        START[3],
        "record is not an Event protobuf",
        3,
    ),
    Damaged(
        "valid-crcs-not-an-event-after-metadata",
        lambda: WHOLE_META[: START_META[3]] + encode_record(broken_value(GOOD_META[3])) + WHOLE_META[START_META[3] :],
        INVALID_EVENT,
        START_META[3],
        "record is not an Event protobuf",
        3,
        tuple(GOOD_META),
    ),
    Damaged(
        "first-record-not-an-event",
        lambda: encode_record(NOT_AN_EVENT) + WHOLE,
        NOT_AN_EVENT_FILE,
        0,
        "record is not an Event protobuf",
        0,
    ),
]


def tree_hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (symlinks as their target, FIFOs as their type)."""
    out = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if p.is_symlink():
                raw = os.readlink(p).encode()
            elif p.is_fifo():
                raw = b"fifo"
            else:
                raw = p.read_bytes()
            out[str(p.relative_to(root))] = hashlib.sha256(raw).hexdigest()
    return out


def run(command: Command, src: Path, out: Path, *extra: str):
    result = runner.invoke(app, [*command.argv(src, out), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


def output_records(out: Path) -> list[bytes]:
    """Records of the one output event file under ``out``, its own file_version dropped."""
    files = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    if not files:
        return []  # a run with no event besides file_version gets no output at all
    assert len(files) == 1 and is_event_file(files[0].name), files  # no temp files left
    records = list(RecordReader(files[0]))
    assert event_pb2.Event.FromString(records[0]).file_version == "brain.Event:2"
    return records[1:]


def warning_line(path: Path, kind: str, offset: int, detail: str) -> str:
    return f"tbrewrite: warning: {path}: {kind} at byte {offset} ({detail}"


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("case", DAMAGED, ids=lambda c: c.name)
def test_damaged_input(tmp_path: Path, command: Command, case: Damaged) -> None:
    src = tmp_path / "src"
    src.mkdir()
    path = src / EVENT_FILE
    path.write_bytes(case.data())
    before = tree_hashes(src)
    result = run(command, src, tmp_path / "out")
    assert tree_hashes(src) == before
    if case.kind is None:
        assert result.exit_code == 0, result.output
        assert result.stderr == ""
    else:
        assert result.exit_code == 3, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith(warning_line(path, case.kind, case.offset, case.detail)), line
        assert line.endswith(f"; {case.recovered} records recovered before it)"), line
    # Everything before the damage is in the output, byte for byte; the input's own
    # file_version event is replaced by the output's.
    assert output_records(tmp_path / "out") == list(case.good[1 : case.recovered])


# Real damage in the corpus (PROVENANCE.md): kind, offset, and the records before it.
CORPUS_DAMAGE = [
    ("eyenet/src/Graph/events.out.tfevents.1506627099.ip-172-31-26-224", CRC_MISMATCH, 773645, 4),
    (
        "Callbacks-in-Keras/notebooks/log_dir/events.out.tfevents.1513141090.Ajays-MacBook-Pro.local",
        CRC_MISMATCH,
        9166,
        221,
    ),
    (
        "Callbacks-in-Keras/notebooks/graphs/train/events.out.tfevents.1513092905.Ajays-MacBook-Pro.local",
        TRUNCATED,
        138346,
        2,
    ),
]


def copy_alone(tmp_path: Path, corpus_file: str) -> Path:
    """Copy one corpus file into a run folder of its own (never into the repository)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copyfile(require_corpus() / corpus_file, src / Path(corpus_file).name)
    return src


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("corpus_file, kind, offset, records", CORPUS_DAMAGE, ids=lambda v: str(v)[:12])
def test_real_corpus_damage(
    tmp_path: Path, command: Command, corpus_file: str, kind: str, offset: int, records: int
) -> None:
    src = copy_alone(tmp_path, corpus_file)
    before = tree_hashes(src)
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"tbrewrite: warning: {src / Path(corpus_file).name}: {kind} at byte {offset} (")
    assert line.endswith(f"; {records} records recovered before it)")
    assert tree_hashes(src) == before
    # TensorBoard's own loader stops silently at the damage: it sees exactly the events
    # before it, and so must the output (its own file_version replaces the input's).
    assert len(output_records(tmp_path / "out")) == records - 1
    assert len(loader_values(event_files(tmp_path / "out"))) == len(loader_values([src / Path(corpus_file).name]))


# --resync: after damage, the next record whose both checksums hold.


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("garbage", ["random", "zeros", "real-records-broken"])
def test_resync_over_a_garbage_block_mid_file(tmp_path: Path, command: Command, garbage: str) -> None:
    if garbage == "random":
        block = random.Random(7).randbytes(5000)
    elif garbage == "zeros":
        block = bytes(5000)
    else:  # whole records whose data checksums fail: every length checksum holds
        block = b"".join(flip(encode_record(scalar(k, "metrics/x", 0.5)), 20) for k in range(50))
    src = tmp_path / "src"
    src.mkdir()
    path = src / EVENT_FILE
    path.write_bytes(WHOLE[: START[3]] + block + WHOLE[START[3] :])
    result = run(command, src, tmp_path / "out", "--resync")
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"tbrewrite: warning: {path}: crc_mismatch at byte {START[3]} (")
    assert line.endswith(
        f"; 3 records recovered before it; skipped bytes {START[3]}..{START[3] + len(block)}, resumed)"
    )
    assert output_records(tmp_path / "out") == GOOD[1:]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "corpus_file, events, lines, first_line_ends",
    [
        # 221 records, then 668136 bytes the writer never filled, then 4 more records.
        (CORPUS_DAMAGE[1][0], 225, 1, "; 221 records recovered before it; skipped bytes 9166..677302, resumed)"),
        # After the first bad record only every other record is intact: 38 damaged ones.
        (CORPUS_DAMAGE[0][0], 64, 38, "; 4 records recovered before it; skipped bytes 773645..773663, resumed)"),
    ],
    ids=["zero-filled-gap", "every-other-record"],
)
def test_resync_recovers_records_after_real_corpus_damage(
    tmp_path: Path, command: Command, corpus_file: str, events: int, lines: int, first_line_ends: str
) -> None:
    src = copy_alone(tmp_path, corpus_file)
    result = run(command, src, tmp_path / "out", "--resync")
    assert result.exit_code == 3, result.output
    # Besides the warnings, notes that steps go backwards where reading resumed.
    warnings = [line for line in result.stderr.splitlines() if not line.startswith("tbrewrite: note: ")]
    assert len(warnings) == lines and all(w.endswith(", resumed)") for w in warnings)
    assert warnings[0].endswith(first_line_ends)
    assert len(output_records(tmp_path / "out")) == events - 1


# Values, steps, tags and paths that must pass through exactly.

F32 = struct.Struct("<f")
NASTY_FLOATS = [
    F32.unpack(bytes.fromhex(h))[0]
    for h in ("0000c07f", "4523c17f", "0000c0ff", "0000807f", "000080ff", "00000080", "01000000")
]  # NaN, NaN with payload, -NaN, +inf, -inf, -0.0, smallest subnormal
NASTY_STEPS = [5, 5, -3, 7, 2, -(2**63), 2**63 - 1, 2]  # duplicates, negative, backwards, int64 ends


def nasty_events(tag: str) -> list[bytes]:
    out = []
    for k, step in enumerate(NASTY_STEPS):
        e = event_pb2.Event(wall_time=T0 + k, step=step)
        e.summary.value.add(tag=tag, simple_value=NASTY_FLOATS[k % len(NASTY_FLOATS)])
        out.append(e.SerializeToString())
    tensor = event_pb2.Event(wall_time=T0 + 99, step=-1)
    value = tensor.summary.value.add(tag=tag + "_tensor")
    value.tensor.dtype = 1  # DT_FLOAT, TF2 form: 4 little-endian bytes
    value.tensor.tensor_content = bytes.fromhex("4523c17f")
    value.metadata.plugin_data.plugin_name = "scalars"
    out.append(tensor.SerializeToString())
    return out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("tag, renamed", [("metrics/x", "metrics/x"), ("loss", "train/loss")])
def test_nan_inf_and_odd_steps_pass_through_bit_exact(tmp_path: Path, command: Command, tag: str, renamed: str) -> None:
    """Generic tags are copied record for record; a Keras 2 tag is renamed and re-serialized,
    and still every step, wall_time and value byte is kept."""
    src = tmp_path / "src"
    src.mkdir()
    records = nasty_events(tag)
    (src / EVENT_FILE).write_bytes(encode_record(FILE_VERSION) + b"".join(encode_record(r) for r in records))
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    got = [event_pb2.Event.FromString(r) for r in output_records(tmp_path / "out")]
    for e in got:
        for v in e.summary.value:
            assert v.tag.startswith(renamed)
            v.tag = tag + v.tag[len(renamed) :]
    assert [e.SerializeToString() for e in got] == records
    if tag == renamed:  # nothing to rename: the very same bytes
        assert output_records(tmp_path / "out") == records


def test_non_finite_first_wall_time_is_not_a_crash(tmp_path: Path) -> None:
    """The output name and file_version come from the first wall_time; NaN, inf or a
    wall_time in the far future must not crash or make an impossible file name."""
    for k, wall_time in enumerate([float("nan"), float("inf"), -float("inf"), 1e300, -5.0]):
        src = tmp_path / f"src{k}"
        src.mkdir()
        records = [event(wall_time=wall_time, file_version="brain.Event:2"), scalar(1, "metrics/x", 1.0, wall_time)]
        (src / EVENT_FILE).write_bytes(b"".join(encode_record(r) for r in records))
        result = run(COMMANDS[0], src, tmp_path / f"out{k}")
        assert result.exit_code == 0, result.output
        (output,) = event_files(tmp_path / f"out{k}")
        assert output.name == "events.out.tfevents.0000000000.tbrewrite"
        assert output_records(tmp_path / f"out{k}") == records[1:]


TAGS = {  # Keras 2 flat run: source tag -> output tag
    "loss": "train/loss",
    "my loss": "train/my loss",
    "val_my loss": "val/my loss",
    "précision ✓": "train/précision ✓",
    "val_精度": "val/精度",
    " padded ": "train/ padded ",
    "/leading": "/leading",
    "trailing/": "trailing/",
    "/both/": "/both/",
    "/": "/",
}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_tags_with_spaces_unicode_and_slashes_at_the_ends(tmp_path: Path, command: Command) -> None:
    src = tmp_path / "src"
    src.mkdir()
    records = [FILE_VERSION] + [scalar(k, tag, float(k)) for k, tag in enumerate(TAGS)]
    (src / EVENT_FILE).write_bytes(b"".join(encode_record(r) for r in records))
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    got = {(tag, step, value) for tag, step, _, value in loader_values(event_files(tmp_path / "out"))}
    want = {(TAGS[tag], step, value) for tag, step, _, value in loader_values([src / EVENT_FILE])}
    assert got == want and len(got) == len(TAGS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_ten_thousand_distinct_tags(tmp_path: Path, command: Command) -> None:
    src = tmp_path / "src"
    src.mkdir()
    tags = ["loss"] + [f"{'val_' if k % 2 else ''}metric_{k:05d}" for k in range(1, 10_000)]
    records = [FILE_VERSION] + [scalar(k % 7, tag, float(k)) for k, tag in enumerate(tags)]
    (src / EVENT_FILE).write_bytes(b"".join(encode_record(r) for r in records))
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    got = {tag for tag, *_ in loader_values(event_files(tmp_path / "out"))}
    want = {"train/" + t if not t.startswith("val_") else "val/" + t[4:] for t in tags}
    assert got == want and len(got) == 10_000


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_paths_with_spaces_and_unicode_are_named_exactly(tmp_path: Path, command: Command) -> None:
    src = tmp_path / "my runs" / "expérience ✓ 1"
    src.mkdir(parents=True)
    path = src / "events.out.tfevents.1700000000.hôte ünïcode"
    path.write_bytes(WHOLE[: START[4] - 1])
    out = tmp_path / "sortie données" / "run 1 ✓"
    result = run(command, src, out)
    assert result.exit_code == 3, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"tbrewrite: warning: {path}: truncated at byte {START[3]} (")
    assert output_records(out) == GOOD[1:3]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_symlink_loops_and_special_files_inside_the_logdir(tmp_path: Path, command: Command) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / EVENT_FILE).write_bytes(WHOLE)
    (src / "up").symlink_to("..")  # a directory loop
    (src / "events.out.tfevents.1700000001.loop").symlink_to("events.out.tfevents.1700000001.loop")
    (src / "events.out.tfevents.1700000002.a").symlink_to("events.out.tfevents.1700000002.b")
    (src / "events.out.tfevents.1700000002.b").symlink_to("events.out.tfevents.1700000002.a")
    # Not files either, and reading them would never end: a FIFO and an endless device.
    os.mkfifo(src / "events.out.tfevents.1700000003.fifo")
    (src / "events.out.tfevents.1700000004.zero").symlink_to("/dev/zero")
    before = tree_hashes(src)
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert output_records(tmp_path / "out") == GOOD[1:]
    assert tree_hashes(src) == before
    assert list_event_files(src) == [src / EVENT_FILE]


# Unsafe or failing output.


def clean_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / EVENT_FILE).write_bytes(WHOLE)
    return src


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "where, message",
    [
        (".", "OUT is the same folder as SRC; choose a new folder"),
        ("converted", "OUT is inside SRC; TensorBoard would load both"),
        ("a/b/c", "OUT is inside SRC; TensorBoard would load both"),
    ],
)
def test_out_equal_to_or_inside_src(tmp_path: Path, command: Command, where: str, message: str) -> None:
    src = clean_src(tmp_path)
    before = tree_hashes(src)
    out = src / where
    result = run(command, src, out)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: {message}\n"
    assert tree_hashes(src) == before and sorted(os.listdir(src)) == [EVENT_FILE]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_out_already_existing(tmp_path: Path, command: Command) -> None:
    src = clean_src(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = run(command, src, out)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: OUT already holds files; use --force to replace them\n"
    assert tree_hashes(out) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}
    as_file = tmp_path / "out.txt"
    as_file.write_text("mine")
    result = run(command, src, as_file)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {as_file}: OUT exists and is not a folder\n"
    assert as_file.read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(command, src, empty).exit_code == 0
    assert output_records(empty) == GOOD[1:]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
@pytest.mark.parametrize("below", ["", "run"])
def test_out_through_a_symlink_loop(tmp_path: Path, command: Command, below: str) -> None:
    src = clean_src(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    out = loop / below if below else loop
    result = run(command, src, out)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: Too many levels of symbolic links\n"
    assert sorted(os.listdir(tmp_path)) == ["loop", "src"]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from tbrewrite.cli import main; main()", *args]


def big_run(root: Path, events: int) -> Path:
    """A Keras 2 flat run with ``events`` scalars: every one is renamed, so writing takes a while."""
    src = root / "src"
    src.mkdir()
    e = event_pb2.Event()
    with open(src / EVENT_FILE, "wb") as f:
        f.write(encode_record(FILE_VERSION))
        for k in range(events):
            e.Clear()
            e.wall_time, e.step = T0 + k / 1000, k
            e.summary.value.add(tag="loss", simple_value=1.0 / (k + 1))
            f.write(encode_record(e.SerializeToString()))
    return src


@pytest.fixture(scope="module")
def big_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return big_run(tmp_path_factory.mktemp("big"), 100_000)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_disk_full_mid_write(tmp_path: Path, command: Command, big_src: Path) -> None:
    """``write()`` fails with EFBIG once the output passes 1.5 MB (the writer buffers
    1 MiB, so this is mid-stream): one line naming the file, exit 1, nothing left."""
    limit = 1_500_000

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    before = tree_hashes(big_src)
    out = tmp_path / "out"
    result = subprocess.run(
        cli(*command.argv(big_src, out)), capture_output=True, text=True, preexec_fn=small_files, timeout=300
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"tbrewrite: error: {out / 'events.out.tfevents.1700000000.tbrewrite'}: File too large\n"
    assert not out.exists()
    assert tree_hashes(big_src) == before


def _foreground_sigint() -> None:
    """Let SIGINT act as Ctrl-C does on a foreground command: a shell that starts a
    command in the background (as a CI runner may start the suite) sets SIGINT to
    ignored, and Python then never turns it into KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_and_stop_mid_write(argv: list[str], out: Path) -> subprocess.Popen:
    """Start the command and freeze it (SIGSTOP) as soon as its temporary file exists."""
    proc = subprocess.Popen(
        cli(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_foreground_sigint
    )
    while proc.poll() is None:
        if out.is_dir() and any(name.startswith(TEMP_PREFIX) for name in os.listdir(out)):
            proc.send_signal(signal.SIGSTOP)
            break
        time.sleep(0.001)
    assert proc.returncode is None, f"finished before it could be stopped mid-write: {proc.communicate()}"
    assert not event_files(out), "published before it was stopped"
    return proc


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigint_mid_write_removes_everything(tmp_path: Path, command: Command, big_src: Path) -> None:
    out = tmp_path / "out"
    proc = start_and_stop_mid_write(command.argv(big_src, out), out)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGCONT)
    _stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130
    assert stderr == "tbrewrite: interrupted; partial output removed\n"
    assert not out.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_sigkill_mid_write_leaves_nothing_tensorboard_would_load(
    tmp_path: Path, command: Command, big_src: Path
) -> None:
    out = tmp_path / "out"
    proc = start_and_stop_mid_write(command.argv(big_src, out), out)
    proc.kill()
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    left = [p for p in out.rglob("*") if p.is_file()]
    assert left and all(p.name.startswith(TEMP_PREFIX) for p in left)
    assert not any(is_event_file(p.name) or io_wrapper.IsTensorFlowEventsFile(str(p)) for p in left)


# The reading layer under the commands.


def test_file_growing_between_scan_and_write_is_read_as_scanned(tmp_path: Path) -> None:
    """A log still being written: events appended after the first pass (here with a tag
    the plan has never seen) are left for the next conversion, not half-handled."""
    src = clean_src(tmp_path)
    plan = plan_run(scan_run(".", src, TagMapping()), tmp_path / "out")
    with open(src / EVENT_FILE, "ab") as f:
        f.write(encode_record(scalar(9, "metrics/new", 9.0)))
    with Transaction() as outputs:
        report = rewrite(plan.output, outputs)
        assert report.writer is not None
        outputs.publish(outputs.stage(report.writer))
    assert report.events_out == len(GOOD)
    assert not report.damage and "grew from" in report.notes[0]
    assert output_records(tmp_path / "out") == GOOD[1:]


def test_invalid_event_resync_reports_the_skipped_record(tmp_path: Path) -> None:
    path = tmp_path / EVENT_FILE
    bad = encode_record(NOT_AN_EVENT)
    path.write_bytes(WHOLE[: START[3]] + bad + bad + WHOLE[START[3] :])
    reader = EventFileReader(path, resync=True)
    assert [r.data for r in reader] == GOOD
    assert [(d.kind, d.offset, d.records_before, d.resumed_at) for d in reader.damage] == [
        (INVALID_EVENT, START[3], 3, START[3] + len(bad)),
        (INVALID_EVENT, START[3] + len(bad), 3, START[3] + 2 * len(bad)),
    ]
    assert reader.records == len(GOOD)


# A sysfs attribute whose read() fails with EIO although it has a size: a real I/O error.
EIO_FILE = Path("/sys/devices/system/cpu/power/autosuspend_delay_ms")


def raises_eio(path: Path) -> bool:
    try:
        with open(path, "rb", buffering=0) as f:
            f.read(1)
    except OSError as e:
        return e.errno == 5 and path.stat().st_size > 0
    return False


@pytest.mark.skipif(not raises_eio(EIO_FILE), reason=f"{EIO_FILE} gives no EIO here")
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.name)
def test_read_error_names_the_file(tmp_path: Path, command: Command) -> None:
    src = clean_src(tmp_path)
    broken = src / "events.out.tfevents.1700000005.bad-disk"
    broken.symlink_to(EIO_FILE)
    result = run(command, src, tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {broken}: Input/output error\n"
    assert not (tmp_path / "out").exists()


# Hostile events that decode: whatever their tags, steps, wall_times and values, convert
# raises nothing, and every event comes out once with its step, wall_time and value bytes.

KERAS_TAGS = [
    "loss",
    "val_loss",
    "acc",
    "lr",
    "epoch_loss",
    "epoch_learning_rate",
    "batch_loss",
    "evaluation_loss_vs_iterations",
    "keras",
    "",
    "/",
    "val_",
]
PLUGINS = ["", "scalars", "histograms", "images", "text", "hparams", "graph_keras_model", "nonsense"]


@st.composite
def hostile_values(draw: st.DrawFn) -> summary_pb2.Summary.Value:
    value = summary_pb2.Summary.Value(tag=draw(st.sampled_from(KERAS_TAGS) | st.text(max_size=8)))
    form = draw(st.sampled_from(["simple_value", "tensor", "histo", "none"]))
    if form == "simple_value":
        value.simple_value = draw(st.floats(width=32))
    elif form == "tensor":
        value.tensor.dtype = draw(st.sampled_from([0, 1, 2, 7, 99]))
        value.tensor.tensor_content = draw(st.binary(max_size=8))
    elif form == "histo":
        value.histo.min, value.histo.max = draw(st.floats()), draw(st.floats())
    plugin = draw(st.sampled_from([*PLUGINS, None]))
    if plugin is not None:
        value.metadata.plugin_data.plugin_name = plugin
        value.metadata.display_name = draw(st.sampled_from([value.tag, "x"]))
    return value


@st.composite
def hostile_events(draw: st.DrawFn) -> bytes:
    e = event_pb2.Event(wall_time=draw(st.floats()), step=draw(st.integers(-(2**63), 2**63 - 1)))
    what = draw(st.sampled_from(["summary", "summary", "summary", "file_version", "graph_def", "session_log", "none"]))
    if what == "summary":
        e.summary.value.extend(draw(st.lists(hostile_values(), max_size=3)))
    elif what == "file_version":
        e.file_version = draw(st.sampled_from(["brain.Event:2", "brain.Event:1", ""]))
    elif what == "graph_def":
        e.graph_def = draw(st.binary(max_size=20))
    elif what == "session_log":
        e.session_log.status = draw(st.integers(0, 3))
    return e.SerializeToString()


def value_key(event: event_pb2.Event, value: summary_pb2.Summary.Value) -> tuple[int, bytes, bytes]:
    """A value as convert must keep it: step, wall_time bits and value bytes (tag and
    metadata aside: convert renames tags and puts the first metadata on the first value)."""
    kept = summary_pb2.Summary.Value()
    kept.CopyFrom(value)
    kept.ClearField("tag")
    kept.ClearField("metadata")
    return event.step, struct.pack("<d", event.wall_time), kept.SerializeToString()


def keys(records: list[bytes]) -> Counter:
    out: Counter = Counter()
    for raw in records:
        e = event_pb2.Event.FromString(raw)
        if e.HasField("file_version"):
            continue
        if e.HasField("summary"):
            out.update(value_key(e, v) for v in e.summary.value)
            out[("summary event", e.step, struct.pack("<d", e.wall_time))] += 1
        else:
            out[raw] += 1
    return out


# TBREWRITE_FUZZ_EXAMPLES=N runs N examples instead of 40 (tests/fuzz/README.md).
LONG_RUN = int(os.environ.get("TBREWRITE_FUZZ_EXAMPLES", "0"))


@pytest.fixture(scope="module")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@settings(max_examples=LONG_RUN or 40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sources=st.lists(st.lists(hostile_events(), max_size=12), min_size=1, max_size=3),
    split=st.booleans(),
)
def test_convert_keeps_every_hostile_event(hostile_root: Path, sources: list[list[bytes]], split: bool) -> None:
    work = Path(tempfile.mkdtemp(dir=hostile_root))
    src = work / "src"
    folders = [src / "train", src / "validation", src] if split else [src, src, src]
    for k, records in enumerate(sources):
        folders[k].mkdir(parents=True, exist_ok=True)
        (folders[k] / f"events.out.tfevents.{1700000000 + k}.host").write_bytes(
            b"".join(encode_record(r) for r in records)
        )
    report = convert(src, work / "out")
    records = output_records(work / "out")  # none if no event besides file_version
    assert keys(records) == keys([r for s in sources for r in s])
    if records:
        assert report.runs[0].events_out == len(records) + 1
    shutil.rmtree(work)

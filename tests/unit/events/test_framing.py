"""The TFRecord framing layer: CRC vectors, damage reports at every split point."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tbrewrite.errors import BadDataCrcError, BadLengthCrcError, TruncatedRecordError
from tbrewrite.events.framing import (
    CRC_MISMATCH,
    NOT_AN_EVENT_FILE,
    TRUNCATED,
    RecordReader,
    crc32c,
    encode_record,
    masked_crc32c,
    read_records,
)


def test_crc_vectors_from_formats_md() -> None:
    # FORMATS.md section 1, from tensorboard/data/server/masked_crc.rs
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert masked_crc32c(b"\x1a\x11CRC test, one two") == 0x5794D08A


def test_encode_record_layout() -> None:
    framed = encode_record(b"abc")
    # u64 length | u32 masked crc(length) | data | u32 masked crc(data)
    assert framed[:8] == struct.pack("<Q", 3)
    assert framed[8:12] == struct.pack("<I", masked_crc32c(framed[:8]))
    assert framed[12:15] == b"abc"
    assert framed[15:] == struct.pack("<I", masked_crc32c(b"abc"))


def _write(path: Path, records: list[bytes]) -> Path:
    path.write_bytes(b"".join(encode_record(r) for r in records))
    return path


RECORDS = [b"", b"x", b"hello world" * 3, bytes(range(256)) * 5]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 5, 7, 11, 12, 13, 16, 17, 64, 1 << 20])
def test_chunked_reads_yield_every_record(tmp_path: Path, chunk_size: int) -> None:
    path = _write(tmp_path / "f", RECORDS)
    reader = RecordReader(path, chunk_size=chunk_size)
    assert list(reader) == RECORDS
    assert reader.damage == []
    assert reader.records == len(RECORDS)


def test_truncation_at_every_byte_is_reported_with_offset(tmp_path: Path) -> None:
    whole = b"".join(encode_record(r) for r in RECORDS)
    starts = [0]
    for r in RECORDS:
        starts.append(starts[-1] + 16 + len(r))
    for cut in range(1, len(whole)):
        path = tmp_path / "cut"
        path.write_bytes(whole[:cut])
        reader = RecordReader(path, chunk_size=7)
        got = list(reader)
        complete = max(i for i, s in enumerate(starts) if s <= cut)
        assert got == RECORDS[:complete]
        if cut == starts[complete]:
            assert reader.damage == []
            continue
        (d,) = reader.damage
        assert d.kind == TRUNCATED
        assert d.offset == starts[complete]
        assert d.records_before == complete


def test_empty_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.0.empty"
    path.write_bytes(b"")
    reader = RecordReader(path)
    assert list(reader) == []
    assert [(d.kind, d.offset, d.detail) for d in reader.damage] == [(TRUNCATED, 0, "file is empty")]


def test_length_claiming_petabytes_is_a_truncation_not_an_allocation(tmp_path: Path) -> None:
    header = struct.pack("<Q", 1 << 50)
    bad = header + struct.pack("<I", masked_crc32c(header)) + b"tiny"
    path = _write(tmp_path / "f", [b"ok"])
    path.write_bytes(path.read_bytes() + bad)
    reader = RecordReader(path)
    assert list(reader) == [b"ok"]
    (d,) = reader.damage
    assert (d.kind, d.offset, d.records_before) == (TRUNCATED, 18, 1)
    assert d.detail == f"truncated record in data: needs {(1 << 50) + 16} bytes, 16 left"


def test_data_crc_mismatch_mid_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", [b"one", b"two", b"three"])
    raw = bytearray(path.read_bytes())
    raw[19 + 12] ^= 0x01  # first data byte of the second record
    path.write_bytes(bytes(raw))
    reader = RecordReader(path)
    assert list(reader) == [b"one"]
    (d,) = reader.damage
    assert (d.kind, d.offset, d.records_before) == (CRC_MISMATCH, 19, 1)
    assert d.detail.startswith("data checksum mismatch: got 0x")
    with pytest.raises(BadDataCrcError) as e:
        list(read_records(path))
    assert e.value.offset == 19


def test_garbage_tail_is_a_length_crc_mismatch(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", [b"one"])
    path.write_bytes(path.read_bytes() + b"\x00" * 40)
    reader = RecordReader(path)
    assert list(reader) == [b"one"]
    (d,) = reader.damage
    assert (d.kind, d.offset) == (CRC_MISMATCH, 19)
    assert d.detail.startswith("length checksum mismatch: got 0x00000000, want 0x")
    with pytest.raises(BadLengthCrcError):
        list(read_records(path))


def test_text_file_is_not_an_event_file(tmp_path: Path) -> None:
    path = tmp_path / "events.out.tfevents.123.host"
    path.write_text("epoch,loss\n0,0.5\n1,0.25\n")
    reader = RecordReader(path)
    assert list(reader) == []
    (d,) = reader.damage
    assert (d.kind, d.offset, d.records_before) == (NOT_AN_EVENT_FILE, 0, 0)


def test_truncated_raises_resumable_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "f", [b"one", b"two"])
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(TruncatedRecordError) as e:
        list(read_records(path))
    assert not isinstance(e.value, ValueError)
    assert e.value.offset == 19


def test_resync_skips_garbage_and_reports_the_range(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(encode_record(b"one") + b"garbage!" * 3 + encode_record(b"two") + encode_record(b"three"))
    reader = RecordReader(path, resync=True)
    assert list(reader) == [b"one", b"two", b"three"]
    (d,) = reader.damage
    assert (d.kind, d.offset, d.resumed_at) == (CRC_MISMATCH, 19, 19 + 24)

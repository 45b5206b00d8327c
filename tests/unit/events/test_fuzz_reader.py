"""Property tests of the reader on hostile bytes: random, truncated, bit-flipped corpus files.

Whatever the bytes, the readers raise nothing (the files are readable, so not even
``OSError``), every record they yield is a whole frame with both checksums valid at the
offset they report, and the damage they report is what a deliberately naive parser
(``tests/fuzz/reference.py``) finds, with and without resync.

``max_examples`` is kept small so the file runs in seconds; set
``TBREWRITE_FUZZ_EXAMPLES=100000`` for a long run (``tests/fuzz/README.md``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2

from fuzz.checks import check_lazy_reading
from fuzz.reference import parse, record_at, reframe
from support.logs import event_files
from support.paths import CORPUS, FIXTURES
from tbrewrite.events.framing import DAMAGE_KINDS, DEFAULT_CHUNK_SIZE, RecordReader, encode_record, find_next_record
from tbrewrite.events.reader import EventFileReader

LONG_RUN = int(os.environ.get("TBREWRITE_FUZZ_EXAMPLES", "0"))


def examples(n: int) -> settings:
    return settings(
        max_examples=LONG_RUN or n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@functools.cache
def seed_bytes(path: Path) -> bytes:
    return path.read_bytes()


# Clean real event files small enough to mutate thousands of times (most of them; the
# damaged corpus files have tests of their own in test_damage.py).
SEEDS = sorted(
    p
    for p in event_files(CORPUS) + event_files(FIXTURES)
    if p.stat().st_size <= 300_000 and not parse(seed_bytes(p)).damage
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "events.out.tfevents.0.fuzz"


def read(
    path: Path, data: bytes, **options: object
) -> tuple[list[tuple[int, bytes]], list[tuple[int, str, int | None]]]:
    """Write ``data`` to ``path`` and read it; return ((offset, record)...), damage."""
    path.write_bytes(data)
    reader = RecordReader(path, **options)
    records = []
    for record in reader:
        assert record_at(data, reader.offset) == record  # a whole valid frame, right there
        records.append((reader.offset, record))
    for d in reader.damage:
        assert d.kind in DAMAGE_KINDS and 0 <= d.offset <= len(data) and d.path == str(path)
    return records, [(d.offset, d.kind, d.resumed_at) for d in reader.damage]


def oracle(data: bytes, resync: bool) -> tuple[list[tuple[int, bytes]], list[tuple[int, str, int | None]]]:
    parsed = parse(data, resync=resync)
    return parsed.records, parsed.damage


chunk_sizes = st.sampled_from([1, 2, 5, 11, 12, 13, 64, 4096, DEFAULT_CHUNK_SIZE])
payloads = st.binary(max_size=80)
# Bytes that look like event files: valid frames, frames with a flipped bit, raw garbage,
# zero runs, and frames whose length claims far more than there is.
pieces = st.one_of(
    payloads.map(encode_record),
    st.tuples(payloads.map(encode_record), st.integers(0, 10_000)).map(
        lambda t: (
            t[0][: t[1] // 8 % len(t[0])]
            + bytes([t[0][t[1] // 8 % len(t[0])] ^ (1 << t[1] % 8)])
            + t[0][t[1] // 8 % len(t[0]) + 1 :]
        )
    ),
    payloads,
    st.integers(1, 300).map(bytes),
    st.tuples(payloads.map(encode_record), st.integers(1, 30)).map(lambda t: t[0][: -t[1]]),
)
framed_garbage = st.lists(pieces, max_size=12).map(b"".join)


@examples(300)
@given(data=st.one_of(st.binary(max_size=600), framed_garbage), resync=st.booleans(), chunk_size=chunk_sizes)
def test_any_bytes_read_as_the_oracle_reads_them(scratch: Path, data: bytes, resync: bool, chunk_size: int) -> None:
    assert read(scratch, data, resync=resync, chunk_size=chunk_size) == oracle(data, resync)


@examples(100)
@given(seed=st.sampled_from(SEEDS), cut=st.floats(0, 1), chunk_size=chunk_sizes)
def test_truncated_corpus_files(scratch: Path, seed: Path, cut: float, chunk_size: int) -> None:
    whole = seed_bytes(seed)
    originals = parse(whole).records
    n = int(len(whole) * cut)
    records, damage = read(scratch, whole[:n], chunk_size=chunk_size)
    # Every record that ends before the cut, and nothing else.
    kept = [(o, r) for o, r in originals if o + 16 + len(r) <= n]
    assert records == kept
    if n == 0:
        assert damage == [(0, "truncated", None)]
    elif kept and kept[-1][0] + 16 + len(kept[-1][1]) == n:
        assert damage == []
    else:
        assert damage == [(originals[len(kept)][0], "truncated", None)]


def flip_bits(data: bytes, bits: list[int]) -> bytes:
    out = bytearray(data)
    for bit in bits:
        out[bit // 8 % len(out)] ^= 1 << (bit % 8)
    return bytes(out)


@examples(100)
@given(seed=st.sampled_from(SEEDS), bit=st.integers(0, 2**40))
def test_one_bit_flip_in_a_corpus_file(scratch: Path, seed: Path, bit: int) -> None:
    whole = seed_bytes(seed)
    originals = parse(whole).records
    flipped = flip_bits(whole, [bit])
    at = bit // 8 % len(whole)
    hit = max(k for k, (o, _) in enumerate(originals) if o <= at)
    records, damage = read(scratch, flipped)
    kind = "not_an_event_file" if hit == 0 else "crc_mismatch"  # CRC-32C catches every 1-bit error
    assert (records, damage) == (originals[:hit], [(originals[hit][0], kind, None)])
    records, damage = read(scratch, flipped, resync=True)
    assert records == originals[:hit] + originals[hit + 1 :]
    assert [(o, k) for o, k, _ in damage] == [(originals[hit][0], kind)]


@examples(100)
@given(
    seed=st.sampled_from(SEEDS),
    bits=st.lists(st.integers(0, 2**40), min_size=1, max_size=16),
    cut=st.floats(0.5, 1),
    chunk_size=chunk_sizes,
)
def test_many_bit_flips_and_a_cut(scratch: Path, seed: Path, bits: list[int], cut: float, chunk_size: int) -> None:
    whole = seed_bytes(seed)
    mutated = flip_bits(whole, bits)[: max(1, int(len(whole) * cut))]
    assert read(scratch, mutated, chunk_size=chunk_size) == oracle(mutated, resync=False)
    records, damage = read(scratch, mutated, resync=True, chunk_size=chunk_size)
    # Every original record that no flip or cut touched is recovered, in order.
    touched = {b // 8 % len(whole) for b in bits}
    intact = [
        (o, r)
        for o, r in parse(whole).records
        if o + 16 + len(r) <= len(mutated) and not any(o <= t < o + 16 + len(r) for t in touched)
    ]
    assert [x for x in records if x in intact] == intact
    for (offset, _, resumed_at), following in zip(damage, [*damage[1:], None], strict=False):
        assert resumed_at is None or offset < resumed_at <= len(mutated) - 16
        assert following is None or (resumed_at is not None and following[0] >= resumed_at)


@examples(100)
@given(
    seed=st.sampled_from(SEEDS),
    bits=st.lists(st.integers(0, 2**40), max_size=6),
    cut=st.floats(0.3, 1),
    resync=st.booleans(),
)
def test_event_reader_on_mutated_corpus_files(
    scratch: Path, seed: Path, bits: list[int], cut: float, resync: bool
) -> None:
    mutated = flip_bits(seed_bytes(seed), bits)
    mutated = mutated[: int(len(mutated) * cut)]
    scratch.write_bytes(mutated)
    reader = EventFileReader(scratch, resync=resync)
    events = 0
    for record in reader:
        event, raw = record.event, record.data
        assert record_at(mutated, reader.offset) == raw
        assert event == event_pb2.Event.FromString(raw)
        events += 1
    assert reader.records == events
    assert all(d.kind in DAMAGE_KINDS for d in reader.damage)
    assert [d.offset for d in reader.damage] == sorted({d.offset for d in reader.damage})


@examples(300)
@given(
    data=framed_garbage,
    start=st.integers(0, 400),
    cap=st.integers(0, 400),
    window=st.sampled_from([1, 3, 16, 100, 1 << 20]),
)
def test_resync_scan_finds_what_a_per_byte_scan_finds(
    scratch: Path, data: bytes, start: int, cap: int, window: int
) -> None:
    size = max(len(data) - cap, 0)
    scratch.write_bytes(data)
    want = next((q for q in range(start, size) if record_at(data[:size], q) is not None), None)
    with open(scratch, "rb", buffering=0) as f:
        assert find_next_record(f, start, size, window) == want


@examples(100)
@given(
    seed=st.sampled_from(SEEDS),
    bits=st.lists(st.integers(0, 2**40), min_size=1, max_size=8),
    resync=st.booleans(),
)
def test_records_whose_checksums_hold_but_bytes_are_mutated(
    scratch: Path, seed: Path, bits: list[int], resync: bool
) -> None:
    check_lazy_reading(scratch, reframe(flip_bits(seed_bytes(seed), bits)), resync)


def test_overlong_step_varint_is_read_as_protobuf_reads_it(scratch: Path) -> None:
    """A 10-byte step varint with bits above bit 63 set: protobuf keeps the low 64 bits
    (-1 here), and so must the lazy reader's peek."""
    e = event_pb2.Event(wall_time=1.0, step=-1)
    e.summary.value.add(tag="loss", simple_value=1.0)
    raw = e.SerializeToString()
    last = raw.index(b"\x10") + 10  # the step key, then 9 bytes 0xff and a final 0x01
    overlong = raw[:last] + b"\x7f" + raw[last + 1 :]
    assert event_pb2.Event.FromString(overlong).step == -1
    check_lazy_reading(scratch, encode_record(overlong), resync=False)

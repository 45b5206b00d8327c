"""Coverage-guided fuzzing (atheris / libFuzzer) of the TFRecord and event-file readers.

Run by hand, never by pytest (see README.md for the command and the recorded figures):

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/fuzz_reader.py -runs=120000 -max_len=8192 -print_final_stats=1

Without a corpus directory on the command line, it seeds libFuzzer with the clean real
event files of ``../shared/corpus`` and ``fixtures/`` (files over ``-max_len`` cut to
that length) in a temporary directory. For every input:

* ``RecordReader`` without resync yields exactly the records and damage that the naive
  parser of ``reference.py`` finds;
* with resync, every record yielded is a whole valid frame at the offset reported, and
  on inputs up to 4 KiB records and damage (skipped ranges included) equal the naive
  parser's byte-by-byte resync;
* ``EventFileReader``, with and without resync, yields only events whose record is a
  valid frame and that decode to the event yielded;
* the input re-framed with valid checksums (``reference.reframe``: mutated event bytes
  that pass the CRC check) is read by ``EventFileReader.lazy()`` exactly as by
  ``__iter__``, and every record peeked without protobuf agrees with protobuf
  (``checks.check_lazy_reading``).

Any exception (an assertion or anything the readers raise) stops the run with the input
saved as ``crash-*``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

# Coverage for our own code only: not the protobuf runtime, TensorBoard, or the oracle.
with atheris.instrument_imports(include=["tbrewrite"]):
    from tbrewrite.events.framing import DAMAGE_KINDS, RecordReader
    from tbrewrite.events.reader import EventFileReader
    from tbrewrite.events.wire import peek  # noqa: F401 - instrumented for the lazy reader

from fuzz.checks import check_lazy_reading  # noqa: E402 - after the instrumented imports
from fuzz.reference import parse, record_at, reframe  # noqa: E402
from support.logs import event_files  # noqa: E402 - after sys.path
from support.paths import CORPUS, FIXTURES  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="tbrewrite-fuzz-")) / "events.out.tfevents.0.fuzz"
RESYNC_ORACLE_MAX = 4096


def check(data: bytes) -> None:
    SCRATCH.write_bytes(data)
    reader = RecordReader(SCRATCH)
    got = [(reader.offset, r) for r in reader]
    want = parse(data)
    assert got == want.records, "records differ from the reference parser"
    assert [(d.offset, d.kind, d.resumed_at) for d in reader.damage] == want.damage

    reader = RecordReader(SCRATCH, resync=True)
    got = []
    for record in reader:
        assert record_at(data, reader.offset) == record, "yielded a record that is not a valid frame"
        got.append((reader.offset, record))
    assert all(d.kind in DAMAGE_KINDS for d in reader.damage)
    if len(data) <= RESYNC_ORACLE_MAX:
        want = parse(data, resync=True)
        assert got == want.records, "resync records differ from the byte-by-byte scan"
        assert [(d.offset, d.kind, d.resumed_at) for d in reader.damage] == want.damage

    for resync in (False, True):
        events = EventFileReader(SCRATCH, resync=resync)
        n = 0
        for record in events:
            event, raw = record.event, record.data
            assert record_at(data, events.offset) == raw
            assert event.SerializeToString() == type(event).FromString(raw).SerializeToString()
            n += 1
        assert events.records == n
        assert all(d.kind in DAMAGE_KINDS for d in events.damage)

    # The same bytes re-framed with valid checksums: records that pass the CRC check
    # but may not be Events, read lazily (``tbrewrite.events.wire.peek``) and in full.
    reframed = reframe(data)
    for resync in (False, True):
        check_lazy_reading(SCRATCH, reframed, resync)


def seed_directory(max_len: int) -> str:
    seeds = Path(tempfile.mkdtemp(prefix="tbrewrite-fuzz-seeds-"))
    for k, path in enumerate(sorted(event_files(CORPUS) + event_files(FIXTURES))):
        data = path.read_bytes()
        if not parse(data).damage:
            (seeds / f"seed-{k:03d}").write_bytes(data[:max_len])
    return str(seeds)


def main() -> None:
    argv = list(sys.argv)
    max_len = next((int(a.split("=", 1)[1]) for a in argv if a.startswith("-max_len=")), 65536)
    if not any(not a.startswith("-") for a in argv[1:]):
        argv.append(seed_directory(max_len))
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

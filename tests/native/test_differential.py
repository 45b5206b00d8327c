"""The native core (``tbrewrite._native``) against the Python reader, record for record.

For every file of the real corpus (``../shared/corpus``, skipped if absent) and of
``fixtures/``, and for damaged variants generated from them (cut at many offsets, bytes
flipped, garbage and zero runs inserted, records whose payload is mutated and re-framed
with valid checksums so that they reach the Event check), with and without resync,
``_native.scan_file`` must report what ``EventFileReader`` reports: the same records (offset,
length, wall_time bit for bit, step, ``Event.what``, value count, first value's tag, value
kind, metadata, scalar), the same peek as ``wire.peek`` and the same damage (kind, offset,
records_before, detail, resumed_at). ``validate_event``, ``peek`` and ``retag`` are compared
with ``Event.FromString``, ``wire.peek`` and ``wire.retag`` on many more mutated records.

Skipped as a whole when the extension is not built (pure-Python installs).
``TBREWRITE_DIFF_SCALE=N`` multiplies the number of generated variants (default 1).
"""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import pytest

native = pytest.importorskip("tbrewrite._native", reason="the native core is not built")

from google.protobuf.message import DecodeError  # noqa: E402
from tensorboard.compat.proto import event_pb2  # noqa: E402


def _find(name: str, *modules: str):
    """``name`` from the first of ``modules`` that has it (the package is being layered:
    tbrewrite.events.* now, the flat modules before)."""
    import importlib

    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} not found in {modules}")


wire = None
for _module in ("tbrewrite.events.wire", "tbrewrite.wire"):
    try:
        import importlib

        wire = importlib.import_module(_module)
        break
    except ImportError:
        continue
encode_record = _find("encode_record", "tbrewrite.events.framing", "tbrewrite.records")
EventFileReader = _find("EventFileReader", "tbrewrite.events.reader", "tbrewrite.events")
scalar_value = _find("scalar_value", "tbrewrite.events.summary", "tbrewrite.events.reader", "tbrewrite.events")

ROOT = Path(__file__).resolve().parents[2]
from support.paths import CORPUS  # noqa: E402  (TBREWRITE_TEST_CORPUS, or ../shared/corpus)

FIXTURES = ROOT / "fixtures"
SCALE = int(os.environ.get("TBREWRITE_DIFF_SCALE", "1"))

_WHAT = {
    None: 0,
    "file_version": 3,
    "graph_def": 4,
    "summary": 5,
    "log_message": 6,
    "session_log": 7,
    "tagged_run_metadata": 8,
    "meta_graph_def": 9,
}
_VALUE = {
    None: 0,
    "simple_value": 2,
    "obsolete_old_style_histogram": 3,
    "image": 4,
    "histo": 5,
    "audio": 6,
    "tensor": 8,
}


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _seeds() -> list[Path]:
    """Event files to derive damaged variants from: small ones of every writer."""
    files = [p for p in _files(CORPUS) + _files(FIXTURES) if "tfevents" in p.name and p.stat().st_size > 100]
    return sorted(files, key=lambda p: p.stat().st_size)[:: max(1, len(files) // 12)]


def _records(reader):  # EventFileReader -> (Event, bytes, offset)
    """The reader's valid records, whichever API it has: ``Record`` objects (``.data``,
    ``.offset``) now, ``(event, data)`` pairs before."""
    for item in reader:
        if isinstance(item, tuple):
            event, data = item
            yield event, data, reader.offset
        else:
            yield event_pb2.Event.FromString(item.data), item.data, item.offset


def python_scan(path: Path, resync: bool) -> dict:
    """What the Python reader reports, in the native scan's terms."""
    reader = EventFileReader(path, resync=resync)
    rows = []
    for event, data, offset in _records(reader):
        values = event.summary.value
        first = values[0] if values else None
        peeked = wire.peek(data)
        row = {
            "offset": offset,
            "length": len(data),
            "what": _WHAT[event.WhichOneof("what")],
            "values": len(values),
            "value_kind": _VALUE[first.WhichOneof("value")] if first is not None else 0,
            "has_metadata": first is not None and first.HasField("metadata"),
            "peeked": peeked is not None,
        }
        if peeked is not None:
            row.update(
                wall_time=_bits(peeked[wire.WALL_TIME]),
                step=peeked[wire.STEP],
                tag=peeked[wire.TAG].decode(),
                summary_at=peeked[wire.SUMMARY_AT],
                rest_at=peeked[wire.REST_AT],
                wire_no_metadata=wire.has_metadata(data, peeked) is False,
            )
        else:
            row.update(
                wall_time=_bits(event.wall_time),
                step=event.step,
                tag=first.tag if first is not None else None,
                summary_at=0,
                rest_at=0,
                wire_no_metadata=False,
            )
        scalar = scalar_value(first) if first is not None else None
        row["scalar"] = _bits(scalar) if scalar is not None else None
        rows.append(row)
    damage = [(d.kind, d.offset, d.records_before, d.detail, d.resumed_at) for d in reader.damage]
    checkpoints = [(c.records, c.end, c.digest) for c in reader.checkpoints]
    stamp = reader.stamp
    return {
        "rows": rows,
        "damage": damage,
        "records": reader.records,
        "size": reader.size,
        "checkpoints": checkpoints,
        "stamp": None if stamp is None else (stamp.dev, stamp.ino, stamp.size, stamp.mtime_ns),
    }


def native_rows(scan: dict) -> list[dict]:
    """The native scan's columns as rows, in :func:`python_scan`'s terms."""
    import numpy as np

    col = {
        key: np.frombuffer(scan[key], dtype=dtype)
        for key, dtype in [
            ("offsets", "<u8"),
            ("lengths", "<u8"),
            ("wall_times", "<f8"),
            ("steps", "<i8"),
            ("whats", "u1"),
            ("values", "<u4"),
            ("value_kinds", "u1"),
            ("tag_ids", "<u4"),
            ("flags", "u1"),
            ("scalars", "<f8"),
            ("summary_at", "<u4"),
            ("rest_at", "<u4"),
        ]
    }
    n = len(col["offsets"])
    assert all(len(c) == n for c in col.values())
    rows = []
    for i in range(n):
        flags = int(col["flags"][i])
        tag_id = int(col["tag_ids"][i])
        rows.append(
            {
                "offset": int(col["offsets"][i]),
                "length": int(col["lengths"][i]),
                "what": int(col["whats"][i]),
                "values": int(col["values"][i]),
                "value_kind": int(col["value_kinds"][i]),
                "has_metadata": bool(flags & native.FLAG_HAS_METADATA),
                "peeked": bool(flags & native.FLAG_PEEKED),
                "wall_time": _bits(float(col["wall_times"][i])),
                "step": int(col["steps"][i]),
                "tag": None if tag_id == native.NO_TAG else scan["tags"][tag_id],
                "summary_at": int(col["summary_at"][i]),
                "rest_at": int(col["rest_at"][i]),
                "wire_no_metadata": bool(flags & native.FLAG_WIRE_NO_METADATA),
                "scalar": _bits(float(col["scalars"][i])) if flags & native.FLAG_SCALAR else None,
            }
        )
    return rows


def assert_same(path: Path, resync: bool) -> dict:
    want = python_scan(path, resync)
    scan = native.scan_file(str(path), resync=resync)
    assert [tuple(d) for d in scan["damage"]] == want["damage"], path
    assert (scan["records"], scan["size"]) == (want["records"], want["size"]), path
    assert scan["checkpoints"] == want["checkpoints"], path
    assert scan["stamp"] == want["stamp"], path
    got = native_rows(scan)
    assert len(got) == len(want["rows"]), path
    for g, w in zip(got, want["rows"], strict=True):
        assert g == w, (path, w["offset"])
    in_memory = native.scan_bytes(path.read_bytes(), resync=resync)
    assert in_memory == {**scan, "stamp": None}, path
    return want


@pytest.mark.parametrize("resync", [False, True], ids=["stop", "resync"])
def test_every_corpus_and_fixture_file(resync: bool) -> None:
    files = _files(CORPUS) + _files(FIXTURES)
    if not files:
        pytest.skip("no corpus and no fixtures")
    records = 0
    for path in files:
        records += len(assert_same(path, resync)["rows"])
    assert records > 1000 or not CORPUS.is_dir()  # the fixtures alone hold fewer


def _variants(data: bytes, rng: random.Random, n: int):
    """Damaged versions of one file's bytes: (name, bytes)."""
    size = len(data)
    for _ in range(n):
        cut = rng.randrange(size + 1)
        yield "cut", data[:cut]
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rng.choice([1, 1, 2, 8])):
            i = rng.randrange(size)
            b[i] ^= 1 << rng.randrange(8)
        yield "flip", bytes(b)
    for _ in range(n):
        i = rng.randrange(size + 1)
        junk = rng.choice(
            [
                bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
                bytes(rng.randrange(1, 300)),
                data[rng.randrange(size) :][: rng.randrange(1, 200)],
            ]
        )
        yield "insert", data[:i] + junk + data[i:]
    for _ in range(n):
        i = rng.randrange(size)
        yield "delete", data[:i] + data[i + rng.randrange(1, 40) :]


def _reframed(data: bytes, rng: random.Random, n: int):
    """The file's records with one payload mutated and re-framed with valid checksums."""
    records = []
    p = 0
    while p + 16 <= len(data):
        (length,) = struct.unpack_from("<Q", data, p)
        if p + 16 + length > len(data):
            break
        records.append(data[p + 12 : p + 12 + length])
        p += 16 + length
    if not records:
        return
    for _ in range(n):
        out = list(records[:40])
        i = rng.randrange(len(out))
        out[i] = mutate(out[i], rng)
        yield "reframed", b"".join(encode_record(r) for r in out)


def mutate(record: bytes, rng: random.Random) -> bytes:
    """A protobuf-aware-ish mutation of one record's payload."""
    b = bytearray(record)
    op = rng.randrange(7)
    if op == 0 and b:
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif op == 1 and b:
        b[rng.randrange(len(b))] = rng.choice([0x00, 0x80, 0xFF, 0x7F, 0x0B, 0x0C, 0x0F, 0xED, 0xC0])
    elif op == 2:
        del b[rng.randrange(len(b) + 1) :]
    elif op == 3:
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.choice(
            [
                b"\xa3\x01",
                b"\xa4\x01",
                b"\x0b",
                b"\x0c",
                b"\x80" * 5,
                b"\xff" * 11,
                b"\x1a\x02\xc3\x28",
                b"\x42\x02\x2a\x03",
                b"\x00",
                b"\x0a\x00",
            ]
        )
    elif op == 4 and b:
        i = rng.randrange(len(b))
        del b[i : i + rng.randrange(1, 4)]
    elif op == 5:
        i = rng.randrange(len(b) + 1)
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
    else:
        # Duplicate a slice (repeats fields: merges, oneof switches, last-wins tags).
        if b:
            i = rng.randrange(len(b))
            j = rng.randrange(i, len(b) + 1)
            b[j:j] = b[i:j]
    return bytes(b)


@pytest.mark.parametrize("resync", [False, True], ids=["stop", "resync"])
def test_damaged_variants(tmp_path: Path, resync: bool) -> None:
    seeds = _seeds()
    if not seeds:
        pytest.skip("no event files to derive variants from")
    rng = random.Random(20261205 + resync)
    kinds: dict[str, int] = {}
    damage_kinds: set[str] = set()
    for seed in seeds:
        data = seed.read_bytes()[: 1 << 16]
        variants = list(_variants(data, rng, 6 * SCALE)) + list(_reframed(data, rng, 10 * SCALE))
        for k, (name, variant) in enumerate(variants):
            path = tmp_path / f"v{k}"
            path.write_bytes(variant)
            want = assert_same(path, resync)
            kinds[name] = kinds.get(name, 0) + 1
            damage_kinds.update(d[0] for d in want["damage"])
    assert damage_kinds >= {"truncated", "crc_mismatch", "invalid_event"}, damage_kinds


def test_every_cut_of_a_small_file(tmp_path: Path) -> None:
    """Truncation at every byte of the first records of a real file."""
    files = [p for p in _files(FIXTURES) + _files(CORPUS) if "tfevents" in p.name and p.stat().st_size > 400]
    if not files:
        pytest.skip("no event files")
    data = files[0].read_bytes()[:600]
    for cut in range(len(data) + 1):
        path = tmp_path / "cut"
        path.write_bytes(data[:cut])
        for resync in (False, True):
            assert_same(path, resync)


def _python_validate(data: bytes) -> str | None:
    try:
        event_pb2.Event.FromString(data)
    except DecodeError as e:
        return str(e)
    return None


def _all_records() -> list[bytes]:
    records = []
    for path in _files(CORPUS) + _files(FIXTURES):
        if "tfevents" in path.name:
            records.extend(data for _, data, _ in _records(EventFileReader(path)))
    return records


def test_validate_peek_retag_on_mutated_records() -> None:
    records = _all_records()
    if not records:
        pytest.skip("no event files")
    rng = random.Random(7)
    small = [r for r in records if len(r) < 4096] or records
    outcomes: dict[str | None, int] = {}
    for _ in range(20000 * SCALE):
        record = rng.choice(small)
        for _ in range(rng.choice([1, 1, 2, 3])):
            record = mutate(record, rng)
        want = _python_validate(record)
        assert native.validate_event(record) == want, record
        outcomes[want] = outcomes.get(want, 0) + 1
        peeked = wire.peek(record)
        got = native.peek(record)
        assert got == peeked or (
            got is not None and peeked is not None and _bits(got[0]) == _bits(peeked[0]) and got[1:] == peeked[1:]
        ), record
        if peeked is not None:
            tag = rng.choice([b"", b"train/loss", "val/é".encode(), bytes(200)])
            assert native.retag(record, tag) == wire.retag(record, peeked, tag)
        else:
            assert native.retag(record, b"x") is None
    # Every upb outcome was exercised, not only the happy path.
    prefix = "Error parsing message with type 'tensorboard.Event': "
    expected = {None, prefix + "Wire format was corrupt", prefix + "String field had bad UTF-8"}
    assert expected <= set(outcomes), outcomes


def test_depth_limits_match_upb() -> None:
    def ld(field: int, body: bytes) -> bytes:
        return wire.encode_varint(field << 3 | 2) + wire.encode_varint(len(body)) + body

    cases = []
    for n in (99, 100, 101):
        cases.append(b"\xa3\x01" * n + b"\xa4\x01" * n)
    for k in (47, 48, 49):
        for inner in (b"", ld(2, b""), ld(2, ld(2, b""))):
            t = inner
            for _ in range(k):
                t = ld(15, ld(3, t))
            cases.append(ld(5, ld(1, ld(8, t))))
    for g in (95, 96, 97, 98):
        cases.append(ld(5, ld(1, ld(8, b"\xa3\x01" * g + b"\xa4\x01" * g))))
    for case in cases:
        assert native.validate_event(case) == _python_validate(case)


def test_crc_and_framing_helpers() -> None:
    assert native.crc32c(bytes(32)) == 0x8A9136AA
    assert native.masked_crc32c(b"\x1a\x11CRC test, one two") == 0x5794D08A
    for data in (b"", b"x", bytes(range(256)) * 3):
        assert native.encode_record(data) == encode_record(data)


def test_errors_are_oserrors_with_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    for path in (str(missing), missing):  # str or os.PathLike
        with pytest.raises(FileNotFoundError) as e:
            native.scan_file(path)
        assert e.value.filename == str(missing)
        assert e.value.strerror == "No such file or directory"
    with pytest.raises(FileNotFoundError) as e:
        native.read_scalars([missing])
    assert e.value.filename == str(missing)
    with pytest.raises(IsADirectoryError):
        native.scan_file(str(tmp_path))


def test_limit_reads_a_prefix(tmp_path: Path) -> None:
    files = [p for p in _files(FIXTURES) if "tfevents" in p.name]
    if not files:
        pytest.skip("no fixtures")
    data = files[0].read_bytes()
    for limit in (0, 1, 100, len(data) // 2, len(data), len(data) + 5):
        reader = EventFileReader(files[0], limit=limit)
        offsets = [offset for _, _, offset in _records(reader)]
        scan = native.scan_file(str(files[0]), limit=limit)
        import numpy as np

        assert np.frombuffer(scan["offsets"], "<u8").tolist() == offsets
        assert [tuple(d) for d in scan["damage"]] == [
            (d.kind, d.offset, d.records_before, d.detail, d.resumed_at) for d in reader.damage
        ]


def test_a_panic_arrives_as_one_line_native_error() -> None:
    with pytest.raises(native.NativeError) as e:
        native._test_panic()
    assert str(e.value) == "_test_panic: internal error in the native core: deliberate panic second line"
    assert isinstance(e.value, Exception)


def _runs(root: Path) -> list[tuple[str, list[Path]]]:
    """The runs under ``root`` and their event files, in TensorBoard's order."""
    runs = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        files = [
            Path(dirpath) / n
            for n in sorted(filenames)
            if "tfevents" in n and not n.endswith(".profile-empty") and (Path(dirpath) / n).is_file()
        ]
        if files:
            runs.append((os.path.relpath(dirpath, root) if Path(dirpath) != root else ".", files))
    return runs


def _export_loop(run: str, files: list[Path], damage: list):
    """``commands.export.iter_scalars``'s loop over one run (as of 96eeb75), for when the
    package is mid-restructure and the module does not import."""
    plugins: dict[str, str] = {}
    for file in files:
        reader = EventFileReader(file)
        for event, _, _ in _records(reader):
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                plugin = plugins.get(value.tag)
                if plugin is None:
                    plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
                    plugins[value.tag] = plugin
                if plugin not in ("", "scalars"):
                    continue
                number = _find("scalar_number", "tbrewrite.events.summary")(value)
                if number is not None:
                    names = _find("DTYPE_NAMES", "tbrewrite.commands.export")
                    yield run, value.tag, event.step, event.wall_time, number[0], names[number[1]]
        damage.extend(reader.damage)


def _python_scalars(root: Path) -> tuple[dict[str, list[tuple]], list[tuple]]:
    damage: list = []
    try:
        iter_scalars = _find("iter_scalars", "tbrewrite.commands.export", "tbrewrite.export")
        points = ((r.run, r.tag, r.step, r.wall_time, r.value, r.dtype) for r in iter_scalars(root, damage=damage))
    except ImportError:
        points = (p for run, files in _runs(root) for p in _export_loop(run, files, damage))
    rows: dict[str, list[tuple]] = {}
    for run, tag, step, wall_time, value, dtype in points:
        rows.setdefault(run, []).append((tag, step, _bits(wall_time), _bits(value), dtype))
    return rows, [(d.path, d.kind, d.offset, d.records_before, d.detail, d.resumed_at) for d in damage]


def _native_scalars(root: Path) -> tuple[dict[str, list[tuple]], list[tuple]]:
    import numpy as np

    names = _find("DTYPE_NAMES", "tbrewrite.commands.export")
    rows: dict[str, list[tuple]] = {}
    damage = []
    for run, files in _runs(root):
        got = native.read_scalars([str(f) for f in files])
        tag_ids = np.frombuffer(got["tag_ids"], "<u4").tolist()
        steps = np.frombuffer(got["steps"], "<i8").tolist()
        wall_times = np.frombuffer(got["wall_times"], "<f8").tolist()
        values = np.frombuffer(got["values"], "<f8").tolist()
        dtypes = np.frombuffer(got["dtypes"], "<u1").tolist()
        if tag_ids:
            rows[run] = [
                (got["tags"][t], s, _bits(w), _bits(v), names[d])
                for t, s, w, v, d in zip(tag_ids, steps, wall_times, values, dtypes, strict=True)
            ]
        for f, file_damage in zip(files, got["damage"], strict=True):
            damage.extend((str(f), *d) for d in file_damage)
    return rows, damage


def test_read_scalars_equals_export(tmp_path: Path) -> None:
    roots = [r for r in (CORPUS, FIXTURES) if r.is_dir()]
    if not roots:
        pytest.skip("no corpus and no fixtures")
    # Damaged and mutated copies of a few files, as runs of their own.
    rng = random.Random(3)
    for k, seed in enumerate(_seeds()[:6]):
        data = seed.read_bytes()[: 1 << 15]
        for j, (_, variant) in enumerate(list(_reframed(data, rng, 4)) + list(_variants(data, rng, 1))):
            run = tmp_path / f"run{k}_{j}"
            run.mkdir()
            (run / "events.out.tfevents.1.x").write_bytes(variant)
    points = 0
    for root in [*roots, tmp_path]:
        want = _python_scalars(root)
        got = _native_scalars(root)
        assert got[1] == want[1], root
        assert got[0].keys() == want[0].keys(), root
        for run in want[0]:
            assert got[0][run] == want[0][run], (root, run)
            points += len(want[0][run])
    assert points > 1000 or not CORPUS.is_dir()  # the fixtures alone hold fewer

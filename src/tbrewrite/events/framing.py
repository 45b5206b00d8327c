"""TFRecord framing: a streaming reader that reports damage, and the frame encoder.

Each record is ``u64 length | u32 masked_crc32c(length) | data | u32 masked_crc32c(data)``,
all little-endian (TensorFlow ``core/lib/io/record_writer.cc``; TensorBoard
``tensorboard/data/server/tf_record.rs``). The checksum is CRC-32C (Castagnoli) masked as
``((crc >> 15) | (crc << 17)) + 0xA282EAD8`` modulo 2**32 (TensorBoard
``data/server/masked_crc.rs``).

The reader never loads a whole file: it reads fixed-size chunks, and a record larger
than a chunk is read on its own after its declared length has been checked against the
bytes left in the file, so a corrupt length field claiming petabytes is reported as a
truncation and never allocated.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO

import google_crc32c

if TYPE_CHECKING:  # numpy is imported lazily, by resync alone
    import numpy as np
    from numpy.typing import NDArray

HEADER_LENGTH = 12
"""Bytes before the data: the u64 length and the u32 masked CRC of those 8 bytes."""
FOOTER_LENGTH = 4
"""Bytes after the data: the u32 masked CRC of the data."""
MASK_DELTA = 0xA282EAD8
DEFAULT_CHUNK_SIZE = 1 << 20
_GOOD_HEADERS = 4096


class DamageKind(str, Enum):
    """What is wrong with a damaged stretch of an event file (the ``kind`` in reports).

    TensorBoard's Rust reader draws the same lines (``tf_record.rs`` ``ReadRecordError``:
    ``Truncated`` is resumable, a bad checksum is not; ``event_file.rs`` adds
    ``InvalidProto``).
    """

    TRUNCATED = "truncated"
    """The file ends inside a record (normal for a run still being written or killed)."""
    CRC_MISMATCH = "crc_mismatch"
    """A length or data checksum fails."""
    NOT_AN_EVENT_FILE = "not_an_event_file"
    """The very first record is invalid (e.g. a CSV named like an event file)."""
    INVALID_EVENT = "invalid_event"
    """The checksums hold but the bytes are not an ``Event`` protobuf."""
    CHANGED = "changed"
    """A rewrite found the file's records differ from what its first pass read (the
    file was replaced or rewritten between the two passes)."""

    def __str__(self) -> str:
        return self.value


TRUNCATED = DamageKind.TRUNCATED
CRC_MISMATCH = DamageKind.CRC_MISMATCH
NOT_AN_EVENT_FILE = DamageKind.NOT_AN_EVENT_FILE
INVALID_EVENT = DamageKind.INVALID_EVENT
CHANGED = DamageKind.CHANGED
DAMAGE_KINDS = tuple(DamageKind)
CHECKPOINT_RECORDS = 1 << 16
"""Every this many records, :class:`RecordReader` notes a :class:`Checkpoint`."""

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_crc: Callable[[bytes], int] = google_crc32c.value  # the C extension's CRC-32C


def crc32c(data: bytes) -> int:
    """Return the plain CRC-32C of ``data`` (RFC 3720), as an unsigned 32-bit int."""
    return _crc(data)


def masked_crc32c(data: bytes) -> int:
    """Return TensorFlow's masked CRC-32C of ``data``, as stored in a TFRecord frame."""
    crc = _crc(data)
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def encode_record(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord (16 bytes of overhead)."""
    header = _U64.pack(len(data))
    return b"".join((header, _U32.pack(masked_crc32c(header)), data, _U32.pack(masked_crc32c(data))))


@dataclass(frozen=True)
class Damage:
    """One damaged stretch of an event file.

    Attributes:
        path: str. The event file.
        kind: DamageKind.
        offset: int. Byte offset of the first bad record.
        records_before: int. Valid records read from the file before ``offset``.
        detail: str. What exactly is wrong, e.g. ``"data checksum mismatch: got
            0x1234abcd, want 0x89ab0123"``.
        resumed_at: int or None. With resync, the offset of the next valid record,
            where reading continued (bytes ``offset`` to ``resumed_at`` were skipped);
            None when reading stopped at the damage.
    """

    path: str
    kind: DamageKind
    offset: int
    records_before: int
    detail: str
    resumed_at: int | None = None

    def describe(self) -> str:
        """Return the one-line human report, naming file, kind and byte offset."""
        where = f"{self.path}: {self.kind} at byte {self.offset}"
        tail = f"{self.detail}; {self.records_before} records recovered before it"
        if self.resumed_at is not None:
            tail += f"; skipped bytes {self.offset}..{self.resumed_at}, resumed"
        return f"{where} ({tail})"

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form used by ``inspect --json``."""
        return {
            "kind": self.kind.value,
            "offset": self.offset,
            "records_before": self.records_before,
            "detail": self.detail,
            "resumed_at": self.resumed_at,
        }


@dataclass(frozen=True)
class FileStamp:
    """Who a file was when it was opened: device, inode, size and mtime (ns).

    A byte copy that finds the same stamp copies the bytes a scan read; a different one
    means the file was replaced, truncated or appended to in between.
    """

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, fd: int) -> FileStamp:
        """Return the stamp of an open file."""
        st = os.fstat(fd)
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class Checkpoint:
    """A fingerprint of the first ``records`` valid records of a file.

    A second pass over a file compares its own checkpoints with the first pass's: equal
    ones prove that the records read so far are the ones the first pass read (up to a
    collision of the CRC sums), so a file replaced or rewritten in between is noticed. A
    sum costs one addition per record on the hot path.

    Attributes:
        records: int. Valid records counted.
        end: int. Byte offset just past the last of them.
        digest: int. The sum of their stored data CRCs: a record replaced by any other
            changes it (records swapped in place would not; no writer does that).
    """

    records: int
    end: int
    digest: int


class RecordReader:
    """Stream the records of one TFRecord file, verifying both checksums.

    Iterating yields each record's data as ``bytes``. Reading stops at the first damaged
    record and appends a :class:`Damage` to :attr:`damage`; with ``resync=True`` it
    instead searches forward for the next offset where a whole record with both
    checksums valid starts, reports the skipped byte range, and continues from there.
    Memory stays bounded by ``chunk_size`` plus the largest single record.

    Args:
        path: str or os.PathLike. The file to read.
        resync: bool. Continue after damage from the next valid record.
        chunk_size: int. Bytes read per ``read()`` call.
        limit: int or None. Read only the first ``limit`` bytes of the file: a second
            pass given the :attr:`size` seen by a first pass reads exactly the same
            records even if a writer appended to the file in between.

    Attributes:
        damage: list of Damage found so far.
        records: int. Valid records yielded so far.
        offset: int. Byte offset where the most recently yielded record starts.
        size: int. Bytes read: the file size when the reader opened it, at most
            ``limit``.
        file_size: int. The file's size when the reader opened it (``limit`` aside).
        stamp: FileStamp or None. The file as it was opened.
        end: int. Byte offset just past the last valid record read.
        digest: int. Fingerprint of the valid records read so far (see
            :class:`Checkpoint`).
        checkpoints: list of Checkpoint, one every :data:`CHECKPOINT_RECORDS` records.

    Raises:
        OSError: if the file cannot be opened or read; ``filename`` is always set.

    Example:
        >>> reader = RecordReader("events.out.tfevents.1700000000.host")  # doctest: +SKIP
        >>> n = sum(1 for _ in reader)                                     # doctest: +SKIP
        >>> reader.damage                                                  # doctest: +SKIP
        []
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resync: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        limit: int | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.resync = resync
        self.chunk_size = max(chunk_size, 1)
        self.limit = limit
        self.damage: list[Damage] = []
        self.records = 0
        self.offset = 0
        self.size = 0
        self.file_size = 0
        self.stamp: FileStamp | None = None
        self.end = 0
        self.digest = 0
        self.checkpoints: list[Checkpoint] = []

    def __iter__(self) -> Iterator[bytes]:
        try:
            with open(self.path, "rb", buffering=0) as f:
                self.stamp = FileStamp.of(f.fileno())
                self.size = self.file_size = self.stamp.size
                if self.limit is not None:
                    self.size = min(self.size, self.limit)
                yield from self._read(f)
        except OSError as e:
            if e.filename is not None:
                raise
            raise OSError(e.errno, e.strerror or str(e), self.path) from e

    def _read(self, f: BinaryIO) -> Iterator[bytes]:
        chunk_size = self.chunk_size
        size = self.size
        crc = _crc
        unpack64 = _U64.unpack_from
        unpack32 = _U32.unpack_from
        buf = b""
        pos = 0  # position of the next record inside buf
        base = 0  # file offset of buf[0]
        # Headers (length + its checksum) already verified, by their 12 bytes: logs
        # repeat a few record lengths, so most headers need no CRC computation.
        good: dict[bytes, int] = {}
        while True:
            if pos + HEADER_LENGTH <= len(buf):
                length = good.get(buf[pos : pos + HEADER_LENGTH])
                if length is not None:
                    end = pos + HEADER_LENGTH + length + FOOTER_LENGTH
                    if end <= len(buf):
                        data = buf[pos + HEADER_LENGTH : end - FOOTER_LENGTH]
                        c = crc(data)
                        stored = unpack32(buf, end - FOOTER_LENGTH)[0]
                        if (((c >> 15) | (c << 17)) + MASK_DELTA) & 0xFFFFFFFF == stored:
                            self.offset = base + pos
                            self.records += 1
                            self.end = base + end
                            self.digest += stored
                            if not self.records % CHECKPOINT_RECORDS:
                                self.checkpoints.append(self.checkpoint())
                            pos = end
                            yield data
                            continue
            offset = base + pos
            avail = len(buf) - pos
            left = size - offset  # bytes of the file from this record on
            if avail < HEADER_LENGTH and avail < left:
                more = f.read(min(chunk_size, left - avail))
                if not more:
                    self._stop(TRUNCATED, offset, "file shrank while being read")
                    return
                buf = buf[pos:] + more
                base, pos = offset, 0
                continue
            if left == 0:
                if offset == 0:
                    self._stop(TRUNCATED, 0, "file is empty")
                return
            if avail < HEADER_LENGTH:
                part = "header" if avail < 8 else "header crc"
                bad = TRUNCATED, f"truncated record in {part}: needs 12 bytes, {avail} left"
            else:
                (length,) = unpack64(buf, pos)
                (stored,) = unpack32(buf, pos + 8)
                header_crc = _masked(crc(buf[pos : pos + 8]))
                need = HEADER_LENGTH + length + FOOTER_LENGTH
                if header_crc != stored:
                    bad = CRC_MISMATCH, f"length checksum mismatch: got {stored:#010x}, want {header_crc:#010x}"
                elif need > left:
                    part = "data" if HEADER_LENGTH + length > left else "data crc"
                    bad = TRUNCATED, f"truncated record in {part}: needs {need} bytes, {left} left"
                else:
                    if len(good) < _GOOD_HEADERS:
                        good[buf[pos : pos + HEADER_LENGTH]] = length
                    if avail < need and length >= chunk_size:
                        # A large record: read its data on its own, not through buf,
                        # so its bytes are copied once (by read) instead of three times.
                        f.seek(offset + HEADER_LENGTH)
                        data = f.read(length)
                        footer = f.read(FOOTER_LENGTH)
                        buf, base, pos = b"", offset + need, 0
                        if len(footer) < FOOTER_LENGTH:
                            self._stop(TRUNCATED, offset, "file shrank while being read")
                            return
                        (stored,) = unpack32(footer)
                        data_crc = _masked(crc(data))
                        if data_crc == stored:
                            self.offset = offset
                            self.records += 1
                            self.end = offset + need
                            self.digest += stored
                            if not self.records % CHECKPOINT_RECORDS:
                                self.checkpoints.append(self.checkpoint())
                            yield data
                            continue
                        bad = CRC_MISMATCH, f"data checksum mismatch: got {stored:#010x}, want {data_crc:#010x}"
                    else:
                        if avail < need:
                            more = f.read(min(max(need - avail, chunk_size), left - avail))
                            buf = buf[pos:] + more
                            base, pos = offset, 0
                            if len(buf) < need:
                                self._stop(TRUNCATED, offset, "file shrank while being read")
                                return
                        start = pos + HEADER_LENGTH
                        data = buf[start : start + length]
                        (stored,) = unpack32(buf, start + length)
                        data_crc = _masked(crc(data))
                        if data_crc == stored:
                            pos += need
                            self.offset = offset
                            self.records += 1
                            self.end = offset + need
                            self.digest += stored
                            if not self.records % CHECKPOINT_RECORDS:
                                self.checkpoints.append(self.checkpoint())
                            yield data
                            continue
                        bad = CRC_MISMATCH, f"data checksum mismatch: got {stored:#010x}, want {data_crc:#010x}"
            resume = self._damaged(f, bad[0], offset, bad[1])
            if resume is None:
                return
            buf, base, pos = b"", resume, 0
            f.seek(resume)

    def checkpoint(self) -> Checkpoint:
        """Return the fingerprint of every valid record read so far."""
        return Checkpoint(self.records, self.end, self.digest)

    def retract(self, data: bytes) -> None:
        """Uncount the record yielded last, whose data is ``data``.

        A caller found it is not an Event and stops there: counts and fingerprints then
        cover exactly the records before it.
        """
        self.records -= 1
        self.end = self.offset
        self.digest -= masked_crc32c(data)
        if self.checkpoints and self.checkpoints[-1].records > self.records:
            self.checkpoints.pop()

    def _stop(self, kind: DamageKind, offset: int, detail: str) -> None:
        if offset == 0 and self.records == 0 and kind == CRC_MISMATCH:
            kind = NOT_AN_EVENT_FILE
            detail = f"first record is invalid: {detail}"
        self.damage.append(Damage(self.path, kind, offset, self.records, detail))

    def _damaged(self, f: BinaryIO, kind: DamageKind, offset: int, detail: str) -> int | None:
        """Record damage at ``offset``; return where to resume, or None to stop."""
        self._stop(kind, offset, detail)
        if not self.resync:
            return None
        resume = find_next_record(f, offset + 1, self.size)
        if resume is None:
            return None
        self.damage[-1] = dataclasses.replace(self.damage[-1], resumed_at=resume)
        return resume


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


@functools.lru_cache(maxsize=1)
def _length_crc_tables() -> tuple[int, NDArray[np.uint32]]:
    """Return ``(crc0, tables)`` for the CRC-32C of any 8 bytes by table lookups.

    For any 8 bytes ``m``, ``crc32c(m) == crc0 ^ tables[0][m[0]] ^ ... ^ tables[7][m[7]]``.

    CRC-32C of a fixed-length message is affine over GF(2), so the contribution of each
    byte position can be tabulated once (8 x 256 entries).
    """
    import numpy as np

    crc0 = _crc(bytes(8))
    tables = np.empty((8, 256), dtype=np.uint32)
    for j in range(8):
        for b in range(256):
            tables[j, b] = _crc(bytes(j) + bytes((b,)) + bytes(7 - j)) ^ crc0
    return crc0, tables


def _u32_at_every_offset(buf: bytes, start: int, n: int) -> NDArray[np.uint32]:
    """Return the little-endian u32 at ``buf[start + i]`` for every ``i`` in ``range(n)``."""
    import numpy as np

    out = np.empty(n, dtype=np.uint32)
    for k in range(4):
        out[k::4] = np.frombuffer(buf, dtype="<u4", count=len(range(k, n, 4)), offset=start + k)
    return out


def _length_crc_hits(buf: bytes, max_length: int) -> NDArray[np.intp]:
    """Return, ascending, every ``i`` where ``buf[i:i+12]`` is a plausible record header.

    Plausible: the u64 length is at most ``max_length`` and ``buf[i+8:i+12]`` is the
    masked CRC of ``buf[i:i+8]``. Vectorised with numpy (imported here, because only
    resync needs it): the length filter drops almost every offset of random garbage, a
    zero length (zero-filled garbage) is compared with the one CRC it can have, and the
    CRC of the remaining headers is computed by table lookups for all of them at once,
    instead of one CRC call per byte offset in Python.
    """
    import numpy as np

    n = len(buf) - HEADER_LENGTH + 1
    if n <= 0:
        return np.empty(0, dtype=np.intp)
    crc0, tables = _length_crc_tables()
    low = _u32_at_every_offset(buf, 0, n)
    high = _u32_at_every_offset(buf, 4, n)
    stored = _u32_at_every_offset(buf, 8, n)
    # Array comparisons are ufunc calls, not operators: atheris traces every comparison
    # operator, and with whole arrays as operands that slows fuzzing down (tests/fuzz/).
    max_high, max_low = divmod(max(max_length, 0), 1 << 32)
    plausible = np.less(high, max_high) | (np.equal(high, max_high) & np.less_equal(low, max_low))
    empty = np.equal(low | high, 0)
    hits = [np.flatnonzero(empty & np.equal(stored, _masked(crc0)))]
    idx = np.flatnonzero(plausible & ~empty)
    if len(idx):
        octets = np.frombuffer(buf, dtype=np.uint8)
        crc = np.full(len(idx), crc0, dtype=np.uint32)
        for j in range(8):
            crc ^= tables[j].take(octets.take(idx + j))
        masked = ((crc >> 15) | (crc << 17)) + np.uint32(MASK_DELTA)
        hits.append(idx[np.equal(masked, stored.take(idx))])
    return np.sort(np.concatenate(hits))


def find_next_record(f: BinaryIO, start: int, size: int, window: int = 1 << 20) -> int | None:
    """Return the first offset >= ``start`` where a whole valid record begins, or None.

    A candidate must have a valid length checksum, fit in the first ``size`` bytes of
    the file, and have a valid data checksum. The scan reads pieces of 256 bytes
    doubling up to ``window`` bytes (a record right after the damage is found without
    reading far; a long stretch of garbage is scanned in big vectorised pieces), so
    memory stays bounded.
    """
    pos = start
    piece = min(256, window)
    while pos + HEADER_LENGTH + FOOTER_LENGTH <= size:
        f.seek(pos)
        buf = f.read(min(piece, size - pos) + HEADER_LENGTH - 1)
        if len(buf) < HEADER_LENGTH:
            return None
        max_length = size - pos - HEADER_LENGTH - FOOTER_LENGTH
        hits: list[int] = _length_crc_hits(buf, max_length).tolist()
        for i in hits:
            (length,) = _U64.unpack_from(buf, i)
            candidate = pos + i
            if candidate + HEADER_LENGTH + length + FOOTER_LENGTH > size:
                continue
            f.seek(candidate + HEADER_LENGTH)
            data = f.read(length)
            footer = f.read(FOOTER_LENGTH)
            if len(footer) == FOOTER_LENGTH and _masked(_crc(data)) == _U32.unpack(footer)[0]:
                return candidate
        pos += len(buf) - HEADER_LENGTH + 1
        piece = min(piece * 2, window)
    return None


def read_records(path: str | os.PathLike[str]) -> Iterator[bytes]:
    """Yield the data of every record of ``path``, raising at the first damage.

    The strict counterpart of :class:`RecordReader`, for callers that want an exception.

    Raises:
        TruncatedRecordError: the file ends inside a record (resumable).
        BadLengthCrcError, BadDataCrcError: a checksum fails (fatal for the file).
        OSError: the file cannot be read.
    """
    from tbrewrite.errors import BadDataCrcError, BadLengthCrcError, TruncatedRecordError

    reader = RecordReader(path)
    yield from reader
    if reader.damage:
        d = reader.damage[0]
        message = f"{d.path}: {d.detail} at byte {d.offset}"
        if d.kind == TRUNCATED:
            raise TruncatedRecordError(message, path=d.path, offset=d.offset)
        if "data checksum" in d.detail:
            raise BadDataCrcError(message, path=d.path, offset=d.offset)
        raise BadLengthCrcError(message, path=d.path, offset=d.offset)

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

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import google_crc32c

HEADER_LENGTH = 12
"""Bytes before the data: the u64 length and the u32 masked CRC of those 8 bytes."""
FOOTER_LENGTH = 4
"""Bytes after the data: the u32 masked CRC of the data."""
MASK_DELTA = 0xA282EAD8
DEFAULT_CHUNK_SIZE = 1 << 20

TRUNCATED = "truncated"
CRC_MISMATCH = "crc_mismatch"
NOT_AN_EVENT_FILE = "not_an_event_file"
INVALID_EVENT = "invalid_event"
DAMAGE_KINDS = (TRUNCATED, CRC_MISMATCH, NOT_AN_EVENT_FILE, INVALID_EVENT)

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_crc = google_crc32c.value


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
    return b"".join(
        (header, _U32.pack(masked_crc32c(header)), data, _U32.pack(masked_crc32c(data)))
    )


@dataclass(frozen=True)
class Damage:
    """One damaged stretch of an event file.

    Attributes:
        path: str. The event file.
        kind: str. ``"truncated"`` (the file ends inside a record), ``"crc_mismatch"``
            (a length or data checksum fails), ``"not_an_event_file"`` (the very first
            record is invalid) or ``"invalid_event"`` (checksums hold but the bytes are
            not an ``Event`` protobuf).
        offset: int. Byte offset of the first bad record.
        records_before: int. Valid records read from the file before ``offset``.
        detail: str. What exactly is wrong, e.g. ``"data checksum mismatch: got
            0x1234abcd, want 0x89ab0123"``.
        resumed_at: int or None. With resync, the offset of the next valid record,
            where reading continued (bytes ``offset`` to ``resumed_at`` were skipped);
            None when reading stopped at the damage.
    """

    path: str
    kind: str
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
            "kind": self.kind,
            "offset": self.offset,
            "records_before": self.records_before,
            "detail": self.detail,
            "resumed_at": self.resumed_at,
        }


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

    Attributes:
        damage: list of Damage found so far.
        records: int. Valid records yielded so far.
        offset: int. Byte offset where the most recently yielded record starts.
        size: int. File size in bytes when the reader opened it.

    Raises:
        OSError: if the file cannot be opened or read.

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
    ) -> None:
        self.path = os.fspath(path)
        self.resync = resync
        self.chunk_size = chunk_size
        self.damage: list[Damage] = []
        self.records = 0
        self.offset = 0
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        with open(self.path, "rb", buffering=0) as f:
            self.size = os.fstat(f.fileno()).st_size
            yield from self._read(f)

    def _read(self, f) -> Iterator[bytes]:  # noqa: ANN001 - a raw binary file
        chunk_size = self.chunk_size
        size = self.size
        crc = _crc
        unpack64 = _U64.unpack_from
        unpack32 = _U32.unpack_from
        buf = b""
        pos = 0  # position of the next record inside buf
        base = 0  # file offset of buf[0]
        eof = False
        while True:
            avail = len(buf) - pos
            if avail < HEADER_LENGTH and not eof:
                more = f.read(chunk_size)
                buf = buf[pos:] + more
                base += pos
                pos = 0
                eof = not more or base + len(buf) >= size
                continue
            offset = base + pos
            if avail == 0:
                if offset == 0:
                    self._stop(TRUNCATED, 0, "file is empty")
                return
            if avail < HEADER_LENGTH:
                resume = self._damaged(f, TRUNCATED, offset, "truncated record in header")
                if resume is None:
                    return
                buf, base, pos, eof = b"", resume, 0, False
                f.seek(resume)
                continue
            (length,) = unpack64(buf, pos)
            header_crc = _masked(crc(buf[pos : pos + 8]))
            (stored,) = unpack32(buf, pos + 8)
            if header_crc != stored:
                detail = f"length checksum mismatch: got {stored:#010x}, want {header_crc:#010x}"
                resume = self._damaged(f, CRC_MISMATCH, offset, detail)
                if resume is None:
                    return
                buf, base, pos, eof = b"", resume, 0, False
                f.seek(resume)
                continue
            need = HEADER_LENGTH + length + FOOTER_LENGTH
            if offset + need > size:
                part = "data" if offset + HEADER_LENGTH + length > size else "data crc"
                detail = (
                    f"truncated record in {part}: needs {need} bytes, "
                    f"{size - offset} left"
                )
                resume = self._damaged(f, TRUNCATED, offset, detail)
                if resume is None:
                    return
                buf, base, pos, eof = b"", resume, 0, False
                f.seek(resume)
                continue
            if avail < need:
                rest = need - avail
                buf = buf[pos:] + f.read(max(rest, chunk_size))
                base += pos
                pos = 0
                eof = base + len(buf) >= size
                if len(buf) < need:  # the file shrank while we read it
                    self._stop(TRUNCATED, offset, "file shrank while being read")
                    return
            start = pos + HEADER_LENGTH
            data = buf[start : start + length]
            (stored,) = unpack32(buf, start + length)
            data_crc = _masked(crc(data))
            if data_crc != stored:
                detail = f"data checksum mismatch: got {stored:#010x}, want {data_crc:#010x}"
                resume = self._damaged(f, CRC_MISMATCH, offset, detail)
                if resume is None:
                    return
                buf, base, pos, eof = b"", resume, 0, False
                f.seek(resume)
                continue
            pos += need
            self.offset = offset
            self.records += 1
            yield data

    def _stop(self, kind: str, offset: int, detail: str) -> None:
        if offset == 0 and self.records == 0 and kind == CRC_MISMATCH:
            kind = NOT_AN_EVENT_FILE
            detail = f"first record is invalid: {detail}"
        self.damage.append(Damage(self.path, kind, offset, self.records, detail))

    def _damaged(self, f, kind: str, offset: int, detail: str) -> int | None:  # noqa: ANN001
        """Record damage at ``offset``; return where to resume, or None to stop."""
        self._stop(kind, offset, detail)
        if not self.resync:
            return None
        resume = find_next_record(f, offset + 1, self.size)
        if resume is None:
            return None
        last = self.damage[-1]
        self.damage[-1] = Damage(
            last.path, last.kind, last.offset, last.records_before, last.detail, resume
        )
        return resume


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def find_next_record(f, start: int, size: int, window: int = 1 << 20) -> int | None:  # noqa: ANN001
    """Return the first offset >= ``start`` where a whole valid record begins, or None.

    A candidate must have a valid length checksum, fit in the file, and have a valid
    data checksum. The scan reads ``window``-sized pieces, so memory stays bounded.
    """
    pos = start
    while pos + HEADER_LENGTH + FOOTER_LENGTH <= size:
        f.seek(pos)
        buf = f.read(window + HEADER_LENGTH)
        limit = len(buf) - HEADER_LENGTH
        for i in range(0, max(limit + 1, 0)):
            (stored,) = _U32.unpack_from(buf, i + 8)
            if _masked(_crc(buf[i : i + 8])) != stored:
                continue
            (length,) = _U64.unpack_from(buf, i)
            candidate = pos + i
            if candidate + HEADER_LENGTH + length + FOOTER_LENGTH > size:
                continue
            here = f.tell()
            f.seek(candidate + HEADER_LENGTH)
            data = f.read(length)
            footer = f.read(FOOTER_LENGTH)
            f.seek(here)
            if len(footer) == FOOTER_LENGTH and _masked(_crc(data)) == _U32.unpack(footer)[0]:
                return candidate
        pos += max(limit + 1, 1)
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

"""Decoding an event file's records into typed :class:`Record` objects.

:class:`EventFileReader` wraps :class:`tbrewrite.events.framing.RecordReader` and
yields one :class:`Record` per valid record: its bytes, offset, and -- for the common
one-value shape -- its wire-level :data:`~tbrewrite.events.wire.Peek`; the ``Event``
protobuf is decoded only when asked for. A record whose checksums hold but whose bytes
do not decode as an ``Event`` stops the file like any other damage (``invalid_event``;
``not_an_event_file`` if it is the first record), as TensorBoard's data server marks
such a file dead (``data/server/event_file.rs``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2

from tbrewrite.errors import InvalidEventError
from tbrewrite.events.framing import (
    FOOTER_LENGTH,
    HEADER_LENGTH,
    INVALID_EVENT,
    NOT_AN_EVENT_FILE,
    Checkpoint,
    Damage,
    FileStamp,
    RecordReader,
)
from tbrewrite.events.wire import WALL_TIME, Peek, peek

Event = event_pb2.Event
_VALIDATE_ARENA_BYTES = 4 << 20


class Record:
    """One valid record of an event file.

    Attributes:
        data: bytes. The serialized ``Event`` (the record's payload, unframed).
        offset: int. Byte offset of the record's frame in its file.
        peek: Peek or None. Wall_time, step and tag read from the bytes, for a record of
            the common one-value shape (:func:`tbrewrite.events.wire.peek`); else None.
    """

    __slots__ = ("_event", "data", "offset", "peek")

    def __init__(self, data: bytes, offset: int, peek: Peek | None, event: event_pb2.Event | None) -> None:
        self.data = data
        self.offset = offset
        self.peek = peek
        self._event = event

    @property
    def wall_time(self) -> float:
        """The event's wall_time: float seconds since the Unix epoch."""
        if self.peek is not None:
            return float(self.peek[WALL_TIME])
        wall_time: float = self.event.wall_time
        return wall_time

    @property
    def event(self) -> event_pb2.Event:
        """The decoded ``Event`` (decoded on first use, then kept).

        Raises:
            InvalidEventError: the bytes are not an Event; only possible for a record
                read with ``check=False`` (the reader checks every other one).
        """
        if self._event is None:
            try:
                self._event = Event.FromString(self.data)
            except DecodeError as e:
                raise InvalidEventError(
                    f"record at byte {self.offset} is not an Event protobuf ({e})", offset=self.offset
                ) from None
        return self._event


class EventFileReader:
    """Stream the :class:`Record` objects of one event file, recording damage.

    Args:
        path: str or PathLike. The event file.
        resync: bool. After damage, continue from the next valid record.
        limit: int or None. Read only the first ``limit`` bytes (see
            :class:`tbrewrite.events.framing.RecordReader`).
        check: bool. Parse every peeked record once to prove it is an ``Event``
            (about 0.5 us each, into one reused message). ``False`` is for a second
            pass over bytes a first pass has checked, whose :attr:`checkpoints` the
            caller compares with the first pass's.
        peek: bool. Peek common-shape records instead of decoding them (False decodes
            every record as it is read).

    Attributes:
        damage: list of Damage, once iteration ends.
        records: int. Valid Event records read.
        offset: int. Byte offset where the most recently yielded record starts.
        size: int. Bytes the reader may read (the file size at open, at most ``limit``).
        file_size: int. The file size when it was opened.
        checkpoints: fingerprints of the records read (see
            :class:`tbrewrite.events.framing.Checkpoint`).

    Raises:
        OSError: the file cannot be opened or read; ``filename`` is set.

    Example:
        >>> for record in EventFileReader("events.out.tfevents.1700000000.host"):  # doctest: +SKIP
        ...     print(record.offset, record.event.step)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        resync: bool = False,
        limit: int | None = None,
        check: bool = True,
        peek: bool = True,
    ) -> None:
        self.path = os.fspath(path)
        self._records = RecordReader(path, resync=resync, limit=limit)
        self.resync = resync
        self.check = check
        self.peek = peek
        self.invalid: list[Damage] = []
        self._skipped = 0

    @property
    def damage(self) -> list[Damage]:
        """Every damage found so far (framing and undecodable records), by offset."""
        return sorted(self._records.damage + self.invalid, key=lambda d: d.offset)

    @property
    def records(self) -> int:
        """Valid records read so far, less those skipped (with resync) as not an Event."""
        return self._records.records - self._skipped

    @property
    def offset(self) -> int:
        """Byte offset where the most recently read record starts."""
        return self._records.offset

    @property
    def size(self) -> int:
        """Bytes read: the file's size when it was opened, at most the ``limit`` given."""
        return self._records.size

    @property
    def file_size(self) -> int:
        """The file's size when it was opened (the ``limit`` aside)."""
        return self._records.file_size

    @property
    def stamp(self) -> FileStamp | None:
        """The file as it was opened (None until it is)."""
        return self._records.stamp

    @property
    def periodic_checkpoints(self) -> list[Checkpoint]:
        """The fingerprints taken every so many records so far.

        Every :data:`~tbrewrite.events.framing.CHECKPOINT_RECORDS` records; this is the
        reader's own list: it grows while reading.
        """
        return self._records.checkpoints

    @property
    def checkpoints(self) -> list[Checkpoint]:
        """The periodic fingerprints, then one of every record read so far.

        Periodic: every :data:`~tbrewrite.events.framing.CHECKPOINT_RECORDS` records.
        """
        return [*self._records.checkpoints, self._records.checkpoint()]

    def events(self) -> Iterator[event_pb2.Event]:
        """Yield every valid record's decoded ``Event``, in file order."""
        for record in self._iter(lazy=False):
            yield record.event

    def __iter__(self) -> Iterator[Record]:
        """Yield every valid record; with ``peek``, common-shape ones peeked and not decoded."""
        return self._iter(lazy=self.peek)

    def _invalid(self, data: bytes, error: DecodeError) -> None:
        offset = self._records.offset
        kind = NOT_AN_EVENT_FILE if offset == 0 else INVALID_EVENT
        detail = f"record is not an Event protobuf ({error})"
        # With resync, reading goes on at the very next record.
        resumed_at = offset + HEADER_LENGTH + len(data) + FOOTER_LENGTH
        self.invalid.append(
            Damage(self.path, kind, offset, self.records - 1, detail, resumed_at if self.resync else None)
        )

    def _iter(self, *, lazy: bool) -> Iterator[Record]:
        parse = Event.FromString
        check = self.check
        # One reused message checks peeked records; upb keeps what each parse allocates
        # in the message's arena until the message goes, so it is replaced every few MiB
        # to keep memory flat.
        validate = Event().ParseFromString
        validated = 0
        reader = self._records
        for data in reader:
            peeked = peek(data) if lazy else None
            event = None
            try:
                if peeked is None:
                    event = parse(data)
                elif check:
                    validated += len(data)
                    if validated > _VALIDATE_ARENA_BYTES:
                        validate = Event().ParseFromString
                        validated = len(data)
                    validate(data)
            except DecodeError as e:
                self._invalid(data, e)
                if not self.resync:
                    reader.retract(data)
                    return
                self._skipped += 1
                continue
            yield Record(data, reader.offset, peeked, event)

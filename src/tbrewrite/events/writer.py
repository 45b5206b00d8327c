"""Writing event files so that TensorBoard never sees half of one.

Every output file is written under a temporary name without ``tfevents`` in it (so
TensorBoard's discovery, which matches ``tfevents`` in the basename, ignores it),
flushed, fsynced, and renamed into place; the directory is fsynced after the rename.
Every file starts with ``Event{file_version: "brain.Event:2"}``, as every TensorFlow
and TensorBoard writer does (``tensorboard/summary/writer/event_file_writer.py``).

Grouping the files of one command, so that an error removes them all, is
:mod:`tbrewrite.output.transaction`'s job.
"""

from __future__ import annotations

import contextlib
import os
import struct
from pathlib import Path
from types import TracebackType

from tensorboard.compat.proto import event_pb2

from tbrewrite.events.framing import masked_crc32c
from tbrewrite.events.summary import FILE_VERSION

EVENT_FILE_MARKER = "tfevents"
"""TensorBoard loads a file only if its basename holds this (``io_wrapper.py``)."""
WRITER_NAME = "tbrewrite"
TEMP_PREFIX = ".tbrewrite-partial-"
_BUFFER = 1 << 20
_DIRECT = 1 << 16
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")


def output_file_name(wall_time: float, suffix: str = "tbrewrite") -> str:
    """Return a deterministic event-file name for an output whose data starts at ``wall_time``.

    The name has TensorFlow's ``events.out.tfevents.<10-digit seconds>.<suffix>`` shape
    so TensorBoard orders it by start time among other files; it is derived only from
    the input (the first input event's wall_time), never from the clock or host.

    Args:
        wall_time: float seconds since the Unix epoch.
        suffix: str. The part after the seconds.
    """
    return f"events.out.tfevents.{int(wall_time):010d}.{suffix}"


def temp_path(path: Path) -> Path:
    """Return where an output file is written before it is complete.

    That is a hidden name beside ``path`` without ``tfevents``, which TensorBoard never loads.
    """
    return path.with_name(TEMP_PREFIX + path.name.replace(EVENT_FILE_MARKER, "ev"))


class EventFileWriter:
    """Write one event file atomically: temporary name, fsync, rename.

    The first record written is a ``file_version`` event at ``wall_time``. Records are
    framed here (masked CRC32C via the C library) and buffered in 1 MiB writes.

    Args:
        path: str or PathLike. The final path; its directory must exist.
        wall_time: float seconds since the Unix epoch, for the file_version event.
        header: bytes or None. A serialized ``file_version`` Event to write as the
            first record instead of the writer's own (``wall_time`` is then unused):
            a rewrite of a file that starts with one keeps it byte-identical.

    Example:
        >>> with EventFileWriter(out_dir / name, wall_time=t0) as w:  # doctest: +SKIP
        ...     w.write_event(event)
    """

    def __init__(self, path: str | os.PathLike[str], *, wall_time: float, header: bytes | None = None) -> None:
        self.path = Path(path)
        self.temp_path = temp_path(self.path)
        self._file = open(self.temp_path, "wb", buffering=_BUFFER)  # noqa: SIM115 - closed by close()/abort()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._headers: dict[int, bytes] = {}
        self.records = 0
        self.bytes = 0
        self.closed = False
        if header is not None:
            self.write_record(header)
            return
        event = event_pb2.Event(wall_time=wall_time, file_version=FILE_VERSION)
        event.source_metadata.writer = WRITER_NAME
        self.write_event(event)

    def write_record(self, data: bytes) -> None:
        """Frame and append one record (the serialized bytes of an ``Event``).

        Records under 64 KiB are gathered and written 1 MiB at a time, larger ones are
        written as they are (no copy); the 12-byte header of each record length is
        computed once (scalar logs repeat a few lengths).
        """
        n = len(data)
        header = self._headers.get(n)
        if header is None:
            length = _U64.pack(n)
            header = self._headers[n] = length + _U32.pack(masked_crc32c(length))
        footer = _U32.pack(masked_crc32c(data))
        if n >= _DIRECT:  # large: no copy into the batch
            self._flush()
            write = self._file.write
            write(header)
            write(data)
            write(footer)
        else:
            self._pending.append(header + data + footer)
            self._pending_bytes += n + 16
            if self._pending_bytes >= _BUFFER:
                self._flush()
        self.records += 1
        self.bytes += n + 16

    def _flush(self) -> None:
        if self._pending:
            self._file.write(b"".join(self._pending))
            self._pending.clear()
            self._pending_bytes = 0

    def write_event(self, event: event_pb2.Event) -> None:
        """Serialize and append one ``Event``."""
        self.write_record(event.SerializeToString())

    def flush(self) -> None:
        """Hand everything written so far to the OS (no fsync); the file stays temporary."""
        self._flush()
        self._file.flush()

    def native_fd(self) -> int:
        """Flush and return the file's descriptor, for the native core to append records to.

        Until :meth:`native_wrote`, nothing else may be written through this writer.
        """
        self.flush()
        return self._file.fileno()

    def native_wrote(self, records: int, nbytes: int) -> None:
        """Count ``records`` records of ``nbytes`` bytes (frames included) appended through :meth:`native_fd`."""
        self.records += records
        self.bytes += nbytes

    def finish(self) -> Path:
        """Flush, fsync and close the file, still under its temporary name; return it."""
        if not self._file.closed:
            self.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        return self.temp_path

    def close(self) -> Path:
        """Finish the file and rename it into place; return its final path."""
        if self.closed:
            return self.path
        self.finish()
        os.replace(self.temp_path, self.path)
        fsync_dir(self.path.parent)
        self.closed = True
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; the final path is never created."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temp_path)

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def fsync_dir(path: Path) -> None:
    """Fsync a folder so renames inside it are durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

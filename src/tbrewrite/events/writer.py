"""Writing event files so that TensorBoard never sees half of one.

Every output file is written under a temporary name without ``tfevents`` in it (so
TensorBoard's discovery, which matches ``tfevents`` in the basename, ignores it),
flushed, fsynced, and renamed into place; the directory is fsynced after the rename.
Every file starts with ``Event{file_version: "brain.Event:2"}``, as every TensorFlow
and TensorBoard writer does (``tensorboard/summary/writer/event_file_writer.py``).

An :class:`OutputSet` groups the files of one command: if the command fails, every
temporary file is removed, every file it already published is removed again, and so are
the directories it created, so an error leaves nothing behind.
"""

from __future__ import annotations

import errno
import os
import struct
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tensorboard.compat.proto import event_pb2

from tbrewrite.errors import OutputError
from tbrewrite.events.reader import FILE_VERSION
from tbrewrite.events.framing import masked_crc32c

WRITER_NAME = "tbrewrite"
TEMP_PREFIX = ".tbrewrite-partial-"
_BUFFER = 1 << 20
_DIRECT = 1 << 16
_SYNC_THREADS = 8
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

    def __init__(
        self, path: str | os.PathLike[str], *, wall_time: float, header: bytes | None = None
    ) -> None:
        self.path = Path(path)
        self.temp_path = self.path.with_name(TEMP_PREFIX + self.path.name.replace("tfevents", "ev"))
        self._file = open(self.temp_path, "wb", buffering=_BUFFER)
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

    def close(self) -> Path:
        """Flush, fsync and rename the file into place; return its final path."""
        if self.closed:
            return self.path
        self.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self.temp_path, self.path)
        fsync_dir(self.path.parent)
        self.closed = True
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file; the final path is never created."""
        if self.closed:
            return
        self.closed = True
        try:
            self._file.close()
        except OSError:
            pass
        try:
            os.unlink(self.temp_path)
        except FileNotFoundError:
            pass

    def __enter__(self) -> EventFileWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()


def fsync_dir(path: Path) -> None:
    """fsync a folder so renames inside it are durable (a no-op where unsupported)."""
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


class OutputSet:
    """The files and directories one command creates, removed again if it fails.

    Use as a context manager: on an exception (including KeyboardInterrupt) every
    writer still open is aborted, every file published is deleted, and every directory
    created is removed (deepest first, only if empty). Files published in the
    background (``publish(..., wait=False)``: fsync and rename on a thread, so the
    next file is being written while the disk syncs this one) are all waited for on
    leaving the ``with`` block; a failure there rolls everything back too.
    """

    def __init__(self) -> None:
        self._writers: list[EventFileWriter] = []
        self._files: list[Path] = []
        self._dirs: list[Path] = []
        self._pool: ThreadPoolExecutor | None = None
        self._background: list[Future[Path]] = []

    def makedirs(self, path: str | os.PathLike[str]) -> Path:
        """Create ``path`` and missing parents, remembering what was created."""
        path = Path(path)
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            d.mkdir()
            self._dirs.append(d)
        return path

    def open(self, path: str | os.PathLike[str], *, wall_time: float) -> EventFileWriter:
        """Open an :class:`EventFileWriter` at ``path`` that this set will clean up."""
        self.makedirs(Path(path).parent)
        writer = EventFileWriter(path, wall_time=wall_time)
        self._writers.append(writer)
        return writer

    def publish(self, writer: EventFileWriter, *, wait: bool = True) -> Path:
        """Close ``writer`` (fsync, rename into place); return its final path.

        With ``wait=False`` the fsync and rename run on a background thread; the file
        is in place once the ``with`` block is left (or :meth:`wait` returns).
        """
        self._files.append(writer.path)
        if wait:
            return writer.close()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="tbrewrite-fsync")
        self._background.append(self._pool.submit(writer.close))
        return writer.path

    def wait(self) -> None:
        """Wait for every background publish; raise the first error."""
        errors = []
        for future in self._background:
            try:
                future.result()
            except BaseException as e:  # noqa: BLE001 - re-raised below
                errors.append(e)
        self._background.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if errors:
            raise errors[0]

    def add_file(self, path: str | os.PathLike[str]) -> None:
        """Remember a file created by other means (e.g. a copied non-event file)."""
        self._files.append(Path(path))

    def rollback(self) -> None:
        """Delete everything this set created."""
        try:
            self.wait()
        except BaseException:  # noqa: BLE001 - rolling back anyway
            pass
        for w in self._writers:
            w.abort()
        for f in reversed(self._files):
            try:
                os.unlink(f)
            except FileNotFoundError:
                pass
        for d in reversed(self._dirs):
            try:
                d.rmdir()
            except OSError:
                pass

    def __enter__(self) -> OutputSet:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is not None:
            self.rollback()
            return
        try:
            self.wait()
        except BaseException:
            self.rollback()
            raise


def check_output_folder(src: Path, out: Path, *, force: bool, src_label: str, out_label: str) -> None:
    """Refuse an output folder that TensorBoard would load together with the input.

    Args:
        src: Path. The input folder (must exist).
        out: Path. The output folder.
        force: bool. Allow ``out`` to hold files already.
        src_label, out_label: str. How the messages name them (``SRC``, ``--out``...).

    Raises:
        OutputError: ``out`` is ``src``, inside it, contains it, is a file, or holds
            files without ``force``.
        OSError: ``ELOOP`` if a path runs through a symlink loop.
    """
    try:
        rs, ro = src.resolve(), out.resolve()
    except RuntimeError:  # Python < 3.13 raises this for a symlink loop
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(out)) from None
    if rs == ro:
        raise OutputError(f"{out}: {out_label} is the same folder as {src_label}; choose a new folder")
    if rs in ro.parents:
        raise OutputError(f"{out}: {out_label} is inside {src_label}; TensorBoard would load both")
    if ro in rs.parents:
        raise OutputError(f"{out}: {out_label} contains {src_label}; choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: {out_label} exists and is not a folder")
    if out.is_dir() and not force and any(files for _, _, files in os.walk(out)):
        raise OutputError(f"{out}: {out_label} already holds files; use --force to replace them")

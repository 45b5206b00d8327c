"""Rewriting one event file with tags renamed or dropped, everything else byte-identical.

Records the rules do not touch -- the input's ``file_version`` record included -- are
written back as their original bytes. A renamed value keeps its plugin metadata, and a
``display_name`` equal to the old tag becomes the new tag. The first value of every
renamed tag in the output file carries the tag's metadata, since TensorBoard reads it from
there (``plugin_event_accumulator.py`` ``_ProcessEvent``; the Python ``EventFileLoader``
keeps it per file, the Rust data server per series, ``run.rs``).

Every error while writing names the output file being written (the event file, or the
staged file of an in-place rename), never the input: ``out/run/...: File too large``.
:func:`mirror_file` copies the other files of a tree: a symlink as a symlink, never
followed; a named pipe, socket or device is not copied.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, summary_pb2

from tbrewrite.events.framing import RecordReader
from tbrewrite.events.writer import fsync_dir
from tbrewrite.events.writer import TEMP_PREFIX, EventFileWriter

MAX_NEEDLES = 64
"""Up to this many tags of interest, records are searched for their bytes before parsing."""

_COPY_CHUNK = 1 << 20


@dataclass
class FileResult:
    """What rewriting one event file did.

    Attributes:
        name: str. The file name (input and output).
        events_in: int. Valid records read (file_version included).
        events_out: int. Records written (file_version included).
        values_renamed: int. Summary values whose tag changed.
        values_dropped: int. Summary values removed.
        changed: bool. Some record differs from the input's (damage aside).
        output: Path or None. The file written; None if nothing was (no valid record,
            or in place and unchanged).
    """

    name: str
    events_in: int = 0
    events_out: int = 0
    values_renamed: int = 0
    values_dropped: int = 0
    changed: bool = False
    output: Path | None = None


def rewrite_file(
    src: Path,
    dst: Path,
    changes: dict[str, str | None],
    metadata: dict[str, summary_pb2.SummaryMetadata],
    *,
    end: int | None = None,
    keep_unchanged: bool = True,
    resync: bool = False,
) -> FileResult:
    """Write ``src`` to ``dst`` with tags renamed or dropped per ``changes``.

    The write is atomic (:class:`tbrewrite.events.writer.EventFileWriter`). The input's leading
    ``file_version`` record is kept byte-identical; a file without one gets the writer's
    own at its first event's wall_time. Damage ends the input (unless ``resync``): the
    output holds what came before it. A record holding none of the bytes of the tags
    that matter (renamed, dropped, or the target of a rename) cannot hold such a tag, so
    it is copied without being parsed.

    Args:
        src: Path. The input event file.
        dst: Path. The output path; its folder must exist.
        changes: dict tag -> new tag, or None to drop the tag's values. Other tags keep
            their names and their records.
        metadata: dict tag -> SummaryMetadata: what to put on the first value of a
            renamed tag in this file when that value carries none.
        end: int or None. Stop at the record starting at this byte offset (where the
            first pass found damage, e.g. a record that is not an ``Event``).
        keep_unchanged: bool. If False and no record changed, write nothing (in place).
        resync: bool. Read past damage.

    Returns:
        FileResult.

    Raises:
        OSError: reading or writing failed, naming ``src`` or ``dst`` accordingly;
            ``dst`` is not created.
    """
    result = FileResult(src.name)
    targets = {new for new in changes.values() if new is not None}
    interesting = set(changes) | targets
    needles = None
    if not resync and len(interesting) <= MAX_NEEDLES:
        needles = tuple(t.encode() for t in sorted(interesting))
    written: set[str] = set()
    writer: EventFileWriter | None = None
    reader = RecordReader(src, resync=resync)
    try:
        for data in _records(reader, src):
            if end is not None and reader.offset >= end:
                break
            if writer is not None and needles is not None and not any(n in data for n in needles):
                result.events_in += 1
                writer.write_record(data)
                continue
            try:
                event = event_pb2.Event.FromString(data)
            except DecodeError:
                if resync:
                    continue  # the first pass reported it
                break
            result.events_in += 1
            if writer is None:
                header = data if event.WhichOneof("what") == "file_version" else None
                writer = EventFileWriter(dst, wall_time=event.wall_time, header=header)
                if header is not None:
                    continue
                result.changed = True
            _rewrite_event(event, data, writer, changes, metadata, targets, written, result)
        if writer is None:
            return result
        result.events_out = writer.records
        if result.changed or keep_unchanged:
            result.output = writer.close()
        else:
            writer.abort()
    except BaseException as e:
        if writer is not None:
            writer.abort()
        if isinstance(e, OSError):
            raise _naming_output(e, src, dst) from None
        raise
    return result


def _records(reader: RecordReader, src: Path) -> Iterator[bytes]:
    """Yield ``reader``'s records; an error while reading names ``src``."""
    records = iter(reader)
    while True:
        try:
            data = next(records)
        except StopIteration:
            return
        except OSError as e:
            raise _naming(e, src) from None
        yield data


def _naming(e: OSError, path: Path) -> OSError:
    """Return ``e`` naming ``path`` (itself if it has no errno to carry over)."""
    if e.errno is None:
        return e
    return OSError(e.errno, e.strerror, str(path))


def _naming_output(e: OSError, src: Path, dst: Path) -> OSError:
    """Return ``e`` naming ``dst``, unless it names ``src`` (an error while reading)."""
    if e.filename is not None and os.fspath(e.filename) == os.fspath(src):
        return e
    return _naming(e, dst)


def _rewrite_event(
    event: event_pb2.Event,
    raw: bytes,
    writer: EventFileWriter,
    changes: dict[str, str | None],
    metadata: dict[str, summary_pb2.SummaryMetadata],
    targets: set[str],
    written: set[str],
    result: FileResult,
) -> None:
    """Write one event, its values renamed/dropped; unchanged events as their raw bytes.

    ``written`` holds the rename targets whose first value in this file is written.
    """
    if event.WhichOneof("what") != "summary":
        writer.write_record(raw)
        return
    changed = False
    drop: list[int] = []
    for k, value in enumerate(event.summary.value):
        tag = value.tag
        new = changes.get(tag, tag)
        if new is None:
            drop.append(k)
            continue
        if new == tag:
            if tag in targets:
                written.add(tag)  # a merge target: its own first value comes first
            continue
        value.tag = new
        changed = True
        result.values_renamed += 1
        if value.HasField("metadata"):
            if value.metadata.display_name == tag:
                value.metadata.display_name = new
        elif new not in written and tag in metadata:
            value.metadata.CopyFrom(metadata[tag])
            if value.metadata.display_name == tag:
                value.metadata.display_name = new
        written.add(new)
    if drop:
        for k in reversed(drop):
            del event.summary.value[k]
        result.values_dropped += len(drop)
        result.changed = True
        if not event.summary.value:
            return
        changed = True
    if changed:
        result.changed = True
        writer.write_event(event)
    else:
        writer.write_record(raw)


def copy_prefix(src: Path, dst: Path, length: int) -> None:
    """Copy the first ``length`` bytes of ``src`` to ``dst`` atomically.

    Like :class:`tbrewrite.events.writer.EventFileWriter`: a temporary name without
    ``tfevents``, fsync, rename. Used for event files the rules do not touch: their
    valid records, byte for byte.

    Raises:
        OSError: reading or writing failed (naming ``src`` or ``dst`` accordingly), or
            ``src`` is shorter than ``length``; ``dst`` is not created.
    """
    temp = dst.with_name(TEMP_PREFIX + dst.name.replace("tfevents", "ev"))
    try:
        with open(src, "rb") as fin, open(temp, "wb") as fout:
            _copy_bytes(fin, fout, src, length)
            os.fsync(fout.fileno())
        os.replace(temp, dst)
        fsync_dir(dst.parent)
    except BaseException as e:
        temp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _naming_output(e, src, dst) from None
        raise


def _copy_bytes(fin, fout, src: Path, length: int | None) -> None:  # noqa: ANN001 - binary files
    """Copy ``length`` bytes (None: all) from ``fin`` to ``fout``; a read error names ``src``."""
    left = length
    while left is None or left:
        try:
            chunk = fin.read(_COPY_CHUNK if left is None else min(left, _COPY_CHUNK))
        except OSError as e:
            raise _naming(e, src) from None
        if not chunk:
            if left is None:
                break
            raise OSError(errno.EIO, "file shrank while being copied", str(src))
        fout.write(chunk)
        if left is not None:
            left -= len(chunk)
    fout.flush()


_SPECIAL = (
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file(path: Path) -> str | None:
    """Return what ``path`` is if it is a file :func:`mirror_file` does not copy, else None.

    Named pipes, sockets and devices are not copied: reading one could block forever
    or never end. Symlinks (not followed) and regular files are copied.

    Raises:
        OSError: ``path`` cannot be examined (``lstat``).
    """
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode) or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return next((why for test, why in _SPECIAL if test(mode)), "not a regular file")


def mirror_file(src: Path, dst: Path) -> None:
    """Copy one non-event file of a tree (not a :func:`special_file`) to ``dst``.

    A symlink is copied as a symlink with the same target (``os.readlink``), never
    followed, so a dangling or looping one is copied too. A regular file is copied with
    its permission bits and times (:func:`shutil.copystat`). Anything already at
    ``dst`` (a file or symlink; ``--force``) is replaced.

    Args:
        src: Path. The file to copy (not followed if a symlink).
        dst: Path. Where to copy it; its folder must exist.

    Raises:
        OSError: reading ``src`` or writing ``dst`` failed, naming the one that failed.
    """
    target = os.readlink(src) if os.path.islink(src) else None
    try:
        if os.path.lexists(dst) and not stat.S_ISDIR(os.lstat(dst).st_mode):
            dst.unlink()
        if target is not None:
            os.symlink(target, dst)
            return
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            _copy_bytes(fin, fout, src, None)
        shutil.copystat(src, dst)
    except OSError as e:
        raise _naming_output(e, src, dst) from None

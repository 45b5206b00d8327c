"""Copying files into an output tree.

A valid prefix of an event file, and the other files of a logdir (symlinks as symlinks,
never followed; no pipes, sockets or devices).

Every error names the file that failed: the input while reading, the output while
writing (``out/run/...: File too large``).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from tbrewrite.events.framing import FileStamp
from tbrewrite.events.writer import fsync_dir, temp_path

_COPY_CHUNK = 1 << 20


def naming(e: OSError, path: Path) -> OSError:
    """Return ``e`` naming ``path`` (itself if it has no errno to carry over)."""
    if e.errno is None:
        return e
    return OSError(e.errno, e.strerror, str(path))


def naming_output(e: OSError, src: Path, dst: Path) -> OSError:
    """Return ``e`` naming ``dst``, unless it names ``src`` (an error while reading)."""
    if e.filename is not None and os.fspath(e.filename) == os.fspath(src):
        return e
    return naming(e, dst)


def copy_prefix(src: Path, dst: Path, length: int, stamp: FileStamp | None) -> bool:
    """Copy the first ``length`` bytes of ``src`` to ``dst`` atomically, if unchanged.

    Like :class:`tbrewrite.events.writer.EventFileWriter`: a temporary name without
    ``tfevents``, fsync, rename. Used for event files the rules do not touch: their
    valid records, byte for byte, as a scan read them.

    Args:
        src: Path. The file to copy from.
        dst: Path. The file to create.
        length: int. Bytes to copy.
        stamp: FileStamp or None. ``src`` as the scan saw it; if the file opened now
            differs (replaced, truncated, appended to), nothing is copied.

    Returns:
        bool: True if copied; False if ``src`` changed since its scan (the caller then
        rewrites it with the checks of :mod:`tbrewrite.engine.rewrite`).

    Raises:
        OSError: reading or writing failed (naming ``src`` or ``dst`` accordingly);
            ``dst`` is not created.
    """
    temp = temp_path(dst)
    try:
        with open(src, "rb") as fin:
            if stamp is None or FileStamp.of(fin.fileno()) != stamp:
                return False
            with open(temp, "wb") as fout:
                _copy_bytes(fin, fout, src, length)
                os.fsync(fout.fileno())
        os.replace(temp, dst)
        fsync_dir(dst.parent)
    except BaseException as e:
        temp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise naming_output(e, src, dst) from None
        raise
    return True


def _copy_bytes(fin: BinaryIO, fout: BinaryIO, src: Path, length: int | None) -> None:
    """Copy ``length`` bytes (None: all) from ``fin`` to ``fout``; a read error names ``src``."""
    left = length
    while left is None or left:
        try:
            chunk = fin.read(_COPY_CHUNK if left is None else min(left, _COPY_CHUNK))
        except OSError as e:
            raise naming(e, src) from None
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
        raise naming_output(e, src, dst) from None

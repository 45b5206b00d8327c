"""The one transaction layer: every file a command creates, published or rolled back.

A :class:`Transaction` groups the files and folders one command creates. Event files are
written under temporary names without ``tfevents`` (:class:`tbrewrite.events.writer.
EventFileWriter`), fsynced, and renamed into place; if the command fails -- an error,
Ctrl-C, SIGTERM -- every temporary file is removed, every file already published is
removed again, and so are the folders it created, so an error leaves nothing behind.
In-place commands publish through :mod:`tbrewrite.output.swap` instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tbrewrite.errors import OutputError
from tbrewrite.events.writer import EventFileWriter, fsync_dir, temp_path
from tbrewrite.output.files import mirror_file

_SYNC_THREADS = 8


@dataclass(frozen=True)
class Staged:
    """A complete output file, fsynced under its temporary name, not yet published.

    Attributes:
        temp: Path. Where it is (a name TensorBoard never loads).
        final: Path. Where publishing renames it.
    """

    temp: Path
    final: Path


class Transaction:
    """The files and folders one command creates, published together or removed.

    Use as a context manager: on an exception (including KeyboardInterrupt and
    :class:`tbrewrite.errors.Terminated`) every writer still open is aborted, every
    staged file deleted, every file published deleted again, and every folder created
    removed (deepest first, only if empty). Leaving the block normally waits for the
    files published in the background.

    A worker process stages its files (:meth:`stage`) and hands the :class:`Staged`
    records and the folders it made to the parent, whose transaction adopts them
    (:meth:`adopt`) and publishes them once every worker has succeeded, so a failure
    anywhere removes everything.

    Args:
        root: Path or None. The output's root (OUT, or LOGDIR in place): every folder
            made and every file written must lie inside its real path, so a symlink in
            the output tree can never lead a write (or a stale-file deletion) elsewhere.

    Raises:
        OutputError: from any method creating a file or folder whose real path would lie
            outside ``root``.
    """

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._real_root = os.path.realpath(root) if root is not None else None
        self._writers: list[EventFileWriter] = []
        self.staged: list[Staged] = []
        self._files: list[Path] = []
        self.created: list[Path] = []
        self._owned: list[Path] = []
        self._pool: ThreadPoolExecutor | None = None
        self._background: list[Future[None]] = []

    def confine(self, path: str | os.PathLike[str], *, folder: bool = False) -> Path:
        """Return ``path`` if writing it stays inside the root's real path.

        Args:
            path: a file about to be written (its folder is resolved, so replacing a
                symlink itself is allowed), or a folder.
            folder: bool. ``path`` is a folder about to be made or written into: it is
                resolved whole.

        Raises:
            OutputError: a symlink on the way leads outside the root.
        """
        path = Path(path)
        if self._real_root is None:
            return path
        real = os.path.realpath(path) if folder else os.path.join(os.path.realpath(path.parent), path.name)
        if real != self._real_root and not real.startswith(self._real_root.rstrip(os.sep) + os.sep):
            raise OutputError(
                f"{path}: leads outside {self.root} (to {real}) through a symlink; "
                "nothing is written outside the output folder: remove the symlink"
            )
        return path

    def makedirs(self, path: str | os.PathLike[str]) -> Path:
        """Create ``path`` and missing parents, remembering what was created."""
        path = self.confine(path, folder=True)
        missing = []
        p = path
        while not p.exists():
            missing.append(p)
            if p.parent == p:
                break
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:  # another worker process made it first
                if not d.is_dir():
                    raise
                continue
            self.created.append(d)
        return path

    def open(self, path: str | os.PathLike[str], *, wall_time: float, header: bytes | None = None) -> EventFileWriter:
        """Open an :class:`EventFileWriter` for ``path`` (folders made as needed).

        Args:
            path: the final path; the file is written under a temporary name beside it.
            wall_time: float seconds, for the writer's own ``file_version`` event.
            header: bytes or None. A serialized ``file_version`` Event to start with
                instead (kept byte for byte).
        """
        self.makedirs(Path(path).parent)
        self.confine(path)
        writer = EventFileWriter(path, wall_time=wall_time, header=header)
        self._writers.append(writer)
        return writer

    def stage(self, writer: EventFileWriter) -> Staged:
        """Finish ``writer`` (flush, fsync) without publishing it."""
        staged = Staged(writer.finish(), writer.path)
        self.staged.append(staged)
        return staged

    def stage_copy(self, src: Path, dst: Path) -> Staged:
        """Copy a non-event file to a temporary name beside ``dst``, to publish with the rest.

        A symlink is copied as a symlink, never followed (:func:`mirror_file`).

        Raises:
            OutputError: ``dst`` lies outside the root.
            OSError: reading ``src`` or writing failed, naming the file.
        """
        self.makedirs(dst.parent)
        self.confine(dst)
        staged = Staged(temp_path(dst), dst)
        self.staged.append(staged)
        mirror_file(src, staged.temp)
        return staged

    def adopt(self, staged: list[Staged], created: list[Path]) -> None:
        """Take over files staged and folders made elsewhere (a worker process)."""
        self.staged.extend(staged)
        self.created.extend(created)

    def publish(self, staged: Staged, *, wait: bool = True) -> Path:
        """Rename a staged file into place (then fsync its folder); return its path.

        With ``wait=False`` the folder's fsync runs on a background thread; it is done
        once the ``with`` block is left (or :meth:`wait` returns).
        """
        self.confine(staged.final)
        os.replace(staged.temp, staged.final)
        self._files.append(staged.final)
        if wait:
            fsync_dir(staged.final.parent)
            return staged.final
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="tbrewrite-fsync")
        self._background.append(self._pool.submit(fsync_dir, staged.final.parent))
        return staged.final

    def publish_all(self) -> None:
        """Publish every staged file not yet published, in the order staged."""
        published = set(self._files)  # a set: a tree stages thousands of files
        for staged in self.staged:
            if staged.final not in published:
                self.publish(staged, wait=False)
                published.add(staged.final)
        self.wait()

    def wait(self) -> None:
        """Wait for every background fsync; raise the first error."""
        errors = []
        for future in self._background:
            try:
                future.result()
            except BaseException as e:  # noqa: BLE001 - every fsync is waited for; the first error is raised below
                errors.append(e)
        self._background.clear()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        if errors:
            raise errors[0]

    def own(self, folder: Path) -> None:
        """Mark ``folder``, which does not exist yet, as wholly this transaction's.

        A rollback removes it with everything in it (even files a killed worker left).
        """
        self._owned.append(folder)

    def add_file(self, path: str | os.PathLike[str]) -> None:
        """Remember a file about to be created by other means (a copied non-event file).

        It must lie inside the root.
        """
        self.confine(path)
        self._files.append(Path(path))

    def rollback(self) -> None:
        """Delete everything this transaction created."""
        with contextlib.suppress(BaseException):
            self.wait()
        for w in self._writers:
            w.abort()
        for s in self.staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(s.temp)
        for f in reversed(self._files):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f)
        for d in reversed(self.created):
            with contextlib.suppress(OSError):
                d.rmdir()
        for d in self._owned:
            shutil.rmtree(d, ignore_errors=True)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
        src_label: str. How the messages name ``src`` (``SRC``...).
        out_label: str. How the messages name ``out`` (``OUT``, ``--out``...).

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
    if out.is_dir() and not force and _holds_files(out):
        raise OutputError(f"{out}: {out_label} already holds files; use --force to replace them")


def _holds_files(folder: Path) -> bool:
    """Return True if ``folder`` holds anything but empty real folders.

    A symlink, even to a folder, counts: writing through it would write elsewhere.
    """
    for dirpath, dirnames, filenames in os.walk(folder):
        if filenames or any(os.path.islink(os.path.join(dirpath, d)) for d in dirnames):
            return True
    return False

"""Replacing a run's event files in place, all or nothing, even across SIGKILL.

Every in-place command (``rename --in-place``, ``merge --in-place``) first writes every
new file of a run beside the old ones under a *staged* name without ``tfevents`` (so
TensorBoard, which loads only names holding ``tfevents``, never sees it), fsynced.
Then :func:`commit` takes every run of the command through these steps:

1. a *journal* per run (``.tbrewrite-journal.json``, also no ``tfevents``) is written
   atomically (temporary name, fsync, rename, fsync of the folder): it names the
   originals to retire, their names in the backup folder, the staged files to publish
   and the backup folder. From this moment the run is logically new;
2. every original of every run is put into its backup folder while it stays in place:
   a hard link, or across file systems (or where links are not allowed) a copy under a
   temporary name, fsynced and renamed. Its backup name has ``tbrewrite-backup`` where
   the original has ``tfevents`` (:func:`backup_name`), so TensorBoard never loads a
   backup, wherever the backup folder is (TensorBoard's ``io_wrapper.IsTensorFlowEventsFile``
   and its Rust data server's ``EVENT_FILE_BASENAME_INFIX`` both look for ``tfevents`` in
   the basename). If any backup fails (a full disk, a read-only folder), everything is
   undone: every run is as before, nothing staged, no journal, no backup left;
3. per run, each original is removed, then each staged file renamed to its final name
   (so old and new files are never side by side), the folders fsynced and the journal
   removed.

Every step is idempotent and decided by what exists on disk, so :func:`swap_steps`, run
again from any point after the journal exists -- which is what :func:`recover` does --
finishes the swap. A crash before the journal exists leaves only staged files, which
:func:`recover` deletes. Either way each run ends wholly old or wholly new.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite import storage
from tbrewrite.errors import InputError, OutputError
from tbrewrite.events.writer import EVENT_FILE_MARKER, TEMP_PREFIX, fsync_dir, temp_path
from tbrewrite.logdir import check_dir, walk

JOURNAL_NAME = ".tbrewrite-journal.json"
STAGED_PREFIX = ".tbrewrite-new-"
BACKUP_MARKER = "tbrewrite-backup"
"""What a backup's name has instead of ``tfevents``."""
JOURNAL_FORMAT = "tbrewrite-swap/3"
_OLD_FORMATS = ("tbrewrite-swap/1", "tbrewrite-swap/2")
"""Journals written before backups were renamed: each backup has its original's name."""
LEFTOVER_PREFIXES = (STAGED_PREFIX, TEMP_PREFIX)
"""Name prefixes of the files a swap leaves behind when interrupted before its journal."""
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
"""``os.link`` errors after which a backup is copied instead."""


def staged_name(name: str) -> str:
    """Return the staged name of event file ``name``: no ``tfevents``, hidden."""
    return STAGED_PREFIX + name.replace(EVENT_FILE_MARKER, "ev")


def backup_name(name: str) -> str:
    """Return the name event file ``name`` is kept under in the backup folder.

    ``events.out.tfevents.1700000000.host`` becomes ``events.out.tbrewrite-backup.1700000000.host``:
    TensorBoard never loads it. Renaming it back restores the original.
    """
    return name.replace(EVENT_FILE_MARKER, BACKUP_MARKER)


@dataclass(frozen=True)
class Swap:
    """The journal of one run: which event files to retire and which to publish.

    Attributes:
        run_dir: Path. The run folder.
        backup_dir: Path. Absolute folder receiving the originals.
        names: tuple of str. Event file names in ``run_dir`` retired to the backup.
        new: tuple of ``(staged name, final name)`` in ``run_dir``: the files published.
        backups: tuple of str, one per name: its name in ``backup_dir`` (default
            :func:`backup_name` of each).
    """

    run_dir: Path
    backup_dir: Path
    names: tuple[str, ...]
    new: tuple[tuple[str, str], ...]
    backups: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.backups:
            object.__setattr__(self, "backups", tuple(backup_name(n) for n in self.names))
        if len(self.backups) != len(self.names) or len(set(self.backups)) != len(self.backups):
            raise ValueError(f"{self.run_dir}: backup names do not pair one to one with {self.names}")

    @classmethod
    def replacing(cls, run_dir: Path, backup_dir: Path, names: tuple[str, ...]) -> Swap:
        """Return the swap that replaces each of ``names`` by its staged file."""
        return cls(run_dir, backup_dir, names, tuple((staged_name(n), n) for n in names))

    def retired(self) -> Iterator[tuple[Path, Path]]:
        """Yield ``(original, backup)`` paths, one per retired file."""
        for name, backup in zip(self.names, self.backups, strict=True):
            yield self.run_dir / name, self.backup_dir / backup


def write_journal(swap: Swap) -> None:
    """Write ``swap``'s journal atomically and durably into its run folder."""
    body = {
        "format": JOURNAL_FORMAT,
        "backup_dir": str(swap.backup_dir),
        "files": list(swap.names),
        "backups": list(swap.backups),
        "new": [list(pair) for pair in swap.new],
    }
    temp = swap.run_dir / (TEMP_PREFIX + JOURNAL_NAME.lstrip("."))
    with open(temp, "w", encoding="utf-8") as f:
        json.dump(body, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, swap.run_dir / JOURNAL_NAME)
    fsync_dir(swap.run_dir)


def read_journal(run_dir: Path) -> Swap | None:
    """Return the journal in ``run_dir``, or None if there is none.

    Journals of the two earlier formats are read too (``tbrewrite-swap/1`` without
    ``new``, ``/2`` with it): their backups carry the originals' names.

    Raises:
        InputError: the journal exists but is not one tbrewrite wrote.
    """
    path = run_dir / JOURNAL_NAME
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable swap journal: {e}") from None
    if not isinstance(body, dict) or body.get("format") not in (*_OLD_FORMATS, JOURNAL_FORMAT):
        raise InputError(f"{path}: not a tbrewrite swap journal")
    try:
        names = tuple(str(n) for n in body["files"])
        backup_dir = Path(body["backup_dir"])
        if "new" not in body:
            new = tuple((staged_name(n), n) for n in names)
        else:
            new = tuple((str(staged), str(final)) for staged, final in body["new"])
        backups = names if body["format"] in _OLD_FORMATS else tuple(str(n) for n in body["backups"])
        if len(backups) != len(names):
            raise ValueError(f"{len(names)} files but {len(backups)} backups")
        return Swap(run_dir, backup_dir, names, new, backups)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{path}: malformed swap journal: {e!r}") from None


def commit(swaps: Sequence[Swap]) -> None:
    """Replace the files of every run in ``swaps``: back up every original, then swap.

    Each run ends wholly old or wholly new. Every original of every run is in its backup
    before any run's files change; a backup that fails undoes everything, and Ctrl-C
    (or SIGTERM) before that point does too. After it, an interruption finishes the
    swaps before it propagates.

    Raises:
        OutputError: a backup exists already, or a journal or backup could not be
            written (disk full, read-only, ...): every run is as it was, its staged
            files are deleted, and no journal or backup of this call remains. The
            message names the file.
        OSError: removing an original or publishing a new file failed; the journals
            stay, and :func:`recover` finishes them.
    """
    for swap in swaps:
        for _, backup in swap.retired():
            if backup.exists() or backup.is_symlink():
                for s in swaps:
                    _discard_staged(s)
                raise OutputError(f"{backup}: backup already exists; choose another --backup-dir")
    made = sorted({d for s in swaps for d in _missing_dirs(s.backup_dir)}, key=lambda d: -len(d.parts))
    try:
        for swap in swaps:
            with _unchanged_on_error(swap.run_dir / JOURNAL_NAME, "cannot write the swap journal"):
                write_journal(swap)
        for swap in swaps:
            with _unchanged_on_error(swap.backup_dir, "cannot make the backup folder"):
                swap.backup_dir.mkdir(parents=True, exist_ok=True)
            for original, backup in swap.retired():
                with _unchanged_on_error(backup, "cannot write the backup"):
                    for _ in _back_up(original, backup):
                        pass
            with _unchanged_on_error(swap.backup_dir, "cannot write the backup"):
                fsync_dir(swap.backup_dir)
    except BaseException:
        _undo(swaps, made)
        raise
    try:
        for swap in swaps:
            for _ in swap_steps(swap.run_dir):
                pass
    except OSError:
        raise
    except BaseException:  # Ctrl-C, SIGTERM: every original is safe; finish rather than stop half way
        for swap in swaps:
            with contextlib.suppress(OSError, InputError):
                for _ in swap_steps(swap.run_dir):
                    pass
        raise


@contextlib.contextmanager
def _unchanged_on_error(path: Path, what: str) -> Iterator[None]:
    """Turn an OSError into the OutputError :func:`commit` raises after undoing."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"{path}: {what} ({e.strerror or e}); nothing was changed") from None


def swap_steps(run_dir: Path) -> Iterator[str]:
    """Carry out (or finish) the swap journaled in ``run_dir``, one step per item.

    Yields a short description after each file-system change, so a test can stop the
    swap after any step, as a crash would. Does nothing without a journal.
    """
    swap = read_journal(run_dir)
    if swap is None:
        return
    swap.backup_dir.mkdir(parents=True, exist_ok=True)
    staged_of = {final: staged for staged, final in swap.new}

    def is_original(name: str) -> bool:  # not the new file already published under its name
        return (run_dir / name).exists() and (name not in staged_of or (run_dir / staged_of[name]).exists())

    for original, backup in swap.retired():
        if is_original(original.name):
            yield from _back_up(original, backup)
    fsync_dir(swap.backup_dir)
    for original, _ in swap.retired():
        if is_original(original.name):
            original.unlink()
            yield f"removed {original.name}"
    for staged, final in swap.new:
        if (run_dir / staged).exists():
            os.replace(run_dir / staged, run_dir / final)
            yield f"published {final}"
    fsync_dir(run_dir)
    os.unlink(run_dir / JOURNAL_NAME)
    fsync_dir(run_dir)
    yield "removed journal"


def _back_up(original: Path, backup: Path) -> Iterator[str]:
    """Make ``backup`` a complete copy of ``original``, which stays; resumable at every yield.

    ``backup`` appears only complete (a link, or a renamed fsynced copy), so its
    existence says this step is done.
    """
    if backup.exists():
        return
    try:
        os.link(original, backup)
    except OSError as e:
        if e.errno not in _NO_LINK:
            raise
    else:
        yield f"backed up {original.name}"
        return
    temp = backup.with_name(TEMP_PREFIX + backup.name)
    shutil.copy2(original, temp)
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, backup)
    fsync_dir(backup.parent)
    yield f"copied {original.name} to the backup"


def _missing_dirs(folder: Path) -> list[Path]:
    """Return ``folder`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder.parent != folder:
        missing.append(folder)
        folder = folder.parent
    return missing


def _discard_staged(swap: Swap) -> None:
    """Delete ``swap``'s staged files and their writer temporaries."""
    for staged, _ in swap.new:
        for path in (swap.run_dir / staged, temp_path(swap.run_dir / staged)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _undo(swaps: Sequence[Swap], made: list[Path]) -> None:
    """Undo :func:`commit` before any original was removed: the runs are as they were.

    Only what :func:`commit` made goes: it refused to start if any backup existed.
    """
    for swap in swaps:
        for original, backup in swap.retired():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(backup.with_name(TEMP_PREFIX + backup.name))
            if original.exists():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(backup)
        _discard_staged(swap)
        for name in (JOURNAL_NAME, TEMP_PREFIX + JOURNAL_NAME.lstrip(".")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(swap.run_dir / name)
        with contextlib.suppress(OSError):
            fsync_dir(swap.run_dir)
    for folder in made:
        with contextlib.suppress(OSError):
            folder.rmdir()


def discard_staged(run_dir: Path, names: list[str]) -> None:
    """Delete the staged files (and writer temporaries) of ``names`` in ``run_dir``."""
    for name in names:
        staged = run_dir / staged_name(name)
        for path in (staged, temp_path(staged)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def pending_journals(logdir: Path) -> list[Path]:
    """Return every folder under ``logdir`` holding a swap journal, in walk order."""
    return [f.path for f in walk(logdir) if any(p.name == JOURNAL_NAME for p in f.other_files)]


def recover(logdir: Path) -> list[str]:
    """Finish every interrupted swap under ``logdir`` and delete staged leftovers.

    Returns:
        list of str: one line per folder repaired, e.g. ``"train: finished an
        interrupted swap of 3 file(s)"``.

    Raises:
        InputError: a journal is unreadable.
        OSError: a move failed.
    """
    done = []
    for folder in walk(logdir):
        run_dir, rel = folder.path, folder.rel
        filenames = [p.name for p in folder.other_files]
        swap = read_journal(run_dir) if JOURNAL_NAME in filenames else None
        if swap is not None:
            for _ in swap_steps(run_dir):
                pass
            done.append(f"{rel}: finished an interrupted swap of {len(swap.names)} file(s)")
        leftovers = sorted(n for n in filenames if n.startswith(LEFTOVER_PREFIXES))
        removed = 0
        for name in leftovers:
            try:
                os.unlink(run_dir / name)
                removed += 1
            except FileNotFoundError:
                pass
        if removed:
            done.append(f"{rel}: removed {removed} unfinished staged file(s)")
    return done


def recover_interrupted(path: str | os.PathLike[str], label: str) -> list[str]:
    """Finish every in-place swap interrupted under ``path``: ``merge --recover`` and ``rename --recover``.

    A URL's interrupted publish is finished first (:func:`tbrewrite.storage.recover`),
    then the folder's swaps as for a local path.

    Args:
        path: str or PathLike. A run (merge) or a tree of runs (rename).
        label: str. How error messages name ``path`` (``"RUN"``, ``"LOGDIR"``).

    Returns:
        list of str, one line per folder repaired (:func:`recover`).

    Raises:
        InputError: ``path`` is not a folder, or a journal is unreadable.
        OSError: a move failed.
    """
    done = storage.recover(path)
    folder = storage.local_path(path, label)
    if done and not folder.exists():  # only unfinished uploads were there
        return done
    check_dir(folder, label)
    return done + recover(folder)

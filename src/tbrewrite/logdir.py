"""The one walk of a logdir: its folders, runs, event files and everything else.

Every command finds its runs here, so they all agree on what a run is:

* A file is an **event file** when its basename contains ``tfevents`` and it is a
  regular file (or a symlink to one), as TensorBoard decides
  (``tensorboard/backend/event_processing/io_wrapper.py`` ``IsTensorFlowEventsFile``;
  ``data/server/logdir.rs``). Names ending in ``.profile-empty`` are Keras profiler
  **placeholders**: TensorBoard's Python loader skips them (``io_wrapper.py``), so they
  are listed apart.
* A **run** is a folder holding event files; its files are read in lexicographic order
  of their names (``data/server/run.rs``), which for TensorFlow's zero-padded
  ``events.out.tfevents.<secs>.<host>`` names is start-time order. Its name is its path
  relative to the logdir, ``/``-separated, ``"."`` for the logdir itself.
* **Symlinked folders are followed**, as TensorBoard's Rust loader follows them
  (``logdir.rs`` walks with ``follow_links(true)``): a folder reached by two paths is
  walked under both, as TensorBoard shows it as two runs, but a link back to a folder
  above it (a loop) is not entered. A symlink that leads nowhere (dangling, or a loop
  of links) is listed among the folder's other files.
* A folder that cannot be listed is an error (``OSError`` naming it), everywhere:
  leaving its runs out silently would make an output tree incomplete.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tbrewrite.errors import InputError
from tbrewrite.events.writer import EVENT_FILE_MARKER

PLACEHOLDER_SUFFIX = ".profile-empty"


def is_event_file(name: str) -> bool:
    """Return True if TensorBoard would load a file of this basename as an event file."""
    return EVENT_FILE_MARKER in name and not name.endswith(PLACEHOLDER_SUFFIX)


@dataclass(frozen=True)
class Folder:
    """One folder of a logdir, as the walk found it.

    Attributes:
        path: Path. The folder, as reached from the root (possibly through symlinks).
        rel: str. Its path relative to the root, ``/``-separated; ``"."`` for the root.
        event_files: tuple of Path. Event files TensorBoard loads, sorted by name.
        placeholders: tuple of Path. ``*.profile-empty`` files named like event files.
        other_files: tuple of Path. Every other entry that is not a folder walked into:
            regular files, symlinks to files, symlinks that lead nowhere, named pipes,
            sockets, devices; sorted by name.
    """

    path: Path
    rel: str
    event_files: tuple[Path, ...]
    placeholders: tuple[Path, ...]
    other_files: tuple[Path, ...]

    @property
    def is_run(self) -> bool:
        """True if TensorBoard shows this folder as a run (it holds event files)."""
        return bool(self.event_files)


def walk(root: str | os.PathLike[str]) -> Iterator[Folder]:
    """Yield every folder under ``root`` (itself first), top-down, in sorted order.

    Symlinked folders are followed, loops excepted (see the module doc).

    Args:
        root: str or PathLike. An existing folder.

    Yields:
        Folder.

    Raises:
        OSError: a folder cannot be listed (``filename`` names it).
    """
    root = Path(root)
    stack: list[tuple[Path, str, frozenset[tuple[int, int]]]] = [(root, ".", frozenset())]
    while stack:
        folder, rel, ancestors = stack.pop()
        try:
            st = os.stat(folder)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in ancestors:  # a symlink back to a folder above: a loop
            continue
        inside = ancestors | {key}
        entries = sorted(_scandir(folder), key=lambda e: e.name)
        events: list[Path] = []
        placeholders: list[Path] = []
        others: list[Path] = []
        subfolders: list[tuple[Path, str, frozenset[tuple[int, int]]]] = []
        for entry in entries:
            path = folder / entry.name
            kind = _kind(entry)
            if kind == stat.S_IFDIR:
                subfolders.append((path, entry.name if rel == "." else f"{rel}/{entry.name}", inside))
            elif kind == stat.S_IFREG and EVENT_FILE_MARKER in entry.name:
                (placeholders if entry.name.endswith(PLACEHOLDER_SUFFIX) else events).append(path)
            else:
                others.append(path)
        yield Folder(folder, rel, tuple(events), tuple(placeholders), tuple(others))
        stack.extend(reversed(subfolders))


def runs(root: str | os.PathLike[str]) -> Iterator[Folder]:
    """Yield the folders under ``root`` that are runs (hold event files), sorted.

    Raises:
        OSError: a folder cannot be listed.
    """
    return (folder for folder in walk(root) if folder.is_run)


def list_event_files(folder: str | os.PathLike[str]) -> list[Path]:
    """Return the event files directly inside ``folder``, in TensorBoard's order.

    Args:
        folder: str or PathLike. A folder; a missing one has no event files.

    Returns:
        list of Path, sorted by name; ``*.profile-empty`` excluded, and entries that
        are not regular files (folders, pipes, symlinks leading nowhere) skipped.

    Raises:
        OSError: ``folder`` exists but cannot be listed.
    """
    folder = Path(folder)
    try:
        entries = sorted(_scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []
    return [folder / e.name for e in entries if is_event_file(e.name) and _kind(e) == stat.S_IFREG]


def event_bytes(folder: str | os.PathLike[str], *, tree: bool = False) -> int:
    """Return the size in bytes of the event files in ``folder`` (and below it, with ``tree``).

    What a command's worker processes split the work by; a file that vanishes counts 0.

    Raises:
        OSError: a folder cannot be listed.
    """
    folders = [f.path for f in walk(folder)] if tree else [Path(folder)]
    total = 0
    for path in (p for f in folders for p in list_event_files(f)):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def _scandir(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError as e:
        if e.filename is None:
            e.filename = str(folder)
        raise


def _kind(entry: os.DirEntry[str]) -> int:
    """Return the file type bits of what ``entry`` leads to (symlinks followed), or 0."""
    try:
        return stat.S_IFMT(entry.stat(follow_symlinks=True).st_mode)
    except OSError:  # a dangling symlink, or a loop of symlinks (ELOOP)
        return 0


def check_dir(path: Path, what: str = "SRC") -> None:
    """Raise InputError unless ``path`` is an existing folder (``what`` names it)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or directory")
    if not path.is_dir():
        raise InputError(f"{path}: {what} must be a directory")

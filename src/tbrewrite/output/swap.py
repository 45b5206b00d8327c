"""Replacing a run's event files in place, all or nothing, even across SIGKILL.

Every in-place command (``rename --in-place``, ``merge --in-place``) first writes every
new file of a run beside the old ones under a *staged* name without ``tfevents`` (so
TensorBoard, which loads only names holding ``tfevents``, never sees it), fsynced.
Then, per run:

1. a *journal* (``.tbrewrite-journal.json``, also no ``tfevents``) is written
   atomically (temporary name, fsync, rename, fsync of the folder): it names the
   originals to retire, the staged files to publish and the backup folder. From this
   moment the run is logically new;
2. every original is moved to the backup folder (``os.rename``; across file systems a
   copy under a temporary name, fsync, rename, then the original is removed) -- all of
   them before any new file is published, so a full backup disk stops the swap before
   the run shows old and new together;
3. each staged file is renamed to its final name;
4. the folders are fsynced and the journal removed.

Every step is idempotent and decided by what exists on disk, so :func:`swap_steps`,
run again from any point -- which is what :func:`recover` does -- finishes the swap. A
crash before the journal exists leaves only staged files, which :func:`recover`
deletes. Either way each run ends wholly old or wholly new.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tbrewrite.errors import InputError
from tbrewrite.events.writer import TEMP_PREFIX, fsync_dir, temp_path
from tbrewrite.logdir import walk

JOURNAL_NAME = ".tbrewrite-journal.json"
STAGED_PREFIX = ".tbrewrite-new-"
JOURNAL_FORMAT = "tbrewrite-swap/2"
_FORMATS = ("tbrewrite-swap/1", JOURNAL_FORMAT)
LEFTOVER_PREFIXES = (STAGED_PREFIX, TEMP_PREFIX)
"""Name prefixes of the files a swap leaves behind when interrupted before its journal."""


def staged_name(name: str) -> str:
    """Return the staged name of event file ``name``: no ``tfevents``, hidden."""
    return STAGED_PREFIX + name.replace("tfevents", "ev")


@dataclass(frozen=True)
class Swap:
    """The journal of one run: which event files to retire and which to publish.

    Attributes:
        run_dir: Path. The run folder.
        backup_dir: Path. Absolute folder receiving the originals.
        names: tuple of str. Event file names in ``run_dir`` moved to the backup.
        new: tuple of ``(staged name, final name)`` in ``run_dir``: the files published.
    """

    run_dir: Path
    backup_dir: Path
    names: tuple[str, ...]
    new: tuple[tuple[str, str], ...]

    @classmethod
    def replacing(cls, run_dir: Path, backup_dir: Path, names: tuple[str, ...]) -> Swap:
        """Return the swap that replaces each of ``names`` by its staged file."""
        return cls(run_dir, backup_dir, names, tuple((staged_name(n), n) for n in names))


def write_journal(swap: Swap) -> None:
    """Write ``swap``'s journal atomically and durably into its run folder."""
    body = {
        "format": JOURNAL_FORMAT,
        "backup_dir": str(swap.backup_dir),
        "files": list(swap.names),
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
    if not isinstance(body, dict) or body.get("format") not in _FORMATS:
        raise InputError(f"{path}: not a tbrewrite swap journal")
    names = tuple(body["files"])
    if "new" not in body:
        return Swap.replacing(run_dir, Path(body["backup_dir"]), names)
    new = tuple((str(staged), str(final)) for staged, final in body["new"])
    return Swap(run_dir, Path(body["backup_dir"]), names, new)


def commit(swap: Swap) -> None:
    """Replace the run's files by their staged versions, originals to the backup.

    Raises:
        OSError: a move failed; the journal stays, and :func:`recover` finishes it.
    """
    write_journal(swap)
    for _ in swap_steps(swap.run_dir):
        pass


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
    for name in swap.names:
        if name in staged_of and not (run_dir / staged_of[name]).exists():
            continue  # its new file is in place already
        original = run_dir / name
        if original.exists():
            yield from _move(original, swap.backup_dir / name)
    fsync_dir(swap.backup_dir)
    for staged, final in swap.new:
        if (run_dir / staged).exists():
            os.replace(run_dir / staged, run_dir / final)
            yield f"published {final}"
    fsync_dir(run_dir)
    os.unlink(run_dir / JOURNAL_NAME)
    fsync_dir(run_dir)
    yield "removed journal"


def _move(src: Path, dst: Path) -> Iterator[str]:
    """Move ``src`` to ``dst`` atomically; resumable at every yield."""
    if dst.exists():
        src.unlink()  # an earlier attempt copied it completely across file systems
        yield f"removed {src.name} (already backed up)"
        return
    try:
        os.rename(src, dst)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
    else:
        yield f"backed up {src.name}"
        return
    temp = dst.with_name(TEMP_PREFIX + dst.name.replace("tfevents", "ev"))
    shutil.copy2(src, temp)
    with open(temp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temp, dst)
    fsync_dir(dst.parent)
    yield f"copied {src.name} to the backup"
    src.unlink()
    yield f"removed {src.name}"


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

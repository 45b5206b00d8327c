"""Publishing files to an object store so that no event file is ever seen half-written.

TensorBoard loads every object whose basename holds ``tfevents``. An object store has no
rename, so each file is published in three steps:

1. it is uploaded under a *temporary key* beside its final one, whose name has no
   ``tfevents`` (:func:`temp_key`: ``.tbrewrite-upload-`` + the name with ``tfevents``
   replaced by ``ev``), streamed in blocks of :data:`BLOCK` bytes (a multipart upload
   on S3). An upload that fails is aborted and its temporary key deleted; one that is
   killed leaves at most a temporary key (or, on S3, an unfinished multipart upload,
   which no listing shows), never a loadable object;
2. the temporary object is copied to its final key (a server-side copy: the final
   object appears whole, as every object store's PUT/COPY does);
3. the temporary key is deleted.

A command that publishes several files (a converted tree, an in-place rename with its
backups) first uploads them all (step 1), then writes a *journal*
(``<root>/.tbrewrite-sync.json``, format ``tbrewrite-sync/1``) naming every
``(temporary, final)`` pair and every key to delete, then copies, deletes and removes the
journal (:func:`finish`). Every step is idempotent and decided by what exists, so
:func:`recover` run after a crash from the journal on finishes the publish (every file's bytes, backups
of replaced originals included, are in temporary keys before the journal exists, and
a temporary key is deleted only after every copy, so the copies can always be
finished); a crash before the journal leaves only temporary keys, which :func:`recover`
deletes. The local analogue is :mod:`tbrewrite.output.swap`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from tbrewrite.errors import InputError
from tbrewrite.events.writer import EVENT_FILE_MARKER

BLOCK = 8 << 20
"""Bytes per read and per uploaded part (8 MiB; S3 parts must be at least 5 MiB)."""
UPLOAD_PREFIX = ".tbrewrite-upload-"
JOURNAL_NAME = ".tbrewrite-sync.json"
JOURNAL_FORMAT = "tbrewrite-sync/1"


def temp_key(final: str) -> str:
    """Return the temporary key ``final`` is uploaded under: beside it, without ``tfevents``.

    Example:
        >>> temp_key("s3://b/logs/run/events.out.tfevents.1.host")
        's3://b/logs/run/.tbrewrite-upload-events.out.ev.1.host'
    """
    parent, _, name = final.rpartition("/")
    return f"{parent}/{UPLOAD_PREFIX}{name.replace(EVENT_FILE_MARKER, 'ev')}"


def upload(fs: Any, source: BinaryIO, key: str, *, block: int = BLOCK) -> int:
    """Stream ``source`` to ``key`` in blocks of ``block`` bytes; return the bytes written.

    ``key`` must be a temporary key (:func:`temp_key`): until the upload completes the
    object may be absent or (on stores that show partial writes) short.

    Raises:
        OSError: reading or writing failed; the upload is aborted and ``key`` deleted.
    """
    target = fs.open(key, "wb", block_size=max(block, 5 << 20))
    written = 0
    try:
        while chunk := source.read(block):
            target.write(chunk)
            written += len(chunk)
    except BaseException:
        discard = getattr(target, "discard", None)  # s3fs: abort the multipart upload
        if discard is not None:
            with contextlib.suppress(Exception):
                discard()
        with contextlib.suppress(Exception):
            target.close()
        with contextlib.suppress(Exception):
            fs.rm_file(key)
        raise
    target.close()
    return written


@dataclass(frozen=True)
class Publish:
    """Files uploaded under temporary keys, to be made final together.

    Attributes:
        root: str. The URL of the folder (or file) they are published under; the
            journal, when one is needed, is ``<root>/.tbrewrite-sync.json``.
        moves: tuple of ``(temporary key, final key)``.
        deletes: tuple of str. Keys to delete once every move is done (outputs of an
            earlier run that this one no longer writes), all under ``root``.
    """

    root: str
    moves: tuple[tuple[str, str], ...]
    deletes: tuple[str, ...] = ()

    @property
    def journal(self) -> str:
        """The URL of this publish's journal."""
        return f"{self.root}/{JOURNAL_NAME}"


def finish(fs: Any, publish: Publish) -> None:
    """Make every file of ``publish`` final: journal, copy, delete, remove the journal.

    One file with nothing to delete needs no journal (one copy is atomic).

    Raises:
        OSError: a copy or delete failed; the journal stays and :func:`recover` finishes.
    """
    if not publish.moves and not publish.deletes:
        return
    journaled = len(publish.moves) > 1 or bool(publish.deletes)
    if journaled:
        body = {"format": JOURNAL_FORMAT, "moves": [list(m) for m in publish.moves], "deletes": list(publish.deletes)}
        fs.pipe_file(publish.journal, json.dumps(body).encode())
    _steps(fs, publish)
    if journaled:
        fs.rm_file(publish.journal)


def _steps(fs: Any, publish: Publish, *, resumed: bool = False) -> None:
    """Copy every move, then delete its temporary key and the keys to delete (in batches).

    ``resumed``: after a crash, some moves and deletes are done already; skip them.
    """
    moves = [m for m in publish.moves if not resumed or fs.exists(m[0])]
    deletes = [k for k in publish.deletes if not resumed or fs.exists(k)]
    if moves:
        fs.copy([t for t, _ in moves], [f for _, f in moves])
        fs.rm([t for t, _ in moves])
    if deletes:
        fs.rm(deletes)


def abandon(fs: Any, temps: Sequence[str]) -> None:
    """Delete temporary keys of a publish that will not happen (errors ignored: best effort)."""
    for temp in temps:
        with contextlib.suppress(FileNotFoundError, OSError):
            fs.rm_file(temp)


def ancestors(url: str) -> list[str]:
    """Return the folders above ``url`` in its bucket, nearest first.

    Example:
        >>> ancestors("s3://b/logs/run")
        ['s3://b/logs', 's3://b']
    """
    scheme, sep, rest = url.partition("://")
    parts = rest.strip("/").split("/")
    return [f"{scheme}{sep}{'/'.join(parts[:i])}" for i in range(len(parts) - 1, 0, -1)]


def journals_below(root: str, base: str, keys: Sequence[str]) -> list[str]:
    """Return the folders at or below ``root`` holding a journal, among ``keys``.

    Args:
        root: str. The URL listed.
        base: str. ``root`` as the filesystem names its keys (protocol stripped).
        keys: the keys listed under ``root``.
    """
    return sorted(
        root + key[len(base) : -len(JOURNAL_NAME) - 1]
        for key in keys
        if key.rpartition("/")[2] == JOURNAL_NAME and (key == f"{base}/{JOURNAL_NAME}" or key.startswith(base + "/"))
    )


def journal_above(fs: Any, root: str) -> str | None:
    """Return the nearest folder above ``root`` holding a journal (an interrupted publish), or None."""
    for folder in ancestors(root):
        if fs.exists(f"{folder}/{JOURNAL_NAME}"):
            return folder
    return None


def recover(fs: Any, root: str) -> list[str]:
    """Finish a publish interrupted under ``root`` and delete unfinished uploads.

    Returns:
        list of str, one line per thing done (empty: nothing to recover).

    A publish interrupted under a folder above ``root`` is refused: its temporary keys
    under ``root`` are not leftovers. Those interrupted below ``root`` are finished too.

    Raises:
        InputError: the journal is not one this version wrote, or a folder above
            ``root`` awaits its own ``--recover``.
        OSError: a copy or delete failed.
    """
    above = journal_above(fs, root)
    if above is not None:
        raise InputError(f"{root}: a publish to {above} was interrupted; run 'tbrewrite rename {above} --recover'")
    done = []
    journal = f"{root}/{JOURNAL_NAME}"
    if fs.exists(journal):
        try:
            body = json.loads(fs.cat_file(journal))
            if body.get("format") != JOURNAL_FORMAT:
                raise ValueError(body.get("format"))
            publish = Publish(root, tuple((t, f) for t, f in body["moves"]), tuple(body["deletes"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InputError(f"{journal}: not a {JOURNAL_FORMAT} journal; remove it by hand") from None
        _steps(fs, publish, resumed=True)
        fs.rm_file(journal)
        done.append(f"{root}: finished an interrupted publish ({len(publish.moves)} file(s))")
    if fs.isdir(root):
        base = fs._strip_protocol(root).rstrip("/")
        for folder in journals_below(root, base, fs.find(root)):
            if folder != root:
                done += recover(fs, folder)
    leftovers = []
    scope = [root]
    parent, _, name = root.rpartition("/")
    if parent and name and "://" in parent:  # not beside a bucket: s3:// cannot be listed
        scope += [f"{parent}/{n.rpartition('/')[2]}" for n in fs.glob(f"{parent}/{name}.tbrewrite-backup-*")]
    for where in scope:
        if fs.isdir(where):
            leftovers += [k for k in fs.find(where) if k.rpartition("/")[2].startswith(UPLOAD_PREFIX)]
    if leftovers:
        abandon(fs, leftovers)
        done.append(f"{root}: removed {len(leftovers)} unfinished upload(s)")
    return done

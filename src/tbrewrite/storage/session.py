"""Object-store URLs for every command: mirror the URLs down, run locally, publish back.

Every path a command is given passes through :func:`local_path`. A local path is
returned as it is. A URL (``s3://``, ``gs://``, ``az://``, ``memory://``, ...) is
resolved by the active :class:`Session` (:func:`session`; the CLI opens one around
every command): the object, or every object under the prefix, is copied into the
session's local *staging* folder (streamed by the filesystem in large blocks, on disk,
never whole in memory), at ``<stage>/<scheme>/<bucket>/<key>``, so URLs inside or beside
each other stay inside or beside each other, and the local path is returned. The command
then runs on local files exactly as it does on a local logdir, with every local
guarantee (temporary names, atomic renames, journaled in-place swaps, backups beside the
logdir, the native engine reading its files).

When the command has succeeded, :meth:`Session.commit` publishes what it changed under
each URL (files new or changed since they were mirrored, and files deleted, only under
that URL; backups in ``<url>.tbrewrite-backup-<n>`` beside it) through
:mod:`tbrewrite.storage.publish`: uploads under temporary keys without ``tfevents``,
then a journal, server-side copies to the final keys, deletions. A command that fails
publishes nothing. An interrupted publish is finished by the commands' ``--recover``
(:func:`recover`); until then a session refuses the URL.

Messages and reports name the URLs, not the staging folder (:meth:`Session.display`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tbrewrite.errors import InputError, PublishInterrupted, TbRewriteError, Terminated, UsageError
from tbrewrite.storage import publish
from tbrewrite.storage.urls import as_url, filesystem, split_url

BACKUP_INFIX = ".tbrewrite-backup-"
"""Backups of ``<url>`` go to ``<url>.tbrewrite-backup-<n>`` (``rename --in-place``'s default)."""
_UPLOAD_THREADS = 16
"""Files uploaded at once: object stores answer each request slowly but many in parallel."""

_ACTIVE: ContextVar[Session | None] = ContextVar("tbrewrite_storage_session", default=None)


@dataclass(frozen=True)
class _Root:
    """One URL a command was given, and where it is mirrored."""

    url: str
    scheme: str
    local: Path


class Session:
    """URLs mirrored into a local staging folder, and the publishing of what changed.

    Args:
        options: mapping. Keyword arguments for every filesystem the session opens
            (``--storage-option``).
        stage: Path or None. The staging folder; default a new temporary folder,
            removed by :meth:`close`. Workers on a cluster are given their client's
            path, so their reports name the same local paths.
    """

    def __init__(self, options: Mapping[str, Any] | None = None, *, stage: Path | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})
        self._stage = stage
        self._own_stage = stage is None
        self._filesystems: dict[str, Any] = {}
        self._roots: dict[str, _Root] = {}
        self._mirrored: dict[Path, tuple[int, int, int]] = {}  # file -> (inode, size, mtime_ns) as fetched

    @property
    def used(self) -> bool:
        """Whether any URL was resolved."""
        return bool(self._roots)

    @property
    def stage(self) -> Path:
        """The staging folder (made on first use)."""
        if self._stage is None:
            self._stage = Path(tempfile.mkdtemp(prefix="tbrewrite-stage-"))
        self._stage.mkdir(parents=True, exist_ok=True)
        return self._stage

    def filesystem(self, scheme: str) -> Any:
        """Return the session's fsspec filesystem for ``scheme`` (one per scheme).

        Raises:
            UsageError: see :func:`tbrewrite.storage.urls.filesystem`.
        """
        if scheme not in self._filesystems:
            fs = filesystem(scheme, self.options)
            fs.invalidate_cache()  # fsspec shares instances: forget listings an earlier session cached
            self._filesystems[scheme] = fs
        return self._filesystems[scheme]

    def local_of(self, url: str) -> Path:
        """Return where ``url`` is (or would be) mirrored, without fetching anything."""
        scheme, rest = split_url(url)
        return self.stage / scheme / rest.strip("/")

    def local(self, url: str) -> Path:
        """Mirror ``url`` (an object, or every object under a prefix) and return its local path.

        A URL naming nothing is not an error here: its local path does not exist, and
        the command says so (an output to be made), or fails naming it.

        Raises:
            InputError: an interrupted publish under ``url`` awaits ``--recover``.
            UsageError: the scheme's filesystem is not installed.
            OSError: listing or reading failed (``filename`` is the URL).
        """
        root = self._roots.get(url)
        if root is not None:
            return root.local
        scheme, _ = split_url(url)
        fs = self.filesystem(scheme)
        root = _Root(url, scheme, self.local_of(url))
        with naming(url):
            self._fetch(fs, root)
        self._roots[url] = root
        return root.local

    def _fetch(self, fs: Any, root: _Root) -> None:
        """Copy every object under ``root`` not yet mirrored; make folders for its backups.

        One listing tells the objects, whether ``root`` is one object, and whether an
        interrupted publish left its journal (object stores answer each request slowly).
        """
        base = fs._strip_protocol(root.url).rstrip("/")
        keys = sorted(fs.find(root.url))
        below = publish.journals_below(root.url, base, keys)
        pending = below[0] if below else publish.journal_above(fs, root.url)
        if pending is not None:
            # Its temporary keys share names with this command's own: a publish here would
            # overwrite and delete them, and --recover could then not finish it.
            where = "it" if pending == root.url else pending
            raise InputError(
                f"{root.url}: a publish to {where} was interrupted; run 'tbrewrite rename {pending} --recover' first"
            )
        if keys == [base]:
            pairs = [(root.url, root.local)]
        else:
            pairs = [
                (f"{root.url}/{key[len(base) + 1 :]}", root.local / key[len(base) + 1 :])
                for key in keys
                if key.startswith(base + "/") and not key.endswith("/")
            ]
            if pairs:
                root.local.mkdir(parents=True, exist_ok=True)
        pairs = [(u, p) for u, p in pairs if p not in self._mirrored]
        for _, path in pairs:
            path.parent.mkdir(parents=True, exist_ok=True)
        if pairs:
            fs.get([u for u, _ in pairs], [str(p) for _, p in pairs])
        for _, path in pairs:
            self._mirrored[path] = _key(path)
        parent, _, name = root.url.rpartition("/")
        if keys and "://" in parent and not parent.endswith(":/") and name:
            for sibling in fs.glob(f"{parent}/{name}{BACKUP_INFIX}*"):  # so the next free number is chosen
                (root.local.parent / sibling.rpartition("/")[2]).mkdir(parents=True, exist_ok=True)

    def display(self, text: str) -> str:
        """Return ``text`` with every staged path written as its URL.

        URLs that went through ``pathlib`` (``s3:/b/x``) get their ``//`` back too.
        """
        for scheme in self._filesystems:
            if self._stage is not None:
                text = text.replace(f"{self._stage / scheme}/", f"{scheme}://")
            text = re.sub(rf"(?<![A-Za-z0-9+.-]){re.escape(scheme)}:/(?!/)", f"{scheme}://", text)  # Path("s3://b")
        return text

    def prepare(self) -> list[tuple[Any, publish.Publish]]:
        """Upload what the command changed under each URL to temporary keys (publish step 1).

        Returns:
            list of (filesystem, Publish), one per URL that changed, for
            :func:`tbrewrite.storage.publish.finish`.

        Raises:
            OSError: an upload failed; every temporary key made is deleted again.
        """
        seen: set[Path] = set()
        plans: list[tuple[Any, _Root, list[tuple[Path, str]], list[str]]] = []
        for root in sorted(self._roots.values(), key=lambda r: len(r.url)):
            uploads, deletes = self._changes(root, seen)
            if uploads or deletes:
                plans.append((self.filesystem(root.scheme), root, uploads, deletes))
        try:
            with concurrent.futures.ThreadPoolExecutor(_UPLOAD_THREADS) as pool:
                futures = {
                    pool.submit(_upload, fs, path, publish.temp_key(final)): final
                    for fs, _, uploads, _ in plans
                    for path, final in uploads
                }
                for future in concurrent.futures.as_completed(futures):
                    with naming(futures[future]):
                        future.result()
        except BaseException:
            for fs, _, uploads, _ in plans:  # the pool has finished every upload it started
                publish.abandon(fs, [publish.temp_key(final) for _, final in uploads])
            raise
        return [
            (fs, publish.Publish(root.url, tuple((publish.temp_key(f), f) for _, f in uploads), tuple(deletes)))
            for fs, root, uploads, deletes in plans
        ]

    def _changes(self, root: _Root, seen: set[Path]) -> tuple[list[tuple[Path, str]], list[str]]:
        """Return ``(uploads as (file, final URL), deleted URLs)`` under ``root``, backups first."""
        local = root.local
        backups = sorted(local.parent.glob(f"{local.name}{BACKUP_INFIX}*")) if local.name else []
        uploads: list[tuple[Path, str]] = []
        for top in (*backups, local):
            for path in _files(top):
                if path in seen:
                    continue
                seen.add(path)
                if self._mirrored.get(path) != _key(path):
                    uploads.append((path, self._url_of(root, path)))
        deletes = [
            self._url_of(root, path)
            for path in sorted(self._mirrored)
            if (path == local or local in path.parents) and path not in seen and not path.exists()
        ]
        seen.update(p for p in self._mirrored if p == local or local in p.parents)
        return uploads, deletes

    def _url_of(self, root: _Root, path: Path) -> str:
        return f"{root.scheme}://{path.relative_to(self.stage / root.scheme).as_posix()}"

    def commit(self) -> None:
        """Publish everything the command changed (:meth:`prepare`, then ``publish.finish``).

        Raises:
            OSError: an upload, copy or delete failed (``filename`` names the URL). Before
                the journal nothing is published; after it, ``--recover`` finishes.
            PublishInterrupted: Ctrl-C or SIGTERM during ``publish.finish``.
        """
        for fs, plan in self.prepare():
            with naming(plan.root):
                try:
                    publish.finish(fs, plan)
                except KeyboardInterrupt:
                    raise PublishInterrupted(plan.root, 130) from None
                except Terminated:
                    raise PublishInterrupted(plan.root, 143) from None

    def close(self) -> None:
        """Remove the staging folder (when the session made it)."""
        if self._own_stage and self._stage is not None:
            shutil.rmtree(self._stage, ignore_errors=True)
            self._stage = None


def _files(top: Path) -> Iterator[Path]:
    """Yield the regular files at or under ``top`` (symlinks not followed), sorted."""
    if top.is_file():
        yield top
        return
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file():
                yield path


def _key(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _upload(fs: Any, path: Path, temp: str) -> None:
    with open(path, "rb") as source:
        publish.upload(fs, source, temp)


@contextlib.contextmanager
def naming(url: str) -> Iterator[None]:
    """Give OS errors of the filesystem that name no file the URL being worked on.

    A store client's own errors that the filesystem leaves untranslated become an
    ``OSError`` (EIO) naming ``url`` too, so each is one line of the CLI.
    """
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(e.errno, e.strerror or str(e) or type(e).__name__, url) from e
    except Exception as e:
        # A store's client error the filesystem does not translate into an OSError (botocore's
        # EndpointConnectionError for an unreachable endpoint, aiohttp's, ...): one line naming the URL.
        if type(e).__module__.partition(".")[0] not in _CLIENT_PACKAGES:
            raise
        text = " ".join(str(e).split()) or type(e).__name__
        raise OSError(errno.EIO, text, url) from e


_CLIENT_PACKAGES = frozenset({"botocore", "aiobotocore", "aiohttp", "urllib3", "requests", "google", "azure"})


def active() -> Session | None:
    """Return the session :func:`local_path` resolves URLs in, if one is open."""
    return _ACTIVE.get()


@contextlib.contextmanager
def activate(current: Session) -> Iterator[Session]:
    """Make ``current`` the session :func:`local_path` resolves URLs in, for the block.

    The caller commits and closes it (the CLI does, around each command).
    """
    token = _ACTIVE.set(current)
    try:
        yield current
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def session(options: Mapping[str, Any] | None = None) -> Iterator[Session]:
    """Open a :class:`Session`; publish what changed if the block succeeds; remove the stage.

    Errors raised inside name URLs, not staged paths.

    Example:
        >>> from tbrewrite.storage import session
        >>> with session() as s:  # convert("s3://bucket/logs", "s3://bucket/converted") here
        ...     s.used
        False
    """
    current = Session(options)
    try:
        with activate(current):
            yield current
            current.commit()
    except TbRewriteError as e:
        e.args = tuple(current.display(a) if isinstance(a, str) else a for a in e.args)
        raise
    except OSError as e:
        if isinstance(e.filename, str):
            e.filename = current.display(e.filename)
        raise
    finally:
        current.close()


def local_path(path: str | os.PathLike[str], what: str = "path") -> Path:
    """Return the local path a command works on for ``path`` (a local path or a URL).

    Args:
        path: str or PathLike. A local path, or a URL (also after ``pathlib`` collapsed
            its ``//``).
        what: str. How messages name it (``SRC``, ``--out``, ...).

    Raises:
        UsageError: ``path`` is a URL and no session is open (the CLI opens one; in
            Python, call the command inside :func:`session`), or its filesystem
            package is missing.
        InputError, OSError: as :meth:`Session.local`.
    """
    url = as_url(path)
    if url is None:
        return Path(path)
    current = _ACTIVE.get()
    if current is None:
        raise UsageError(
            f"{url}: {what} is a URL; object storage works through the tbrewrite command "
            "or inside tbrewrite.storage.session()"
        )
    return current.local(url)


def recover(path: str | os.PathLike[str]) -> list[str]:
    """Finish a publish interrupted under the URL ``path`` (``--recover``); see :mod:`.publish`.

    Returns:
        list of str, one line per thing done; empty for a local path.

    Raises:
        UsageError: no session is open for a URL.
        InputError: the journal is unreadable.
        OSError: a copy or delete failed.
    """
    url = as_url(path)
    if url is None:
        return []
    current = _ACTIVE.get()
    if current is None:
        raise UsageError(f"{url}: a URL needs tbrewrite.storage.session()")
    with naming(url):
        return publish.recover(current.filesystem(split_url(url)[0]), url)

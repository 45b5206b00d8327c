"""Event files, runs and logdirs: discovery, and decoding records into ``Event`` protos.

Discovery follows TensorBoard: a file is an event file when its basename contains
``tfevents`` (``tensorboard/backend/event_processing/io_wrapper.py``;
``data/server/logdir.rs``), names ending in ``.profile-empty`` (profiler placeholders)
are skipped as the Python loader does, a *run* is a directory holding event files, and
the files of a run are ordered lexicographically by name (``data/server/run.rs``),
which for TensorFlow's zero-padded ``events.out.tfevents.<secs>.<host>`` names is
start-time order. Symlinked directories are not followed (``os.walk`` default), so a
symlink loop inside a logdir is harmless; a symlink that leads nowhere (dangling, or a
loop) is not a file and is skipped, as a dangling one is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorboard.compat.proto import event_pb2, summary_pb2

from tbrewrite.events.framing import (
    FOOTER_LENGTH,
    HEADER_LENGTH,
    INVALID_EVENT,
    NOT_AN_EVENT_FILE,
    Damage,
    RecordReader,
)
from tbrewrite.events.wire import Peek, peek

Event = event_pb2.Event
Summary = summary_pb2.Summary
SummaryMetadata = summary_pb2.SummaryMetadata

EVENT_FILE_MARKER = "tfevents"
_DT_FLOAT = 1
_DT_DOUBLE = 2
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_VALIDATE_ARENA_BYTES = 4 << 20
FILE_VERSION = "brain.Event:2"

_PLUGIN_KINDS = {
    "scalars": "scalar",
    "histograms": "histogram",
    "images": "image",
    "audio": "audio",
    "text": "text",
    "hparams": "hparams",
    "pr_curves": "pr_curve",
    "mesh": "mesh",
    "custom_scalars": "custom_scalars",
}


def is_event_file(name: str) -> bool:
    """Return True if TensorBoard would load a file of this basename as an event file."""
    return EVENT_FILE_MARKER in name and not name.endswith(".profile-empty")


def list_event_files(run_dir: str | os.PathLike[str]) -> list[Path]:
    """Return the event files directly inside ``run_dir``, in TensorBoard's order.

    Args:
        run_dir: str or PathLike. A directory.

    Returns:
        list of Path, sorted lexicographically by name; regular files (or symlinks to
        them) whose names contain ``tfevents``, ``*.profile-empty`` excluded. Symlinks
        that lead to no file (dangling, or a loop: ``ELOOP``) are skipped.
    """
    run_dir = Path(run_dir)
    try:
        entries = sorted(os.scandir(run_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [run_dir / e.name for e in entries if is_event_file(e.name) and _is_file(e)]


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=True)
    except OSError:  # a symlink loop (ELOOP) leads to no file
        return False


def find_run_dirs(logdir: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield every directory under ``logdir`` (itself included) holding event files.

    Directories are visited in sorted order; symlinked directories are not followed.

    Raises:
        OSError: a folder under ``logdir`` cannot be listed (e.g. permission denied):
            silently leaving its runs out would make a "mirrored" tree incomplete.
    """
    for dirpath, dirnames, filenames in os.walk(logdir, onerror=_raise):
        dirnames.sort()
        if any(is_event_file(name) for name in filenames):
            if list_event_files(dirpath):
                yield Path(dirpath)


def _raise(error: OSError) -> None:
    raise error


def value_kind(value: summary_pb2.Summary.Value, plugin_name: str) -> str:
    """Classify a summary value as TensorBoard's dashboards would.

    Args:
        value: Summary.Value.
        plugin_name: str. The plugin name from the first metadata seen for this tag
            (empty if none was seen).

    Returns:
        str: ``scalar``, ``histogram``, ``image``, ``audio``, ``text``, ``hparams``,
        ``graph``, ``pr_curve``, ``mesh``, ``custom_scalars`` or ``tensor``.
    """
    which = value.WhichOneof("value")
    if which == "simple_value":
        return "scalar"
    if which == "histo" or which == "obsolete_old_style_histogram":
        return "histogram"
    if which == "image":
        return "image"
    if which == "audio":
        return "audio"
    if plugin_name.startswith("graph"):
        return "graph"
    return _PLUGIN_KINDS.get(plugin_name, "tensor")


def scalar_value(value: summary_pb2.Summary.Value) -> float | None:
    """Return a scalar summary value as a float, or None if it is not a scalar."""
    which = value.WhichOneof("value")
    if which == "simple_value":
        return value.simple_value
    if which != "tensor" or value.tensor.tensor_shape.dim:
        return None
    t = value.tensor
    if t.dtype == _DT_FLOAT:
        if t.float_val:
            return t.float_val[0]
        if len(t.tensor_content) == 4:
            return _F32.unpack(t.tensor_content)[0]
    if t.dtype == _DT_DOUBLE:
        if t.double_val:
            return t.double_val[0]
        if len(t.tensor_content) == 8:
            return _F64.unpack(t.tensor_content)[0]
    return None


def value_form(value: summary_pb2.Summary.Value) -> str:
    """Return the stored form of a value: ``simple_value``, ``tensor``, ``histo``, ..."""
    return value.WhichOneof("value") or "empty"


def event_kind(event: event_pb2.Event) -> str:
    """Return which field of the ``Event.what`` oneof is set (``summary``, ``graph_def``, ...)."""
    return event.WhichOneof("what") or "empty"


class EventFileReader:
    """Stream ``(event, record_bytes)`` pairs from one event file, recording damage.

    Wraps :class:`tbrewrite.events.framing.RecordReader`. A record whose checksums hold but
    whose bytes do not decode as an ``Event`` stops the file like any other damage
    (``invalid_event``; ``not_an_event_file`` if it is the first record), as
    TensorBoard's data server marks such a file dead (``event_file.rs``).

    Args:
        path: str or PathLike. The event file.
        resync: bool. After damage, continue from the next valid record.
        limit: int or None. Read only the first ``limit`` bytes (see
            :class:`tbrewrite.events.framing.RecordReader`).

    Attributes:
        damage: list of Damage, once iteration ends.
        records: int. Records read.
        offset: int. Byte offset where the record of the most recently yielded event
            starts.
        size: int. File size in bytes.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, resync: bool = False, limit: int | None = None
    ) -> None:
        self.path = os.fspath(path)
        self._records = RecordReader(path, resync=resync, limit=limit)
        self.resync = resync
        self.invalid: list[Damage] = []

    @property
    def damage(self) -> list[Damage]:
        return sorted(self._records.damage + self.invalid, key=lambda d: d.offset)

    @property
    def records(self) -> int:
        return self._records.records - len(self.invalid)

    @property
    def offset(self) -> int:
        return self._records.offset

    @property
    def size(self) -> int:
        return self._records.size

    def __iter__(self) -> Iterator[tuple[event_pb2.Event, bytes]]:
        for _, event, data in self._iter(lazy=False):
            yield event, data

    def lazy(self, *, check: bool = True) -> Iterator[tuple[Peek | None, event_pb2.Event | None, bytes]]:
        """Yield ``(peek, event, record_bytes)`` with exactly one of peek and event set.

        A record of the common one-value shape (:func:`tbrewrite.events.wire.peek`) comes with
        its :class:`~tbrewrite.events.wire.Peek` and ``event=None``; it is still parsed, into
        one reused message (about 0.5 us, no Python objects), so that exactly the records
        :meth:`__iter__` yields are yielded and the same damage is reported: a peeked
        record whose bytes past the tag are not protobuf is an ``invalid_event``, never
        copied into an output TensorBoard would stop reading at. Any other record is
        decoded as :meth:`__iter__` does. ``check=False`` skips that parse, for a second
        pass over bytes a first pass has already checked.
        """
        return self._iter(lazy=True, check=check)

    def decode(self, data: bytes) -> event_pb2.Event | None:
        """Decode the record :meth:`lazy` yielded last; None if it is not an Event.

        A record that does not decode is recorded as damage, exactly as :meth:`__iter__`
        would; the caller then stops reading the file unless resyncing.
        """
        try:
            return Event.FromString(data)
        except DecodeError as e:
            self._invalid(data, e)
            return None

    def _invalid(self, data: bytes, error: DecodeError) -> None:
        offset = self._records.offset
        kind = NOT_AN_EVENT_FILE if offset == 0 else INVALID_EVENT
        detail = f"record is not an Event protobuf ({error})"
        # With resync, reading goes on at the very next record.
        resumed_at = offset + HEADER_LENGTH + len(data) + FOOTER_LENGTH
        self.invalid.append(
            Damage(self.path, kind, offset, self.records - 1, detail, resumed_at if self.resync else None)
        )

    def _iter(self, *, lazy: bool, check: bool = True) -> Iterator[tuple[Peek | None, event_pb2.Event | None, bytes]]:
        parse = Event.FromString
        # One reused message checks peeked records; upb keeps what each parse allocates
        # in the message's arena until the message goes, so it is replaced every few MiB
        # to keep memory flat.
        validate = Event().ParseFromString
        validated = 0
        reader = self._records
        for data in reader:
            peeked = peek(data) if lazy else None
            event = None
            try:
                if peeked is None:
                    event = parse(data)
                elif check:
                    validated += len(data)
                    if validated > _VALIDATE_ARENA_BYTES:
                        validate = Event().ParseFromString
                        validated = len(data)
                    validate(data)
            except DecodeError as e:
                self._invalid(data, e)
                if not self.resync:
                    return
                continue
            yield peeked, event, data

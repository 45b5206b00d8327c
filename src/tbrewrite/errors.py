"""The one error hierarchy of tbrewrite.

Every error the library raises on purpose derives from :class:`TbRewriteError`, so a
caller (and the CLI) can catch one type. Damage found *inside* an event file is not an
exception at the API level: readers record it as a :class:`tbrewrite.events.framing.Damage`
and stop (or resync), because a truncated tail is normal for a log that is still being
written (TensorBoard's Rust reader treats it as resumable, ``tf_record.rs``
``ReadRecordError::Truncated``). The record-level exceptions below are what the strict
reader API raises, and they mirror that split:

* :class:`TruncatedRecordError` -- resumable: more bytes may still arrive.
* :class:`CorruptRecordError` and its subclasses -- the bytes are wrong; also a
  :class:`ValueError`.

Errors about the user's input (paths, sidecars, rules, options) say which file and,
where it makes sense, which line and column. Their ``str()`` is one lowercase line.
"""

from __future__ import annotations


class TbRewriteError(Exception):
    """Base class of every error tbrewrite raises on purpose."""


class RecordError(TbRewriteError):
    """A TFRecord frame could not be read.

    Attributes:
        path: str. The file being read.
        offset: int. Byte offset of the first byte of the bad record.
    """

    def __init__(self, message: str, *, path: str = "", offset: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset


class TruncatedRecordError(RecordError):
    """The file ends inside a record. Not fatal: a writer may still be appending."""


class CorruptRecordError(RecordError, ValueError):
    """The bytes of a record are wrong. Fatal for the rest of the file unless resyncing."""


class BadLengthCrcError(CorruptRecordError):
    """The masked CRC32C of the 8-byte length field does not match. Fatal for the file."""


class BadDataCrcError(CorruptRecordError):
    """The masked CRC32C of the record data does not match. Fatal for the file."""


class InvalidEventError(CorruptRecordError):
    """A record with valid checksums whose bytes are not an ``Event`` protobuf."""


class UsageError(TbRewriteError, ValueError):
    """Options that contradict each other or are out of range (the CLI exits 2)."""


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM); like Ctrl-C, partial output is removed."""


class PublishInterrupted(BaseException):
    """Ctrl-C or SIGTERM arrived while a publish to object storage was under way.

    The publish's journal stays at ``url``: nothing is removed, and ``--recover`` on
    ``url`` finishes it (:func:`tbrewrite.storage.publish.recover`).

    Attributes:
        url: str. The folder published to.
        exit_code: int. 130 (Ctrl-C) or 143 (SIGTERM), as for any interruption.
    """

    def __init__(self, url: str, exit_code: int) -> None:
        super().__init__(url)
        self.url = url
        self.exit_code = exit_code


class InputError(TbRewriteError):
    """A path given by the user is missing, unreadable, or of the wrong kind."""


class OutputError(TbRewriteError):
    """The output location is unsafe or unusable (exists, inside the input, ...)."""


class SidecarError(TbRewriteError, ValueError):
    """A sidecar CSV is malformed. The message names file, line and column."""


class RuleError(TbRewriteError, ValueError):
    """A rename rule or rules file is invalid. The message names the rule or file."""


class TagCollisionError(TbRewriteError):
    """Two source tags would be written to one output tag with overlapping steps."""


class HParamsError(TbRewriteError, ValueError):
    """Hyperparameters to attach are malformed or contradict the log's (``hparams --from``).

    The message names the file (and the line of a CSV row) and the hparam.
    """

"""The Typer application, exit codes, and the one place errors become messages."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, TextIO

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from tbrewrite import __version__
from tbrewrite.engine.select import engine_name
from tbrewrite.errors import PublishInterrupted, TbRewriteError, Terminated, UsageError
from tbrewrite.events.framing import Damage
from tbrewrite.storage import Session, storage_options
from tbrewrite.storage.session import activate

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_DAMAGED = 3
MAX_TABLE_RUNS = 100
"""Above this many runs, a command's table lists only the runs with something to say."""


class _StorageGroup(TyperGroup):
    """The command group: every command runs inside one storage session.

    URLs among a command's paths are mirrored by the session and what the command
    changed under them is published when it succeeds (exit 0, or 3 for damage
    reported); nothing is published when it fails (:mod:`tbrewrite.storage.session`).
    Printed paths name the URLs, not the staging folder.
    """

    def invoke(self, ctx: Any) -> Any:  # typer._click.core.Context: typer vendors click, privately
        current = Session()
        ctx.meta[_SESSION] = current
        with activate(current), _displayed(current):
            try:
                try:
                    result = super().invoke(ctx)
                except typer.Exit as e:
                    if e.exit_code in (EXIT_OK, EXIT_DAMAGED):
                        _commit(current)
                    raise
                _commit(current)
                return result
            finally:
                current.close()


_SESSION = "tbrewrite.storage"


def _commit(current: Session) -> None:
    if current.used:
        with errors_to_exit():
            current.commit()


class _Displayed:
    """A text stream that writes staged paths as their URLs (:meth:`Session.display`)."""

    def __init__(self, stream: TextIO, current: Session) -> None:
        self._stream = stream
        self._session = current

    def write(self, text: str) -> int:
        return self._stream.write(self._session.display(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _displayed(current: Session) -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = _Displayed(sys.stdout, current)
    sys.stderr = _Displayed(sys.stderr, current)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


app = typer.Typer(
    cls=_StorageGroup,
    name="tbrewrite",
    help="Rewrite TensorBoard event logs: convert Keras runs, rename tags, merge sidecars.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        with errors_to_exit():
            engine = engine_name()
        out.print(f"tbrewrite {__version__} ({engine} engine)", markup=False)
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version,
        is_eager=True,
        help="Print the version and the engine in use (native or python), and exit.",
    ),
    storage_option: Annotated[
        list[str] | None,
        typer.Option(
            "--storage-option",
            metavar="KEY=VALUE",
            help=(
                "Option for the object store of s3://, gs://, az:// paths (repeatable), e.g. "
                "endpoint_url=http://127.0.0.1:9000; VALUE is JSON where it parses."
            ),
        ),
    ] = None,
) -> None:
    """Rewrite TensorBoard event logs: convert Keras runs, rename tags, merge sidecars."""
    current = ctx.meta.get(_SESSION)
    if storage_option and isinstance(current, Session):
        with errors_to_exit():
            current.options.update(storage_options(storage_option))


def fail(message: str) -> typer.Exit:
    """Print ``message`` as one error line on stderr and return the exit to raise."""
    err.print(f"tbrewrite: error: {_one_line(message)}", markup=False)
    return typer.Exit(EXIT_ERROR)


@contextlib.contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn library errors, OS errors and Ctrl-C into one stderr line and an exit code."""
    try:
        yield
    except UsageError as e:
        err.print(f"tbrewrite: error: {_one_line(str(e))}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
    except TbRewriteError as e:
        raise fail(str(e)) from None
    except OSError as e:
        where = e.filename if e.filename is not None else "i/o"
        raise fail(f"{where}: {e.strerror or e}") from None
    except PublishInterrupted as e:
        err.print(
            f"tbrewrite: interrupted while publishing to {e.url}; run 'tbrewrite rename {e.url} --recover' to finish",
            markup=False,
        )
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("tbrewrite: interrupted; partial output removed", markup=False)
        raise typer.Exit(130) from None
    except Terminated:
        err.print("tbrewrite: terminated; partial output removed", markup=False)
        raise typer.Exit(143) from None


def _one_line(message: str) -> str:
    """Escape line breaks (e.g. in a file name) so every message stays one line."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


def handle_sigterm() -> None:
    """Make SIGTERM (timeout, SLURM, CI) unwind like Ctrl-C, removing partial output."""
    signal.signal(signal.SIGTERM, _terminate)


def report_damage(damage: list[Damage]) -> None:
    """Print one warning line per damaged stretch of input."""
    for d in damage:
        err.print(f"tbrewrite: warning: {_one_line(d.describe())}", markup=False)


def exit_code(damage: list[Damage]) -> int:
    """Return 3 if any input was damaged, else 0."""
    return EXIT_DAMAGED if damage else EXIT_OK


def add_run_rows(table: Table, rows: Sequence[tuple[Sequence[str], bool]]) -> str | None:
    """Add ``(cells, notable)`` rows to ``table``: all of them up to :data:`MAX_TABLE_RUNS`.

    Above that, only the notable ones (damage, nothing written), so a tree of thousands
    of runs does not print thousands of lines (rendering them would take seconds).

    Returns:
        None, or the line to print after the table saying how many rows were left out.
    """
    if len(rows) <= MAX_TABLE_RUNS:
        for cells, _ in rows:
            table.add_row(*cells)
        return None
    shown = 0
    for cells, notable in rows:
        if notable:
            table.add_row(*cells)
            shown += 1
    left_out = len(rows) - shown
    return f"({left_out} of {len(rows)} runs not listed: above {MAX_TABLE_RUNS}, only runs with damage or no output)"


def where_written(out_dir: object | None, backup_dir: object | None) -> str:
    """The end of a per-file edit's summary line: the ``--out`` folder, or where ``--in-place`` put the originals."""
    if out_dir is not None:
        return f"wrote {out_dir}"
    if backup_dir is not None:
        return f"originals in {backup_dir}"
    return "nothing to change in place"


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()

"""Task functions for the tests of ``tbrewrite.parallel``, importable by its worker processes.

Worker processes are started with ``spawn``, so a task function must be importable by name
in a fresh interpreter: it cannot live in a test module (pytest imports those under its own
names). Like the rest of :mod:`support`, this module does not import ``tbrewrite``; a test that
wants a tbrewrite exception raised in a worker puts the exception instance in the task.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Task:
    """What :func:`run` does, in this order.

    Attributes:
        value: returned at the end.
        started: a file created when the task starts, holding the worker's pid.
        partial: a file created when the task starts and removed if the task ends by any
            exception (``Terminated`` included), as ``OutputSet`` removes partial output.
        delay: seconds slept (the task's duration).
        wait_for: a file the task then waits for (up to 30 s), e.g. another task's
            ``started``: so a test does not depend on how fast workers start on a busy
            machine.
        error: raised after the delay.
        kill: a signal the task then sends to its own process.
        special: ``"pid"`` returns the worker's pid; ``"unpicklable-error"`` raises
            :class:`UnpicklableError`; ``"unpicklable-result"`` returns a lambda;
            ``"sigterm-in-finalizer"`` gets SIGTERM while a ``__del__`` runs, then sleeps 10 s.
    """

    value: Any = None
    started: str | None = None
    partial: str | None = None
    delay: float = 0.0
    wait_for: str | None = None
    error: BaseException | None = None
    kill: int | None = None
    special: str = ""


class UnpicklableError(Exception):
    """An exception that cannot be pickled (it holds a lambda)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.callback = lambda: None


class _SigtermOnDelete:
    """Sends SIGTERM to its process from ``__del__`` and stays there while the handler runs.

    An exception raised by a signal handler inside a finalizer is printed by Python as
    "Exception ignored in ..." and swallowed.
    """

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100_000):  # the handler runs between these bytecodes
            pass


def run(task: Task) -> Any:
    """Do what ``task`` says (see :class:`Task`)."""
    if task.started is not None:
        Path(task.started).write_text(str(os.getpid()))
    if task.partial is not None:
        Path(task.partial).write_text("partial output")
    try:
        time.sleep(task.delay)
        deadline = time.monotonic() + 30
        while task.wait_for is not None and not Path(task.wait_for).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        if task.error is not None:
            raise task.error
        if task.kill is not None:
            os.kill(os.getpid(), task.kill)
            time.sleep(10)  # a caught signal: wait to be stopped
        if task.special == "sigterm-in-finalizer":
            _SigtermOnDelete()  # dropped at once: its __del__ runs here
            time.sleep(10)
        if task.special == "pid":
            return os.getpid()
        if task.special == "unpicklable-error":
            raise UnpicklableError("this error holds a lambda")
        if task.special == "unpicklable-result":
            return lambda: None
        return task.value
    except BaseException:
        if task.partial is not None:
            Path(task.partial).unlink()
        raise


def child_processes(pid: int) -> set[int]:
    """The child processes of ``pid`` (zombies included), except ``multiprocessing``'s
    resource tracker (one per parent, it outlives every pool by design).

    Found by scanning ``/proc/*/stat`` (Linux), as ``/proc/PID/task/TID/children`` is not
    available on every kernel.
    """
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:  # exited meanwhile
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found

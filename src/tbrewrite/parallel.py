"""Running one function over many tasks in worker processes, results in task order.

:func:`map_ordered` runs ``fn(task)`` for every task in up to ``jobs`` worker processes and
calls ``done(index, result)`` in the calling process as each task finishes.

Why not :class:`concurrent.futures.ProcessPoolExecutor` (used here before): its workers share
one call queue and one result queue, each with a lock (a ``SemLock``) shared by every worker.
Stopping the workers after one task failed (SIGTERM, so that each removes its partial output)
could catch a worker while it held the result queue's lock: the others then blocked forever in
``SemLock.__enter__`` in ``_sendback_result`` and the parent in ``pool.shutdown`` (about one
failing run in 30 hung; issue 11), and ``Terminated`` and ``EOFError`` tracebacks from the
stopped workers reached stderr in most of the others. Its ``wait(..., FIRST_EXCEPTION)`` also
meant that no completion was reported before the end.

So each worker here has a pipe of its own and shares nothing with the others. The parent
sends one task at a time to an idle worker and waits with
:func:`multiprocessing.connection.wait` on every busy worker's pipe *and* its process
sentinel, so an answer is handled (and ``done`` called) the moment it arrives, and a worker
that dies without answering (SIGKILL, the OOM killer, a crash) is an error naming its task
instead of a hang. A worker answers ``("ok", result)`` or ``("error", exception, traceback
text)``; an exception that does not survive pickling becomes a
:class:`~tbrewrite.errors.TbRewriteError` with the same message, and the parent raises it as
the task's own error.

Stopping: on any error (a task's, a dead worker, ``done`` raising, Ctrl-C, or
:class:`~tbrewrite.errors.Terminated` from the CLI's SIGTERM handler) the parent sends SIGTERM
to every worker, waits up to :data:`_GRACE_SECONDS` for them, then SIGKILLs the rest, and
re-raises. A worker turns its first SIGTERM into :class:`~tbrewrite.errors.Terminated`, so the
running task unwinds and removes its partial output. Workers ignore SIGINT from their first
instruction (they are started with SIGINT ignored), so a Ctrl-C to the process group reaches
the parent alone, which then stops them as above. A worker's main function catches
everything and leaves with :func:`os._exit`: no traceback and no interpreter teardown output,
ever. If the parent dies, even by SIGKILL, ``PR_SET_PDEATHSIG`` (Linux) and a watchdog thread
send the worker SIGTERM, so no orphan keeps writing.

Workers are started with ``spawn`` (a fresh interpreter each, importing only what the task
needs), never ``fork``: the parent may be running a progress-bar thread, and a forked child
would inherit its locks. So ``fn`` and its tasks must be picklable: module-level functions,
dataclasses, protobuf messages, compiled regexes.

Known limits: a worker whose interpreter fails before it reaches this module (the parent's
``__main__`` does not import, or the parent is SIGKILLed while starting it) gets
``multiprocessing``'s own traceback; and a Ctrl-C during the few milliseconds a worker is being
started is lost if a thread other than the main one receives it (see :func:`_signals_held`).
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from multiprocessing.reduction import ForkingPickler
from types import FrameType
from typing import Any

from tbrewrite.errors import TbRewriteError, Terminated

_PR_SET_PDEATHSIG = 1
_GRACE_SECONDS = 5.0
"""How long stopped workers get to unwind (remove partial output) before SIGKILL."""
_EXIT_OK = 0
_EXIT_ERROR = 1
_EXIT_TERMINATED = 143


def default_jobs() -> int:
    """Return the number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


TASK_OVERHEAD_BYTES = 1 << 18
"""What a task costs besides reading its input, counted as bytes of input (planning a run,
opening its files: ~2 ms each with the native engine, while it reads ~100 MB/s)."""
WORKER_MIN_BYTES = 32 << 20
"""The input one worker must get to repay its start: a fresh interpreter importing tbrewrite
takes ~0.3 s of CPU, what the native engine needs for ~30 MB of scalar log."""


def worker_count(costs: Sequence[int], jobs: int) -> int:
    """Return how many worker processes pay off for tasks of these sizes (1: none).

    Workers pay off only when the work can be split (a run that holds nearly all of it
    gains nothing from a second process) and there is enough of it for every worker to
    repay its start.

    Args:
        costs: the input bytes of each task.
        jobs: int >= 1. Processes at most.
    """
    if len(costs) <= 1 or jobs <= 1:
        return 1
    loads = [c + TASK_OVERHEAD_BYTES for c in costs]
    total = sum(loads)
    return max(1, min(jobs, len(loads), total // max(loads), total // WORKER_MIN_BYTES))


def map_ordered(
    fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, done: Callable[[int, Any], None]
) -> list[Any]:
    """Run ``fn`` over ``tasks`` in up to ``jobs`` processes; results in task order.

    With one job or one task, everything runs in this process.

    Args:
        fn: a module-level function of one task.
        tasks: sequence of picklable tasks.
        jobs: int >= 1. Processes at most.
        done: ``done(index, result)``, called in this process as each task finishes, in the
            order they finish.

    Returns:
        list of ``fn(task)``, in the order of ``tasks``.

    Raises:
        Exception: the first error of any task, of the same type and message as in the
            worker (an exception that cannot be pickled arrives as a
            :class:`~tbrewrite.errors.TbRewriteError` with its message). The other workers
            are stopped (SIGTERM, so their tasks unwind) before it is raised.
        TbRewriteError: a worker process died without answering (its task is named).
        KeyboardInterrupt: Ctrl-C in this process; the workers are stopped first.
        Terminated: raised by this process's SIGTERM handler; the workers are stopped
            first.
    """
    results: list[Any] = [None] * len(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            results[i] = fn(task)
            done(i, results[i])
        return results
    workers: list[_Worker] = []
    finished = False
    try:
        _start_workers(workers, min(jobs, len(tasks)))
        _run(fn, tasks, workers, results, done)
        finished = True
    finally:
        _stop(workers, graceful=finished)
    return results


# --- parent side ---------------------------------------------------------------------------


@dataclass
class _Worker:
    """A worker process as the parent sees it."""

    process: SpawnProcess
    conn: Connection
    task: int | None = None
    """Index of the task it is running, None while idle."""
    retired: bool = False
    """Told to exit (or found dead): it gets no more tasks."""


def _start_workers(workers: list[_Worker], count: int) -> None:
    """Start ``count`` workers, appending each to ``workers`` before it starts."""
    context = multiprocessing.get_context("spawn")
    # Every spawn needs multiprocessing's resource tracker process. Starting it unblocks
    # SIGINT, which would undo _signals_held, so it is started (once per process) here.
    resource_tracker.ensure_running()
    for n in range(count):
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_worker_main, args=(child_end, os.getpid()), name=f"tbrewrite-worker-{n}")
        workers.append(_Worker(process, parent_end))
        try:
            with _signals_held():
                process.start()
        finally:
            child_end.close()  # the worker has its own copy; EOF reaches us if it dies


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Start a child with SIGINT ignored from its first instruction; hold SIGINT and SIGTERM.

    A worker ignores SIGINT itself, but only once its interpreter has started and imported
    what it needs; a Ctrl-C before that would print a ``KeyboardInterrupt`` traceback. An
    ignored disposition survives ``exec``, so SIGINT is ignored here while the child is
    spawned, and blocked meanwhile (on Linux a blocked signal stays pending even while
    ignored), so a Ctrl-C in this window still reaches this process once the handler is back.
    A SIGTERM meanwhile is recorded and raised again afterwards: interrupting ``start()``
    after the fork but before the child got its start-up data would make the child's
    ``spawn_main`` print an ``EOFError`` traceback.

    Only the main thread may change handlers; elsewhere, or if the caller blocks SIGINT or
    installed a handler outside Python, this does nothing. If another thread of this
    process receives a Ctrl-C in this window (a few milliseconds), the Ctrl-C is lost.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    if threading.current_thread() is not threading.main_thread() or signal.SIGINT in blocked:
        yield
        return
    sigint = signal.getsignal(signal.SIGINT)
    sigterm = signal.getsignal(signal.SIGTERM)
    if sigint is None or sigterm is None:
        yield
        return
    held: list[int] = []
    try:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda signum, frame: held.append(signum))
        yield
    finally:
        try:
            signal.signal(signal.SIGINT, sigint)
            signal.signal(signal.SIGTERM, sigterm)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # a held Ctrl-C lands
        if held:
            signal.raise_signal(signal.SIGTERM)  # to the handler just restored


def _run(
    fn: Callable[[Any], Any],
    tasks: Sequence[Any],
    workers: list[_Worker],
    results: list[Any],
    done: Callable[[int, Any], None],
) -> None:
    """Hand out the tasks one at a time and collect the answers as they arrive."""
    next_task = 0
    remaining = len(tasks)
    while remaining:
        for worker in workers:
            if worker.task is None and not worker.retired:
                if next_task < len(tasks):
                    _assign(worker, fn, next_task, tasks[next_task])
                    next_task += 1
                else:
                    _retire(worker)
        busy = [w for w in workers if w.task is not None]
        ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                index, result = _receive(worker)
                results[index] = result
                remaining -= 1
                done(index, result)


def _assign(worker: _Worker, fn: Callable[[Any], Any], index: int, task: Any) -> None:
    """Send task ``index`` to an idle worker."""
    worker.task = index
    try:
        worker.conn.send((fn, task))
    except (BrokenPipeError, ConnectionResetError, EOFError):
        raise _died(worker, index) from None


def _retire(worker: _Worker) -> None:
    """Tell an idle worker that no task is left (it exits by itself)."""
    worker.retired = True
    with contextlib.suppress(OSError):
        worker.conn.send(None)


def _receive(worker: _Worker) -> tuple[int, Any]:
    """Read a busy worker's answer: ``(index, result)``, or raise its task's error."""
    index = worker.task
    assert index is not None
    if not worker.conn.poll():  # the sentinel fired, the pipe holds nothing
        raise _died(worker, index)
    try:
        message = worker.conn.recv()
    except (EOFError, OSError):  # died before or while answering
        raise _died(worker, index) from None
    except Exception as e:  # e.g. the result's class does not import in this process
        raise TbRewriteError(f"task {index}: the worker's answer could not be read: {e}") from e
    worker.task = None
    if message[0] == "ok":
        return index, message[1]
    _, error, remote_traceback = message
    error.__cause__ = _RemoteTraceback(remote_traceback)
    raise error


class _RemoteTraceback(Exception):
    """The traceback of a task's error in its worker, shown as the error's cause."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\n{self.text}"""'


def _died(worker: _Worker, index: int) -> TbRewriteError:
    """The error for a worker that ended without answering while running task ``index``."""
    worker.retired = True
    worker.process.join(timeout=1.0)
    code = worker.process.exitcode
    if code is None:
        how = "closed its pipe"
    elif code < 0:
        try:
            how = f"signal {-code}, {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit code {code}"
    return TbRewriteError(f"worker process {worker.process.pid} died ({how}) while running task {index}")


def _stop(workers: list[_Worker], graceful: bool) -> None:
    """End every worker: ask idle ones to exit, SIGTERM the others, SIGKILL after a grace.

    Returns only when all have exited (and were reaped). An exception while waiting (a
    second Ctrl-C) skips the grace period: the rest are killed at once.
    """
    started = [w for w in workers if w.process.pid is not None]
    try:
        if graceful:
            for worker in started:
                if not worker.retired:
                    _retire(worker)
            _wait_exited(started, _GRACE_SECONDS)
        alive = [w for w in started if w.process.is_alive()]
        for worker in alive:
            with contextlib.suppress(OSError):
                worker.process.terminate()
        _wait_exited(alive, _GRACE_SECONDS)
    finally:
        for worker in started:
            if worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.process.kill()
        for worker in started:
            worker.process.join(timeout=_GRACE_SECONDS)
            if worker.process.exitcode is not None:
                worker.process.close()
        for worker in workers:
            worker.conn.close()


def _wait_exited(workers: list[_Worker], timeout: float) -> None:
    """Wait until every process in ``workers`` has exited, or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [w.process.sentinel for w in workers if w.process.is_alive()]
        left = deadline - time.monotonic()
        if not alive or left <= 0:
            return
        wait(alive, timeout=left)


# --- worker side ---------------------------------------------------------------------------


def _worker_main(conn: Connection, parent: int) -> None:
    """A worker process's whole life: serve tasks, then leave without a word.

    Everything is caught and the process ends with :func:`os._exit`, so neither
    ``multiprocessing`` nor interpreter teardown prints anything. Exit status: 0 when told to
    stop (or the parent closed the pipe), 143 on SIGTERM, 1 on anything else.
    """
    code = _EXIT_ERROR
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
        code = _serve(conn, parent)
    except Terminated:
        code = _EXIT_TERMINATED
    except BaseException:  # noqa: BLE001 - a worker must never print a traceback
        code = _EXIT_ERROR
    finally:
        _flush_quietly()
        os._exit(code)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """First SIGTERM: unwind the running task (it removes its partial output); then ignore.

    Python runs this handler between any two bytecodes of the main thread, including inside
    library code (``signal.signal`` itself is Python code) called from :func:`_worker_main`
    outside :func:`_serve`. An exception raised there could escape and be printed by
    ``multiprocessing``, so unless :func:`_serve` is on the stack the worker exits at once.
    """
    if not _serving(frame):
        os._exit(_EXIT_TERMINATED)
    _sigterm_seen.append(signum)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut the unwinding
    raise Terminated()


_sigterm_seen: list[int] = []
"""Non-empty once this worker got SIGTERM, should task code swallow the ``Terminated``."""
_sigterm_again: list[int] = []
"""Non-empty when the watchdog thread should send SIGTERM to the main thread again."""


def _on_unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """``sys.unraisablehook`` of a worker: a ``Terminated`` raised in a finalizer is retried.

    When the SIGTERM handler runs inside a ``__del__`` or a weakref callback (importlib's
    module-lock callback, seen in about one stopped worker in 1,000), Python prints the
    exception as "Exception ignored in ..." and carries on. Here nothing is printed; the
    handler is restored and the watchdog thread sends SIGTERM to the main thread again.
    """
    if isinstance(unraisable.exc_value, Terminated):
        with contextlib.suppress(ValueError):  # not the main thread: cannot happen
            signal.signal(signal.SIGTERM, _on_sigterm)
        _sigterm_again.append(1)
        return
    sys.__unraisablehook__(unraisable)


def _serving(frame: FrameType | None) -> bool:
    """True if ``frame`` is :func:`_serve`'s or called from it."""
    while frame is not None:
        if frame.f_code is _serve.__code__:
            return True
        frame = frame.f_back
    return False


def _serve(conn: Connection, parent: int) -> int:
    """Run tasks received on ``conn`` until told to stop; return the exit status."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked while spawned
    sys.unraisablehook = _on_unraisable
    _die_with_parent(parent)
    while True:
        if _sigterm_seen:  # a task caught Terminated and carried on: stop anyway
            raise Terminated()
        try:
            data = conn.recv_bytes()
        except EOFError:  # the parent is gone or gave up
            return _EXIT_OK
        try:
            message = pickle.loads(data)  # from our own parent
        except Exception as e:  # noqa: BLE001 - e.g. fn's module does not import here
            _send_error(conn, e)
            continue
        if message is None:
            return _EXIT_OK
        fn, task = message
        try:
            result = fn(task)
        except Exception as e:  # noqa: BLE001 - the parent raises it
            _send_error(conn, e)
            continue
        try:
            answer = ForkingPickler.dumps(("ok", result))
        except Exception as e:  # noqa: BLE001 - reported as the task's error
            _send_error(conn, TbRewriteError(f"the task's result cannot be pickled: {e}"))
            continue
        conn.send_bytes(answer)


def _send_error(conn: Connection, error: Exception) -> None:
    """Send a task's error to the parent as an exception it can unpickle."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    conn.send(("error", _portable(error), text))


def _portable(error: Exception) -> Exception:
    """``error`` itself if it survives pickling unchanged, else a TbRewriteError saying the same."""
    with contextlib.suppress(Exception):  # cannot be pickled: replaced below
        copy = pickle.loads(pickle.dumps(error))  # our own bytes
        if type(copy) is type(error) and str(copy) == str(error):
            return error
    return TbRewriteError(str(error) or type(error).__name__)


def _die_with_parent(parent: int) -> None:
    """Get SIGTERM when the parent dies, even by SIGKILL.

    ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (Linux) does it at once. A watchdog thread, given the
    parent's pid (the parent may already be gone when this runs), covers the rest and ends
    the process if unwinding takes longer than the grace period.
    """
    try:
        # The running program's own symbols, libc's among them. (Not
        # ctypes.util.find_library: it runs ldconfig in a child process, which a SIGTERM
        # arriving meanwhile would leave behind.)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # not Linux: the watchdog alone notices
        pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Watchdog thread: SIGTERM to the main thread when the parent is gone or on request."""
    main = threading.main_thread().ident
    assert main is not None
    while os.getppid() == parent:
        time.sleep(0.05)
        if _sigterm_again:
            _sigterm_again.clear()
            signal.pthread_kill(main, signal.SIGTERM)
    signal.pthread_kill(main, signal.SIGTERM)  # to the main thread: a blocking read returns
    time.sleep(_GRACE_SECONDS)
    _flush_quietly()
    os._exit(_EXIT_TERMINATED)


def _flush_quietly() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            if stream is not None:
                stream.flush()

"""Running one function over many tasks in worker processes, results in task order.

Workers are started with ``spawn`` (a fresh interpreter each, importing only what the
task needs), never ``fork``: the parent may be running a progress-bar thread, and a
forked child would inherit its locks. So ``fn`` and its tasks must be picklable:
module-level functions, dataclasses, protobuf messages, compiled regexes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any

from tbrewrite.errors import Terminated


_PR_SET_PDEATHSIG = 1
_GRACE_SECONDS = 5.0


def _worker_init(parent: int) -> None:
    """In each worker: die with the parent, and unwind on SIGTERM like on Ctrl-C.

    ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (Linux) sends SIGTERM to the worker if the
    parent dies, even by SIGKILL; the handler raises :class:`Terminated`, so the task's
    ``OutputSet`` removes its partial output. A watchdog thread, given the parent's pid
    (the parent may already be gone when this runs), then ends the process (the pool's
    pipes to a dead parent can block it forever), so no orphan lingers.
    """
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):  # not Linux: the watchdog alone notices
        pass
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGTERM)  # unwind, removing partial output
    time.sleep(_GRACE_SECONDS)
    os._exit(143)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def default_jobs() -> int:
    """Return the number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def map_ordered(
    fn: Callable[[Any], Any], tasks: Sequence[Any], jobs: int, done: Callable[[int, Any], None]
) -> list[Any]:
    """Run ``fn`` over ``tasks`` in up to ``jobs`` processes; results in task order.

    With one job or one task, everything runs in this process.

    Args:
        fn: a module-level function of one task.
        tasks: sequence of picklable tasks.
        jobs: int >= 1. Processes at most.
        done: ``done(index, result)``, called in this process as each task finishes.

    Returns:
        list of ``fn(task)``, in the order of ``tasks``.

    Raises:
        Exception: the first error of any task; queued tasks are cancelled and running
            ones finish first.
    """
    results: list[Any] = [None] * len(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        for i, task in enumerate(tasks):
            results[i] = fn(task)
            done(i, results[i])
        return results
    context = multiprocessing.get_context("spawn")
    workers = min(jobs, len(tasks))
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)
    ) as pool:
        index = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        pending = set(index)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in sorted(finished, key=index.__getitem__):
                    results[index[future]] = future.result()
                    done(index[future], results[index[future]])
        except BaseException:
            # Stop the workers now: each unwinds (removing its partial output) on SIGTERM.
            for process in list(getattr(pool, "_processes", {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results

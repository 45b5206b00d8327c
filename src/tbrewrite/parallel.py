"""Running one function over many tasks in worker processes, results in task order.

Workers are started with ``spawn`` (a fresh interpreter each, importing only what the
task needs), never ``fork``: the parent may be running a progress-bar thread, and a
forked child would inherit its locks. So ``fn`` and its tasks must be picklable:
module-level functions, dataclasses, protobuf messages, compiled regexes.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any


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
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=context) as pool:
        index = {pool.submit(fn, task): i for i, task in enumerate(tasks)}
        pending = set(index)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in sorted(finished, key=index.__getitem__):
                    results[index[future]] = future.result()
                    done(index[future], results[index[future]])
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return results

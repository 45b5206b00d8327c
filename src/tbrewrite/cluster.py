"""Running one function over many tasks on a ``dask.distributed`` cluster (``--scheduler``).

The cluster counterpart of :func:`tbrewrite.parallel.map_ordered`: the same contract —
``fn(task)`` for every task, ``done(index, result)`` in the calling process as each task
finishes, results returned in task order, the first error raised as the task's own
exception after the tasks not yet finished are cancelled. ``fn`` and the tasks are
pickled to the workers, so the same rules apply (module-level functions, dataclasses).

It needs ``dask[distributed]`` (``pip install 'tbrewrite[dask]'``) and a scheduler the
caller started (``dask scheduler`` + ``dask worker ADDRESS``, a ``LocalCluster``, a
Kubernetes or SLURM deployment); each worker must import tbrewrite and reach the storage
the tasks name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tbrewrite.errors import InputError, UsageError

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT = "30s"
"""How long to wait for the scheduler before giving up."""


def map_on_cluster(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    address: str,
    done: Callable[[int, R], None] | None = None,
    *,
    abort: str | None = None,
) -> list[R]:
    """Run ``fn`` over ``tasks`` on the Dask scheduler at ``address``; results in task order.

    Dask cannot stop a task that is running: after a failure the others are cancelled,
    but those already running go on. So, before cancelling, the ``distributed.Event``
    named ``abort`` is set; a task asks :func:`aborted` before it makes anything others
    would see, and undoes its work if it was.

    Args:
        fn: picklable callable, one task in, one result out.
        tasks: picklable tasks; each one Dask task (``pure=False``: run even if equal).
        address: str. The scheduler, e.g. ``tcp://10.0.0.5:8786``.
        done: optional callback ``(index, result)``, in completion order.
        abort: str or None. The name of the Event set when the map fails.

    Returns:
        list of results, in task order.

    Raises:
        UsageError: dask.distributed is not installed.
        InputError: the scheduler cannot be reached.
        Exception: the first failing task's own exception (the others are cancelled).
    """
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise UsageError("--scheduler needs dask.distributed: pip install 'tbrewrite[dask]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        raise InputError(f"{address}: cannot reach the Dask scheduler ({e})") from None
    with client:
        futures = client.map(fn, list(tasks), pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for future in as_completed(futures):
                i = index[future.key]
                results[i] = future.result()
                if done is not None:
                    done(i, results[i])
        except BaseException:
            if abort is not None:
                from distributed import Event

                Event(abort, client=client).set()
            client.cancel(futures)
            raise
    return results


def aborted(name: str) -> bool:
    """In a task of :func:`map_on_cluster`: return whether its map failed (``abort`` was set)."""
    from distributed import Event

    return bool(Event(name).is_set())

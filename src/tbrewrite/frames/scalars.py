"""The scalars of a logdir, a chunk at a time, with the tag and step filters applied per chunk.

The rows are ``commands.export``'s (the native ``ScalarReader``'s NumPy columns, or the
Python engine's rows): ``export`` and :func:`tbrewrite.frames.read` give the same scalars.
The filters are NumPy masks over each chunk's columns, so nothing filtered out is ever
held beyond its chunk. Each chunk also updates the last value of every (run, tag), which
the hparams table's metrics need.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from tbrewrite.engine import select
from tbrewrite.events.framing import Damage, DamageKind
from tbrewrite.frames.filters import Filters


@dataclass(frozen=True)
class Chunk:
    """Up to ``CHUNK_ROWS`` rows of one kind, convertible to pandas or Arrow.

    Attributes:
        kind: str. ``scalars``, ``histograms``, ...
        rows: int.
        frame: callable returning the rows as a pandas DataFrame.
        arrow: callable returning them as a pyarrow ``Table`` or ``RecordBatch``.
        data: the columns as lists (column name -> list), for kinds other than scalars
            and hparams; else None.
    """

    kind: str
    rows: int
    frame: Callable[[], Any]
    arrow: Callable[[], Any]
    data: dict[str, list[Any]] | None = None


def scalar_chunks(
    path: str | os.PathLike[str],
    filters: Filters,
    damage: list[Damage],
    last: dict[tuple[str, str], float] | None,
    emit: bool = True,
) -> Iterator[Chunk]:
    """Yield the scalars under ``path`` that pass ``filters``, in chunks (none if not ``emit``).

    Args:
        path: a logdir, run or event file.
        filters: the tag and step filters.
        damage: receives the damage found.
        last: if given, ``(run, tag) -> value`` updated with the last value of each tag of
            each run, before filtering.
        emit: yield the chunks (False: only fill ``last`` and ``damage``).
    """
    from tbrewrite.commands import export

    native = select.native()
    if native is not None:
        for chunk in export._native_chunks(native, path, damage):
            yield from _scalar_chunk(chunk, filters, last, emit)
        return
    for rows in export._chunks(export.iter_scalars(path, damage=damage), export.CHUNK_ROWS):
        if last is not None:
            for row in rows:
                last[(row.run, row.tag)] = row.value
        if not emit:
            continue
        if filters.active:
            rows = [r for r in rows if filters.tag(r.tag) and filters.step(r.step)]
            if not rows:
                continue
        yield Chunk("scalars", len(rows), partial(export._frame, rows), partial(export._rows_table, rows))


def has_others(native: ModuleType) -> bool:
    """Whether this build's ``ScalarReader`` can list the records that are not scalars."""
    try:
        native.ScalarReader([], False, True)
    except TypeError:
        return False
    return True


def native_run(
    native: ModuleType,
    run: str,
    files: Sequence[Path],
    filters: Filters,
    damage: list[Damage],
    last: dict[tuple[str, str], float] | None,
    emit: bool,
    others: Callable[[dict[str, Any], list[str], list[str]], None],
    unasked: Callable[[int, list[str]], None],
) -> Iterator[Chunk]:
    """Read one run in one native pass: yield its scalars in chunks, hand the other records on.

    ``_native.ScalarReader(..., others=True)`` returns with each batch of scalars the
    records holding anything else; ``others(batch, tags, plugins)`` receives them (the
    run's tags so far and each tag's plugin) before the batch's chunk is yielded. Without
    ``emit``, ``unasked(count, example tags)`` receives the scalars not yielded.
    """
    import numpy as np

    from tbrewrite.commands.export import CHUNK_ROWS, _Chunk

    names = [os.fspath(f) for f in files]
    reader = native.ScalarReader(names, False, True)
    tags: list[str] = []
    plugins: list[str] = []
    while True:
        batch = reader.read(CHUNK_ROWS)
        tags.extend(batch["tags"])
        plugins.extend(batch["plugins"])
        for file, found in enumerate(batch["damage"], batch["first_file"]):
            damage.extend(
                Damage(names[file], DamageKind(kind), offset, before, detail, resumed)
                for kind, offset, before, detail, resumed in found
            )
        others(batch, tags, plugins)
        values = np.frombuffer(batch["values"], "<f8")
        if len(values):
            n = len(values)
            chunk = _Chunk(
                [*tags, run],
                np.full(n, len(tags), dtype=np.int64),
                np.frombuffer(batch["tag_ids"], "<u4").astype(np.int64),
                np.frombuffer(batch["steps"], "<i8"),
                np.frombuffer(batch["wall_times"], "<f8"),
                values,
                np.frombuffer(batch["dtypes"], "<u1").astype(np.int64),
            )
            yield from _scalar_chunk(chunk, filters, last, emit)
            if not emit:
                ids = np.unique(chunk.tags)[:5].tolist()
                unasked(n, [tags[i] for i in ids])
        if batch["done"]:
            return


def _scalar_chunk(
    chunk: Any, filters: Filters, last: dict[tuple[str, str], float] | None, emit: bool
) -> Iterator[Chunk]:
    from tbrewrite.commands import export

    if last is not None:
        _note_last(chunk, last)
    if not emit:
        return
    keep = _mask(chunk, filters)
    if keep is not None:
        if not keep.any():
            return
        chunk = _take(chunk, keep)
    yield Chunk("scalars", len(chunk.values), partial(export._chunk_frame, chunk), partial(export._chunk_table, chunk))


def _mask(chunk: Any, filters: Filters) -> Any:
    """The rows of ``chunk`` (an ``export._Chunk``) that pass ``filters``, or None for all."""
    import numpy as np

    if not filters.active:
        return None
    keep = np.ones(len(chunk.values), dtype=bool)
    if filters.tags is not None:
        passes = np.fromiter((filters.tag(s) for s in chunk.strings), dtype=bool, count=len(chunk.strings))
        keep &= passes[chunk.tags]
    if filters.steps is not None:
        keep &= filters.step_mask(chunk.steps)
    return keep


def _take(chunk: Any, keep: Any) -> Any:
    from tbrewrite.commands.export import _Chunk

    return _Chunk(
        chunk.strings,
        chunk.runs[keep],
        chunk.tags[keep],
        chunk.steps[keep],
        chunk.wall_times[keep],
        chunk.values[keep],
        chunk.dtypes[keep],
    )


def _note_last(chunk: Any, last: dict[tuple[str, str], float]) -> None:
    """Record the last value of each (run, tag) of ``chunk`` in ``last``."""
    import numpy as np

    n = len(chunk.strings)
    keys = chunk.runs * n + chunk.tags
    reversed_keys = keys[::-1]
    unique, first = np.unique(reversed_keys, return_index=True)
    at = len(keys) - 1 - first
    for key, i in zip(unique.tolist(), at.tolist(), strict=True):
        last[(chunk.strings[key // n], chunk.strings[key % n])] = float(chunk.values[i])

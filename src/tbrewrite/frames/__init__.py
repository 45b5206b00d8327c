"""Every kind of data in a TensorBoard log as pandas DataFrames, streamed, without TensorFlow.

:func:`read` returns one DataFrame per kind, in tbparse's long format and column names
(``tag``, ``step``, ``value``, ``wall_time``; ``run`` is tbparse's ``dir_name``);
:func:`iter_chunks` streams the same rows a chunk at a time (as pandas DataFrames or Arrow
record batches), so memory stays flat however large the log. What no table holds (graphs,
run metadata, kinds not asked for, files that are not event files, ...) is counted in
``left_out`` with the reason; damage is reported in ``damage``, everything before it read.

=============  =============================================================================
kind           columns (after ``run, tag, step, wall_time``)
=============  =============================================================================
scalars        ``value`` (float64), ``dtype`` (``float32``, ``int64``, ...): TF1
               ``simple_value`` *and* TF2 rank-0 tensors (tbparse: ``.tensors`` only)
tensors        ``value`` (NumPy array, or a Python number/bytes for rank 0), ``dtype``,
               ``shape``, ``plugin``: tensors no other kind takes
histograms     ``limits``, ``counts`` (float64 arrays, tbparse's convention), ``min``,
               ``max``, ``num``, ``sum``, ``sum_squares``; TF1 and TF2 forms alike
images         ``index``, ``width``, ``height``, ``format`` (``png``, ...), ``value``
               (the encoded bytes)
audio          ``index``, ``sample_rate``, ``num_channels``, ``length_frames``,
               ``content_type``, ``label``, ``value`` (the encoded bytes)
text           ``value`` (str)
hparams        one row per session run: ``run``, a column per hyperparameter, a column
               per metric (its last value)
=============  =============================================================================

Example:
    >>> import tbrewrite
    >>> frames = tbrewrite.read("logs", kinds=["scalars", "histograms"], tags="loss")  # doctest: +SKIP
    >>> frames.scalars.groupby("tag").value.last()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from tbrewrite.engine import select
from tbrewrite.events.framing import Damage
from tbrewrite.frames import columns
from tbrewrite.frames.filters import KINDS, Filters, parse_kinds
from tbrewrite.frames.hparams import Sessions
from tbrewrite.frames.scalars import Chunk, has_others, native_run, scalar_chunks
from tbrewrite.frames.scan import LeftOut, Report, RunScan

__all__ = ["KINDS", "Chunk", "Frames", "LeftOut", "Reading", "histogram_buckets", "iter_chunks", "read"]


class Reading:
    """The chunks of a log being read (iterate once); afterwards, what was left out.

    Attributes:
        kinds: tuple of str. The kinds asked for.
        damage: list of Damage found (complete once iteration ends).
        left_out: list of LeftOut (complete once iteration ends).
        rows: dict kind -> rows yielded so far.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        kinds: tuple[str, ...],
        filters: Filters,
        skipped: dict[str, str] | None = None,
    ) -> None:
        self.path = path
        self.kinds = kinds
        self.filters = filters
        self.damage: list[Damage] = []
        self.report = Report(skipped)
        self.sessions = Sessions()
        self.rows: dict[str, int] = dict.fromkeys(kinds, 0)

    @property
    def left_out(self) -> list[LeftOut]:
        """Everything left out so far, with the reasons."""
        return self.report.left_out

    def __iter__(self) -> Iterator[Chunk]:
        from tbrewrite import storage

        with contextlib.ExitStack() as stack:
            if storage.is_url(self.path) and storage.active() is None:
                stack.enter_context(storage.session())  # a URL read outside the CLI
            self.path = storage.local_path(self.path)
            for chunk in self._chunks():
                self.rows[chunk.kind] += chunk.rows
                yield chunk

    def _chunks(self) -> Iterator[Chunk]:
        from tbrewrite.commands.export import _runs

        runs = _runs(Path(self.path))
        self._files_left_out()
        kinds = set(self.kinds)
        last: dict[tuple[str, str], float] | None = {} if "hparams" in kinds else None
        native = select.native()
        one_pass = native is not None and has_others(native)
        scalars_read = "scalars" in kinds or last is not None
        if scalars_read and not one_pass and native is not None:
            yield from scalar_chunks(self.path, self.filters, self.damage, last, emit="scalars" in kinds)
        builders: dict[str, columns.Builder] = {}
        ready: list[Chunk] = []

        def emit(kind: str, row: tuple[Any, ...], payload: int) -> None:
            builder = builders.get(kind)
            if builder is None:
                builder = builders[kind] = columns.Builder(kind)
            builder.add(row, payload)
            if builder.full:
                ready.append(_builder_chunk(builder))

        damage = None if scalars_read and native is not None else self.damage
        for run, files in runs:
            scan = RunScan(run, kinds, self.filters, emit, self.sessions, self.report)
            if one_pass and native is not None:
                handed = partial(scan.native_others, files=list(files))
                emit_scalars = "scalars" in kinds
                scan.scalars_counted = True
                unasked = partial(self.report.not_asked, "scalars")
                chunks = native_run(native, run, files, self.filters, self.damage, last, emit_scalars, handed, unasked)
                for chunk in chunks:
                    yield from ready
                    ready.clear()
                    yield chunk
                yield from ready
                ready.clear()
            elif native is not None:
                for file in files:
                    scan.native_files(native, [file], damage)
                    yield from ready
                    ready.clear()
            else:
                scan.scalars_here = True
                scan.last = last
                for file in files:
                    scan.python_files([file], damage)
                    yield from ready
                    ready.clear()
        for builder in builders.values():
            if builder.rows:
                yield _builder_chunk(builder)
        if "hparams" in kinds:
            names, rows = self.sessions.rows(last or {})
            yield Chunk("hparams", len(rows), lambda: _hparams_frame(names, rows), lambda: _hparams_table(names, rows))

    def _files_left_out(self) -> None:
        """Count the files under the path that are not event files."""
        from tbrewrite.logdir import walk

        root = Path(self.path)
        if not root.is_dir():
            return
        for folder in walk(root):
            if folder.placeholders:
                names = [_rel(p, root) for p in folder.placeholders]
                self.report.add("files", "Keras profiler placeholders (*.profile-empty), empty", len(names), names)
            for path in folder.other_files:
                name = _rel(path, root)
                if path.name == "projector_config.pbtxt":
                    reason = "the Projector's embeddings configuration, not summaries"
                elif path.suffix == ".tsv":
                    reason = "the Projector's embedding data (.tsv), not summaries"
                elif "plugins" in Path(name).parts:
                    reason = "plugin assets (profiler traces, ...), not event files"
                else:
                    reason = "not an event file (its name has no 'tfevents')"
                self.report.add("files", reason, 1, [name])


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _builder_chunk(builder: columns.Builder) -> Chunk:
    kind, rows = builder.kind, builder.rows
    data = builder.take()
    return Chunk(kind, rows, lambda: columns.frame(kind, data), lambda: columns.record_batch(kind, data), data)


def _hparams_frame(names: list[str], rows: list[list[Any]]) -> Any:
    import pandas as pd

    return pd.DataFrame(rows, columns=names) if rows else pd.DataFrame({"run": pd.Series([], dtype=object)})


def _hparams_table(names: list[str], rows: list[list[Any]]) -> Any:
    """The hparams table for Arrow: a column of numbers stays float64, bools bool, the rest strings."""
    import pyarrow as pa

    arrays = {}
    for i, name in enumerate(names):
        values = [row[i] for row in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            arrays[name] = pa.array(values, type=pa.bool_())
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present) and i > 0:
            arrays[name] = pa.array(values, type=pa.float64())
        else:
            arrays[name] = pa.array([None if v is None else str(v) for v in values], type=pa.large_string())
    return pa.table(arrays) if arrays else pa.table({"run": pa.array([], type=pa.large_string())})


def iter_chunks(
    path: str | os.PathLike[str],
    *,
    kinds: str | Iterable[str] | None = None,
    tags: str | re.Pattern[str] | None = None,
    steps: slice | range | None = None,
    skipped: dict[str, str] | None = None,
) -> Reading:
    """Stream the tables of ``path`` a chunk at a time (see :func:`read` for the arguments).

    Each :class:`Chunk` holds up to 100,000 rows (or 64 MiB of images or audio) of one
    kind and turns into a pandas DataFrame (``chunk.frame()``) or an Arrow record batch
    (``chunk.arrow()``, needs pyarrow). Scalars come first, then the other kinds as their
    chunks fill, hparams last.

    Args:
        path: a logdir, a run folder, or one event file.
        kinds: as :func:`read`.
        tags: as :func:`read`.
        steps: as :func:`read`.
        skipped: kind -> the reason to give in ``left_out`` for kinds not asked for
            (default "not asked for").

    Returns:
        Reading: iterate it once; then its ``left_out`` and ``damage`` are complete.
    """
    return Reading(path, parse_kinds(kinds), Filters.make(tags, steps), skipped)


@dataclass
class Frames:
    """The DataFrames of one read, one per kind (empty, with its columns, if not asked for).

    Attributes:
        scalars, tensors, histograms, images, audio, text, hparams: pandas DataFrames.
        left_out: list of LeftOut: what no table holds, and why.
        damage: list of Damage: damaged stretches of input (everything before them is read).
    """

    scalars: Any
    tensors: Any
    histograms: Any
    images: Any
    audio: Any
    text: Any
    hparams: Any
    left_out: list[LeftOut] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)

    def __getitem__(self, kind: str) -> Any:
        if kind not in KINDS:
            raise KeyError(kind)
        return getattr(self, kind)

    @property
    def histogram_buckets(self) -> Any:
        """The histograms as a long table: one row per bucket (see :func:`histogram_buckets`)."""
        return histogram_buckets(self.histograms)


def read(
    path: str | os.PathLike[str],
    *,
    kinds: str | Iterable[str] | None = None,
    tags: str | re.Pattern[str] | None = None,
    steps: slice | range | None = None,
    pivot: bool = False,
) -> Frames:
    """Read a logdir, a run or one event file into one pandas DataFrame per kind.

    Args:
        path: a logdir (every run under it), a run folder, or one event file; or a URL
            (``s3://``, ``gs://``, ``az://``, ``memory://``; see :mod:`tbrewrite.storage`).
        kinds: the kinds to read (:data:`KINDS`), a name, names separated by commas, or
            None / ``"all"`` for every kind. Kinds not read are empty DataFrames.
        tags: keep only the tags this regular expression finds (``re.search``).
        steps: keep only the steps in this ``slice`` or ``range`` (``slice(0, 1000)``;
            ``range(0, 1000, 10)``). Hparams are never filtered.
        pivot: scalars, tensors and text in wide format, as tbparse's ``pivot=True``: one
            row per run and step, a column per tag; several values of one tag at one step
            become a list.

    Returns:
        Frames.

    Raises:
        InputError: ``path`` is missing or holds no event files.
        UsageError: a bad kind, pattern or step range.
    """
    import pandas as pd

    reading = iter_chunks(path, kinds=kinds, tags=tags, steps=steps)
    parts: dict[str, list[Any]] = {kind: [] for kind in KINDS}
    for chunk in reading:
        parts[chunk.kind].append(chunk.frame())
    tables: dict[str, Any] = {}
    for kind in KINDS:
        frames = parts[kind]
        if kind == "hparams":
            tables[kind] = frames[0] if frames else _hparams_frame(["run"], [])
        elif not frames:
            tables[kind] = _empty_scalars() if kind == "scalars" else columns.frame(kind)
        else:
            tables[kind] = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        if pivot and kind in ("scalars", "tensors", "text"):
            tables[kind] = _pivot(tables[kind])
    return Frames(**tables, left_out=reading.left_out, damage=reading.damage)


def _empty_scalars() -> Any:
    from tbrewrite.commands.export import _frame

    return _frame([])


def _pivot(frame: Any) -> Any:
    """Wide format: ``run``, ``step``, then a column per tag (several values at one step: a list)."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame({"run": [], "step": []})
    keys = ["run", "step", "tag"]
    if frame.duplicated(keys).any():
        values = frame.groupby(keys, sort=False)["value"].agg(lambda s: s.iloc[0] if len(s) == 1 else list(s))
        frame = values.reset_index()
    wide = frame.pivot(index=["run", "step"], columns="tag", values="value")
    wide = wide.sort_index().reset_index()
    wide.columns.name = None
    return wide


def histogram_buckets(histograms: Any) -> Any:
    """Return the histograms DataFrame ``histograms`` as one row per bucket.

    Columns: ``run``, ``tag``, ``step``, ``wall_time``, ``bucket`` (0, 1, ... within its
    histogram), ``left``, ``right``, ``count``: the edges TensorBoard draws
    (:func:`tbrewrite.frames.histograms.buckets`).
    """
    data = bucket_rows(histograms.to_dict("list"))
    return columns.frame("histogram_buckets", data)


def bucket_rows(data: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """The bucket table's columns from the histograms table's columns (lists)."""
    import numpy as np

    from tbrewrite.frames.histograms import buckets

    out: dict[str, list[Any]] = {c.name: [] for c in columns.TABLES["histogram_buckets"]}
    for i in range(len(data["tag"])):
        left, right, count = buckets(data["limits"][i], data["counts"][i], data["min"][i], data["max"][i])
        n = len(left)
        for name in ("run", "tag", "step", "wall_time"):
            out[name].extend([data[name][i]] * n)
        out["bucket"].extend(range(n))
        out["left"].extend(np.asarray(left).tolist())
        out["right"].extend(np.asarray(right).tolist())
        out["count"].extend(np.asarray(count).tolist())
    return out

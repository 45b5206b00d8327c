"""``export``: every scalar of a log as a tidy table (run, tag, step, wall_time, value, dtype).

Unlike readers built on TensorBoard's ``EventAccumulator`` (tbparse,
tensorboard-reducer), nothing is sampled: the accumulator keeps a reservoir of 10,000
scalars and 10 tensors per tag by default (``event_accumulator.py``
``DEFAULT_SIZE_GUIDANCE``), and TF2 scalars, stored as tensors, are invisible to its
``Scalars()``. Both ``simple_value`` and rank-0 tensors of the ``scalars`` plugin (float32
as Keras 3 and tf.keras write them, and every other numeric type TensorBoard's data
provider plots: float16, float64, int8 to int64, uint8 to uint64, bool;
:data:`tbrewrite.events.summary.SCALAR_DTYPES`) are read, each row naming its type in
``dtype``, and rows stream out in chunks so memory stays flat however large the log.

With the native engine (:mod:`tbrewrite.engine.select`), ``_native.ScalarReader`` reads a
run's files a batch of rows at a time into NumPy columns, and the tables are built from
those columns: the same rows, in the same order and the same chunks, as the Python loop.
"""

from __future__ import annotations

import array
import contextlib
import functools
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from tbrewrite.engine import select
from tbrewrite.errors import InputError
from tbrewrite.events.framing import Damage, DamageKind
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.summary import SCALAR_DTYPES, scalar_number
from tbrewrite.logdir import is_event_file, runs
from tbrewrite.storage import local_path

COLUMNS = ("run", "tag", "step", "wall_time", "value", "dtype")
DTYPE_NAMES = ["" for _ in range(max(SCALAR_DTYPES) + 1)]
for _code, (_name, _, _) in SCALAR_DTYPES.items():
    DTYPE_NAMES[_code] = _name
"""``DTYPE_NAMES[code]``: the ``dtype`` column's name of a ``DataType`` code."""
FORMATS = ("csv", "parquet")
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class ScalarRow:
    """One scalar point.

    Attributes:
        run: str. The run's folder relative to the logdir (``"."`` for the logdir).
        tag: str.
        step: int (int64).
        wall_time: float seconds since the Unix epoch.
        value: float. The stored number widened to a float64 (a bool is 1.0 or 0.0;
            64-bit integers beyond 2**53 round to the nearest float64).
        dtype: str. Its stored type: ``float32`` (``simple_value`` too), ``float64``,
            ``float16``, ``int32``, ``int64``, ``bool``, ... (:data:`SCALAR_DTYPES`).
    """

    run: str
    tag: str
    step: int
    wall_time: float
    value: float
    dtype: str = "float32"


def _runs(path: Path) -> list[tuple[str, list[Path]]]:
    if path.is_file():
        if not is_event_file(path.name):
            raise InputError(f"{path}: not an event file (its name has no 'tfevents')")
        return [(".", [path])]
    if not path.is_dir():
        raise InputError(f"{path}: no such file or directory")
    found = [(folder.rel, list(folder.event_files)) for folder in runs(path)]
    if not found:
        raise InputError(f"{path}: no event files found (names containing 'tfevents')")
    return found


def iter_scalars(path: str | os.PathLike[str], *, damage: list[Damage] | None = None) -> Iterator[ScalarRow]:
    """Yield every scalar value under ``path`` (a logdir, a run, or one event file).

    Runs are visited in sorted order, files in TensorBoard's order, values in file
    order. A value counts as a scalar when it is a ``simple_value`` or a rank-0 tensor of
    a numeric type (:func:`tbrewrite.events.summary.scalar_number`) whose tag's first
    metadata names the ``scalars`` plugin (or has none).

    Args:
        path: str or PathLike.
        damage: optional list that receives the :class:`Damage` of damaged files
            (everything before the damage is yielded).

    Raises:
        InputError: ``path`` is missing or holds no event files.
    """
    native = select.native()
    if native is not None:
        for run, tags, tag_ids, steps, wall_times, values, dtypes in _native_blocks(native, path, damage):
            for tag_id, step, wall_time, value, dtype in zip(
                tag_ids.tolist(), steps.tolist(), wall_times.tolist(), values.tolist(), dtypes.tolist(), strict=True
            ):
                yield ScalarRow(run, tags[tag_id], step, wall_time, value, DTYPE_NAMES[dtype])
        return
    for run, files in _runs(Path(path)):
        for tag, step, wall_time, number, dtype in _python_rows(files, damage):
            yield ScalarRow(run, tag, step, wall_time, number, DTYPE_NAMES[dtype])


def _python_rows(
    files: Sequence[Path], damage: list[Damage] | None, resync: bool = False
) -> Iterator[tuple[str, int, float, float, int]]:
    """Yield the scalars of one run's ``files`` as ``(tag, step, wall_time, value, dtype code)``.

    The Python engine's reader, the rules of :func:`iter_scalars`.
    """
    plugins: dict[str, str] = {}
    for file in files:
        reader = EventFileReader(file, resync=resync)
        for event in reader.events():
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                plugin = plugins.get(value.tag)
                if plugin is None:
                    plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
                    plugins[value.tag] = plugin
                if plugin not in ("", "scalars"):
                    continue
                number = scalar_number(value)
                if number is not None:
                    yield value.tag, event.step, event.wall_time, number[0], number[1]
        if damage is not None:
            damage.extend(reader.damage)


@dataclass(frozen=True)
class ValueBlock:
    """A batch of one run's scalar values as columns (:func:`iter_values`).

    Attributes:
        tags: list of str. ``tags[tag_ids[i]]`` is value ``i``'s tag; one list for the
            whole run, which grows as new tags appear.
        tag_ids: sequence of int (uint32).
        steps: sequence of int (int64).
        values: sequence of float (float64).
    """

    tags: list[str]
    tag_ids: Sequence[int]
    steps: Sequence[int]
    values: Sequence[float]


def iter_values(files: Sequence[str | os.PathLike[str]], *, resync: bool = False) -> Iterator[ValueBlock]:
    """Yield the scalar values of one run's ``files`` in batches, without NumPy or pandas.

    The same values as :func:`iter_scalars` gives for a run of these files, in the same
    order, for callers that need only the values and steps (``inspect``'s sparklines,
    ``compact``'s buckets) and must start fast: the native ``ScalarReader``'s columns are
    read as memoryviews, not arrays.

    Args:
        files: the run's event files, in TensorBoard's order.
        resync: bool. After damage, continue from the next valid record.

    Yields:
        :class:`ValueBlock` of at most ``CHUNK_ROWS`` values. Damage ends a file's values
        (the callers' scans report it).

    Raises:
        OSError: a file cannot be read.
    """
    paths = [Path(f) for f in files]
    native = select.native()
    if native is not None:
        reader = native.ScalarReader([os.fspath(f) for f in paths], resync)
        tags: list[str] = []
        while True:
            batch = reader.read(CHUNK_ROWS)
            tags.extend(batch["tags"])
            if batch["values"]:
                yield ValueBlock(
                    tags,
                    _little_endian(batch["tag_ids"], "I"),
                    _little_endian(batch["steps"], "q"),
                    _little_endian(batch["values"], "d"),
                )
            if batch["done"]:
                return
    ids: dict[str, int] = {}
    names: list[str] = []
    tag_ids: list[int] = []
    steps: list[int] = []
    values: list[float] = []
    for tag, step, _, number, _ in _python_rows(paths, None, resync):
        tag_id = ids.get(tag)
        if tag_id is None:
            tag_id = ids[tag] = len(names)
            names.append(tag)
        tag_ids.append(tag_id)
        steps.append(step)
        values.append(number)
        if len(values) == CHUNK_ROWS:
            yield ValueBlock(names, tag_ids, steps, values)
            tag_ids, steps, values = [], [], []
    if values:
        yield ValueBlock(names, tag_ids, steps, values)


def _little_endian(data: bytes, code: str) -> Sequence[Any]:
    """Return the little-endian column ``data`` as a sequence of ``array`` type ``code``."""
    if sys.byteorder == "little":
        view: Any = memoryview(data)  # typeshed types cast() per literal format code
        return view.cast(code)  # type: ignore[no-any-return]
    column = array.array(code, data)
    column.byteswap()
    return column


def _native_blocks(
    native: ModuleType, path: str | os.PathLike[str], damage: list[Damage] | None
) -> Iterator[tuple[str, list[str], Any, Any, Any, Any, Any]]:
    """Yield the scalars under ``path`` as ``iter_scalars`` does, a batch of rows at a time.

    Each batch is ``(run, tags, tag_ids, steps, wall_times, values, dtypes)``, the last
    five NumPy arrays (``tags[tag_ids[i]]`` is row ``i``'s tag, ``dtypes[i]`` its
    ``DataType`` code). Damage goes to ``damage`` as each file ends.
    """
    import numpy as np

    for run, files in _runs(Path(path)):
        reader = native.ScalarReader([os.fspath(f) for f in files])
        tags: list[str] = []
        while True:
            batch = reader.read(CHUNK_ROWS)
            tags.extend(batch["tags"])
            values = np.frombuffer(batch["values"], "<f8")
            if len(values):
                tag_ids = np.frombuffer(batch["tag_ids"], "<u4")
                steps = np.frombuffer(batch["steps"], "<i8")
                wall_times = np.frombuffer(batch["wall_times"], "<f8")
                dtypes = np.frombuffer(batch["dtypes"], "<u1")
                yield run, tags, tag_ids, steps, wall_times, values, dtypes
            if damage is not None:
                for file, found in enumerate(batch["damage"], batch["first_file"]):
                    name = os.fspath(files[file])
                    damage.extend(
                        Damage(name, DamageKind(kind), offset, before, detail, resumed)
                        for kind, offset, before, detail, resumed in found
                    )
            if batch["done"]:
                break


@dataclass(frozen=True)
class _Chunk:
    """Up to ``CHUNK_ROWS`` rows as columns, strings by index into ``strings``.

    Attributes:
        strings: list of str: the runs and tags the chunk names.
        runs, tags: int64 NumPy arrays indexing ``strings``.
        steps, wall_times, values: NumPy arrays (int64, float64, float64).
        dtypes: int64 NumPy array of ``DataType`` codes (:data:`DTYPE_NAMES`).
    """

    strings: list[str]
    runs: Any
    tags: Any
    steps: Any
    wall_times: Any
    values: Any
    dtypes: Any


def _native_chunks(native: ModuleType, path: str | os.PathLike[str], damage: list[Damage] | None) -> Iterator[_Chunk]:
    """Yield the rows of :func:`iter_scalars` from the native reader's columns, in chunks.

    They are cut into the same chunks of ``CHUNK_ROWS`` rows across runs as the Python
    path's, so that a Parquet file gets the same row groups.
    """
    import numpy as np

    # Batches not yet in a chunk: (run, its tag list, tag_ids, steps, wall_times, values, dtypes).
    pieces: list[tuple[Any, ...]] = []
    held = 0

    def chunk(rows: int) -> _Chunk:
        nonlocal pieces, held
        parts: list[tuple[Any, ...]] = []
        left = rows
        while left:
            run, tags, *columns = pieces[0]
            take = min(left, len(columns[0]))
            parts.append((run, tags, *(c[:take] for c in columns)))
            if take < len(columns[0]):
                pieces[0] = (run, tags, *(c[take:] for c in columns))
            else:
                pieces.pop(0)
            left -= take
        held -= rows
        # One table of strings for the chunk: each part's tags, then its runs.
        strings: list[str] = []
        tag_ids = []
        for _, tags, ids, *_ in parts:
            tag_ids.append(ids.astype(np.int64) + len(strings))
            strings.extend(tags)
        run_ids = [np.full(len(part[2]), len(strings) + k, dtype=np.int64) for k, part in enumerate(parts)]
        strings.extend(part[0] for part in parts)
        return _Chunk(
            strings,
            np.concatenate(run_ids),
            np.concatenate(tag_ids),
            np.concatenate([part[3] for part in parts]),
            np.concatenate([part[4] for part in parts]),
            np.concatenate([part[5] for part in parts]),
            np.concatenate([part[6] for part in parts]).astype(np.int64),
        )

    for run, tags, tag_ids, steps, wall_times, values, dtypes in _native_blocks(native, path, damage):
        pieces.append((run, tags, tag_ids, steps, wall_times, values, dtypes))
        held += len(values)
        while held >= CHUNK_ROWS:
            yield chunk(CHUNK_ROWS)
    if held:
        yield chunk(held)


def _chunk_frame(chunk: _Chunk) -> Any:  # a pandas DataFrame
    import pandas as pd

    return pd.DataFrame(
        {
            "run": _strings(chunk.strings, chunk.runs),
            "tag": _strings(chunk.strings, chunk.tags),
            "step": chunk.steps,
            "wall_time": chunk.wall_times,
            "value": chunk.values,
            "dtype": _strings(DTYPE_NAMES, chunk.dtypes),
        }
    )


def _arrow_schema() -> Any:
    """The Parquet file's columns: as ``read_scalars``' DataFrame's, strings as Arrow's ``large_string``."""
    import pyarrow as pa

    return pa.schema(
        [
            ("run", pa.large_string()),
            ("tag", pa.large_string()),
            ("step", pa.int64()),
            ("wall_time", pa.float64()),
            ("value", pa.float64()),
            ("dtype", pa.large_string()),
        ]
    )


def _chunk_table(chunk: _Chunk) -> Any:  # a pyarrow Table
    import pyarrow as pa

    strings = _arrow_strings(chunk.strings)
    names = _arrow_strings(DTYPE_NAMES)
    columns = [
        strings.take(_arrow(chunk.runs, pa.int64())),
        strings.take(_arrow(chunk.tags, pa.int64())),
        _arrow(chunk.steps, pa.int64()),
        _arrow(chunk.wall_times, pa.float64()),
        _arrow(chunk.values, pa.float64()),
        names.take(_arrow(chunk.dtypes, pa.int64())),
    ]
    return pa.Table.from_arrays(columns, schema=_arrow_schema())


def _arrow(column: Any, type_: Any) -> Any:
    """Wrap the NumPy array ``column`` (of ``type_``'s width) as an Arrow array, without a copy.

    ``pyarrow.array`` would do the same but first imports pandas to check whether
    ``column`` is a Series (~0.5 s).
    """
    import numpy as np
    import pyarrow as pa

    data = np.ascontiguousarray(column, dtype=type_.to_pandas_dtype())
    return pa.Array.from_buffers(type_, len(data), [None, pa.py_buffer(data)])


def _arrow_strings(strings: list[str]) -> Any:
    """The Arrow ``large_string`` array of ``strings``, built from its buffers (see :func:`_arrow`)."""
    import numpy as np
    import pyarrow as pa

    encoded = [s.encode() for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(
        pa.large_string(), len(encoded), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    )


def _rows_table(rows: list[ScalarRow]) -> Any:  # a pyarrow Table
    import pyarrow as pa

    columns = [
        pa.array([getattr(r, name) for r in rows], type=f.type)
        for name, f in zip(COLUMNS, _arrow_schema(), strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=_arrow_schema())


def _strings(table: list[str], ids: Any) -> Any:
    """Return the column ``table[ids]`` in the type pandas gives a column of ``str``.

    That is the type the Python path's frames have. Where it is pyarrow-backed (pandas
    3's ``str``) pyarrow builds it, 4x faster than pandas converting Python strings.
    """
    import numpy as np

    dtype = _string_dtype()
    if getattr(dtype, "storage", None) == "pyarrow":
        import pandas as pd
        import pyarrow as pa

        return pd.array(pa.array(table, type=pa.large_string()).take(pa.array(ids)), dtype=dtype)
    return np.asarray(table, dtype=object)[ids]


@functools.cache
def _string_dtype() -> Any:
    """The dtype pandas gives a column of Python ``str`` (``object`` before pandas 3)."""
    import pandas as pd

    return pd.DataFrame({"column": ["text"]}).dtypes["column"]


def _frames(path: str | os.PathLike[str], damage: list[Damage] | None = None) -> Iterator[Any]:
    """Yield the scalars under ``path`` as DataFrames of ``CHUNK_ROWS`` rows.

    The last one is shorter; the engine in use reads them.
    """
    native = select.native()
    if native is not None:
        yield from map(_chunk_frame, _native_chunks(native, path, damage))
        return
    for chunk in _chunks(iter_scalars(path, damage=damage), CHUNK_ROWS):
        yield _frame(chunk)


def _tables(path: str | os.PathLike[str], damage: list[Damage] | None = None) -> Iterator[Any]:
    """Yield the scalars under ``path`` as pyarrow Tables of ``CHUNK_ROWS`` rows (no pandas)."""
    native = select.native()
    if native is not None:
        yield from map(_chunk_table, _native_chunks(native, path, damage))
        return
    for chunk in _chunks(iter_scalars(path, damage=damage), CHUNK_ROWS):
        yield _rows_table(chunk)


def _chunks(rows: Iterator[ScalarRow], size: int) -> Iterator[list[ScalarRow]]:
    chunk: list[ScalarRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _frame(chunk: list[ScalarRow]) -> Any:  # a pandas DataFrame (pandas is imported lazily)
    import pandas as pd

    frame = pd.DataFrame(chunk, columns=list(COLUMNS))
    return frame.astype({"step": "int64", "wall_time": "float64", "value": "float64"})


def read_scalars(path: str | os.PathLike[str]) -> Any:  # a pandas DataFrame
    """Return every scalar under ``path`` as a pandas DataFrame.

    Columns: ``run`` (str), ``tag`` (str), ``step`` (int64), ``wall_time`` (float64,
    seconds since the Unix epoch), ``value`` (float64), ``dtype`` (str: the stored type,
    ``float32``, ``int64``, ``float16``, ...; see :class:`ScalarRow`). Damage is not an error here:
    everything before it is returned (use ``tbrewrite inspect`` to see it).

    Example:
        >>> df = read_scalars("converted/run1")  # doctest: +SKIP
        >>> df[df.tag == "val/loss"].plot(x="step", y="value")  # doctest: +SKIP
    """
    import pandas as pd

    frames = list(_frames(path))
    if not frames:
        return _frame([])
    return pd.concat(frames, ignore_index=True)


def export(
    path: str | os.PathLike[str], out: str | os.PathLike[str], *, fmt: str | None = None, force: bool = False
) -> tuple[int, list[Damage]]:
    """Write every scalar under ``path`` to ``out`` as CSV or Parquet, in chunks.

    Args:
        path: a logdir, a run, or one event file.
        out: the table file; its suffix (``.csv`` / ``.parquet``) picks the format
            unless ``fmt`` is given.
        fmt: ``"csv"`` or ``"parquet"`` (Parquet needs ``pyarrow``).
        force: bool. Replace ``out`` if it exists.

    Returns:
        (rows written, damage found).

    Raises:
        InputError: bad path or format, or pyarrow missing for Parquet.
        OutputError: ``out`` exists and ``force`` is not set.
    """
    from tbrewrite.errors import OutputError

    path = local_path(path)
    out = local_path(out, "OUT")
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise InputError(f"{out}: cannot tell the format; use a .csv or .parquet name or --format")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"{out}: {out.parent} is not a folder")
    if out.exists() and not out.is_file():
        raise OutputError(
            f"{out}: not a regular file; export writes a new file and never replaces a folder, pipe or device"
        )
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists; use --force to replace it")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("parquet export needs pyarrow: pip install pyarrow") from None
    damage: list[Damage] = []
    temp = out.with_name(f".{out.name}.tbrewrite-partial")
    rows = 0
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            for frame in _frames(path, damage):
                frame = _neutralize_formulas(frame)
                frame.to_csv(temp, mode="a" if rows else "w", header=not rows, index=False)
                rows += len(frame)
            if not rows:
                _frame([]).to_csv(temp, index=False)
        else:
            import pyarrow.parquet as pq

            with pq.ParquetWriter(temp, _arrow_schema()) as writer:
                for table in _tables(path, damage):
                    writer.write_table(table)
                    rows += table.num_rows
        os.replace(temp, out)
    except BaseException as e:
        temp.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        if isinstance(e, OSError) and e.filename is None:  # e.g. ENOSPC from a buffered write
            raise OSError(e.errno, e.strerror or str(e), str(out)) from None
        raise
    return rows, damage


_FORMULA_START = r"^[=+\-@\t\r]"


def _neutralize_formulas(frame: Any) -> Any:
    """Return the DataFrame ``frame`` with cells a spreadsheet would run as a formula quoted.

    A run or tag starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a
    leading ``'``, as OWASP's CSV-injection advice says; Parquet keeps the exact text.
    """
    for column in ("run", "tag"):
        text = frame[column].astype(str)
        risky = text.str.contains(_FORMULA_START, regex=True)
        if risky.any():
            frame = frame.assign(**{column: text.where(~risky, "'" + text)})
    return frame

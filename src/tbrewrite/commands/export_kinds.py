"""``export --kind ...``: every kind of a log into a folder of tables and media files.

``OUT/`` gets one table per kind, Parquet (default) or CSV, written a chunk at a time
as :func:`tbrewrite.frames.iter_chunks` reads them:

* ``scalars``: as ``export``'s single table;
* ``histograms``: ``histograms.parquet`` (``limits``/``counts`` as lists; in CSV only the
  statistics and the bucket count) and ``histogram_buckets``, one row per bucket;
* ``text``, ``hparams``: one table each (a text tensor of several strings as JSON);
* ``images``, ``audio``: each image or clip a file, ``OUT/images/<run>/<tag>/<step>.png``
  (``<step>_<index>`` for the second and later image of one value; the extension from the
  bytes), and an index table with the file's ``path`` relative to ``OUT``;
* ``export_summary.json``: what was exported per kind and what was left out, and why.

Tensors have no table here (their shapes and types vary; ``tbrewrite.read(..., kinds=
"tensors")`` returns them) and are reported as left out. The folder is written under a
temporary name beside ``OUT`` and renamed when complete; ``--force`` replaces an
earlier export (a folder holding ``export_summary.json``), never anything else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tbrewrite.errors import InputError, OutputError
from tbrewrite.events.framing import Damage
from tbrewrite.frames import Chunk, LeftOut, bucket_rows, columns, iter_chunks
from tbrewrite.frames.filters import KINDS, parse_kinds
from tbrewrite.frames.media import EXTENSIONS, audio_format
from tbrewrite.storage import local_path

SUMMARY = "export_summary.json"
EXPORT_KINDS = tuple(k for k in KINDS if k != "tensors")
"""The kinds ``export`` writes (tensors have no table)."""
TENSORS_REASON = (
    "tensors have no export table (shapes and types vary); tbrewrite.read(PATH, kinds='tensors') returns them"
)
_FILE_LIKE = re.compile(r"^-?\d+(_\d+)?(~\d+)?\.[A-Za-z0-9]+$")
_SAFE = re.compile(r"[^A-Za-z0-9._\-=+,@ ()\[\]]")
_LONGEST = 200  # bytes of one folder name of a media file's path, below every file system's NAME_MAX


@dataclass
class KindExport:
    """What was written of one kind.

    Attributes:
        kind: str.
        rows: int. Rows of its table.
        tables: list of str. The table files, relative to OUT.
        files: int. Media files written (images, audio).
    """

    kind: str
    rows: int = 0
    tables: list[str] = field(default_factory=list)
    files: int = 0


@dataclass
class ExportSummary:
    """The outcome of :func:`export_kinds`.

    Attributes:
        out: Path. The folder written.
        exported: list of KindExport, one per kind asked for.
        left_out: list of LeftOut.
        damage: list of Damage.
    """

    out: Path
    exported: list[KindExport]
    left_out: list[LeftOut]
    damage: list[Damage]

    def to_json(self) -> dict[str, Any]:
        """The summary as ``export_summary.json`` holds it."""
        return {
            "exported": [vars(k) for k in self.exported],
            "left_out": [vars(x) for x in self.left_out],
            "damage": [d.describe() for d in self.damage],
        }


def export_kinds(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kinds: str | Iterable[str] = "all",
    fmt: str = "parquet",
    force: bool = False,
    tags: str | None = None,
    steps: slice | range | None = None,
    partition: bool = False,
) -> ExportSummary:
    """Export the ``kinds`` of the log at ``path`` into the folder ``out``.

    Args:
        path: a logdir, a run, or one event file.
        out: the folder to create.
        kinds: names (:data:`EXPORT_KINDS`) or ``"all"``.
        fmt: ``"parquet"`` or ``"csv"``.
        force: replace ``out`` if it is an earlier export.
        tags: keep only tags this regular expression finds.
        steps: keep only these steps.
        partition: write each Parquet table as a dataset partitioned by run
            (``scalars.parquet/run=<run>/part-0.parquet``, the run URL-quoted), for large logdirs.

    Returns:
        ExportSummary.

    Raises:
        InputError: bad path or format, tensors asked for, or pyarrow missing for Parquet.
        OutputError: ``out`` exists (and is not an earlier export replaced with ``force``).
        UsageError: an unknown kind or a bad filter.
    """
    wanted = parse_kinds(kinds) if kinds != "all" else EXPORT_KINDS
    if "tensors" in wanted and (kinds != "all" and "all" not in str(kinds)):
        raise InputError(f"export has no table for tensors; {TENSORS_REASON}")
    wanted = tuple(k for k in wanted if k != "tensors")
    if fmt not in ("parquet", "csv"):
        raise InputError(f"--format {fmt!r}: expected csv or parquet")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("parquet export needs pyarrow: pip install pyarrow (or use --format csv)") from None
    if partition and fmt != "parquet":
        raise InputError("--partition-by-run writes Parquet datasets; drop --format csv")
    path = local_path(path)
    out = local_path(out, "OUT")
    _check_out(out, force)
    temp = out.with_name(f".{out.name}.tbrewrite-partial")
    if temp.exists():
        shutil.rmtree(temp)
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        temp.mkdir(parents=True)
        summary = _write(path, temp, wanted, fmt, tags, steps, partition)
        (temp / SUMMARY).write_text(json.dumps(summary.to_json(), indent=1) + "\n")
        _publish(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    summary.out = out
    return summary


def export_table(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    kind: str = "scalars",
    fmt: str | None = None,
    force: bool = False,
    tags: str | None = None,
    steps: slice | range | None = None,
) -> tuple[int, list[Damage]]:
    """Export one kind that is one table (scalars, text or hparams) to the file ``out``.

    Args:
        path: a logdir, a run, or one event file.
        out: the table file; its suffix picks the format unless ``fmt`` is given.
        kind: ``scalars``, ``text`` or ``hparams``.
        fmt: ``"csv"`` or ``"parquet"``.
        force: replace ``out`` if it is a regular file.
        tags: keep only tags this regular expression finds.
        steps: keep only these steps (a slice or range).

    Returns:
        (rows written, damage found).

    Raises:
        InputError: a kind that is not one table, a bad format, or pyarrow missing.
        OutputError: ``out`` exists and ``force`` is not set, or is not a regular file.
    """
    kinds = parse_kinds(kind)
    if len(kinds) != 1 or kinds[0] not in ("scalars", "text", "hparams"):
        raise InputError(f"{out}: --kind {kind} writes a folder of tables; give OUT without a .csv/.parquet suffix")
    path = local_path(path)
    out = local_path(out, "OUT")
    fmt = fmt or out.suffix.lstrip(".").lower()
    if fmt not in ("csv", "parquet"):
        raise InputError(f"{out}: cannot tell the format; use a .csv or .parquet name or --format")
    if out.exists() and not out.is_file():
        raise OutputError(
            f"{out}: not a regular file; export writes a new file and never replaces a folder, pipe or device"
        )
    if out.exists() and not force:
        raise OutputError(f"{out}: already exists; use --force to replace it")
    temp = out.with_name(f".{out.name}.tbrewrite-partial")
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        temp.mkdir()
        summary = _write(path, temp, kinds, fmt, tags, steps)
        os.replace(temp / f"{kinds[0]}.{fmt}", out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        for folder in created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(temp, ignore_errors=True)
    return summary.exported[0].rows, summary.damage


def _check_out(out: Path, force: bool) -> None:
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise OutputError(f"{out}: exists and is not a folder; export --kind writes a folder")
        if any(out.iterdir()):
            if not (out / SUMMARY).is_file():
                raise OutputError(f"{out}: a folder that is not an earlier export; choose a new OUT")
            if not force:
                raise OutputError(f"{out}: already exists; use --force to replace it")
    if out.parent.exists() and not out.parent.is_dir():
        raise InputError(f"{out}: {out.parent} is not a folder")


def _publish(temp: Path, out: Path) -> None:
    """Rename ``temp`` to ``out``, the earlier export (if any) moved aside first, then deleted."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.tbrewrite-old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(temp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


class _Tables:
    """The open table writers of one export, one per table name (per run, partitioned)."""

    def __init__(self, root: Path, fmt: str, partition: bool = False) -> None:
        self.root = root
        self.fmt = fmt
        self.partition = partition
        self.writers: dict[str, Any] = {}
        self.rows: dict[str, int] = {}
        self.current: dict[str, str] = {}
        """Table -> the run whose partition file is open (runs arrive in order, never again)."""

    def name(self, table: str) -> str:
        return f"{table}.{self.fmt}" + ("/" if self.partition else "")

    def write(self, table: str, batch: Any) -> None:
        """Append the Arrow table/batch (Parquet) or pandas DataFrame (CSV) ``batch``."""
        if self.partition:
            self._write_partitioned(table, batch)
            return
        path = self.root / self.name(table)
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            writer = self.writers.get(table)
            if writer is None:
                writer = self.writers[table] = pq.ParquetWriter(path, batch.schema)
            if batch.num_rows:
                writer.write(batch)
            self.rows[table] = self.rows.get(table, 0) + batch.num_rows
        else:
            first = table not in self.rows
            frame = _csv_safe(batch)
            frame.to_csv(path, mode="w" if first else "a", header=first, index=False)
            self.rows[table] = self.rows.get(table, 0) + len(batch)

    def _write_partitioned(self, table: str, batch: Any) -> None:
        """Write each run's rows to ``TABLE.parquet/run=<run>/part-0.parquet`` (a Hive-partitioned dataset)."""
        from urllib.parse import quote

        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        self.rows[table] = self.rows.get(table, 0) + batch.num_rows
        folder = self.root / self.name(table)
        folder.mkdir(exist_ok=True)
        runs = batch.column("run")
        data = batch.drop_columns(["run"])
        for run in pc.unique(runs).to_pylist():
            if self.current.get(table) != run:
                old = self.writers.pop(table, None)
                if old is not None:
                    old.close()
                part = folder / f"run={quote(run, safe='')}"
                part.mkdir()
                self.writers[table] = pq.ParquetWriter(part / "part-0.parquet", data.schema)
                self.current[table] = run
            self.writers[table].write(data.filter(pc.equal(runs, run)))

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def _csv_safe(frame: Any) -> Any:
    """Quote every text cell a spreadsheet would run as a formula (``export``'s rule, for every text column).

    A cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading
    ``'`` (OWASP's CSV-injection advice): runs, tags, text, hparams values; Parquet keeps
    the exact text.
    """
    from tbrewrite.commands.export import _FORMULA_START

    risky = re.compile(_FORMULA_START)
    for column in frame.columns:
        values = frame[column]
        if values.dtype.kind not in "OSUT" and str(values.dtype) not in ("str", "string"):
            continue
        if any(isinstance(v, str) and risky.match(v) for v in values):
            quoted = [f"'{v}" if isinstance(v, str) and risky.match(v) else v for v in values]
            frame = frame.assign(**{column: quoted})
    return frame


def _write(
    path: str | os.PathLike[str],
    root: Path,
    kinds: tuple[str, ...],
    fmt: str,
    tags: str | None,
    steps: Any,
    partition: bool = False,
) -> ExportSummary:
    skipped = {"tensors": TENSORS_REASON}
    skipped.update({k: "not asked for (--kind)" for k in KINDS if k not in kinds and k != "tensors"})
    reading = iter_chunks(path, kinds=kinds, tags=tags, steps=steps, skipped=skipped)
    tables = _Tables(root, fmt, partition)
    media = {kind: _MediaFiles(root, kind) for kind in ("images", "audio")}
    try:
        for chunk in reading:
            _write_chunk(chunk, tables, media, fmt)
        for kind in kinds:  # an empty table for a kind that had no rows
            for table in _table_names(kind):
                if table not in tables.rows and not partition:
                    tables.write(table, _empty(table, fmt))
    finally:
        tables.close()
    exported = []
    for kind in kinds:
        names = _table_names(kind)
        files = media[kind].count if kind in media else 0
        exported.append(KindExport(kind, tables.rows.get(names[0], 0), [tables.name(t) for t in names], files))
    return ExportSummary(root, exported, reading.left_out, reading.damage)


def _table_names(kind: str) -> tuple[str, ...]:
    return ("histograms", "histogram_buckets") if kind == "histograms" else (kind,)


def _empty(table: str, fmt: str) -> Any:
    if table == "scalars":
        from tbrewrite.commands import export

        return export._arrow_schema().empty_table() if fmt == "parquet" else export._frame([])
    if table == "hparams":
        import pandas as pd

        if fmt == "parquet":
            import pyarrow as pa

            return pa.table({"run": pa.array([], type=pa.large_string())})
        return pd.DataFrame({"run": []})
    return _convert(table, {c.name: [] for c in _out_columns(table)}, fmt)


def _write_chunk(chunk: Chunk, tables: _Tables, media: dict[str, _MediaFiles], fmt: str) -> None:
    if chunk.kind in ("scalars", "hparams"):
        tables.write(chunk.kind, chunk.arrow() if fmt == "parquet" else chunk.frame())
        return
    data = dict(chunk.data or {})
    if chunk.kind == "histograms":
        tables.write("histograms", _convert("histograms", data, fmt))
        tables.write("histogram_buckets", _convert("histogram_buckets", bucket_rows(data), fmt))
    elif chunk.kind in media:
        data["path"] = [media[chunk.kind].write(*row) for row in zip(*_media_key(data), strict=True)]
        data["bytes"] = [len(v) for v in data.pop("value")]
        tables.write(chunk.kind, _convert(chunk.kind, data, fmt))
    elif chunk.kind == "text":
        data["value"] = [v if isinstance(v, str) else json.dumps(v.tolist(), ensure_ascii=False) for v in data["value"]]
        tables.write("text", _convert("text", data, fmt))


def _media_key(data: dict[str, list[Any]]) -> tuple[list[Any], ...]:
    formats = (
        data["format"]
        if "format" in data
        else [audio_format(v, c) for v, c in zip(data["value"], data["content_type"], strict=True)]
    )
    return data["run"], data["tag"], data["step"], data["index"], formats, data["value"]


def _out_columns(table: str) -> tuple[columns.Column, ...]:
    cols = columns.TABLES[table]
    if table in ("images", "audio"):
        kept = tuple(c for c in cols if c.name != "value")
        cols = (*kept, columns.Column("path", "str"), columns.Column("bytes", "int64"))
    if table == "text":
        cols = tuple(columns.Column(c.name, "str") if c.name == "value" else c for c in cols)
    return cols


def _convert(table: str, data: dict[str, list[Any]], fmt: str) -> Any:
    """Rows of an output table as an Arrow table (Parquet) or a DataFrame (CSV)."""
    cols = _out_columns(table)
    if fmt == "csv":
        import pandas as pd

        return pd.DataFrame({c.name: data[c.name] for c in cols if c.type != "floats"})
    import pyarrow as pa

    types = {
        "str": pa.large_string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "floats": pa.large_list(pa.float64()),
    }
    arrays = []
    for c in cols:
        if c.type == "floats":
            arrays.append(columns._float_lists(data[c.name]))
        else:
            arrays.append(pa.array(data[c.name], type=types[c.type]))
    return pa.Table.from_arrays(arrays, schema=pa.schema([(c.name, types[c.type]) for c in cols]))


class _MediaFiles:
    """Writes images or audio as files under ``root/kind/``, each under a name of its own."""

    def __init__(self, root: Path, kind: str) -> None:
        self.root = root
        self.kind = kind
        self.used: set[str] = set()
        self.count = 0

    def write(self, run: str, tag: str, step: int, index: int, fmt: str, data: bytes) -> str:
        """Write one image or clip; return its path relative to the export folder."""
        parts = [self.kind, *_components(run), *_components(tag)]
        stem = str(step) if index == 0 else f"{step}_{index}"
        ext = EXTENSIONS.get(fmt, "bin")
        name = f"{stem}.{ext}"
        n = 0
        while "/".join([*parts, name]).lower() in self.used:
            n += 1
            name = f"{stem}~{n}.{ext}"
        rel = "/".join([*parts, name])
        self.used.add(rel.lower())
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self.count += 1
        return rel


def _components(name: str) -> list[str]:
    """The path components of a run or tag, each safe as a file name and never like one of ours."""
    parts = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        part = _SAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part)
        if part == ".." or _FILE_LIKE.match(part) or part.startswith("."):
            part = f"%{ord(part[0]):02X}{part[1:]}"
        if len(part) > _LONGEST:  # a long tag (or its %-escaped UTF-8) would exceed NAME_MAX (255 bytes)
            digest = hashlib.sha256(part.encode()).hexdigest()[:16]
            part = f"{part[: _LONGEST - 17]}~{digest}"
        parts.append(part)
    return parts

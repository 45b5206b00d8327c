"""The columns of each kind's table, and a builder that collects rows a chunk at a time.

One :class:`Table` per kind names its columns and their types; :class:`Builder` gathers
rows as Python lists (one list per column) and turns a full chunk into a pandas DataFrame
or an Arrow ``RecordBatch``, so memory is bounded by the chunk, not the log. pandas and
pyarrow are imported only when a chunk is converted.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

CHUNK_ROWS = 100_000
"""Rows per chunk (as ``commands.export``)."""
CHUNK_BYTES = 16 << 20
"""Payload bytes (images, audio) per chunk: a chunk is cut at whichever limit comes first."""


@dataclass(frozen=True)
class Column:
    """One column: its name and type.

    Attributes:
        name: str.
        type: str. ``str``, ``int64``, ``float64``, ``bool``, ``bytes``, ``floats`` (a
            NumPy float64 array per row; Arrow ``list<double>``) or ``object`` (any Python
            value: tensors' arrays, hparams; not written to Arrow).
    """

    name: str
    type: str


def _columns(spec: str) -> tuple[Column, ...]:
    return tuple(Column(*item.split(":")) for item in spec.split())


_KEY = "run:str tag:str step:int64 wall_time:float64 "

TABLES: dict[str, tuple[Column, ...]] = {
    "scalars": _columns(_KEY + "value:float64 dtype:str"),
    "tensors": _columns(_KEY + "value:object dtype:str shape:object plugin:str"),
    "histograms": _columns(
        _KEY + "limits:floats counts:floats min:float64 max:float64 num:float64 sum:float64 sum_squares:float64"
    ),
    "histogram_buckets": _columns(_KEY + "bucket:int64 left:float64 right:float64 count:float64"),
    "images": _columns(_KEY + "index:int64 width:int64 height:int64 format:str value:bytes"),
    "audio": _columns(
        _KEY + "index:int64 sample_rate:float64 num_channels:int64 length_frames:int64 "
        "content_type:str label:str value:bytes"
    ),
    "text": _columns(_KEY + "value:object"),
}
"""Each kind's columns but ``hparams`` (whose columns are the hyperparameters found)."""


class Builder:
    """Rows of one kind, column by column, until a chunk is full.

    Args:
        kind: str. A key of :data:`TABLES`.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.columns = TABLES[kind]
        self.lists: list[list[Any]] = [[] for _ in self.columns]
        self.rows = 0
        self.payload = 0

    def add(self, row: Sequence[Any], payload: int = 0) -> None:
        """Append one row (one value per column, in order); ``payload`` counts its large bytes."""
        for values, value in zip(self.lists, row, strict=True):
            values.append(value)
        self.rows += 1
        self.payload += payload

    @property
    def full(self) -> bool:
        """True once the chunk holds :data:`CHUNK_ROWS` rows or :data:`CHUNK_BYTES` of payload."""
        return self.rows >= CHUNK_ROWS or self.payload >= CHUNK_BYTES

    def take(self) -> dict[str, list[Any]]:
        """Return the rows gathered (column name -> list) and start a new chunk."""
        data = {c.name: values for c, values in zip(self.columns, self.lists, strict=True)}
        self.lists = [[] for _ in self.columns]
        self.rows = 0
        self.payload = 0
        return data


def frame(kind: str, data: dict[str, list[Any]] | None = None) -> Any:  # a pandas DataFrame
    """Return the rows ``data`` of ``kind`` (or none) as a pandas DataFrame with typed columns."""
    import pandas as pd

    data = data or {c.name: [] for c in TABLES[kind]}
    columns = {}
    for c in TABLES[kind]:
        values = data[c.name]
        if c.type in ("int64", "float64", "bool"):
            columns[c.name] = pd.Series(values, dtype=c.type)
        elif c.type == "str":
            columns[c.name] = pd.Series(values, dtype=_string_dtype())
        else:
            columns[c.name] = pd.Series(values, dtype=object)
    return pd.DataFrame(columns)


def arrow_schema(kind: str) -> Any:  # a pyarrow Schema
    """The Arrow schema of ``kind``'s table (``object`` columns left out)."""
    import pyarrow as pa

    types = {
        "str": pa.large_string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "bytes": pa.large_binary(),
        "floats": pa.large_list(pa.float64()),
    }
    return pa.schema([(c.name, types[c.type]) for c in TABLES[kind] if c.type in types])


def record_batch(kind: str, data: dict[str, list[Any]]) -> Any:  # a pyarrow RecordBatch
    """Return the rows ``data`` of ``kind`` as an Arrow ``RecordBatch`` of :func:`arrow_schema`."""
    import pyarrow as pa

    schema = arrow_schema(kind)
    arrays = []
    for field in schema:
        values = data[field.name]
        if pa.types.is_large_list(field.type):
            arrays.append(_float_lists(values))
        else:
            arrays.append(pa.array(values, type=field.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _float_lists(values: list[Any]) -> Any:
    """A ``large_list<double>`` Arrow array of NumPy float64 arrays, built from one buffer."""
    import numpy as np
    import pyarrow as pa

    offsets = np.zeros(len(values) + 1, dtype=np.int64)
    np.cumsum([len(v) for v in values], out=offsets[1:])
    flat = np.concatenate(values).astype(np.float64) if values else np.zeros(0)
    return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.float64()))


@functools.cache
def _string_dtype() -> Any:
    """The dtype pandas gives a column of Python ``str`` (``object`` before pandas 3)."""
    import pandas as pd

    return pd.DataFrame({"column": ["text"]}).dtypes["column"]

"""``export`` writes every scalar TensorBoard plots, whatever its dtype (issue 12 item 9).

A run mixing dtypes lost its int32, int64 and float16 scalars (12 of 24 values exported)
although ``inspect`` calls them scalars and TensorBoard plots them. The run here is built
with TensorBoard's own helpers (``tensor_util.make_tensor_proto``, the scalars plugin's
metadata, its ``EventFileWriter``) and read back by TensorBoard's own data provider
(``MultiplexerDataProvider.read_scalars``, what the Scalars dashboard asks), and the
export must hold exactly its points, with each value's dtype in a column, from both
engines.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from typer.testing import CliRunner

from tbrewrite.cli import app
from tbrewrite.commands import export as export_module
from tbrewrite.commands.inspect import inspect_logdir
from tbrewrite.engine.select import ENV

runner = CliRunner()
T0 = 1_700_000_000.0
DTYPES = (
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "bool",
)


def _value(tag: str, dtype: str, k: int, first: bool) -> summary_pb2.Summary.Value:
    """A rank-0 ``dtype`` tensor: in its typed field as ``make_tensor_proto`` writes it, or for
    uint32 and uint64 (which TensorBoard's ``make_ndarray`` reads from content only) in
    ``tensor_content``, as TensorFlow's C++ summary writer stores every tensor."""
    from tensorboard.plugins.scalar import metadata
    from tensorboard.util import tensor_util

    x = np.array(k % 2 == 1 if dtype == "bool" else (-1) ** k * (k + 0.5 if "float" in dtype else k + 1))
    if dtype.startswith("uint"):
        x = np.abs(x)
    x = x.astype(dtype)
    tensor = tensor_util.make_tensor_proto(x)
    if dtype in ("uint32", "uint64"):
        tensor = tensor_util.make_tensor_proto(np.zeros((), dtype))
        tensor.ClearField("uint32_val" if dtype == "uint32" else "uint64_val")
        tensor.tensor_content = x.tobytes()
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    if first:
        value.metadata.CopyFrom(metadata.create_summary_metadata(display_name=tag, description=""))
    return value


def write_mixed_run(run: Path) -> None:
    """Two values per dtype, as rank-0 tensors of the scalars plugin, plus a simple_value tag."""
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    writer = EventFileWriter(str(run))
    for k in range(2):
        event = event_pb2.Event(wall_time=T0 + k, step=k)
        event.summary.value.extend(_value(f"m/{d}", d, k, first=k == 0) for d in DTYPES)
        event.summary.value.add(tag="m/simple", simple_value=0.25 + k)
        writer.add_event(event)
    # A tensor whose number nothing can plot: a rank-0 string of the scalars plugin.
    from tensorboard.util import tensor_util

    event = event_pb2.Event(wall_time=T0 + 5, step=5)
    event.summary.value.add(tag="m/string", tensor=tensor_util.make_tensor_proto(np.array(b"x")))
    writer.add_event(event)
    writer.close()


def tensorboard_points(logdir: Path) -> dict[tuple[str, str, int], float]:
    """Every point TensorBoard's data provider returns for the Scalars dashboard."""
    from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.context import RequestContext

    mux = EventMultiplexer(tensor_size_guidance={"scalars": 0})
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = MultiplexerDataProvider(mux, str(logdir))
    ctx = RequestContext()
    data = provider.read_scalars(ctx, experiment_id="", plugin_name="scalars", downsample=10**6)
    return {(run, tag, d.step): float(d.value) for run, tags in data.items() for tag, ds in tags.items() for d in ds}


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    write_mixed_run(tmp_path / "logs" / "mixed")
    return tmp_path / "logs"


@pytest.mark.parametrize("engine", ["python", "native"])
def test_every_dtype_tensorboard_plots_is_exported(logdir: Path, engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "native":
        pytest.importorskip("tbrewrite._native", reason="the native core is not built")
    monkeypatch.setenv(ENV, engine)
    want = tensorboard_points(logdir)
    assert len(want) == 2 * (len(DTYPES) + 1)  # TensorBoard plots every dtype (and no string)

    frame = export_module.read_scalars(logdir)
    assert list(frame.columns) == ["run", "tag", "step", "wall_time", "value", "dtype"]
    got = {(r.run, r.tag, r.step): r.value for r in frame.itertuples()}
    assert {k: _bits(v) for k, v in got.items()} == {k: _bits(v) for k, v in want.items()}
    dtypes = {r.tag: r.dtype for r in frame.itertuples()}
    assert dtypes == {**{f"m/{d}": d for d in DTYPES}, "m/simple": "float32"}
    # Exact where TensorBoard's value is: int64 -2, float16 1.5 (0.5 + 1 at k=1: -1.5).
    assert got[("mixed", "m/int64", 1)] == -2.0 and got[("mixed", "m/float16", 1)] == -1.5
    assert got[("mixed", "m/bool", 1)] == 1.0 and got[("mixed", "m/bool", 0)] == 0.0

    # inspect calls every one of them a scalar, and export has as many values.
    (run,) = inspect_logdir(logdir).runs
    scalars = {t.tag: t.count for t in run.scan.tags.values() if t.kind == "scalar"}
    assert sum(n for tag, n in scalars.items() if tag != "m/string") == len(frame)


def test_csv_and_parquet_name_the_dtype_and_both_engines_write_the_same_bytes(
    logdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("pyarrow")
    engines = ["python"]
    try:
        import tbrewrite._native  # noqa: F401

        engines.append("native")
    except ImportError:
        pass
    written: dict[str, dict[str, bytes]] = {}
    for engine in engines:
        monkeypatch.setenv(ENV, engine)
        written[engine] = {}
        for suffix in ("csv", "parquet"):
            out = tmp_path / engine / f"s.{suffix}"
            result = runner.invoke(app, ["export", str(logdir), str(out)])
            assert result.exit_code == 0, result.output
            assert f"exported {2 * (len(DTYPES) + 1)} scalar values" in result.stdout
            written[engine][suffix] = out.read_bytes()
        csv = pd.read_csv(tmp_path / engine / "s.csv")
        parquet = pd.read_parquet(tmp_path / engine / "s.parquet")
        assert list(csv.columns) == list(parquet.columns) == ["run", "tag", "step", "wall_time", "value", "dtype"]
        assert sorted(set(csv.dtype)) == sorted(set(parquet.dtype)) == sorted({*DTYPES})
        assert csv.value.tolist() == parquet.value.tolist()
        assert not any(math.isnan(v) for v in parquet.value)
    assert written["python"] == written.get("native", written["python"])


def test_iter_scalars_rows_carry_the_dtype(logdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = {}
    for engine in ("python", "native"):
        if engine == "native":
            pytest.importorskip("tbrewrite._native", reason="the native core is not built")
        monkeypatch.setenv(ENV, engine)
        rows[engine] = [
            (r.run, r.tag, r.step, _bits(r.wall_time), _bits(r.value), r.dtype)
            for r in export_module.iter_scalars(logdir)
        ]
        assert {type(r.dtype) for r in export_module.iter_scalars(logdir)} == {str}
    assert rows["python"] == rows["native"]
    assert {(tag, dtype) for _, tag, _, _, _, dtype in rows["python"]} >= {("m/int32", "int32"), ("m/uint64", "uint64")}


def test_uint_typed_fields_are_read_as_tensorflow_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorBoard's ``make_tensor_proto`` keeps a rank-0 uint32/uint64 in ``uint32_val`` /
    ``uint64_val``, which its ``make_ndarray`` cannot read (TensorFlow's ``MakeNdarray`` can):
    exported all the same."""
    from tensorboard.plugins.scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(tmp_path / "run"))
    for k, (dtype, x) in enumerate([("uint32", 2**32 - 1), ("uint64", 2**53 + 2)]):
        event = event_pb2.Event(wall_time=T0 + k, step=k)
        value = event.summary.value.add(tag=f"u/{dtype}", tensor=tensor_util.make_tensor_proto(np.array(x, dtype)))
        value.metadata.CopyFrom(metadata.create_summary_metadata(display_name="", description=""))
        assert not value.tensor.tensor_content  # the typed field
        writer.add_event(event)
    writer.close()
    for engine in ("python", "native"):
        if engine == "native":
            pytest.importorskip("tbrewrite._native", reason="the native core is not built")
        monkeypatch.setenv(ENV, engine)
        frame = export_module.read_scalars(tmp_path / "run")
        assert [(r.tag, r.value, r.dtype) for r in frame.itertuples()] == [
            ("u/uint32", 4294967295.0, "uint32"),
            ("u/uint64", 9007199254740994.0, "uint64"),
        ]

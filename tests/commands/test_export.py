"""``export``: every scalar, nothing sampled, checked against TensorBoard's own loader."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from support.logs import event_files
from support.paths import CORPUS, FIXTURES, needs_corpus
from tbrewrite.cli import app
from tbrewrite.commands.export import read_scalars

runner = CliRunner()


def loader_scalars(root: Path) -> Counter:
    """(run, tag, step, wall_time, float32 value) of every scalar TensorBoard's loader sees."""
    import os

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    counts: Counter = Counter()
    for path in event_files(root):
        run = os.path.relpath(path.parent, root)
        for event in EventFileLoader(str(path)).Load():
            for v in event.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    value = float(tensor_util.make_ndarray(v.tensor))
                    counts[(run, v.tag, event.step, event.wall_time, _key(value))] += 1
    return counts


def _key(value: float) -> object:
    return "nan" if math.isnan(value) else value  # the corpus holds real NaN losses


@pytest.mark.parametrize(
    "root", [FIXTURES / "keras3_run", FIXTURES / "tf1_flat_run", pytest.param(CORPUS, marks=needs_corpus)]
)
def test_every_scalar_tensorboard_sees_is_exported(root: Path) -> None:
    frame = read_scalars(root)
    assert list(frame.columns) == ["run", "tag", "step", "wall_time", "value", "dtype"]
    assert str(frame.step.dtype) == "int64"
    got = Counter((*row[:4], _key(row[4])) for row in frame.itertuples(index=False, name=None))
    assert got == loader_scalars(root)


@needs_corpus
def test_hparams_run_15000_batch_points_are_not_sampled() -> None:
    frame = read_scalars(CORPUS / "TensorBoard-Tutorial/archive/hparam_tuning")
    assert (frame.tag == "batch_loss").sum() == 15000  # EventAccumulator's default reservoir keeps 10000


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_cli_export_writes_a_table(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"scalars{suffix}"
    result = runner.invoke(app, ["export", str(FIXTURES / "keras3_run"), str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    expected = read_scalars(FIXTURES / "keras3_run")
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


@needs_corpus
def test_export_damaged_exits_3_and_existing_out_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = runner.invoke(app, ["export", str(CORPUS / "eyenet/src/Graph"), str(out)])
    assert result.exit_code == 3
    assert "crc_mismatch at byte 773645" in result.stderr
    result = runner.invoke(app, ["export", str(CORPUS / "eyenet/src/Graph"), str(out)])
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: already exists; use --force to replace it\n"


def test_export_bad_format_and_missing_path(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(FIXTURES / "keras3_run"), str(tmp_path / "s.xlsx")])
    assert result.exit_code == 1 and "cannot tell the format" in result.stderr
    result = runner.invoke(app, ["export", str(tmp_path / "nope"), str(tmp_path / "s.csv")])
    assert (
        result.exit_code == 1 and result.stderr == f"tbrewrite: error: {tmp_path / 'nope'}: no such file or directory\n"
    )
    assert not (tmp_path / "s.csv").exists()
    # Issue 12 item 13: a missing folder is made, as convert makes OUT.
    result = runner.invoke(app, ["export", str(FIXTURES / "keras3_run"), str(tmp_path / "no" / "s.csv")])
    assert result.exit_code == 0 and (tmp_path / "no" / "s.csv").is_file()

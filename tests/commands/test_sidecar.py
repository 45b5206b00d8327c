"""Sidecars: the learning-rate sidecar and CSVLogger files merged by convert and merge.

Sidecars written by real Keras training: ``tests/e2e/test_sidecar_e2e.py``.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.logs import event_files, loader_values, points
from support.paths import FIXTURES
from tbrewrite.cli import app

runner = CliRunner()


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


BAD = {
    "empty": ("", "line 1: file is empty"),
    "missing column": ("epoch,step,learning_rate\n0,4,0.1\n", "line 1, column 'wall_time': missing column 'wall_time'"),
    "non-numeric": (
        "epoch,step,wall_time,learning_rate\n0,4,1700000000.0,0.1\n1,8,1700000001.0,fast\n",
        "line 3, column 'learning_rate': 'fast' is not a number",
    ),
    "nan": (
        "epoch,step,wall_time,learning_rate\n0,4,1700000000.0,nan\n",
        "line 2, column 'learning_rate': nan is not a finite number",
    ),
    "inf": (
        "epoch,step,wall_time,learning_rate\n0,4,inf,0.1\n",
        "line 2, column 'wall_time': inf is not a finite number",
    ),
    "delimiter": ("epoch;step;wall_time;learning_rate\n0;4;1700000000.0;0.1\n", "line 1: wrong delimiter ';'"),
    "no rows": ("epoch,step,wall_time,learning_rate\n", "line 2: no data rows after the header"),
    "matches nothing": (
        "epoch,step,wall_time,learning_rate\n50,400,1700000000.0,0.1\n51,408,1700000001.0,0.1\n",
        "line 2, column 'epoch': epochs 50..51 match nothing in run",
    ),
    "short row": ("epoch,step,wall_time,learning_rate\n0,4,1700000000.0\n", "line 2: 3 cells, want 4"),
    "negative epoch": (
        "epoch,step,wall_time,learning_rate\n-1,4,1700000000.0,0.1\n",
        "line 2, column 'epoch': -1 is out of range",
    ),
    "step past int64": (
        "epoch,step,wall_time,learning_rate\n0,9223372036854775808,1700000000.0,0.1\n",
        "line 2, column 'step': 9223372036854775808 is out of range",
    ),
    "wall_time not a time": (
        "epoch,step,wall_time,learning_rate\n0,4,1e300,0.1\n",
        "line 2, column 'wall_time': 1e300 is not seconds since the Unix epoch",
    ),
    "duplicate epoch": (
        "epoch,loss\n0,0.5\n1,0.4\n1,0.3\n",
        "line 4, column 'epoch': epoch 1 appears twice (first on line 3)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sidecars_are_one_line_errors_and_write_nothing(case: str, tmp_path: Path) -> None:
    text, message = BAD[case]
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text(text)
    result = runner.invoke(
        app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "out"), "--sidecar", str(sidecar)]
    )
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"tbrewrite: error: {sidecar}: {message}"), result.stderr
    assert not (tmp_path / "out").exists()


def _tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_merge_into_a_converted_run_out_and_in_place(tmp_path: Path) -> None:
    assert runner.invoke(app, ["convert", str(FIXTURES / "tf_keras_run"), str(tmp_path / "run")]).exit_code == 0
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text(
        "epoch,step,wall_time,learning_rate,momentum\n"
        + "".join(f"{e},{4 * (e + 1)},{1795991611.0 + e},{0.5 / 2**e},0.9\n" for e in range(4))
    )
    before = _tree_hash(tmp_path / "run")
    result = runner.invoke(
        app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar), "--out", str(tmp_path / "merged")]
    )
    assert result.exit_code == 0, result.output
    assert _tree_hash(tmp_path / "run") == before
    assert [s for s, _, _ in points(tmp_path / "merged", "train/momentum")] == [0, 1, 2, 3]
    assert [f32(v) for _, _, v in points(tmp_path / "merged", "train/learning_rate")] == [
        f32(0.5 / 2**e) for e in range(4)
    ]
    originals = {p.name: p.read_bytes() for p in event_files(tmp_path / "run")}
    result = runner.invoke(app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar), "--in-place"])
    assert result.exit_code == 0, result.output
    backup = tmp_path / "run.tbrewrite-backup"
    assert {p.name.replace("tbrewrite-backup", "tfevents"): p.read_bytes() for p in backup.iterdir()} == originals
    assert not event_files(backup)  # TensorBoard, pointed at tmp_path, never loads the originals again
    assert len(event_files(tmp_path / "run")) == 1
    assert points(tmp_path / "run", "train/momentum") == points(tmp_path / "merged", "train/momentum")


def test_merge_needs_out_or_in_place(tmp_path: Path) -> None:
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text("epoch,step,wall_time,learning_rate\n0,4,1.0,0.1\n")
    shutil.copytree(FIXTURES / "tf1_flat_run", tmp_path / "run")
    result = runner.invoke(app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar)])
    assert result.exit_code == 2
    assert result.stderr == "tbrewrite: error: give exactly one of --out DIR and --in-place\n"


def test_sidecar_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    sidecar = tmp_path / "lr.csv"
    sidecar.write_bytes("\ufeffepoch,step,wall_time,learning_rate\r\n0,4,1795991605.5,0.25\r\n".encode())
    result = runner.invoke(
        app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "out"), "--sidecar", str(sidecar)]
    )
    assert result.exit_code == 0, result.output
    assert next(f32(v) for _, _, v in points(tmp_path / "out", "train/learning_rate")) == f32(0.25)


def test_merge_refuses_rows_matching_no_step_of_a_converted_run(tmp_path: Path) -> None:
    assert runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "run")]).exit_code == 0
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text("epoch,step,wall_time,learning_rate\n40,400,1795991605.5,0.25\n")
    result = runner.invoke(
        app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 1
    assert "epochs 40..40 match nothing in run" in result.stderr
    assert not (tmp_path / "o").exists()


def test_merge_csv_logger_into_a_run_that_was_not_converted(tmp_path: Path) -> None:
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,new_metric\n" + "".join(f"{e},{1 / (e + 1)},{e * 0.5}\n" for e in range(7)))
    result = runner.invoke(
        app, ["merge", str(FIXTURES / "tf1_flat_run"), "--sidecar", str(history), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert [s for s, _, _ in points(tmp_path / "o", "train/new_metric")] == list(range(7))
    originals = {(s, w) for t, s, w, _ in loader_values(event_files(FIXTURES / "tf1_flat_run")) if t == "loss"}
    placed = {(s, w) for s, w, _ in points(tmp_path / "o", "train/new_metric")}
    assert {w for _, w in placed} <= {w for _, w in originals}  # wall_times of the run's own epochs


def test_merge_in_place_with_nothing_to_add_leaves_the_run_alone(tmp_path: Path) -> None:
    assert runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "run")]).exit_code == 0
    history = tmp_path / "history.csv"
    rows = points(tmp_path / "run", "train/loss")
    history.write_text("epoch,loss\n" + "".join(f"{s},{v}\n" for s, _, v in rows))
    before = _tree_hash(tmp_path / "run")
    result = runner.invoke(app, ["merge", str(tmp_path / "run"), "--sidecar", str(history), "--in-place"])
    assert result.exit_code == 0, result.output
    assert "nothing to merge" in result.stdout
    assert _tree_hash(tmp_path / "run") == before
    assert not (tmp_path / "run.tbrewrite-backup").exists()


def test_merging_a_batch_sidecar_again_replaces_each_point_once(tmp_path: Path) -> None:
    """The second merge meets every row's point in the log: it replaces them one for one, same bytes."""
    assert runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "run")]).exit_code == 0
    sidecar = tmp_path / "lr.csv"
    start = points(tmp_path / "run", "train/loss")[0][1]
    rows = [(s // 4, s, start + s * 0.01, 0.5 / s) for s in range(1, 5001)]
    sidecar.write_text(
        "epoch,step,wall_time,learning_rate\n" + "".join(f"{e},{s},{w!r},{v!r}\n" for e, s, w, v in rows)
    )
    first = runner.invoke(
        app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar), "--out", str(tmp_path / "a")]
    )
    assert first.exit_code == 0, first.output
    assert "5000 points added\n" in first.stdout
    again = runner.invoke(app, ["merge", str(tmp_path / "a"), "--sidecar", str(sidecar), "--out", str(tmp_path / "b")])
    assert again.exit_code == 0, again.output
    assert "5000 points added, replacing 5000 log points (0 differed beyond float32 rounding)" in again.stdout
    assert _tree_hash(tmp_path / "a") == _tree_hash(tmp_path / "b")
    assert [(s, w, f32(v)) for s, w, v in points(tmp_path / "b", "train/batch_learning_rate")] == [
        (s, w, f32(v)) for _, s, w, v in rows
    ]


@pytest.mark.parametrize("in_place", [False, True], ids=["out", "in-place"])
def test_a_sidecar_changed_while_it_is_merged_is_an_error_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    """The sidecar is read again while the run is written: a file changed since its check is refused."""
    import tbrewrite.commands.merge as merge_module

    assert runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "run")]).exit_code == 0
    sidecar = tmp_path / "lr.csv"
    rows = "".join(f"{s // 4},{s},{1795991605.0 + s * 0.01!r},0.1\n" for s in range(1, 41))
    sidecar.write_text("epoch,step,wall_time,learning_rate\n" + rows)
    real = merge_module.rewrite

    def edited_meanwhile(*args: object) -> object:
        sidecar.write_text("epoch,step,wall_time,learning_rate\n" + rows + "10,41,1795991606.0,0.2\n")
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(merge_module, "rewrite", edited_meanwhile)
    before = _tree_hash(tmp_path)
    where = ["--in-place"] if in_place else ["--out", str(tmp_path / "o")]
    result = runner.invoke(app, ["merge", str(tmp_path / "run"), "--sidecar", str(sidecar), *where])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"tbrewrite: error: {sidecar}: changed while tbrewrite ran")
    assert result.stderr.count("\n") == 1
    after = _tree_hash(tmp_path)
    assert {k: v for k, v in after.items() if k != "lr.csv"} == {k: v for k, v in before.items() if k != "lr.csv"}

"""``tbrewrite plot``: the figure holds exactly the exported points; smoothing is TensorBoard's."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.events import file_version, simple, summary, write
from support.paths import FIXTURES
from tbrewrite.cli import app
from tbrewrite.commands.export import read_scalars
from tbrewrite.commands.plot import panel_of, plot, smooth

pytest.importorskip("matplotlib")

runner = CliRunner()


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "keras3_run"
    result = runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(out)])
    assert result.exit_code == 0, result.output
    return out


def lines_by_gid(figure) -> dict[str, tuple[str, object]]:
    """gid -> (panel title, Line2D) of every line in the figure."""
    found = {}
    for axes in figure.axes:
        for line in axes.get_lines():
            assert line.get_gid() not in found
            found[line.get_gid()] = (axes.get_title(), line)
    return found


def test_lines_hold_exactly_the_exported_points(converted: Path, tmp_path: Path) -> None:
    drawn = plot(converted, tmp_path / "curves.png")
    table = read_scalars(converted)
    lines = lines_by_gid(drawn.figure)
    assert set(lines) == {f".\t{tag}" for tag in table.tag.unique()}
    for tag, rows in table.groupby("tag"):
        _, line = lines[f".\t{tag}"]
        assert list(line.get_xdata()) == list(rows.step)
        assert list(line.get_ydata()) == list(rows.value)  # float64, exactly: no resampling or rounding
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_panel_per_metric_train_and_val_overlaid_learning_rate_last(converted: Path, tmp_path: Path) -> None:
    drawn = plot(converted, tmp_path / "curves.svg")
    titles = [axes.get_title() for axes in drawn.figure.axes]
    assert (
        titles
        == drawn.panels
        == [
            "accuracy",
            "accuracy_vs_iterations",
            "batch_accuracy",
            "batch_loss",
            "loss",
            "loss_vs_iterations",
            "learning_rate",
        ]
    )
    legends = {axes.get_title(): [t.get_text() for t in axes.get_legend().get_texts()] for axes in drawn.figure.axes}
    assert legends["loss"] == ["train", "val"] and legends["accuracy"] == ["train", "val"]
    assert legends["learning_rate"] == ["train"]
    loss = drawn.figure.axes[titles.index("loss")]
    assert [line.get_gid() for line in loss.get_lines()] == [".\ttrain/loss", ".\tval/loss"]
    assert (tmp_path / "curves.svg").read_text().startswith("<?xml")


def test_unconverted_keras_runs_overlay_train_and_validation(tmp_path: Path) -> None:
    drawn = plot(FIXTURES / "keras3_run", tmp_path / "raw.png")
    lines = lines_by_gid(drawn.figure)
    assert lines["train\tepoch_loss"][0] == lines["validation\tepoch_loss"][0] == "epoch_loss"
    assert [s.label for s in drawn.series if s.tag == "epoch_loss"] == ["train", "validation"]


def test_every_run_of_a_tree_is_overlaid(converted: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        shutil.copytree(converted, tmp_path / "tree" / name)
    drawn = plot(tmp_path / "tree", tmp_path / "tree.png")
    loss = drawn.figure.axes[drawn.panels.index("loss")]
    assert [t.get_text() for t in loss.get_legend().get_texts()] == ["a train", "a val", "b train", "b val"]


def test_smoothing_is_tensorboards_debiased_moving_average() -> None:
    # By hand from classicSmoothing: last = last * w + (1 - w) * v from 0, divided by 1 - w ** n.
    # w = 0.5: n=1: 0.5/0.5 = 1; n=2: (0.25 + 1)/0.75 = 5/3; n=3: (0.625 + 1.5)/0.875 = 17/7.
    assert smooth([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7], abs=1e-15)
    # w = 0.6 on 10, 0, 10: 4/0.4 = 10; 2.4/0.64 = 3.75; (1.44 + 4)/0.784 = 6.9387755...
    assert smooth([10.0, 0.0, 10.0], 0.6) == pytest.approx([10.0, 3.75, 5.44 / 0.784], abs=1e-12)
    # Non-finite values pass through and do not count; a constant series is left alone (#786).
    got = smooth([1.0, math.nan, 2.0, math.inf], 0.5)
    assert got[0] == 1.0 and math.isnan(got[1]) and got[2] == pytest.approx(5 / 3) and got[3] == math.inf
    assert smooth([0.3, 0.3, 0.3], 0.9) == [0.3, 0.3, 0.3]
    assert smooth([1.0, 2.0], 0.0) == [1.0, 2.0]
    assert smooth([1.0, 2.0], 1.0) == [0.0, 0.0]  # weight 1: no debiasing, last stays 0 (TensorBoard's too)
    assert smooth([1.0, 2.0], 7.0) == smooth([1.0, 2.0], 1.0)  # clamped
    assert smooth([1.0, 2.0], math.nan) == [1.0, 2.0]
    assert smooth([], 0.5) == []


def test_smoothed_line_over_the_raw_points(converted: Path, tmp_path: Path) -> None:
    drawn = plot(converted, tmp_path / "smooth.png", smoothing=0.6)
    lines = lines_by_gid(drawn.figure)
    table = read_scalars(converted)
    values = list(table[table.tag == "train/batch_loss"].value)
    assert list(lines[".\ttrain/batch_loss"][1].get_ydata()) == values
    assert list(lines[".\ttrain/batch_loss\tsmoothed"][1].get_ydata()) == smooth(values, 0.6)
    assert lines[".\ttrain/batch_loss"][1].get_alpha() == 0.25


def test_x_axes(converted: Path, tmp_path: Path) -> None:
    table = read_scalars(converted)
    rows = table[table.tag == "val/loss"]
    wall = lines_by_gid(plot(converted, tmp_path / "w.png", x="wall_time").figure)[".\tval/loss"][1]
    assert list(wall.get_xdata()) == [datetime.fromtimestamp(t, timezone.utc) for t in rows.wall_time]
    relative = lines_by_gid(plot(converted, tmp_path / "r.png", x="relative").figure)[".\tval/loss"][1]
    assert list(relative.get_xdata()) == [(t - rows.wall_time.iloc[0]) / 3600 for t in rows.wall_time]


def test_tags_regex_and_log_scale(converted: Path, tmp_path: Path) -> None:
    drawn = plot(converted, tmp_path / "loss.png", tags=r"(^|/)loss$", log_scale=True)
    assert drawn.panels == ["loss"]
    assert {s.tag for s in drawn.series} == {"train/loss", "val/loss"}
    assert drawn.figure.axes[0].get_yscale() == "log"


def test_same_log_same_bytes(converted: Path, tmp_path: Path) -> None:
    for suffix in ("png", "svg"):
        plot(converted, tmp_path / f"1.{suffix}", smoothing=0.5)
        plot(converted, tmp_path / f"2.{suffix}", smoothing=0.5)
        assert (tmp_path / f"1.{suffix}").read_bytes() == (tmp_path / f"2.{suffix}").read_bytes()
    svg = (tmp_path / "1.svg").read_text()
    assert "<dc:date>" not in svg and "Matplotlib" not in svg


def test_panel_of() -> None:
    assert panel_of(".", "train/loss") == ("loss", "train", ".")
    assert panel_of(".", "loss/val") == ("loss", "val", ".")  # --pattern '{metric}/{split}'
    assert panel_of(".", "val_acc") == ("acc", "val", ".")  # Keras 2 flat
    assert panel_of("fit/train", "epoch_loss") == ("epoch_loss", "train", "fit")
    assert panel_of("train", "epoch_loss") == ("epoch_loss", "train", ".")
    assert panel_of("run1", "charts/reward") == ("charts/reward", "", "run1")


def test_cli(converted: Path, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", str(converted), "-o", str(out), "--smoothing", "0.6", "--x", "relative"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"plotted 9 curve(s), 33 points, in 7 panel(s) to {out}\n"
    again = runner.invoke(app, ["plot", str(converted), "-o", str(out)])
    assert again.exit_code == 1
    assert again.stderr == f"tbrewrite: error: {out}: already exists; use --force to replace it\n"
    assert runner.invoke(app, ["plot", str(converted), "-o", str(out), "--force"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "{tmp}/c.pdf"], "{tmp}/c.pdf: cannot tell the format; use a .png or .svg name"),
        (["-o", "{tmp}/c.png", "--x", "epoch"], "--x 'epoch': use one of step, wall_time, relative"),
        (
            ["-o", "{tmp}/c.png", "--smoothing", "1"],
            "--smoothing 1.0: use a weight from 0 (none) to below 1, as TensorBoard's slider",
        ),
        (
            ["-o", "{tmp}/c.png", "--tags", "("],
            "--tags '(': not a regular expression (missing ), unterminated subpattern at position 0)",
        ),
    ],
)
def test_usage_errors_are_one_line(converted: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["plot", str(converted), *(a.format(tmp=tmp_path) for a in args)])
    assert result.exit_code == 2
    assert result.stderr == f"tbrewrite: error: {message.format(tmp=tmp_path)}\n"
    assert list(tmp_path.iterdir()) == []


def test_no_matching_scalars_is_an_error(converted: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plot", str(converted), "-o", str(tmp_path / "c.png"), "--tags", "nothing"])
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {converted}: no scalars with tags matching 'nothing'\n"


def test_without_matplotlib_one_line_error(converted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    result = runner.invoke(app, ["plot", str(converted), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 1
    assert result.stderr == "tbrewrite: error: plot needs matplotlib: pip install 'tbrewrite[plot]'\n"
    assert list(tmp_path.iterdir()) == []


def test_damaged_input_is_plotted_up_to_the_damage(tmp_path: Path) -> None:
    records = [file_version()] + [summary(1.7e9 + i, i, simple("loss", 1.0 / (i + 1))) for i in range(10)]
    path = write(tmp_path / "run" / "events.out.tfevents.1.host", records)
    path.write_bytes(path.read_bytes()[:-5])
    result = runner.invoke(app, ["plot", str(tmp_path / "run"), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 3
    assert "plotted 1 curve(s), 9 points, in 1 panel(s)" in result.stdout
    assert "truncated" in result.stderr


def test_plot_never_imports_tensorflow_or_keras(converted: Path, tmp_path: Path) -> None:
    code = f"""
import sys
from tbrewrite.cli import main
sys.argv = ["tbrewrite", "plot", {str(converted)!r}, "-o", {str(tmp_path / "c.svg")!r}]
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "c.svg").is_file()

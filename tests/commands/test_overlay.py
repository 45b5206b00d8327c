"""``overlay`` and ``convert --overlay``: the Custom Scalars layout, as TensorBoard's plugin reads it.

TensorBoard's server serving it: ``tests/e2e/test_overlay_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files
from support.paths import FIXTURES
from tbrewrite.cli import app
from tbrewrite.commands.overlay import build_layout, overlay
from tbrewrite.producers.keras import TagMapping

runner = CliRunner()
SCALARS = ev.metadata("scalars")


def _layout(run_dir: Path) -> layout_pb2.Layout:
    """The layout as TensorBoard's accumulator reads it (the plugin's own path: a string tensor)."""
    acc = pea.EventAccumulator(str(run_dir))
    acc.Reload()
    assert acc.SummaryMetadata(metadata.CONFIG_SUMMARY_TAG).plugin_data.plugin_name == "custom_scalars"
    (point,) = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)
    return layout_pb2.Layout.FromString(point.tensor_proto.string_val[0])


def _charts(layout: layout_pb2.Layout) -> dict[str, list[str]]:
    return {c.title: list(c.multiline.tag) for cat in layout.category for c in cat.chart}


def _run(root: Path, tags: list[str]) -> Path:
    records = [ev.file_version()] + [
        ev.summary(ev.T0 + k, 0, ev.tensor(tag, 0.5, SCALARS)) for k, tag in enumerate(tags)
    ]
    ev.write(root / "events.out.tfevents.1700000000.host", records)
    return root


def test_one_chart_per_metric_with_both_splits_and_the_learning_rate_alone(tmp_path: Path) -> None:
    run_dir = _run(
        tmp_path / "logs" / "run1",
        ["train/loss", "val/loss", "train/acc", "val/acc", "train/batch_loss", "train/learning_rate", "x"],
    )
    report = overlay(tmp_path / "logs")
    assert _charts(_layout(run_dir)) == {
        "acc": ["^train/acc$", "^val/acc$"],
        "loss": ["^train/loss$", "^val/loss$"],
        "learning_rate": ["^train/learning_rate$"],
    }
    assert _layout(run_dir).category[0].title == "train vs val ({split}/{metric})"
    (written,) = [r.path for r in report.runs]
    assert written == run_dir / "events.out.tfevents.1700000000.tbrewrite-overlay"
    assert len(event_files(run_dir)) == 2
    overlay(tmp_path / "logs")  # again: the layout file is replaced, not doubled
    assert len(event_files(run_dir)) == 2


def test_pattern_and_split_names_and_regex_escaping(tmp_path: Path) -> None:
    mapping = TagMapping("fit", "holdout", "{metric}/{split}")
    layout = build_layout(["a.b/fit", "a.b/holdout", "lr/fit"], mapping)
    assert layout is not None
    assert _charts(layout) == {"a.b": ["^a\\.b/fit$", "^a\\.b/holdout$"], "lr": ["^lr/fit$"]}
    assert build_layout(["train/loss", "train/acc"], TagMapping()) is None  # nothing to overlay


def test_runs_without_pairs_get_nothing(tmp_path: Path) -> None:
    _run(tmp_path / "logs" / "a", ["loss"])
    result = runner.invoke(app, ["overlay", str(tmp_path / "logs")])
    assert result.exit_code == 0, result.output
    assert "overlay: added a layout of 0 chart(s) to 0 of 1 run(s)" in result.output
    assert len(event_files(tmp_path / "logs")) == 1


def test_convert_overlay(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "out"), "--overlay"])
    assert result.exit_code == 0, result.output
    charts = _charts(_layout(tmp_path / "out"))
    assert charts["loss"] == ["^train/loss$", "^val/loss$"]
    assert "learning_rate" in charts
    assert ".: chart 'loss': train/loss + val/loss" in result.output


def test_damaged_runs_are_reported_and_exit_3(tmp_path: Path) -> None:
    """Like every command, overlay names each damaged file and exits 3 (it used to exit 0 silently)."""
    run_dir = _run(tmp_path / "logs" / "run1", ["train/loss", "val/loss"])
    path = run_dir / "events.out.tfevents.1700000000.host"
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    (tmp_path / "logs" / "bad").mkdir()
    (tmp_path / "logs" / "bad" / "events.out.tfevents.1700000001.host").write_bytes(b"run,lr\n" * 10)
    result = runner.invoke(app, ["overlay", str(tmp_path / "logs")])
    assert result.exit_code == 3, result.output
    assert f"tbrewrite: warning: {path}: truncated at byte" in result.stderr
    assert f"{tmp_path / 'logs' / 'bad' / 'events.out.tfevents.1700000001.host'}: not_an_event_file" in result.stderr
    assert _charts(_layout(run_dir)) == {"loss": ["^train/loss$", "^val/loss$"]}

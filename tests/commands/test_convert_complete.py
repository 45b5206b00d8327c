"""``convert`` on every Keras layout: trees of runs, restarts, the corpus, parallel jobs.

The runs trained in the session and TensorBoard's server reading the output: ``tests/e2e/test_convert_e2e.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.expect import assert_converted
from support.logs import event_files, loader_values
from support.paths import CORPUS, FIXTURES, needs_corpus
from tbrewrite.cli import app
from tbrewrite.commands.convert import convert
from tbrewrite.producers.keras import TagMapping

runner = CliRunner()


@pytest.mark.parametrize("name", ["keras3_run", "tf_keras_run"])
def test_shipped_split_fixtures(name: str, tmp_path: Path) -> None:
    convert(FIXTURES / name, tmp_path / "out")
    assert_converted(FIXTURES / name, tmp_path / "out", "keras-split")


def test_tf1_flat_fixture_keeps_every_event_and_reports_restart(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(FIXTURES / "tf1_flat_run"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    output = assert_converted(FIXTURES / "tf1_flat_run", tmp_path / "out", "keras-flat")
    assert "steps of 'train/loss' go backwards 1 time(s) (first 4 -> 3)" in result.stderr
    from tensorboard.compat.proto import event_pb2

    from tbrewrite.events.framing import RecordReader

    forms = {v.WhichOneof("value") for d in RecordReader(output) for v in event_pb2.Event.FromString(d).summary.value}
    assert forms == {"simple_value"}  # scalars keep the form they came in


# Every Keras run in the shared corpus, damaged files included: (tree, run -> layout).
CORPUS_TREES = {
    "eyenet/src/Graph": {".": "keras-flat"},
    "Callbacks-in-Keras/notebooks": {
        "logs": "keras-flat",
        "log_dir": "keras-flat",
        "graphs": "keras-split",  # train/ and test/: one run (issue 12 item 7)
    },
    "OCTTextureDetector/Train/logs/fit": dict.fromkeys(
        ("20220104-160116", "20220104-162100", "20220104-193303", "20220105-073828", "20220106-123415"), "keras-split"
    ),
    "2231-Project/logs": dict.fromkeys(
        ("20230302-205125", "20230302-205257", "20230302-211243", "20230302-212259"), "keras-split"
    ),
    "TensorBoard-Tutorial/archive": {
        "hparam_tuning": "generic",
        "hparam_tuning/Experiment 0_adam_200_0.2": "generic",
        "logs/final-reuters-1690485427": "keras-split",
        "logs/imdb-model-1690485351": "keras-split",
    },
}
DAMAGED = {"eyenet/src/Graph", "Callbacks-in-Keras/notebooks"}


@needs_corpus
@pytest.mark.parametrize("tree", sorted(CORPUS_TREES))
def test_every_keras_run_in_the_corpus(tree: str, tmp_path: Path) -> None:
    src = CORPUS / tree
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(src), str(out)])
    assert result.exit_code == (3 if tree in DAMAGED else 0), result.output
    report = convert(src, tmp_path / "again")
    assert {r.plan.run: r.plan.layout for r in report.runs} == CORPUS_TREES[tree]
    for rel, layout in CORPUS_TREES[tree].items():
        assert_converted(src / rel, out / rel, layout)


@needs_corpus
def test_damaged_corpus_files_are_reported_with_offsets(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(CORPUS / "Callbacks-in-Keras/notebooks"), str(tmp_path / "out")])
    assert result.exit_code == 3
    assert "log_dir/events.out.tfevents.1513141090.Ajays-MacBook-Pro.local: crc_mismatch at byte 9166" in result.stderr
    assert (
        "graphs/train/events.out.tfevents.1513092905.Ajays-MacBook-Pro.local: truncated at byte 138346" in result.stderr
    )


def test_pattern_and_split_names(tmp_path: Path) -> None:
    mapping = TagMapping(train_name="training", val_name="validation", pattern="{metric}/{split}")
    convert(FIXTURES / "keras3_run", tmp_path / "out", mapping=mapping)
    tags = {t for t, *_ in loader_values(event_files(tmp_path / "out"))}
    assert {
        "loss/training",
        "loss/validation",
        "learning_rate/training",
        "batch_loss/training",
        "loss_vs_iterations/validation",
    } <= tags


@pytest.mark.parametrize(
    "options, message",
    [
        (["--pattern", "{metric}"], "--pattern must contain {split} and {metric}"),
        (["--val-name", "train"], "--train-name and --val-name must differ; both are 'train'"),
    ],
)
def test_bad_mapping_options_are_usage_errors(tmp_path: Path, options: list[str], message: str) -> None:
    result = runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "out"), *options])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"tbrewrite: error: {message}")
    assert not (tmp_path / "out").exists()


def test_converting_a_converted_run_changes_nothing_and_says_so(tmp_path: Path) -> None:
    assert runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(tmp_path / "once")]).exit_code == 0
    result = runner.invoke(app, ["convert", str(tmp_path / "once"), str(tmp_path / "twice")])
    assert result.exit_code == 0
    assert "nothing to change" in result.stdout
    (a,) = event_files(tmp_path / "once")
    (b,) = event_files(tmp_path / "twice")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_tree_of_runs_is_mirrored(tmp_path: Path) -> None:
    tree = tmp_path / "logs" / "fit"
    shutil.copytree(FIXTURES / "keras3_run", tree / "20240101-000000")
    shutil.copytree(FIXTURES / "tf_keras_run", tree / "20240102-000000")
    shutil.copytree(FIXTURES / "tf1_flat_run", tmp_path / "logs" / "old" / "keras2")
    result = runner.invoke(app, ["convert", str(tmp_path / "logs"), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "converted 3 run(s)" in result.stdout
    assert_converted(tree / "20240101-000000", tmp_path / "out/fit/20240101-000000", "keras-split")
    assert_converted(tree / "20240102-000000", tmp_path / "out/fit/20240102-000000", "keras-split")
    assert_converted(tmp_path / "logs/old/keras2", tmp_path / "out/old/keras2", "keras-flat")


def test_restarts_split_writes_one_run_per_input_file(tmp_path: Path) -> None:
    report = convert(FIXTURES / "tf1_flat_run", tmp_path / "out", restarts="split")
    inputs = event_files(FIXTURES / "tf1_flat_run")
    assert len(report.runs) == len(inputs) == 2
    outputs = [r.output for r in report.runs]
    assert len({o.parent for o in outputs}) == 2
    for path, output in zip(inputs, outputs, strict=False):
        got = sorted(step for tag, step, *_ in loader_values([output]) if tag == "train/loss")
        want = sorted(step for tag, step, *_ in loader_values([path]) if tag == "loss")
        assert got == want


def _tree(tmp_path: Path, runs: int) -> Path:
    root = tmp_path / "logs"
    for k in range(runs):
        shutil.copytree(FIXTURES / ("keras3_run" if k % 2 else "tf_keras_run"), root / f"run{k:02d}")
    return root


def test_parallel_tree_equals_sequential(tmp_path: Path) -> None:
    root = _tree(tmp_path, 6)
    one = convert(root, tmp_path / "one", jobs=1)
    two = convert(root, tmp_path / "two", jobs=2)
    assert [r.plan.run for r in one.runs] == [r.plan.run for r in two.runs] == [f"run{k:02d}" for k in range(6)]
    for a, b in zip(one.runs, two.runs, strict=False):
        assert a.output.relative_to(tmp_path / "one") == b.output.relative_to(tmp_path / "two")
        assert a.output.read_bytes() == b.output.read_bytes()


def test_parallel_failure_leaves_nothing(tmp_path: Path) -> None:
    root = _tree(tmp_path, 4)
    (root / "run03" / "learning_rate.csv").write_text("epoch;step;wall_time;learning_rate\n")
    result = runner.invoke(app, ["convert", str(root), str(tmp_path / "out"), "--jobs", "2"])
    assert result.exit_code == 1
    assert (
        result.stderr
        == f"tbrewrite: error: {root / 'run03' / 'learning_rate.csv'}: line 1: wrong delimiter ';'; sidecars are comma-separated\n"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [b"", b"epoch,loss\n0,1\n", bytes(range(256))])
def test_a_run_with_no_valid_event_writes_nothing(tmp_path: Path, content: bytes) -> None:
    src = tmp_path / "run"
    src.mkdir()
    (src / "events.out.tfevents.1.host").write_bytes(content)
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out")])
    assert result.exit_code == 3
    assert "nothing written" in result.stdout
    assert not (tmp_path / "out").exists()

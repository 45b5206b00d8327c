"""Keras log_dirs with evaluation folders other than ``validation/`` (issue 12 item 7).

A ``train/`` + ``test/`` log_dir (a ``tf.summary`` writer on ``<log_dir>/test``, TF1
FileWriters on ``train/`` and ``test/`` as in the corpus's Callbacks-in-Keras ``graphs/``)
was split into a nested run whose ``test/`` metrics came out as ``train/loss``. Each
evaluation folder maps to its own split; ``--split NAME=SPLIT`` names others. Outputs are
read back with TensorBoard's own loader (``support.logs``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files, loader_events, loader_values, points
from support.paths import CORPUS, needs_corpus
from tbrewrite.cli import app
from tbrewrite.commands.convert import convert
from tbrewrite.commands.inspect import inspect_logdir
from tbrewrite.errors import UsageError
from tbrewrite.producers.keras import TagMapping

runner = CliRunner()
T0 = ev.T0
SCALARS = ev.metadata("scalars")


def _keras_log_dir(root: Path, evaluation: str, *, train: bool = True, pid: int = 7) -> Path:
    """A Keras 3 style log_dir: ``train/`` (epoch_loss 1.x, batch_loss) and ``<evaluation>/``
    (epoch_loss 2.x, evaluation_loss_vs_iterations), epochs 0..2, one process."""
    if train:
        ev.write(
            root / "train" / f"events.out.tfevents.{int(T0)}.host.{pid}.0.v2",
            [ev.file_version(T0)]
            + [ev.summary(T0 + 10 * e + 1, 5 * e + 4, ev.tensor("batch_loss", 1.5 + e, SCALARS)) for e in range(3)]
            + [ev.summary(T0 + 10 * e + 2, e, ev.tensor("epoch_loss", 1.0 + e, SCALARS)) for e in range(3)],
        )
    ev.write(
        root / evaluation / f"events.out.tfevents.{int(T0) + 1}.host.{pid}.1.v2",
        [ev.file_version(T0 + 1)]
        + [ev.summary(T0 + 10 * e + 3, e, ev.tensor("epoch_loss", 2.0 + e, SCALARS)) for e in range(3)]
        + [ev.summary(T0 + 40, 15, ev.tensor("evaluation_loss_vs_iterations", 9.0, SCALARS))],
    )
    return root


def _tags(out: Path) -> set[str]:
    return {tag for tag, *_ in loader_values(event_files(out))}


@pytest.mark.parametrize(
    ("folder", "split"),
    [
        ("test", "test"),
        ("testing", "test"),
        ("eval", "eval"),
        ("evaluation", "eval"),
        ("val", "val"),
        ("validation", "val"),
    ],
)
def test_evaluation_folder_maps_to_its_own_split(tmp_path: Path, folder: str, split: str) -> None:
    src = _keras_log_dir(tmp_path / "logs", folder)
    report = convert(src, tmp_path / "out")

    assert [r.plan.layout for r in report.runs] == ["keras-split"]
    (output,) = event_files(tmp_path / "out")
    assert output.parent == tmp_path / "out"  # one run, no nested evaluation run
    assert _tags(tmp_path / "out") == {
        "train/loss",
        "train/batch_loss",
        f"{split}/loss",
        f"{split}/loss_vs_iterations",
    }
    # The evaluation values (2.x) are under the evaluation split, never under train/.
    assert [v for _, _, v in points(tmp_path / "out", "train/loss")] == [1.0, 2.0, 3.0]
    assert [v for _, _, v in points(tmp_path / "out", f"{split}/loss")] == [2.0, 3.0, 4.0]
    assert [(s, v) for s, _, v in points(tmp_path / "out", f"{split}/loss_vs_iterations")] == [(15, 9.0)]


def test_train_and_test_is_one_run_and_val_name_does_not_rename_test(tmp_path: Path) -> None:
    src = _keras_log_dir(tmp_path / "logs", "test")
    _keras_log_dir(tmp_path / "logs", "validation", train=False)
    convert(src, tmp_path / "out", mapping=TagMapping(val_name="dev", pattern="{metric}/{split}"))
    assert _tags(tmp_path / "out") == {
        "loss/train",
        "batch_loss/train",
        "loss/test",
        "loss_vs_iterations/test",
        "loss/dev",
        "loss_vs_iterations/dev",
    }


def test_split_option_names_another_folder(tmp_path: Path) -> None:
    src = _keras_log_dir(tmp_path / "logs", "holdout")

    # Unknown to tbrewrite: holdout/ is a run of its own, and its tags are left alone
    # (in particular never train/loss).
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "plain")])
    assert result.exit_code == 0, result.output
    assert sorted(p.relative_to(tmp_path / "plain").parent.as_posix() for p in event_files(tmp_path / "plain")) == [
        ".",
        "holdout",
    ]
    assert _tags(tmp_path / "plain" / "holdout") == {"epoch_loss", "evaluation_loss_vs_iterations"}

    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out"), "--split", "holdout=test"])
    assert result.exit_code == 0, result.output
    (output,) = event_files(tmp_path / "out")
    assert output.parent == tmp_path / "out"
    assert _tags(tmp_path / "out") == {"train/loss", "train/batch_loss", "test/loss", "test/loss_vs_iterations"}
    assert [v for _, _, v in points(tmp_path / "out", "test/loss")] == [2.0, 3.0, 4.0]


def test_split_option_overrides_a_known_folder_and_can_name_training_data(tmp_path: Path) -> None:
    src = _keras_log_dir(tmp_path / "logs", "test")
    convert(src, tmp_path / "a", mapping=TagMapping(splits=(("test", "holdout"),)))
    assert "holdout/loss" in _tags(tmp_path / "a")

    # A training folder under another name, declared as training data.
    other = tmp_path / "other"
    (src / "train").rename(other)
    (other).rename(src / "training")
    convert(src, tmp_path / "b", mapping=TagMapping(splits=(("training", "train"),)))
    assert _tags(tmp_path / "b") == {"train/loss", "train/batch_loss", "test/loss", "test/loss_vs_iterations"}


def test_lone_evaluation_folder_elsewhere_stays_its_own_run(tmp_path: Path) -> None:
    # A tree whose run happens to be called test/ (no train/ or validation/ beside it).
    _keras_log_dir(tmp_path / "logs" / "exp", "test", train=False)
    ev.write(
        tmp_path / "logs" / "exp" / "events.out.tfevents.1700000000.host",
        [ev.file_version(T0), ev.summary(T0 + 1, 0, ev.simple("x", 1.0))],
    )
    report = convert(tmp_path / "logs", tmp_path / "out")
    assert sorted(r.plan.run for r in report.runs) == ["exp", "exp/test"]
    assert {r.plan.run: r.plan.layout for r in report.runs} == {"exp": "generic", "exp/test": "generic"}


def test_restarts_split_pairs_test_files_by_process(tmp_path: Path) -> None:
    src = _keras_log_dir(tmp_path / "logs", "test", pid=7)
    ev.write(
        src / "train" / f"events.out.tfevents.{int(T0) + 100}.host.8.0.v2",
        [ev.file_version(T0 + 100), ev.summary(T0 + 102, 3, ev.tensor("epoch_loss", 7.0, SCALARS))],
    )
    ev.write(
        src / "test" / f"events.out.tfevents.{int(T0) + 101}.host.8.1.v2",
        [ev.file_version(T0 + 101), ev.summary(T0 + 103, 3, ev.tensor("epoch_loss", 8.0, SCALARS))],
    )
    convert(src, tmp_path / "out", restarts="split")
    runs = sorted(p.parent.name for p in event_files(tmp_path / "out"))
    assert runs == [str(int(T0)), str(int(T0) + 100)]
    second = tmp_path / "out" / str(int(T0) + 100)
    assert points(second, "test/loss") == [(3, T0 + 103, 8.0)]
    assert points(second, "train/loss") == [(3, T0 + 102, 7.0)]


def test_inspect_names_the_test_split(tmp_path: Path) -> None:
    src = _keras_log_dir(tmp_path / "logs", "test")
    report = inspect_logdir(src)
    assert {(r.run, r.layout, r.split) for r in report.runs} == {
        ("train", "keras-split", "train"),
        ("test", "keras-split", "test"),
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--split", "holdout"], "--split must be NAME=SPLIT"),
        (["--split", "train=x"], "train/ is the training split"),
        (["--split", "a/b=x"], "NAME must be one folder name"),
        (["--split", "holdout="], "SPLIT must not be empty"),
        (["--split", "a=x", "--split", "a=y"], "given twice"),
        (["--train-name", "test"], "is the split of evaluation folder test/"),
    ],
)
def test_split_usage_errors(tmp_path: Path, argv: list[str], message: str) -> None:
    src = _keras_log_dir(tmp_path / "logs", "test")
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out"), *argv])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert message in line
    assert not (tmp_path / "out").exists()


def test_train_name_test_is_allowed_once_test_is_remapped() -> None:
    with pytest.raises(UsageError):
        TagMapping(train_name="test")
    assert TagMapping(train_name="test", splits=(("test", "heldout"), ("testing", "heldout"))).split_name("test") == (
        "heldout"
    )


@needs_corpus
def test_corpus_graphs_train_and_test_are_one_run(tmp_path: Path) -> None:
    src = CORPUS / "Callbacks-in-Keras" / "notebooks" / "graphs"
    report = convert(src, tmp_path / "out")
    assert [r.plan.run for r in report.runs] == ["."]
    assert [s.name for s in report.runs[0].plan.sources] == ["train", "test"]
    (output,) = event_files(tmp_path / "out")
    assert output.parent == tmp_path / "out"
    inputs = event_files(src / "train") + event_files(src / "test")
    assert loader_events([output]) == loader_events(inputs)  # both graphs, once each

"""``inspect`` on logs written by real TensorFlow and Keras in the session.

Slow: every test runs TensorFlow in a fresh interpreter (``support/scripts/``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.expect import assert_matches_loader
from support.training import run_training
from tbrewrite.cli import app
from tbrewrite.commands.inspect import TF49109_PARTIAL_WARNING, TF49109_WARNING

runner = CliRunner()


def inspect_json(path: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["inspect", str(path), "--json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.mark.slow
def test_every_kind_and_event_written_by_tensorflow(tmp_path: Path) -> None:
    run_training("write_all_kinds.py", tmp_path)
    code, doc = inspect_json(tmp_path)
    assert code == 0
    runs = {r["run"]: r for r in doc["runs"]}
    assert list(runs) == ["tf1", "tf2"]
    tf2 = {t["tag"]: (t["kind"], t["form"], t["plugin"], t["count"]) for t in runs["tf2"]["tags"]}
    assert tf2 == {
        "s": ("scalar", "tensor", "scalars", 5),
        "h": ("histogram", "tensor", "histograms", 1),
        "img": ("image", "tensor", "images", 1),
        "aud": ("audio", "tensor", "audio", 1),
        "txt": ("text", "tensor", "text", 1),
        "raw": ("tensor", "tensor", None, 1),
        "_hparams_/session_start_info": ("hparams", "tensor", "hparams", 1),
    }
    assert runs["tf2"]["restarts"] == [
        {"tag": "s", "backwards": 1, "repeated": 1, "first_from_step": 2, "first_to_step": 1}
    ]
    tf1 = {t["tag"]: (t["kind"], t["form"]) for t in runs["tf1"]["tags"]}
    assert tf1 == {"x": ("scalar", "simple_value"), "hist": ("histogram", "histo"), "im": ("image", "image")}
    events = runs["tf1"]["events"]
    assert (events["graph_def"], events["session_log"], events["tagged_run_metadata"]) == (1, 1, 1)
    assert events["meta_graph_def"] == 1 and events["file_version"] == 1 and events["summary"] == 3
    s = next(t for t in runs["tf2"]["tags"] if t["tag"] == "s")
    assert s["first_wall_time"] <= s["last_wall_time"] and (s["first_step"], s["last_step"]) == (0, 1)
    assert_matches_loader(tmp_path, doc)


@pytest.mark.slow
@pytest.mark.parametrize("epochs", ["2", "3"])
def test_tf49109_is_flagged_on_a_real_keras_run(tmp_path: Path, epochs: str) -> None:
    # 4 training batches per epoch and update_freq=3: Keras 3 records a summary only while
    # the last batch number pushed is a multiple of 3, so epoch-end summaries survive only
    # for epochs ending at batch 12, 24, ...: with 2 epochs none, with 3 epochs only epoch 2.
    logdir = run_training(
        "train_keras3.py", tmp_path / "logs", "--update-freq", "3", "--batches", "4", "--epochs", epochs
    )
    result = runner.invoke(app, ["inspect", str(logdir), "--json"])
    assert result.exit_code == 0, result.output
    runs = {r["run"]: r for r in json.loads(result.stdout)["runs"]}
    train = {t["tag"]: t for t in runs["train"]["tags"]}
    assert train["batch_loss"]["count"] == 4 * int(epochs) // 3
    if epochs == "2":
        assert not any(tag.startswith("epoch_") for tag in train)
        expected = (
            "no epoch_ summaries although batch_ summaries exist: looks like tensorflow#49109 "
            "(update_freq not dividing the batches per epoch); merge a CSVLogger file with --sidecar"
        )
        assert expected == TF49109_WARNING
    else:
        assert (train["epoch_loss"]["count"], train["epoch_loss"]["first_step"]) == (1, 2)
        expected = TF49109_PARTIAL_WARNING.format(tag="epoch_accuracy", count=1, first=2, last=2)
    assert runs["train"]["warnings"] == [expected]
    assert runs["validation"]["warnings"] == []
    assert result.stderr == f"tbrewrite: warning: train: {expected}\n"

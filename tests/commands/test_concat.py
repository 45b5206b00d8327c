"""``concat``: pieces of one training joined into one run, as TensorBoard would show them.

Hand-built logs here; a real Keras 3 log split at a random record, and TensorBoard's
server: ``tests/e2e/test_concat_e2e.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files, loader_events, loader_values
from tbrewrite.cli import app
from tbrewrite.commands.concat import concat
from tbrewrite.errors import InputError

runner = CliRunner()
SCALARS = ev.metadata("scalars")
KERAS = ev.metadata("graph_keras_model", b"1")


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _piece(root: Path, t0: float, steps: range, *, batch_steps: range = range(0)) -> Path:
    """A Keras-like log_dir: train/ with epoch_loss (+ batch_loss) and the model config, validation/."""
    records = [ev.file_version(t0), ev.summary(t0 + 0.1, 0, ev.tensor("keras", 0.0, KERAS))]
    t = t0 + 1
    for k, step in enumerate(steps):
        records.append(ev.summary(t, step, ev.tensor("epoch_loss", 1.0 / (step + 1), SCALARS)))
        if k < len(batch_steps):
            records.append(ev.summary(t + 0.5, batch_steps[k], ev.tensor("batch_loss", 0.5, SCALARS)))
        t += 1
    ev.write(root / "train" / f"events.out.tfevents.{int(t0)}.host.1.v2", records)
    val = [ev.file_version(t0)] + [
        ev.summary(t0 + 1.2 + k, step, ev.tensor("epoch_loss", 2.0, SCALARS)) for k, step in enumerate(steps)
    ]
    ev.write(root / "validation" / f"events.out.tfevents.{int(t0)}.host.2.v2", val)
    return root


def _steps(root: Path, tag: str) -> list[int]:
    return [step for t, step, _, _ in loader_values(event_files(root)) if t == tag]


def test_resumed_run_keeps_what_tensorboard_shows(tmp_path: Path) -> None:
    """B resumed at epoch 5 after A reached epoch 9: keep-last drops A's 5..9, as the data server does."""
    a = _piece(tmp_path / "a", ev.T0, range(10))
    b = _piece(tmp_path / "b", ev.T0 + 100, range(5, 8))
    report = concat([b, a], tmp_path / "out")  # given out of order: wall_time decides
    assert report.inputs == [a, b]
    assert _steps(tmp_path / "out" / "train", "epoch_loss") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert _steps(tmp_path / "out" / "validation", "epoch_loss") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [w for t, _, w, _ in loader_values(event_files(tmp_path / "out" / "train")) if t == "keras"] == [
        ev.T0 + 100.1
    ]
    train = next(r for r in report.runs if r.run == "train")
    assert train.result is not None and train.result.values_superseded == 5 + 1  # A's 5..9 and A's model config
    # one file per output run, starting with its own file_version
    assert [p.parent.name for p in event_files(tmp_path / "out")] == ["train", "validation"]


def test_keep_keeps_every_value(tmp_path: Path) -> None:
    a = _piece(tmp_path / "a", ev.T0, range(10))
    b = _piece(tmp_path / "b", ev.T0 + 100, range(5, 8))
    concat([a, b], tmp_path / "out", restarts="keep")
    assert _steps(tmp_path / "out" / "train", "epoch_loss") == [*range(10), 5, 6, 7]


def test_step_offset_auto_continues_restarted_tags_with_their_spacing(tmp_path: Path) -> None:
    a = _piece(tmp_path / "a", ev.T0, range(3), batch_steps=range(4, 13, 4))  # epochs 0..2, batches 4, 8, 12
    b = _piece(tmp_path / "b", ev.T0 + 100, range(2), batch_steps=range(4, 9, 4))  # restarted: 0..1, 4, 8
    report = concat([a, b], tmp_path / "out", step_offset="auto")
    assert _steps(tmp_path / "out" / "train", "epoch_loss") == [0, 1, 2, 3, 4]
    assert _steps(tmp_path / "out" / "train", "batch_loss") == [4, 8, 12, 16, 20]
    assert _steps(tmp_path / "out" / "validation", "epoch_loss") == [0, 1, 2, 3, 4]
    assert _steps(tmp_path / "out" / "train", "keras") == [0]  # a step that means nothing is never offset
    train = next(r for r in report.runs if r.run == "train")
    assert train.sources[1].offsets == {"epoch_loss": 3, "batch_loss": 12}


def test_step_offset_n(tmp_path: Path) -> None:
    a = _piece(tmp_path / "a", ev.T0, range(3))
    b = _piece(tmp_path / "b", ev.T0 + 100, range(3))
    c = _piece(tmp_path / "c", ev.T0 + 200, range(3))
    concat([a, b, c], tmp_path / "out", step_offset=100)
    assert _steps(tmp_path / "out" / "train", "epoch_loss") == [0, 1, 2, 100, 101, 102, 200, 201, 202]


def test_plain_runs_and_non_summary_events(tmp_path: Path) -> None:
    ev.write(tmp_path / "a" / "events.out.tfevents.1.h", [ev.file_version(), ev.graph(ev.T0 + 0.5)])
    ev.write(
        tmp_path / "b" / "events.out.tfevents.2.h",
        [ev.file_version(ev.T0 + 10), ev.summary(ev.T0 + 11, 3, ev.simple("loss", 1.0))],
    )
    concat([tmp_path / "a", tmp_path / "b"], tmp_path / "out")
    (output,) = event_files(tmp_path / "out")
    assert output.parent == tmp_path / "out"
    assert loader_events([output]) == loader_events(event_files(tmp_path / "a"))
    assert _steps(tmp_path / "out", "loss") == [3]


def test_overlapping_runs_are_refused(tmp_path: Path) -> None:
    a = _piece(tmp_path / "a", ev.T0, range(10))
    b = _piece(tmp_path / "b", ev.T0 + 5, range(3))
    with pytest.raises(InputError, match="concat joins runs written one after another"):
        concat([a, b], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli(tmp_path: Path) -> None:
    a = _piece(tmp_path / "a", ev.T0, range(4))
    b = _piece(tmp_path / "b", ev.T0 + 100, range(2, 4))
    assert run("concat", a, tmp_path / "o1").exit_code == 2  # one run
    assert run("concat", a, b, tmp_path / "o2", "--restarts", "split").exit_code == 2
    assert run("concat", a, b, tmp_path / "o3", "--step-offset", "x").exit_code == 2
    assert run("concat", a, tmp_path / "missing", tmp_path / "o4").exit_code == 1
    dry = run("concat", a, b, tmp_path / "o5", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: would have joined 2 runs into 2 run(s); nothing written" in dry.output
    assert not (tmp_path / "o5").exists()
    ok = run("concat", a, b, tmp_path / "o6")
    assert ok.exit_code == 0, ok.output
    assert f"joined 2 runs into 2 run(s) in {tmp_path / 'o6'}" in ok.output
    path = event_files(b / "train")[0]
    path.write_bytes(path.read_bytes()[:-2])
    damaged = run("concat", a, b, tmp_path / "o7")
    assert damaged.exit_code == 3, damaged.output
    assert _steps(tmp_path / "o7" / "train", "epoch_loss") == [0, 1, 2]  # B's last record was cut


def test_a_step_offset_beyond_int64_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    """Steps near 2**63 continued by ``auto``, or a huge N, would overflow the Event's int64 step."""
    top = 2**63 - 1
    ev.write(
        tmp_path / "a" / "events.out.tfevents.1.host",
        [ev.file_version(ev.T0)] + [ev.summary(ev.T0 + k, top - 2 + k, ev.simple("loss", 1.0)) for k in range(3)],
    )
    ev.write(
        tmp_path / "b" / "events.out.tfevents.2.host",
        [ev.file_version(ev.T0 + 100)] + [ev.summary(ev.T0 + 100 + k, k, ev.simple("loss", 1.0)) for k in range(3)],
    )
    auto = run("concat", tmp_path / "a", tmp_path / "b", tmp_path / "o1", "--step-offset", "auto")
    assert auto.exit_code == 1, auto.output
    assert "tag 'loss': step 0 moved by the step offset +9223372036854775808 is beyond the int64" in auto.stderr
    assert "Traceback" not in auto.output
    assert not (tmp_path / "o1").exists()
    big = run("concat", tmp_path / "a", tmp_path / "b", tmp_path / "o2", "--step-offset", str(2**63))
    assert big.exit_code == 2
    assert "--step-offset must be an int64" in big.stderr
    assert not (tmp_path / "o2").exists()

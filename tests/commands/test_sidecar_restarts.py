"""Sidecars of a restarted Keras log_dir: each row belongs to the process that wrote it (issue 12 item 4).

The log_dirs here are written by hand in the shape Keras 3 gives them (file names
``events.out.tfevents.<secs>.<host>.<pid>.<uid>.v2``, ``epoch_*`` tensors); the same with
real training is in ``tests/e2e/test_sidecar_e2e.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

from typer.testing import CliRunner

import support.events as ev
from support.logs import points
from tbrewrite.cli import app

runner = CliRunner()
T0 = ev.T0
SCALARS = ev.metadata("scalars")


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


def fit(logdir: Path, pid: int, start: float, epochs: range, rate: float, *, files: bool = True) -> list[bytes]:
    """Write one Keras 3 fit() process: train/ with epoch_loss and epoch_learning_rate, validation/ epoch_loss.

    Epoch e ends at ``start + e + 1``; its learning rate is ``rate / (e + 1)``.
    Returns the train records (written unless ``files`` is False).
    """
    train = [ev.file_version(start)]
    validation = [ev.file_version(start + 0.5)]
    for e in epochs:
        t = start + e + 1
        validation.append(ev.summary(t, e, ev.tensor("epoch_loss", 0.5, SCALARS)))
        train.append(ev.summary(t + 0.01, e, ev.tensor("epoch_loss", 1.0 / (e + 1), SCALARS)))
        train.append(ev.summary(t + 0.02, e, ev.tensor("epoch_learning_rate", rate / (e + 1), SCALARS)))
    if files:
        ev.write(logdir / "train" / f"events.out.tfevents.{int(start)}.host.{pid}.0.v2", train)
        ev.write(logdir / "validation" / f"events.out.tfevents.{int(start)}.host.{pid}.1.v2", validation)
    return train


def sidecar(path: Path, start: float, epochs: range, rate: float) -> Path:
    """A LearningRateLogger epoch sidecar of the fit() started at ``start`` (rows just before its epoch ends)."""
    path.write_text(
        "epoch,step,wall_time,learning_rate\r\n"
        + "".join(f"{e},{4 * (e + 1)},{start + e + 1 + 0.005!r},{rate / (e + 1) / 2!r}\r\n" for e in epochs)
    )
    return path


def restarted(tmp_path: Path) -> Path:
    """Two fit() processes from epoch 0 into one log_dir, the second 100 s after the first."""
    logdir = tmp_path / "logs"
    fit(logdir, 1111, T0, range(4), 0.1)
    fit(logdir, 2222, T0 + 100, range(4), 0.2)
    return logdir


def rates(root: Path) -> list[tuple[int, float, bytes]]:
    return sorted((s, w, f32(v)) for s, w, v in points(root, "train/learning_rate"))


def rows(start: float, epochs: range, rate: float) -> list[tuple[int, float, bytes]]:
    return [(e, start + e + 1 + 0.005, f32(rate / (e + 1) / 2)) for e in epochs]


def logged(start: float, epochs: range, rate: float) -> list[tuple[int, float, bytes]]:
    return [(e, start + e + 1 + 0.02, f32(rate / (e + 1))) for e in epochs]


def test_rows_replace_only_the_points_of_their_own_process(tmp_path: Path) -> None:
    logdir = restarted(tmp_path)
    sidecar(logdir / "learning_rate.csv", T0 + 100, range(4), 0.2)  # the second process overwrote it
    result = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    line = "4 points added, replacing 4 log points (4 differed beyond float32 rounding)"
    assert line in result.stdout
    assert rates(tmp_path / "out") == sorted(logged(T0, range(4), 0.1) + rows(T0 + 100, range(4), 0.2))


def test_each_processes_sidecar_replaces_its_own_points(tmp_path: Path) -> None:
    logdir = restarted(tmp_path)
    first = sidecar(tmp_path / "first.csv", T0, range(4), 0.1)
    second = sidecar(tmp_path / "second.csv", T0 + 100, range(2), 0.2)  # stopped after 2 epochs of 4
    result = runner.invoke(
        app, ["convert", str(logdir), str(tmp_path / "out"), "--sidecar", str(first), "--sidecar", str(second)]
    )
    assert result.exit_code == 0, result.output
    assert "4 points added, replacing 4 log points" in result.stdout
    assert "2 points added, replacing 2 log points" in result.stdout
    want = rows(T0, range(4), 0.1) + rows(T0 + 100, range(2), 0.2) + logged(T0 + 100, range(2, 4), 0.2)
    assert rates(tmp_path / "out") == sorted(want)


def test_a_process_without_the_logged_rate_keeps_the_others(tmp_path: Path) -> None:
    """The second process logged no learning rate: its rows are added, nothing of the first is removed."""
    logdir = tmp_path / "logs"
    fit(logdir, 1111, T0, range(4), 0.1)
    ev.write(
        logdir / "train" / f"events.out.tfevents.{int(T0 + 100)}.host.2222.0.v2",
        [ev.file_version(T0 + 100)]
        + [ev.summary(T0 + 101 + e, e, ev.tensor("epoch_loss", 0.25, SCALARS)) for e in range(4)],
    )
    sidecar(logdir / "learning_rate.csv", T0 + 100, range(4), 0.2)
    result = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "sidecar" in result.stdout and "4 points added\n" in result.stdout and "replacing" not in result.stdout
    assert rates(tmp_path / "out") == sorted(logged(T0, range(4), 0.1) + rows(T0 + 100, range(4), 0.2))


def test_two_fits_in_one_process_replace_the_nearest_in_time(tmp_path: Path) -> None:
    """One process, one file, two fit() calls from epoch 0: the rows replace the second fit's points."""
    logdir = tmp_path / "logs"
    first = fit(logdir, 1111, T0, range(3), 0.1, files=False)
    second = fit(logdir, 1111, T0 + 50, range(3), 0.2, files=False)
    ev.write(logdir / "train" / f"events.out.tfevents.{int(T0)}.host.1111.0.v2", first + second[1:])
    ev.write(logdir / "validation" / f"events.out.tfevents.{int(T0)}.host.1111.1.v2", [ev.file_version(T0 + 0.5)])
    sidecar(logdir / "learning_rate.csv", T0 + 50, range(3), 0.2)
    result = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "3 points added, replacing 3 log points" in result.stdout
    assert rates(tmp_path / "out") == sorted(logged(T0, range(3), 0.1) + rows(T0 + 50, range(3), 0.2))


def test_restarts_split_merges_each_row_into_its_processes_run(tmp_path: Path) -> None:
    logdir = restarted(tmp_path)
    first = sidecar(tmp_path / "first.csv", T0, range(4), 0.1)
    sidecar(logdir / "learning_rate.csv", T0 + 100, range(4), 0.2)  # found beside the run
    result = runner.invoke(
        app, ["convert", str(logdir), str(tmp_path / "out"), "--restarts", "split", "--sidecar", str(first)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("4 points added, replacing 4 log points") == 2, result.stdout
    runs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert runs == [str(int(T0)), str(int(T0 + 100))]
    assert f"sidecar {first} into {runs[0]} (learning-rate, epoch rows)" in result.stdout
    assert f"learning_rate.csv into {runs[1]} (learning-rate, epoch rows)" in result.stdout
    assert rates(tmp_path / "out" / runs[0]) == rows(T0, range(4), 0.1)
    assert rates(tmp_path / "out" / runs[1]) == rows(T0 + 100, range(4), 0.2)


def test_restarts_split_with_the_last_processes_sidecar_leaves_the_first_run_alone(tmp_path: Path) -> None:
    logdir = restarted(tmp_path)
    sidecar(logdir / "learning_rate.csv", T0 + 100, range(4), 0.2)
    assert runner.invoke(app, ["convert", str(logdir), str(tmp_path / "plain"), "--restarts", "split"]).exit_code == 0
    (logdir / "learning_rate.csv").rename(tmp_path / "lr.csv")
    result = runner.invoke(
        app,
        ["convert", str(logdir), str(tmp_path / "out"), "--restarts", "split", "--sidecar", str(tmp_path / "lr.csv")],
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("sidecar") == 1 and "4 points added, replacing 4 log points" in result.stdout
    first = str(int(T0))
    assert rates(tmp_path / "out" / first) == logged(T0, range(4), 0.1)
    assert points(tmp_path / "out" / first, "train/loss") == points(tmp_path / "plain" / first, "train/loss")
    assert rates(tmp_path / "out" / str(int(T0 + 100))) == rows(T0 + 100, range(4), 0.2)


def test_csv_logger_rows_go_to_the_latest_process_with_that_epoch(tmp_path: Path) -> None:
    """CSVLogger truncates its file in every fit(): its rows are the last process's."""
    logdir = restarted(tmp_path)
    history = tmp_path / "history.csv"
    history.write_text("epoch,loss,new_metric\n" + "".join(f"{e},{1.0 / (e + 1)},{e * 0.5}\n" for e in range(4)))
    result = runner.invoke(app, ["convert", str(logdir), str(tmp_path / "out"), "--sidecar", str(history)])
    assert result.exit_code == 0, result.output
    assert "4 points added; 4 points already in the log kept the log's value" in result.stdout
    placed = points(tmp_path / "out", "train/new_metric")
    # Each epoch at the wall_time of the second process's first event of that epoch.
    assert [(s, w) for s, w, _ in placed] == [(e, T0 + 100 + e + 1 + 0.01) for e in range(4)]
    assert len(points(tmp_path / "out", "train/loss")) == 8

"""Sidecars are streamed: checked in one pass, their points read again row by row (issue 12 item 12).

A 94 MB learning-rate CSV (3 M batch rows) took 4.3 GB RSS in ``merge`` when sidecars were
read whole. These tests prove the reading is lazy and its memory does not grow with the
rows, without timing anything; ``bench/bench_sidecar.py`` measures the real thing.
"""

from __future__ import annotations

import builtins
import io
import os
import tracemalloc
from pathlib import Path

import pytest

import tbrewrite.sidecars.read as read
from tbrewrite.errors import SidecarError
from tbrewrite.sidecars.events import SidecarEvents
from tbrewrite.sidecars.read import SidecarPoint, read_sidecar

T0 = 1_700_000_000.0


def batch_sidecar(path: Path, rows: int, *, every: int = 1, extra: str = "") -> Path:
    """A LearningRateLogger(every=...) file: 100 batches per epoch, one row per ``every`` batches."""
    with open(path, "w", newline="") as f:
        f.write("epoch,step,wall_time,learning_rate" + (f",{extra}" if extra else "") + "\r\n")
        for k in range(1, rows + 1):
            step = k * every
            cells = [str((step - 1) // 100), str(step), repr(T0 + step * 0.01), repr(0.1 / (1 + step))]
            f.write(",".join(cells + (["0.9"] if extra else [])) + "\r\n")
    return path


class Opened:
    """Every file ``tbrewrite.sidecars.read`` opens, to see how far each was read."""

    def __init__(self) -> None:
        self.files: list[io.TextIOWrapper] = []

    def __call__(self, *args: object, **kwargs: object) -> io.TextIOWrapper:
        f = builtins.open(*args, **kwargs)  # type: ignore[call-overload]
        self.files.append(f)
        return f  # type: ignore[no-any-return]


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> Opened:
    tracker = Opened()
    monkeypatch.setattr(read, "open", tracker, raising=False)
    return tracker


def test_points_are_read_lazily_from_the_file(tmp_path: Path, opened: Opened) -> None:
    path = batch_sidecar(tmp_path / "lr.csv", 100_000)
    size = path.stat().st_size
    sidecar = read_sidecar(path)
    assert (sidecar.kind, sidecar.rows, sidecar.count) == ("learning-rate", "batch", 100_000)
    assert len(opened.files) == 1 and opened.files[0].closed  # the check: one pass, closed
    points = sidecar.points()
    assert next(points) == SidecarPoint("train/batch_learning_rate", 1, 0.1 / 2, T0 + 0.01, 2)
    f = opened.files[-1]
    assert f.buffer.tell() < size // 20  # one row taken: a buffer's worth read, not the file
    assert sum(1 for _ in points) == 99_999
    assert f.closed


def test_extra_events_are_read_lazily_and_again_at_every_iteration(tmp_path: Path, opened: Opened) -> None:
    path = batch_sidecar(tmp_path / "lr.csv", 100_000)
    size = path.stat().st_size
    sidecar = read_sidecar(path)
    events = SidecarEvents(((sidecar, None),), count=sidecar.count)
    assert len(events) == 100_000
    for _ in range(2):
        stream = iter(events)
        first = next(stream)
        assert (first.step, first.wall_time, first.summary.value[0].tag) == (1, T0 + 0.01, "train/batch_learning_rate")
        assert opened.files[-1].buffer.tell() < size // 20
        assert sum(1 for _ in stream) == 99_999
    assert len(opened.files) == 3  # checked once, read once per iteration


def _peak(rows: int, tmp_path: Path) -> int:
    path = batch_sidecar(tmp_path / f"lr{rows}.csv", rows)
    tracemalloc.start()
    try:
        sidecar = read_sidecar(path)
        n = sum(1 for _ in SidecarEvents(((sidecar, None),), count=sidecar.count))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == rows
    return peak


def test_memory_is_flat_in_the_number_of_rows(tmp_path: Path) -> None:
    small, large = _peak(5_000, tmp_path), _peak(50_000, tmp_path)
    # Read whole, 50,000 points (a SidecarPoint and an Event each) take tens of MB.
    assert large < 2_000_000, large
    assert large < small * 1.5 + 200_000, (small, large)


def test_a_file_changed_between_check_and_read_is_an_error(tmp_path: Path) -> None:
    path = batch_sidecar(tmp_path / "lr.csv", 300)
    sidecar = read_sidecar(path)
    batch_sidecar(path, 301)
    with pytest.raises(SidecarError, match=r"lr\.csv: changed while tbrewrite ran .*; run again$"):
        next(sidecar.points())


def test_ranges_stride_and_order_are_learned_in_one_pass(tmp_path: Path) -> None:
    sidecar = read_sidecar(batch_sidecar(tmp_path / "lr.csv", 50, every=3, extra="momentum"))
    assert (sidecar.min_step, sidecar.max_step, sidecar.stride, sidecar.in_order) == (3, 150, 3, True)
    assert sidecar.count == 100 and sidecar.first_line == 2
    assert sidecar.tags == {"train/batch_learning_rate", "train/batch_momentum"}
    assert [(p.tag, p.step) for p in sidecar.points()][:2] == [
        ("train/batch_learning_rate", 3),
        ("train/batch_momentum", 3),
    ]


def test_appended_fits_whose_epochs_start_again_are_batch_rows(tmp_path: Path) -> None:
    """LearningRateLogger(append=True) in a second fit(): steps go on, epochs start at 0 again."""
    path = tmp_path / "lr.csv"
    path.write_text(
        "epoch,step,wall_time,learning_rate\n"
        + "".join(f"{e},{s},{T0 + s},0.1\n" for e, s in [(0, 4), (1, 8), (0, 12), (1, 16)])
    )
    sidecar = read_sidecar(path)
    assert (sidecar.rows, sidecar.min_step, sidecar.max_step, sidecar.stride) == ("batch", 4, 16, 4)


def test_steps_that_go_back_are_checked_for_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "lr.csv"
    rows = [(0, 1), (0, 2), (1, 5), (1, 3), (1, 2)]
    path.write_text("epoch,step,wall_time,learning_rate\n" + "".join(f"{e},{s},{T0 + s},0.1\n" for e, s in rows))
    with pytest.raises(SidecarError, match=r"line 6, column 'step': step 2 appears twice \(first on line 3\)$"):
        read_sidecar(path)


def test_rows_out_of_time_order_are_yielded_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "lr.csv"
    rows = [(0, 1, T0 + 5), (0, 2, T0 + 1), (1, 3, T0 + 3)]
    path.write_text("epoch,step,wall_time,learning_rate\n" + "".join(f"{e},{s},{w},0.1\n" for e, s, w in rows))
    sidecar = read_sidecar(path)
    assert not sidecar.in_order
    events = list(SidecarEvents(((sidecar, None),), count=3))
    assert [(e.step, e.wall_time) for e in events] == [(2, T0 + 1), (3, T0 + 3), (1, T0 + 5)]


def test_a_bad_cell_far_down_is_found_by_the_check(tmp_path: Path) -> None:
    path = batch_sidecar(tmp_path / "lr.csv", 10_000)
    with open(path, "a", newline="") as f:
        f.write("99,1000001,1700000001.0,fast\r\n")
    with pytest.raises(SidecarError, match=r"line 10002, column 'learning_rate': 'fast' is not a number$"):
        read_sidecar(path)


def test_a_symlink_to_a_named_pipe_is_an_error_not_a_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "lr.csv").symlink_to("pipe")
    with pytest.raises(SidecarError, match=r"lr\.csv: not a regular file \(a named pipe\)$"):
        read_sidecar(tmp_path / "lr.csv")

"""A source file replaced, truncated or appended to between the scan and the write:
the output is complete (a consistent prefix, with a note) or the damage is reported
with file and byte offset (exit 3) -- never a silently shortened output."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from typer.testing import CliRunner

import tbrewrite.commands.convert as convert_module
import tbrewrite.commands.rename as rename_module
from tbrewrite.cli import app
from tbrewrite.engine.rewrite import rewrite
from tbrewrite.events.framing import CHECKPOINT_RECORDS, encode_record
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import list_event_files

runner = CliRunner()
T0 = 1_700_000_000.0
NAME = "events.out.tfevents.1700000000.host"


def event(step: int, tag: str = "loss", value: float = 1.0) -> event_pb2.Event:
    e = event_pb2.Event(wall_time=T0 + step, step=step)
    e.summary.value.add(tag=tag, simple_value=value)
    return e


def write_log(path: Path, events: int, *, tag: str = "loss", value: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with EventFileWriter(path, wall_time=T0) as w:
        for k in range(events):
            w.write_event(event(k, tag, value))
    return path


def append(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(encode_record(event(10**6, "late").SerializeToString()))


def truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size * 2 // 3)


def replace(path: Path) -> None:
    """Another log of the same length and tag count: only the values differ."""
    size = path.stat().st_size
    events = sum(1 for _ in EventFileReader(path)) - 1
    tmp = path.with_name("other")
    write_log(tmp, events, value=2.0)
    assert tmp.stat().st_size == size
    os.replace(tmp, path)


def with_change_before_write(
    monkeypatch: pytest.MonkeyPatch, module: object, change: Callable[[Path], None], path: Path
) -> None:
    """Run ``change(path)`` once, after planning and just before the engine writes."""
    done = []

    def changed_then_rewrite(plan, outputs):
        if not done:
            change(path)
            done.append(True)
        return rewrite(plan, outputs)

    monkeypatch.setattr(module, "rewrite", changed_then_rewrite)


@pytest.mark.parametrize("events", [50, CHECKPOINT_RECORDS + 500], ids=["small", "past-a-checkpoint"])
@pytest.mark.parametrize("command", ["convert", "rename"])
def test_replaced_or_truncated_source_is_reported_with_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str, events: int
) -> None:
    for change, kind in ((replace, "changed"), (truncate, "truncated")):
        src = tmp_path / change.__name__ / "logs" / "run"
        path = write_log(src / NAME, events)
        module = convert_module if command == "convert" else rename_module
        with_change_before_write(monkeypatch, module, change, path)
        out = src.parent.parent / "out"
        argv = (
            ["convert", str(src), str(out), "--jobs", "1"]
            if command == "convert"
            else ["rename", str(src.parent), "--rule", "^loss$=train/loss", "--out", str(out), "--jobs", "1"]
        )
        result = runner.invoke(app, argv)
        assert result.exit_code == 3, (change.__name__, result.output)
        warning = [line for line in result.stderr.splitlines() if "warning" in line]
        assert len(warning) == 1 and str(path) in warning[0] and f"{kind} at byte " in warning[0], result.stderr
        monkeypatch.undo()


def test_source_appended_to_converts_the_scanned_prefix_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "run"
    path = write_log(src / NAME, 50)
    with_change_before_write(monkeypatch, convert_module, append, path)
    result = runner.invoke(app, ["convert", str(src), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "grew from" in result.stderr and str(path) in result.stderr
    (output,) = list_event_files(tmp_path / "out")
    events = list(EventFileReader(output).events())
    assert [e.step for e in events[1:]] == list(range(50))  # all 50 planned, none of the late one
    assert {v.tag for e in events[1:] for v in e.summary.value} == {"train/loss"}

"""``crop``: exactly the steps asked for, everything else byte for byte, in place and dry.

Hand-built logs here (every record known); logs of real writers (Keras 3, tf_keras,
TensorFlow's ``tf.summary``) and TensorBoard's server: ``tests/e2e/test_crop_e2e.py``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import events as ev
from support.logs import event_files, loader_events, loader_values
from tbrewrite.cli import app
from tbrewrite.commands.crop import crop, parse_steps, parse_wall_times
from tbrewrite.errors import UsageError
from tbrewrite.events.reader import EventFileReader
from tbrewrite.output.swap import BACKUP_MARKER

runner = CliRunner()
SCALARS = ev.metadata("scalars", b"")
KERAS = ev.metadata("graph_keras_model", b"1")
HPARAMS = ev.metadata("hparams", b"\x12\x00")


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def _records(first_metadata_only: bool) -> list[bytes]:
    """A run of 10 steps: two scalars, a histogram-free image-free log plus graph and model config."""
    records = [ev.file_version(), ev.graph(ev.T0 + 0.1)]
    records.append(ev.summary(ev.T0 + 0.2, 0, ev.tensor("keras", 0.0, KERAS)))
    records.append(ev.summary(ev.T0 + 0.3, 0, ev.tensor("_hparams_/session_start_info", 0.0, HPARAMS)))
    for step in range(10):
        meta = SCALARS if step == 0 or not first_metadata_only else None
        records.append(ev.summary(ev.T0 + 1 + step, step, ev.tensor("epoch_loss", 1.0 / (step + 1), meta)))
        records.append(ev.summary(ev.T0 + 1.5 + step, step, ev.simple("lr", 0.1 * step)))
    return records


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    ev.write(root / "a" / "events.out.tfevents.1700000000.host", _records(first_metadata_only=True))
    ev.write(root / "b" / "events.out.tfevents.1700000000.host", _records(first_metadata_only=False))
    (root / "a" / "notes.txt").write_text("kept\n")
    return root


def _steps(root: Path, tag: str) -> list[int]:
    return [step for t, step, _, _ in loader_values(event_files(root)) if t == tag]


def _raw(path: Path) -> list[bytes]:
    return [r.data for r in EventFileReader(path)]


def test_keeps_exactly_the_steps_asked_and_every_stepless_event(logdir: Path, tmp_path: Path) -> None:
    report = crop(logdir, steps=(3, 7), out=tmp_path / "out")
    out = tmp_path / "out"
    for run_name in ("a", "b"):
        assert _steps(out / run_name, "epoch_loss") == [3, 4, 5, 6]
        assert _steps(out / run_name, "lr") == [3, 4, 5, 6]
        assert _steps(out / run_name, "keras") == [0]
        assert _steps(out / run_name, "_hparams_/session_start_info") == [0]
        assert loader_events(event_files(out / run_name)) == loader_events(event_files(logdir / run_name))
    assert (out / "a" / "notes.txt").read_text() == "kept\n"
    # Every kept record is the input's record, byte for byte, in the input's order -- except
    # run a's first kept epoch_loss, which now carries the tag's metadata.
    (src,) = event_files(logdir / "b")
    (dst,) = event_files(out / "b")
    assert all(r in _raw(src) for r in _raw(dst))
    assert [r for r in _raw(src) if r in _raw(dst)] == _raw(dst)
    assert sum(r.values_dropped for r in report.runs) == 2 * 2 * 6
    assert report.damage == []


def test_first_kept_value_gets_the_plugin_metadata(logdir: Path, tmp_path: Path) -> None:
    """TF1-style logs carry metadata on a tag's first value only; cropping that value must not lose it."""
    from tensorboard.backend.event_processing import plugin_event_accumulator as pea

    crop(logdir, steps=(3, None), out=tmp_path / "out")
    acc = pea.EventAccumulator(str(tmp_path / "out" / "a"))
    acc.Reload()
    assert "epoch_loss" in acc.Tags()["tensors"]
    assert acc.SummaryMetadata("epoch_loss").plugin_data.plugin_name == "scalars"
    assert [e.step for e in acc.Tensors("epoch_loss")] == list(range(3, 10))


def test_tags_regex_crops_only_matching_tags(logdir: Path, tmp_path: Path) -> None:
    crop(logdir, steps=(None, 2), tags="^epoch_", out=tmp_path / "out")
    assert _steps(tmp_path / "out" / "a", "epoch_loss") == [0, 1]
    assert _steps(tmp_path / "out" / "a", "lr") == list(range(10))


def test_wall_time_window(logdir: Path, tmp_path: Path) -> None:
    # epoch_loss at T0+1+s and lr at T0+1.5+s: [T0+3, T0+5) holds epoch_loss 2, 3 and lr 2, 3
    crop(logdir, wall_times=(ev.T0 + 3, ev.T0 + 5), out=tmp_path / "out")
    assert _steps(tmp_path / "out" / "b", "epoch_loss") == [2, 3]
    assert _steps(tmp_path / "out" / "b", "lr") == [2, 3]
    assert _steps(tmp_path / "out" / "b", "keras") == [0]


def test_in_place_backs_up_and_leaves_untouched_files_alone(logdir: Path, tmp_path: Path) -> None:
    untouched = ev.write(logdir / "c" / "events.out.tfevents.1700000000.host", _records(False)[:8])  # steps 0..1
    before = untouched.stat()
    report = crop(logdir, steps=(None, 5), in_place=True, backup_dir=tmp_path / "backup")
    assert _steps(logdir / "a", "epoch_loss") == [0, 1, 2, 3, 4]
    assert report.backup_dir == (tmp_path / "backup").resolve()
    backups = sorted(p.relative_to(tmp_path / "backup").as_posix() for p in (tmp_path / "backup").rglob("*.host"))
    assert backups == [f"{r}/events.out.{BACKUP_MARKER}.1700000000.host" for r in ("a", "b")]
    assert untouched.stat().st_ino == before.st_ino and untouched.stat().st_mtime_ns == before.st_mtime_ns
    assert [run.files for run in report.runs if run.edit.run == "c"] == [[]]


def test_dry_run_writes_nothing(logdir: Path) -> None:
    digest = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.rglob("*") if p.is_file()}
    result = run("crop", logdir, "--steps", "3:7", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run: would keep 3 <= step < 7 in 4 tag(s) of 2 run(s); nothing written" in result.output
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.rglob("*") if p.is_file()} == digest


def test_cli_exit_codes(logdir: Path, tmp_path: Path) -> None:
    assert run("crop", logdir, "--out", tmp_path / "o1").exit_code == 2  # no window
    assert run("crop", logdir, "--steps", "5:5", "--out", tmp_path / "o2").exit_code == 2  # empty window
    assert run("crop", logdir, "--steps", "1:2", "--out", tmp_path / "o3", "--in-place").exit_code == 2
    missing = run("crop", tmp_path / "nope", "--steps", "1:2", "--out", tmp_path / "o4")
    assert missing.exit_code == 1
    assert "LOGDIR" in missing.output or "nope" in missing.output
    path = event_files(logdir / "a")[0]
    path.write_bytes(path.read_bytes()[:-3])  # a truncated last record
    damaged = run("crop", logdir, "--steps", "1:5", "--out", tmp_path / "o5")
    assert damaged.exit_code == 3, damaged.output
    assert _steps(tmp_path / "o5" / "a", "epoch_loss") == [1, 2, 3, 4]
    ok = run("crop", logdir / "b", "--steps", "1:5", "--out", tmp_path / "o6")
    assert ok.exit_code == 0, ok.output
    assert "kept 1 <= step < 5: 12 value(s) cropped from 2 tag(s); wrote" in ok.output


def test_parse_windows() -> None:
    assert parse_steps("10:") == (10, None)
    assert parse_steps(":20") == (None, 20)
    assert parse_steps("-5:5") == (-5, 5)
    with pytest.raises(UsageError, match="START:STOP"):
        parse_steps("10")
    with pytest.raises(UsageError, match="integers"):
        parse_steps("a:b")
    assert parse_wall_times("1700000000:1700000100.5") == (1_700_000_000.0, 1_700_000_100.5)
    assert parse_wall_times("2023-11-14T22:13:20:") == (ev.T0, None)
    assert parse_wall_times(":2023-11-14T23:13:20+01:00") == (None, ev.T0)
    assert parse_wall_times("2023-11-14T22:13:20Z:2023-11-14T22:13:30") == (ev.T0, ev.T0 + 10)
    with pytest.raises(UsageError, match="not START:STOP"):
        parse_wall_times("yesterday:today")

"""Defects found by trying the commands as users and attackers would (issue 12); each test
reproduces one report. Item numbers refer to that issue."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from typer.testing import CliRunner

from tbrewrite.cli import app
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import list_event_files

runner = CliRunner()
T0 = 1_700_000_000.0


def write_log(path: Path, steps: range, tag: str = "loss", t0: float = T0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with EventFileWriter(path, wall_time=t0) as w:
        for s in steps:
            event = event_pb2.Event(wall_time=t0 + s, step=s)
            event.summary.value.add(tag=tag, simple_value=float(s))
            w.write_event(event)
    return path


@pytest.mark.parametrize(
    "argv",
    [
        ["convert", "{src}", "nosuch://bucket/out"],
        ["convert", "nosuch://bucket/logs", "{tmp}/out"],
        ["inspect", "nosuch://bucket/logs"],
        ["rename", "{src}", "--rule", "a=b", "--out", "nosuch://container/out"],
        ["merge", "{src}", "--sidecar", "nosuch://lr.csv", "--in-place"],
        ["export", "nosuch://bucket/logs", "{tmp}/x.csv"],
    ],
)
def test_6_urls_of_unknown_stores_are_usage_errors_and_nothing_is_written_locally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    src = tmp_path / "run"
    write_log(src / "events.out.tfevents.1700000000.host", range(3))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.format(src=src, tmp=tmp_path) for a in argv])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("tbrewrite: error: nosuch://: ")  # not a local folder called "nosuch:"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_11_merge_in_place_twice_leaves_the_run_alone(tmp_path: Path) -> None:
    run = tmp_path / "logs" / "run"
    write_log(run / "events.out.tfevents.1700000000.host", range(5), tag="train/loss")
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text(
        "epoch,step,wall_time,learning_rate\n" + "".join(f"{e},{e},{T0 + e + 0.5},0.1\n" for e in range(5))
    )
    first = runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--in-place"])
    assert first.exit_code == 0, first.output
    merged = {p.name: p.read_bytes() for p in list_event_files(run)}
    backups = sorted(p.name for p in (tmp_path / "logs").iterdir())
    second = runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--in-place"])
    assert second.exit_code == 0, second.output
    assert "the run is unchanged" in second.stdout
    assert {p.name: p.read_bytes() for p in list_event_files(run)} == merged
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == backups  # no second backup


def test_11_keep_last_does_not_tell_to_see_restarts(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_log(run / "events.out.tfevents.1700000000.host", range(6))
    write_log(run / "events.out.tfevents.1700000100.host", range(3), t0=T0 + 100)
    keep = runner.invoke(app, ["convert", str(run), str(tmp_path / "keep")])
    assert "go backwards" in keep.stderr
    last = runner.invoke(app, ["convert", str(run), str(tmp_path / "last"), "--restarts", "keep-last"])
    assert last.exit_code == 0, last.output
    assert "go backwards" not in last.stderr and "values dropped" in last.stdout


def test_11_split_counts_the_runs_it_wrote(tmp_path: Path) -> None:
    log_dir = tmp_path / "log_dir"
    write_log(log_dir / "train" / "events.out.tfevents.1700000000.host.100.0.v2", range(3), tag="epoch_loss")
    write_log(log_dir / "validation" / "events.out.tfevents.1700000001.host.100.1.v2", range(3), tag="epoch_loss")
    (log_dir / "train" / "events.out.tfevents.1700000500.host.200.0.v2").write_bytes(b"")  # killed at once
    result = runner.invoke(app, ["convert", str(log_dir), str(tmp_path / "out"), "--restarts", "split"])
    written = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert len(written) == 1
    assert "converted 1 run(s)" in result.stdout and "nothing written" in result.stdout


def test_11_merge_out_then_in_place_of_the_output_is_idempotent(tmp_path: Path) -> None:
    run = tmp_path / "src"
    write_log(run / "events.out.tfevents.1700000000.host", range(4), tag="train/loss")
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text(
        "epoch,step,wall_time,learning_rate\n" + "".join(f"{e},{e},{T0 + e + 0.5},0.1\n" for e in range(4))
    )
    out = tmp_path / "logs" / "merged"
    assert runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in list_event_files(out)}
    again = runner.invoke(app, ["merge", str(out), "--sidecar", str(sidecar), "--in-place"])
    assert again.exit_code == 0 and "unchanged" in again.stdout
    assert {p.name: p.read_bytes() for p in list_event_files(out)} == before
    shutil.rmtree(tmp_path / "logs")


def test_13_inspect_of_a_named_pipe_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "events.out.tfevents.1700000000.fifo"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["inspect", str(fifo)])
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {fifo}: not a regular file (a named pipe)\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["rename", "{logs}", "--rule", "a=b", "--backup-dir", "{tmp}/bk", "--dry-run"],
        ["rename", "{logs}", "--rule", "a=b", "--out", "{tmp}/o", "--in-place"],
        ["rename", "{logs}", "--rule", "a=b"],
        ["rename", "{logs}", "--rule", "a=b", "--dry-run", "--jobs", "0"],
        ["convert", "{logs}", "{tmp}/o", "--jobs", "0"],
        ["convert", "{logs}", "{tmp}/o", "--restarts", "sometimes"],
        ["merge", "{logs}/run", "--sidecar", "{tmp}/lr.csv", "--backup-dir", "{tmp}/bk", "--out", "{tmp}/o"],
        ["merge", "{logs}/run", "--sidecar", "{tmp}/lr.csv"],
    ],
)
def test_option_conflicts_are_usage_errors_exit_2(tmp_path: Path, argv: list[str]) -> None:
    """Issue 11: option errors are checked once, in the library, and always exit 2."""
    write_log(tmp_path / "logs" / "run" / "events.out.tfevents.1700000000.host", range(3))
    (tmp_path / "lr.csv").write_text("epoch,step,wall_time,learning_rate\n0,0,1700000000.5,0.1\n")
    result = runner.invoke(app, [a.format(logs=tmp_path / "logs", tmp=tmp_path) for a in argv])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1 or "Usage" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "lr.csv"]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("force", [False, True])
def test_1_a_symlinked_folder_inside_out_is_never_written_through(tmp_path: Path, force: bool) -> None:
    logs = tmp_path / "logs"
    write_log(logs / "exp1" / "events.out.tfevents.1700000000.host", range(4))
    other = tmp_path / "other"
    write_log(other / "exp1" / "events.out.tfevents.1600000000.unrelated", range(2), tag="keep")
    before_logs, before_other = tree_bytes(logs), tree_bytes(other)
    for target, argv in (
        (logs / "exp1", ["rename", str(logs), "--drop", "^loss$", "--out", "{out}"]),
        (other / "exp1", ["convert", str(logs), "{out}"]),
    ):
        out = tmp_path / f"tb-{argv[0]}"
        out.mkdir()
        (out / "exp1").symlink_to(target)
        result = runner.invoke(app, [a.format(out=out) for a in argv] + (["--force"] if force else []))
        assert result.exit_code == 1, result.output
        (line,) = result.stderr.splitlines()
        assert ("already holds files" in line) if not force else ("through a symlink" in line), line
    assert tree_bytes(logs) == before_logs and tree_bytes(other) == before_other


def test_1_in_place_never_writes_into_a_run_symlinked_from_outside(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "exp"
    write_log(outside / "events.out.tfevents.1700000000.host", range(4))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "exp").symlink_to(outside)
    before = tree_bytes(outside)
    result = runner.invoke(app, ["rename", str(logs), "--rule", "^loss$=train/loss", "--in-place"])
    assert result.exit_code == 1 and "through a symlink" in result.stderr, result.output
    assert tree_bytes(outside) == before and sorted(p.name for p in outside.iterdir()) == sorted(before)


def test_3_convert_carries_every_file_that_is_not_an_event_file(tmp_path: Path) -> None:
    log_dir = tmp_path / "fit"
    write_log(log_dir / "train" / "events.out.tfevents.1700000000.host.1.0.v2", range(3), tag="epoch_loss")
    write_log(log_dir / "validation" / "events.out.tfevents.1700000001.host.1.1.v2", range(3), tag="epoch_loss")
    extras = {
        "train/projector_config.pbtxt": b'embeddings { tensor_name: "emb" metadata_path: "metadata.tsv" }\n',
        "train/metadata.tsv": b"a\nb\n",
        "train/plugins/profile/2024_01_01/host.xplane.pb": b"\x00\x01",
        "train/events.out.tfevents.1700000002.host.profile-empty": b"",
        "00000/emb/tensors.tsv": b"0.1\t0.2\n",
    }
    for rel, data in extras.items():
        (log_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (log_dir / rel).write_bytes(data)
    out = tmp_path / "out"
    result = runner.invoke(app, ["convert", str(log_dir), str(out)])
    assert result.exit_code == 0, result.output
    for rel, data in extras.items():
        assert (out / rel).read_bytes() == data, rel
    assert "copied 5 other file(s)" in result.stderr
    assert "projector_config.pbtxt from the run folder" in result.stderr
    assert len(list_event_files(out)) == 1 and not list_event_files(out / "train")


def test_8_a_non_keras_run_with_a_loss_tag_is_left_alone(tmp_path: Path) -> None:
    """flax/clu writes ``loss`` and ``accuracy`` through TF2's writer (``.v2`` files), no ``val_`` twins."""
    run = tmp_path / "flax"
    path = run / "events.out.tfevents.1700000000.host.4242.0.v2"
    path.parent.mkdir(parents=True)
    with EventFileWriter(path, wall_time=T0) as w:
        for s in range(3):
            event = event_pb2.Event(wall_time=T0 + s, step=s)
            event.summary.value.add(tag="loss", simple_value=1.0)
            event.summary.value.add(tag="accuracy", simple_value=0.5)
            w.write_event(event)
    result = runner.invoke(app, ["convert", str(run), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "0 tags mapped" in result.stdout and "already converted" in result.stdout
    inspected = runner.invoke(app, ["inspect", str(run), "--json"])
    assert '"layout": "generic"' in inspected.stdout
    flat = tmp_path / "keras2"
    write_log(flat / "events.out.tfevents.1700000000.host", range(3))  # TF1 name, Keras 2's loss
    assert '"layout": "keras-flat"' in runner.invoke(app, ["inspect", str(flat), "--json"]).stdout


def test_13_deeply_nested_rules_file_is_one_line(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text("x = " + "[" * 2000 + "]" * 2000 + "\n")
    write_log(tmp_path / "logs" / "events.out.tfevents.1700000000.host", range(2))
    result = runner.invoke(app, ["rename", str(tmp_path / "logs"), "--rules", str(rules), "--dry-run"])
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {rules}: invalid TOML: arrays or tables nested too deeply\n"


@pytest.mark.parametrize("option", ["--sidecar", "--rules"])
def test_13_a_named_pipe_as_sidecar_or_rules_file_is_an_error_not_a_hang(tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    run = tmp_path / "run"
    write_log(run / "events.out.tfevents.1700000000.host", range(2))
    argv = (
        ["convert", str(run), str(tmp_path / "out"), "--sidecar", str(fifo)]
        if option == "--sidecar"
        else ["rename", str(run), "--rules", str(fifo), "--dry-run"]
    )
    result = runner.invoke(app, argv)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {fifo}: not a regular file (a named pipe)\n"


def test_10_csv_export_neutralizes_formulas_parquet_keeps_the_text(tmp_path: Path) -> None:
    run = tmp_path / "=cmd|' /C calc'!A0"
    write_log(run / "events.out.tfevents.1700000000.host", range(2), tag="+SUM(1)")
    out = tmp_path / "new" / "folder" / "x.csv"  # item 13: the folder is made, as convert makes OUT
    result = runner.invoke(app, ["export", str(tmp_path), str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert lines[1].startswith("'=cmd|' /C calc'!A0,'+SUM(1),0,"), lines[1]
    pytest.importorskip("pyarrow")
    import pandas as pd

    parquet = tmp_path / "x.parquet"
    assert runner.invoke(app, ["export", str(tmp_path), str(parquet)]).exit_code == 0
    frame = pd.read_parquet(parquet)
    assert set(frame["run"]) == {"=cmd|' /C calc'!A0"} and set(frame["tag"]) == {"+SUM(1)"}


# --- found by the hostile-matrix rerun ----------------------------------------------------


def test_export_never_replaces_a_pipe_or_device_even_with_force(tmp_path: Path) -> None:
    write_log(tmp_path / "run" / "events.out.tfevents.1.a", range(3))
    fifo = tmp_path / "out.csv"
    os.mkfifo(fifo)
    result = runner.invoke(app, ["export", str(tmp_path / "run"), str(fifo), "--force"])
    assert result.exit_code == 1
    assert "not a regular file" in result.output and len(result.output.strip().splitlines()) == 1
    assert fifo.is_fifo()


@pytest.mark.parametrize("content", [b"", b"epoch,loss\n0,1\n", os.urandom(4096)], ids=["empty", "csv", "random"])
def test_merge_into_a_run_without_a_valid_event_is_an_error_and_writes_nothing(tmp_path: Path, content: bytes) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.out.tfevents.2.x").write_bytes(content)
    sidecar = tmp_path / "lr.csv"
    sidecar.write_text("epoch,step,wall_time,learning_rate\n0,0,1700000000.5,0.1\n")
    result = runner.invoke(app, ["merge", str(run), "--sidecar", str(sidecar), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "no valid event" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("engine", ["python", "native"])
def test_a_write_error_names_the_output_file_under_both_engines(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import resource
    import subprocess
    import sys

    if engine == "native":
        pytest.importorskip("tbrewrite._native")
    write_log(tmp_path / "run" / "events.out.tfevents.1.a", range(20_000))
    cli = Path(sys.executable).with_name("tbrewrite")

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    out = tmp_path / "out"
    proc = subprocess.run(
        [str(cli), "convert", str(tmp_path / "run"), str(out)],
        env={**os.environ, "TBREWRITE_ENGINE": engine},
        preexec_fn=small_files,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"tbrewrite: error: {out / 'events.out.tfevents.1700000000.tbrewrite'}: File too large"
    ]
    assert not out.exists() or not any(out.iterdir())

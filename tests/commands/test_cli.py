"""The command line: exit codes, one-line errors, no TensorFlow import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.logs import event_files
from support.paths import CORPUS, FIXTURES, REPO, needs_corpus
from tbrewrite.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def test_cli_never_imports_tensorflow_or_keras(tmp_path: Path) -> None:
    code = f"""
import sys
from tbrewrite.cli import main
sys.argv = ["tbrewrite", "convert", {str(FIXTURES / "keras3_run")!r}, {str(tmp_path / "out")!r}]
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print(bad)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert event_files(tmp_path / "out")


def test_convert_one_line_summary(tmp_path: Path) -> None:
    result = run("convert", FIXTURES / "keras3_run", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "events in ->" in result.stdout and "tags mapped" in result.stdout


def test_out_holding_files_is_refused_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = run("convert", FIXTURES / "keras3_run", out)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: OUT already holds files; use --force to replace them\n"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    result = run("convert", FIXTURES / "keras3_run", out, "--force")
    assert result.exit_code == 0, result.output
    assert len(event_files(out)) == 1


def test_force_replaces_stale_event_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("convert", FIXTURES / "keras3_run", out).exit_code == 0
    stale = out / "events.out.tfevents.0000000001.old"
    stale.write_bytes(b"")
    assert run("convert", FIXTURES / "keras3_run", out, "--force").exit_code == 0
    assert not stale.exists() and len(event_files(out)) == 1


@pytest.mark.parametrize("where", ["same", "inside"])
def test_out_equal_to_or_inside_src_is_refused(tmp_path: Path, where: str) -> None:
    src = tmp_path / "src"
    import shutil

    shutil.copytree(FIXTURES / "keras3_run", src)
    out = src if where == "same" else src / "converted"
    result = run("convert", src, out)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert not (src / "converted").exists()


def test_missing_src_is_one_line_error(tmp_path: Path) -> None:
    result = run("convert", tmp_path / "nope", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {tmp_path / 'nope'}: no such file or directory\n"
    assert not (tmp_path / "out").exists()


def test_src_without_event_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("convert", tmp_path / "empty", tmp_path / "out")
    assert result.exit_code == 1
    assert "no event files found" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_option_is_usage_error(tmp_path: Path) -> None:
    result = run("convert", FIXTURES / "keras3_run", tmp_path / "out", "--restarts", "bogus")
    assert result.exit_code == 2
    assert not (tmp_path / "out").exists()


@needs_corpus
def test_damaged_input_converts_prefix_and_exits_3(tmp_path: Path) -> None:
    src = CORPUS / "eyenet" / "src" / "Graph"
    result = run("convert", src, tmp_path / "out")
    assert result.exit_code == 3, result.output
    assert "events.out.tfevents.1506627099.ip-172-31-26-224: crc_mismatch at byte 773645" in result.stderr
    assert len(event_files(tmp_path / "out")) == 1


def test_a_tree_of_many_runs_lists_only_runs_with_something_to_say(tmp_path: Path) -> None:
    import shutil

    from tbrewrite.cli._app import MAX_TABLE_RUNS

    src = tmp_path / "logs"
    for k in range(MAX_TABLE_RUNS + 1):
        shutil.copytree(FIXTURES / "keras3_run", src / f"run{k:03d}")
    (damaged,) = event_files(src / "run007" / "train")
    damaged.write_bytes(damaged.read_bytes()[:-3])  # the last record cut short
    result = run("convert", src, tmp_path / "out")
    assert result.exit_code == 3, result.output
    listed = [line for line in result.stdout.splitlines() if "keras-split" in line]
    assert len(listed) == 1 and "run007" in listed[0]
    assert f"({MAX_TABLE_RUNS} of {MAX_TABLE_RUNS + 1} runs not listed" in result.stdout
    assert f"converted {MAX_TABLE_RUNS + 1} run(s)" in result.stdout


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = run("convert", FIXTURES / "keras3_run", tmp_path / "out", "--dry-run")
    assert result.exit_code == 0
    assert "epoch_loss" in result.stdout and "train/loss" in result.stdout
    assert not (tmp_path / "out").exists()


def test_paths_with_spaces_and_unicode(tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "my runs" / "expérience 1 ✓"
    shutil.copytree(FIXTURES / "keras3_run", src)
    out = tmp_path / "sortie données"
    result = run("convert", src, out)
    assert result.exit_code == 0, result.output
    assert len(event_files(out)) == 1


COMMANDS = (
    "convert",
    "inspect",
    "rename",
    "merge",
    "export",
    "plot",
    "crop",
    "concat",
    "overlay",
    "compact",
    "hparams",
)


def test_every_command_has_help_and_a_readme_section() -> None:
    readme = (REPO / "README.md").read_text()
    result = run("--help")
    assert result.exit_code == 0
    registered = {c.name for c in app.registered_commands}
    assert registered == set(COMMANDS)
    for command in COMMANDS:
        assert command in result.stdout
        sub = run(command, "--help")
        assert sub.exit_code == 0 and "Usage" in sub.stdout and "Example" in sub.stdout, command
        assert f"tbrewrite {command}" in readme, command


def test_version() -> None:
    from tbrewrite import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout in (f"tbrewrite {__version__} (native engine)\n", f"tbrewrite {__version__} (python engine)\n")

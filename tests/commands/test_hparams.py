"""``hparams``: attaching hyperparameters, as the HParams plugin's own backend reads them.

Logs here are built from TensorBoard's protos (scalars as TF2 writes them; existing hparams
with the plugin's own ``summary_v2`` builders); the dashboard's data comes from the plugin's
``get_experiment`` / ``list_session_groups`` handlers (``support.hparams_backend``). Real
writers and the real server: ``tests/e2e/test_hparams_e2e.py``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from typer.testing import CliRunner

from support import events as ev
from support.hparams_backend import in_process
from support.logs import event_files
from tbrewrite.cli import app
from tbrewrite.commands.hparams import attach_hparams
from tbrewrite.errors import HParamsError

runner = CliRunner()
SCALARS = ev.metadata("scalars")


def _run(path: Path, losses: list[float], *, t0: float = ev.T0, extra: list[bytes] = ()) -> Path:
    """A run with ``loss`` and ``acc`` scalars at steps 0.. and ``extra`` records after its file_version."""
    records = [ev.file_version(t0), *extra]
    for step, loss in enumerate(losses):
        meta = SCALARS if step == 0 else None
        records.append(ev.summary(t0 + 1 + step, step, ev.tensor("loss", loss, meta), ev.tensor("acc", 1 - loss, meta)))
    ev.write(path / f"events.out.tfevents.{int(t0)}.host.1.v2", records)
    return path


def _hparams_record(values: dict, t0: float = ev.T0, *, experiment: bool = False) -> bytes:
    """A session start summary as ``hp.hparams_pb`` writes it (with its own experiment, as PyTorch does)."""
    from tensorboard.plugins.hparams import summary_v2 as hp

    if experiment:
        summary = hp.hparams_config_pb([hp.HParam(k) for k in values], [hp.Metric("loss")], time_created_secs=t0)
        return event_pb2.Event(wall_time=t0, summary=summary).SerializeToString()
    return event_pb2.Event(wall_time=t0, summary=hp.hparams_pb(values, start_time_secs=t0)).SerializeToString()


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    _run(tmp_path / "logs" / "a", [0.9, 0.5, 0.25])
    _run(tmp_path / "logs" / "b", [0.8, 0.4], t0=ev.T0 + 100)
    return tmp_path / "logs"


def _csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_attaches_sessions_and_one_experiment(logs: Path, tmp_path: Path) -> None:
    table = _csv(tmp_path / "runs.csv", "run,lr,optimizer,augment\na,0.01,adam,true\nb,0.1,sgd,false\n")
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(table), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    board = in_process(tmp_path / "out")
    assert board.hparams == {
        "augment": ("DATA_TYPE_BOOL", [False, True]),
        "lr": ("DATA_TYPE_FLOAT64", (0.01, 0.1)),
        "optimizer": ("DATA_TYPE_STRING", ["adam", "sgd"]),
    }
    assert board.metrics == [("", "acc"), ("", "loss")]
    assert board.sessions == {
        "a": {
            "group": "a",
            "hparams": {"augment": True, "lr": 0.01, "optimizer": "adam"},
            "metrics": {("", "acc"): 0.75, ("", "loss"): 0.25},
        },
        "b": {
            "group": "b",
            "hparams": {"augment": False, "lr": 0.1, "optimizer": "sgd"},
            "metrics": {("", "acc"): pytest.approx(0.6), ("", "loss"): pytest.approx(0.4)},
        },
    }
    # one small file per session, one for the experiment at the root; the runs' files copied byte for byte
    out_files = [p.relative_to(tmp_path / "out").as_posix() for p in event_files(tmp_path / "out")]
    assert out_files == [
        "a/events.out.tfevents.1700000000.host.1.v2",
        "a/events.out.tfevents.1700000000.tbrewrite-hparams",
        "b/events.out.tfevents.1700000100.host.1.v2",
        "b/events.out.tfevents.1700000100.tbrewrite-hparams",
        "events.out.tfevents.1700000000.tbrewrite-hparams",
    ]
    for run in ("a", "b"):
        (src,) = (logs / run).glob("*.v2")
        assert (tmp_path / "out" / run / src.name).read_bytes() == src.read_bytes()
    assert "a: augment=true, lr=0.01, optimizer='adam' (new, from" in result.stdout
    assert result.stdout.splitlines()[-2] == "experiment: 3 hparam(s), 2 metric(s): acc, loss"
    assert result.stdout.splitlines()[-1] == f"attached hparams to 2 of 2 run(s); wrote {tmp_path / 'out'}"


def test_lightning_hparams_yaml_in_each_run_folder_flattened(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    logs = tmp_path / "lightning_logs"
    for k in range(2):
        _run(logs / f"version_{k}", [0.5, 0.1 * (k + 1)], t0=ev.T0 + k)
        (logs / f"version_{k}" / "hparams.yaml").write_text(
            f"lr: {0.001 * (k + 1)}\nmodel:\n  layers: [64, 32]\n  dropout: null\nname: run{k}\n", encoding="utf-8"
        )
    report = attach_hparams(logs, "hparams.yaml", out=tmp_path / "out")
    assert [(s.run, s.hparams) for s in report.sessions] == [
        ("version_0", {"lr": 0.001, "model/layers": "[64, 32]", "name": "run0"}),
        ("version_1", {"lr": 0.002, "model/layers": "[64, 32]", "name": "run1"}),
    ]
    board = in_process(tmp_path / "out")
    assert board.sessions["version_1"]["hparams"] == {"lr": 0.002, "model/layers": "[64, 32]", "name": "run1"}
    assert board.sessions["version_1"]["metrics"][("", "loss")] == pytest.approx(0.2)
    assert board.hparams["model/layers"] == ("DATA_TYPE_STRING", ["[64, 32]"])


def test_pattern_and_single_file(logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "configs" / "sub").mkdir(parents=True)
    (tmp_path / "configs" / "a.json").write_text(json.dumps({"lr": 0.5, "opt": {"name": "adam"}}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    report = attach_hparams(logs, "configs/{run}.json", dry_run=True)
    assert [(s.run, s.origin, s.hparams) for s in report.sessions] == [
        ("a", "configs/a.json", {"lr": 0.5, "opt/name": "adam"})
    ]
    assert not (logs / "events.out.tfevents.1700000000.tbrewrite-hparams").exists()
    (tmp_path / "hp.json").write_text('{"seed": 3}', encoding="utf-8")
    report = attach_hparams(logs / "a", "./hp.json", out=tmp_path / "out")
    assert [(s.run, s.hparams) for s in report.sessions] == [(".", {"seed": 3.0})]
    board = in_process(tmp_path / "out")
    assert board.sessions["."]["metrics"] == {("", "acc"): 0.75, ("", "loss"): 0.25}
    # LOGDIR itself as the session of runs below it: TensorBoard looks for them as ./a, ./b
    report = attach_hparams(logs, "./hp.json", dry_run=True)
    assert report.warnings == [
        f"{logs}: LOGDIR itself is the session of 2 run(s) below it, whose metrics TensorBoard does not find "
        "(it looks for ./<run>); attach the hparams to those runs, or run hparams on LOGDIR's parent"
    ]


def test_metric_chooses_the_columns(logs: Path, tmp_path: Path) -> None:
    table = _csv(tmp_path / "runs.csv", "run,lr\na,1\nb,2\n")
    result = runner.invoke(
        app, ["hparams", str(logs), "--from", str(table), "--metric", "loss", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    board = in_process(tmp_path / "out")
    assert board.metrics == [("", "loss")]
    assert board.sessions["a"]["metrics"] == {("", "loss"): 0.25}
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(table), "--metric", "nope", "--dry-run"])
    assert result.exit_code == 1
    assert result.stderr == "tbrewrite: error: --metric nope: no run at or below a session holds a scalar tag 'nope'\n"


def test_existing_hparams_merged_conflict_refused_then_replaced(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _run(logs / "a", [0.5, 0.2], extra=[_hparams_record({"lr": 0.1, "batch": 32})])
    _run(logs / "b", [0.5, 0.3], t0=ev.T0 + 5)
    table = _csv(tmp_path / "runs.csv", "run,lr,seed\na,0.1,1\nb,0.2,2\n")
    report = attach_hparams(logs, str(table), out=tmp_path / "merged")
    a, _ = report.sessions
    assert (a.hparams, a.added, a.changed) == ({"batch": 32.0, "lr": 0.1, "seed": 1.0}, ("seed",), True)
    assert report.stripped == [("a", "events.out.tfevents.1700000000.host.1.v2", ("_hparams_/session_start_info",))]
    board = in_process(tmp_path / "merged")
    assert board.sessions["a"]["hparams"] == {"batch": 32, "lr": 0.1, "seed": 1}
    assert board.sessions["b"]["hparams"] == {"lr": 0.2, "seed": 2}
    # the original's other records are kept: its scalars are what the dashboard shows
    assert board.sessions["a"]["metrics"][("", "loss")] == pytest.approx(0.2)

    conflict = _csv(tmp_path / "conflict.csv", "run,lr\na,0.5\n")
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(conflict), "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert result.stderr == (
        f"tbrewrite: error: {conflict}:2: run 'a' has hparam 'lr' = 0.1 already; --from gives 0.5 (--replace to overwrite)\n"
    )
    assert not (tmp_path / "x").exists()
    result = runner.invoke(
        app, ["hparams", str(logs), "--from", str(conflict), "--replace", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    assert "a: batch=32, lr=0.5 (merged, from" in result.stdout and "; lr: 0.1 -> 0.5)" in result.stdout
    assert in_process(tmp_path / "x").sessions["a"]["hparams"] == {"batch": 32, "lr": 0.5}


def test_one_experiment_for_runs_that_each_wrote_their_own(tmp_path: Path) -> None:
    """stable-baselines3#1099 / pytorch#37738: each run's own experiment; the dashboard took the first."""
    logs = tmp_path / "logs"
    for k, values in enumerate([{"lr": 0.1}, {"lr": 0.2, "gamma": 0.99}]):
        extra = [_hparams_record(values, experiment=True), _hparams_record(values)]
        _run(logs / f"run{k}", [0.5, 0.1 * k], t0=ev.T0 + k, extra=extra)
    before = in_process(logs)
    assert set(before.hparams) == {"lr"}  # gamma hidden: the first run's experiment wins
    table = _csv(tmp_path / "more.csv", "run,seed\nrun0,1\nrun1,2\n")
    report = attach_hparams(logs, str(table), out=tmp_path / "out")
    assert [s[2] for s in report.stripped] == [("_hparams_/experiment", "_hparams_/session_start_info")] * 2
    after = in_process(tmp_path / "out")
    assert set(after.hparams) == {"gamma", "lr", "seed"}
    assert after.sessions["run1"]["hparams"] == {"gamma": 0.99, "lr": 0.2, "seed": 2}


def test_in_place_then_again_changes_nothing(logs: Path, tmp_path: Path) -> None:
    table = _csv(tmp_path / "runs.csv", "run,lr\na,0.01\nb,0.1\n")
    originals = {p: p.read_bytes() for p in event_files(logs)}
    argv = ["hparams", str(logs), "--from", str(table), "--in-place", "--backup-dir", str(tmp_path / "bak")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert {p: p.read_bytes() for p in originals} == originals
    assert set(in_process(logs).sessions) == {"a", "b"}
    written = {p: p.read_bytes() for p in event_files(logs)}
    assert len(written) == 5
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(table), "--in-place"])
    assert result.exit_code == 0, result.output
    assert "a: lr=0.01 (unchanged" in result.stdout and "experiment (unchanged)" in result.stdout
    assert result.stdout.splitlines()[-1] == "attached hparams to 0 of 2 run(s); nothing to change in place"
    assert {p: p.read_bytes() for p in event_files(logs)} == written
    # a new hparam for one run: its file and the root's are replaced, the old ones backed up
    more = _csv(tmp_path / "more.csv", "run,seed\nb,7\n")
    result = runner.invoke(
        app, ["hparams", str(logs), "--from", str(more), "--in-place", "--backup-dir", str(tmp_path / "bak2")]
    )
    assert result.exit_code == 0, result.output
    assert in_process(logs).sessions["b"]["hparams"] == {"lr": 0.1, "seed": 7}
    assert sorted(
        p.relative_to(tmp_path / "bak2").as_posix() for p in (tmp_path / "bak2").rglob("*") if p.is_file()
    ) == [
        "b/events.out.tbrewrite-backup.1700000100.tbrewrite-hparams",
        "events.out.tbrewrite-backup.1700000000.tbrewrite-hparams",
    ]
    assert len(event_files(logs)) == 5


def test_keras_log_dir_is_one_session_with_train_and_validation_groups(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    for k in range(2):
        _run(logs / f"fit{k}" / "train", [0.5, 0.3 + k], t0=ev.T0 + 10 * k)
        _run(logs / f"fit{k}" / "validation", [0.6, 0.4 + k], t0=ev.T0 + 10 * k + 1)
    table = _csv(tmp_path / "runs.csv", "run,units\nfit0,8\nfit1,16\n")
    attach_hparams(logs, str(table), metrics=["loss"], out=tmp_path / "out")
    assert (tmp_path / "out" / "fit1" / "events.out.tfevents.1700000010.tbrewrite-hparams").is_file()
    board = in_process(tmp_path / "out")
    assert board.metrics == [("train", "loss"), ("validation", "loss")]
    assert board.sessions["fit1"]["metrics"] == {
        ("train", "loss"): pytest.approx(1.3),
        ("validation", "loss"): pytest.approx(1.4),
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("name,lr\na,1\n", "{t}:1: no 'run' column (columns: name, lr)"),
        ("run,lr\nzz,1\n", "{t}:2: run 'zz' is not a folder of LOGDIR holding event files"),
        ("run,lr\na,1\na/,2\n", "{t}:3: run 'a' given twice (first on line 2)"),
        ("run,lr\na,1,2\n", "{t}:2: 3 cells; the header has 2"),
        ("run,lr\na,nan\n", "{t}:2: hparam 'lr' is nan; TensorBoard's HParams dashboard cannot show it"),
        ("run,lr,lr\na,1,2\n", "{t}:1: column 'lr' appears twice"),
        (
            "run,lr\na,1\nb,fast\n",
            "{t}:2: hparam 'lr' of run 'a' is a number (1.0), but a string in run 'b'; one hparam must have one type",
        ),
        ('run,lr\na,"1\n', "{t}:2: not a valid CSV: unexpected end of data"),
    ],
)
def test_bad_tables_are_one_line_errors_and_nothing_is_written(
    logs: Path, tmp_path: Path, table: str, message: str
) -> None:
    path = _csv(tmp_path / "t.csv", table)
    before = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(path), "--in-place"])
    assert result.exit_code == 1, result.output
    assert result.stderr == "tbrewrite: error: " + message.format(t=path) + "\n"
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == before


def test_type_conflict_with_a_run_that_has_hparams(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    _run(logs / "a", [0.5], extra=[_hparams_record({"units": 8})])
    _run(logs / "b", [0.5], t0=ev.T0 + 1)
    table = _csv(tmp_path / "t.csv", "run,units\nb,wide\n")
    with pytest.raises(
        HParamsError, match=r"t\.csv:2: hparam 'units' of run 'b' is a string \('wide'\), but a number in run 'a'"
    ):
        attach_hparams(logs, str(table), dry_run=True)


def test_bad_yaml_and_json_name_the_file(logs: Path, tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    (logs / "a" / "hparams.yaml").write_text("lr: [1, 2\n", encoding="utf-8")
    result = runner.invoke(app, ["hparams", str(logs), "--from", "hparams.yaml", "--dry-run"])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"tbrewrite: error: {logs / 'a' / 'hparams.yaml'}:2:1: not valid YAML: ")
    (logs / "a" / "hparams.yaml").write_text("- 1\n- 2\n", encoding="utf-8")
    result = runner.invoke(app, ["hparams", str(logs), "--from", "hparams.yaml", "--dry-run"])
    assert (
        result.stderr
        == f"tbrewrite: error: {logs / 'a' / 'hparams.yaml'}: must hold a mapping of hparam names to values; got list\n"
    )
    (tmp_path / "hp.json").write_text('{"lr": 1,}', encoding="utf-8")
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(tmp_path / "hp.json"), "--dry-run"])
    assert (
        result.stderr
        == f"tbrewrite: error: {tmp_path / 'hp.json'}:1:10: not valid JSON: Expecting property name enclosed in double quotes\n"
    )
    result = runner.invoke(app, ["hparams", str(logs), "--from", "nothing.yaml", "--dry-run"])
    assert result.stderr == f"tbrewrite: error: {logs}: no folder holds a file named nothing.yaml\n"


def test_dry_run_lists_what_would_be_attached(logs: Path, tmp_path: Path) -> None:
    table = _csv(tmp_path / "runs.csv", "run,lr\na,0.01\n")
    before = {p: p.read_bytes() for p in event_files(logs)}
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(table), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"a: lr=0.01 (new, from {table}:2)",
        "experiment: 1 hparam(s), 2 metric(s): acc, loss",
        "dry run: would attach hparams to 1 of 1 run(s); nothing written",
    ]
    assert {p: p.read_bytes() for p in event_files(logs)} == before


def test_usage_errors(logs: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["hparams", str(logs)])
    assert result.exit_code == 2
    result = runner.invoke(app, ["hparams", str(logs), "--from", "x.csv", "--out", str(tmp_path / "o"), "--in-place"])
    assert (result.exit_code, result.stderr) == (2, "tbrewrite: error: give --out DIR or --in-place, not both\n")
    result = runner.invoke(app, ["hparams", str(logs), "--from", "x.txt", "--dry-run"])
    assert (result.exit_code, result.stderr) == (
        1,
        "tbrewrite: error: x.txt: --from must be a .csv, .yaml, .yml or .json file (or a {run} pattern)\n",
    )


def test_python_api_takes_a_dict(logs: Path, tmp_path: Path) -> None:
    report = attach_hparams(logs, {"a": {"lr": 1e-3, "net": {"depth": 4}}, "b": {"lr": 1e-2}}, out=tmp_path / "out")
    assert [(s.run, s.origin, s.hparams) for s in report.sessions] == [
        ("a", "hparams['a']", {"lr": 0.001, "net/depth": 4.0}),
        ("b", "hparams['b']", {"lr": 0.01}),
    ]
    assert in_process(tmp_path / "out").sessions["a"]["hparams"] == {"lr": 0.001, "net/depth": 4}


def test_damaged_run_still_gets_its_session_and_exit_3(logs: Path, tmp_path: Path) -> None:
    (path,) = (logs / "b").glob("*.v2")
    path.write_bytes(path.read_bytes()[:-5])  # a killed writer's last record
    table = _csv(tmp_path / "runs.csv", "run,lr\na,1\nb,2\n")
    result = runner.invoke(app, ["hparams", str(logs), "--from", str(table), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "truncated" in result.stderr
    assert in_process(tmp_path / "out").sessions["b"]["hparams"] == {"lr": 2}


def test_readme_example(tmp_path: Path) -> None:
    """The README's console example, run on the fixtures it names, prints what the README shows."""
    from support.paths import FIXTURES, REPO

    text = (REPO / "README.md").read_text().split("\n## `tbrewrite hparams LOGDIR --from FILE`\n", 1)[1]
    block = text.split("```console\n", 1)[1].split("```", 1)[0].splitlines()
    table = block[1 : block.index(next(line for line in block[1:] if line.startswith("$ ")))]
    command = next(line for line in block if line.startswith("$ tbrewrite hparams"))[2:].split()
    shown = block[block.index("$ " + " ".join(command)) + 1 :]
    (tmp_path / "runs.csv").write_text("\n".join(table) + "\n", encoding="utf-8")
    shutil.copytree(FIXTURES / "keras3_run", tmp_path / "logs" / "keras3")
    shutil.copytree(FIXTURES / "tf_keras_run", tmp_path / "logs" / "tf_keras")
    completed = subprocess.run(
        [sys.executable, "-m", "tbrewrite", *command[1:]], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == shown
    loss = {s: m["metrics"][("validation", "epoch_loss")] for s, m in in_process(tmp_path / "logs").sessions.items()}
    assert {s: round(v, 3) for s, v in loss.items()} == {"keras3": 0.507, "tf_keras": 0.399}


@pytest.mark.parametrize("text", ["a: &x [*x]\n", "a: &x {b: *x}\n", "a: &x {b: [*x]}\n"])
def test_yaml_value_holding_itself_is_a_one_line_error(logs: Path, text: str) -> None:
    pytest.importorskip("yaml")
    (logs / "a" / "hparams.yaml").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["hparams", str(logs), "--from", "hparams.yaml", "--dry-run"])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"tbrewrite: error: {logs / 'a' / 'hparams.yaml'}: hparam 'a")
    assert result.stderr.endswith("holds itself; give it a value\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": {"b": 1}, "a/b": 2}', "hparam 'a/b' given twice (a nested mapping and a name with '/')"),
        ('{"a/b": 2, "a": {"b": null}}', "hparam 'a/b' given twice (a nested mapping and a name with '/')"),
        ('{"": 1}', "an hparam has an empty name"),
    ],
)
def test_json_names_flattening_onto_one_or_empty_are_refused(
    logs: Path, tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "hp.json").write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["hparams", str(logs / "a"), "--from", str(tmp_path / "hp.json"), "--dry-run"])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"tbrewrite: error: {tmp_path / 'hp.json'}: {message}\n"

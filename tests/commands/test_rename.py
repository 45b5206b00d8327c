"""``rename``: rule errors on the command line, the corpus end to end, dry run, in place, SIGKILL, collisions.

The rule language itself (matching, scopes, parse errors): ``tests/unit/test_rules.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2, summary_pb2
from typer.testing import CliRunner

from support.logs import event_files, loader_events, loader_values
from support.paths import REPO, require_corpus
from support.rename_rules import DROP, RULES_TOML, expected_tag
from tbrewrite.cli import app
from tbrewrite.commands.rename import WriteTask, rename, write_run_files
from tbrewrite.commands.renameplan import plan_run
from tbrewrite.events.reader import EventFileReader
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import list_event_files
from tbrewrite.output.swap import BACKUP_MARKER, JOURNAL_NAME, Swap, recover, staged_name, swap_steps, write_journal
from tbrewrite.rules import build_rules

runner = CliRunner()


def run(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_dirs(root: Path) -> list[Path]:
    return sorted({p.parent for p in event_files(root)})


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    logdir = tmp_path / "corpus"
    shutil.copytree(require_corpus(), logdir)
    return logdir


@pytest.fixture()
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(RULES_TOML)
    return path


# --- rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("^epoch_loss$=", "--rule '^epoch_loss$=': renames tag 'epoch_loss' to the empty string"),
        (
            "loss=a\nb",
            "--rule 'loss=a\\nb': renames tag 'epoch_loss' to 'epoch_a\\nb', which holds a control character",
        ),
        ("_=\t", "--rule '_=\\t': renames tag 'epoch_loss' to 'epoch\\tloss', which holds a control character"),
    ],
)
def test_rule_making_an_empty_or_control_character_tag_refused_before_writing(
    tmp_path: Path, rule: str, message: str
) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "run" / "events.out.tfevents.1700000000.a", [scalar("epoch_loss", 0, 1.0)])
    before = tree_hashes(tmp_path)
    for mode in (["--out", tmp_path / "out"], ["--in-place"], ["--dry-run"]):
        result = run("rename", logdir, "--rule", rule, *mode)
        assert result.exit_code == 1
        assert result.stderr == f"tbrewrite: error: {message}\n"
        assert tree_hashes(tmp_path) == before and not (tmp_path / "out").exists()
        assert not list(tmp_path.glob("logs.tbrewrite-backup-*"))


def test_cli_rules_file_without_rules_refused(corpus: Path, tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("rule = []\n")
    result = run("rename", corpus, "--rules", path, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {path}: no rules; expected [[rule]] tables\n"
    assert not (tmp_path / "out").exists()


def test_cli_invalid_regex_and_toml_error_exit_1_one_line(corpus: Path, tmp_path: Path) -> None:
    result = run("rename", corpus, "--rule", "(abc=x", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (
        "tbrewrite: error: --rule '(abc=x': invalid regex '(abc': missing ), unterminated subpattern at position 0\n"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text("[[rule]]\npattern = 'a'\nreplace = \n")
    result = run("rename", corpus, "--rules", bad, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {bad}:3:11: invalid TOML: invalid value\n"
    assert not (tmp_path / "out").exists()


def test_cli_usage_errors_exit_2(corpus: Path, tmp_path: Path) -> None:
    before = tree_hashes(tmp_path)
    assert run("rename", corpus, "--rule", "a=b").exit_code == 2
    assert run("rename", corpus, "--rule", "a=b", "--out", tmp_path / "o", "--in-place").exit_code == 2
    assert run("rename", corpus, "--out", tmp_path / "o").exit_code == 2
    assert run("rename", corpus, "--rule", "a=b", "--rules", tmp_path / "r.toml", "--dry-run").exit_code == 2
    assert tree_hashes(tmp_path) == before


# --- the corpus, end to end -------------------------------------------------------------


def assert_renamed_run(src_dir: Path, out_dir: Path) -> None:
    """TensorBoard's loader sees, per run and tag, the input's values under the new tags."""
    src_files = list_event_files(src_dir)
    out_files = list_event_files(out_dir)
    assert [f.name for f in out_files] == [f.name for f in src_files]
    expected: Counter = Counter()
    for tag, step, wall_time, value in loader_values(src_files):
        new = expected_tag(tag)
        if new is not None:
            expected[(new, step, wall_time, value)] += 1
    assert Counter(loader_values(out_files)) == expected
    assert loader_events(out_files) == loader_events(src_files)


def assert_metadata_on_first_values(src_dir: Path, out_dir: Path) -> None:
    """Every tag that has plugin metadata in the run has it on its first value in every file."""
    with_metadata = set()
    for path in list_event_files(src_dir):
        for event in EventFileReader(path).events():
            with_metadata |= {expected_tag(v.tag) for v in event.summary.value if v.HasField("metadata")}
    for path in list_event_files(out_dir):
        seen = set()
        events = list(EventFileReader(path).events())
        assert events[0].file_version
        for event in events:
            for v in event.summary.value:
                if v.tag not in seen:
                    seen.add(v.tag)
                    assert v.HasField("metadata") == (v.tag in with_metadata), (path, v.tag)


def test_corpus_rename_out(corpus: Path, rules_file: Path, tmp_path: Path) -> None:
    before = tree_hashes(corpus)
    out = tmp_path / "out"
    result = run("rename", corpus, "--rules", rules_file, "--drop", DROP, "--out", out, "--jobs", "2")
    assert result.exit_code == 3, result.output  # the corpus holds damaged files
    assert "crc_mismatch at byte 773645" in result.stderr
    assert tree_hashes(corpus) == before
    runs = run_dirs(corpus)
    assert len(runs) == 31 and run_dirs(out) == [out / r.relative_to(corpus) for r in runs]
    renamed = 0
    for src_dir in runs:
        out_dir = out / src_dir.relative_to(corpus)
        assert_renamed_run(src_dir, out_dir)
        assert_metadata_on_first_values(src_dir, out_dir)
        for src in list_event_files(src_dir):
            tags = {v.tag for e in EventFileReader(src).events() for v in e.summary.value}
            if all(expected_tag(t) == t for t in tags):
                reader = EventFileReader(src)
                list(reader)
                end = reader.damage[0].offset if reader.damage else src.stat().st_size
                assert (out_dir / src.name).read_bytes() == src.read_bytes()[:end]
            else:
                renamed += 1
    assert renamed >= 14
    copied = {k: v for k, v in before.items() if "tfevents" not in k or k.endswith(".profile-empty")}
    after = tree_hashes(out)
    assert {k: after[k] for k in copied} == copied
    assert (out / "PROVENANCE.md").stat().st_mtime == (corpus / "PROVENANCE.md").stat().st_mtime

    # Renaming the renamed tree with the same rules changes nothing, with any --jobs.
    again = tmp_path / "again"
    result = run("rename", out, "--rules", rules_file, "--drop", DROP, "--out", again, "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert tree_hashes(again) == after
    assert "0 tag(s) renamed and 0 dropped" in result.stdout


def test_corpus_dry_run_lists_every_mapping_and_writes_nothing(corpus: Path, rules_file: Path, tmp_path: Path) -> None:
    before = tree_hashes(tmp_path)
    result = run("rename", corpus, "--rules", rules_file, "--drop", DROP, "--dry-run")
    assert result.exit_code == 3, result.output
    assert tree_hashes(tmp_path) == before
    rows = set()
    for line in result.stdout.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) == 9:
            rows.add((cells[1], cells[2], cells[4]))
    expected = set()
    for src_dir in run_dirs(corpus):
        name = src_dir.relative_to(corpus).as_posix()
        for path in list_event_files(src_dir):
            for event in EventFileReader(path).events():
                for v in event.summary.value:
                    new = expected_tag(v.tag)
                    if new != v.tag:
                        expected.add((name, v.tag, new or "(dropped)"))
    assert rows == expected
    assert len(expected) > 40


def test_in_place_swaps_and_backs_up_outside_logdir(corpus: Path, rules_file: Path, tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    shutil.copytree(corpus, pristine)
    before = tree_hashes(corpus)
    reference = tmp_path / "reference"
    assert run("rename", pristine, "--rules", rules_file, "--drop", DROP, "--out", reference).exit_code == 3
    result = run("rename", corpus, "--rules", rules_file, "--drop", DROP, "--in-place", "--jobs", "2")
    assert result.exit_code == 3, result.output
    backup = tmp_path / "corpus.tbrewrite-backup-1"
    assert f"originals in {backup}" in result.stdout
    after = tree_hashes(corpus)
    assert sorted(after) == sorted(before)  # one set of event files per run, nothing else
    assert not any("tfevents" in name for name in tree_hashes(backup))  # TensorBoard never loads one
    backed_up = {k.replace(BACKUP_MARKER, "tfevents"): v for k, v in tree_hashes(backup).items()}
    assert backed_up and all(before[k] == v for k, v in backed_up.items())
    renamed = tree_hashes(reference)
    for name, digest in after.items():
        if name in backed_up:
            assert digest == renamed[name] != before[name]
        else:
            assert digest == before[name]
    for src_dir in run_dirs(pristine):
        assert_renamed_run(src_dir, corpus / src_dir.relative_to(pristine))

    result = run("rename", corpus, "--rules", rules_file, "--drop", DROP, "--in-place")
    assert result.exit_code == 3
    assert "nothing to change in place" in result.stdout
    assert tree_hashes(corpus) == after
    assert not (tmp_path / "corpus.tbrewrite-backup-2").exists()


# --- generated runs: metadata, collisions, refusals -------------------------------------


def scalar(tag: str, step: int, value: float, *, metadata: bool = True) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step)
    v = event.summary.value.add(tag=tag)
    v.tensor.dtype = 1  # DT_FLOAT
    v.tensor.float_val.append(value)
    if metadata:
        v.metadata.plugin_data.plugin_name = "scalars"
    return event


def histogram(tag: str, step: int, *, display_name: str | None = None) -> event_pb2.Event:
    event = event_pb2.Event(wall_time=1_700_000_000.0 + step, step=step)
    v = event.summary.value.add(tag=tag)
    v.histo.num = step + 1.0
    if display_name is not None:
        v.metadata.plugin_data.plugin_name = "histograms"
        v.metadata.display_name = display_name
        v.metadata.summary_description = "weights"
    return event


def write_file(path: Path, events: list[event_pb2.Event]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with EventFileWriter(path, wall_time=1_700_000_000.0) as w:
        for e in events:
            w.write_event(e)
    return path


def first_values(path: Path) -> dict[str, summary_pb2.Summary.Value]:
    first: dict[str, summary_pb2.Summary.Value] = {}
    for event in EventFileReader(path).events():
        for v in event.summary.value:
            first.setdefault(v.tag, v)
    return first


def test_metadata_follows_the_rename_into_every_file(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(
        logdir / "run" / "events.out.tfevents.1700000000.a",
        [histogram("h", s, display_name="h") if s == 0 else histogram("h", s) for s in range(3)],
    )
    write_file(logdir / "run" / "events.out.tfevents.1700000100.b", [histogram("h", s) for s in range(3, 6)])
    rename(logdir, build_rules([r"^h$=weights/h"]), out=tmp_path / "out", jobs=1)
    for name in ("events.out.tfevents.1700000000.a", "events.out.tfevents.1700000100.b"):
        first = first_values(tmp_path / "out" / "run" / name)
        assert list(first) == ["weights/h"]
        meta = first["weights/h"].metadata
        assert (meta.plugin_data.plugin_name, meta.display_name, meta.summary_description) == (
            "histograms",
            "weights/h",
            "weights",
        )


def test_scope_scalars_leaves_histograms(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "events.out.tfevents.1700000000.a", [scalar("w", 0, 1.0), histogram("w2", 0)])
    rules = tmp_path / "r.toml"
    rules.write_text("[[rule]]\npattern = '^w'\nreplace = 'x'\nscope = 'scalars'\n")
    assert run("rename", logdir, "--rules", rules, "--out", tmp_path / "out").exit_code == 0
    assert list(first_values(tmp_path / "out" / "events.out.tfevents.1700000000.a")) == ["x", "w2"]


def test_collision_refused_unless_allow_merge(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(
        logdir / "r" / "events.out.tfevents.1700000000.a",
        [scalar("a/loss", s, 1.0) for s in range(10)] + [scalar("b/loss", s, 2.0) for s in range(5, 15)],
    )
    before = tree_hashes(tmp_path)
    result = run("rename", logdir, "--rule", r"^[ab]/(.*)$=\1", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (
        "tbrewrite: error: run 'r': tags 'a/loss' (steps 0..9) and 'b/loss' (steps 5..14) would both "
        "become 'loss' with overlapping steps; use --allow-merge to merge them\n"
    )
    assert tree_hashes(tmp_path) == before
    result = run("rename", logdir, "--rule", r"^[ab]/(.*)$=\1", "--in-place")
    assert result.exit_code == 1 and tree_hashes(tmp_path) == before
    result = run("rename", logdir, "--rule", r"^[ab]/(.*)$=\1", "--out", tmp_path / "out", "--allow-merge")
    assert result.exit_code == 0, result.output
    values = loader_values(event_files(tmp_path / "out"))
    assert Counter(tag for tag, *_ in values) == {"loss": 20}


def test_collision_sees_step_ranges_across_restarts_and_files(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "events.out.tfevents.1700000000.a", [scalar("a", s, 1.0) for s in (10, 11, 12, 0, 1)])
    write_file(logdir / "events.out.tfevents.1700000100.b", [scalar("b", s, 1.0) for s in (3, 4)])
    result = run("rename", logdir, "--rule", "^[ab]$=c", "--dry-run")
    assert result.exit_code == 1
    assert "tags 'a' (steps 0..12) and 'b' (steps 3..4) would both become 'c'" in result.stderr


def test_tags_without_overlapping_steps_merge(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(
        logdir / "events.out.tfevents.1700000000.a",
        [scalar("loss", s, 1.0) for s in range(5)] + [scalar("epoch_loss", s, 2.0) for s in range(5, 9)],
    )
    result = run("rename", logdir, "--rule", "^epoch_=", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "tags 'loss' and 'epoch_loss' merge into 'loss'" in result.stderr
    assert [s for _, s, _, _ in loader_values(event_files(tmp_path / "out"))] == list(range(9))


def test_different_kinds_never_merge(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "events.out.tfevents.1700000000.a", [scalar("a", 0, 1.0), histogram("b", 5)])
    result = run("rename", logdir, "--rule", "^[ab]$=c", "--out", tmp_path / "out", "--allow-merge")
    assert result.exit_code == 1
    assert "are of different kinds (histogram, scalar)" in result.stderr


@pytest.mark.parametrize("where", ["same", "inside"])
def test_out_in_logdir_and_backup_in_logdir_refused(tmp_path: Path, where: str) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "events.out.tfevents.1700000000.a", [scalar("a", 0, 1.0)])
    before = tree_hashes(tmp_path)
    target = logdir if where == "same" else logdir / "sub"
    result = run("rename", logdir, "--rule", "a=b", "--out", target)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    result = run("rename", logdir, "--rule", "a=b", "--in-place", "--backup-dir", target)
    assert result.exit_code == 1 and "--backup-dir is inside LOGDIR" in result.stderr
    assert tree_hashes(tmp_path) == before


def test_force_writes_into_a_non_empty_out_and_removes_stale_event_files(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "run" / "events.out.tfevents.1700000000.a", [scalar("epoch_loss", 0, 1.0)])
    out = tmp_path / "out"
    stale = write_file(out / "run" / "events.out.tfevents.1600000000.old", [scalar("x", 0, 1.0)])
    (out / "notes.txt").write_text("kept")
    result = run("rename", logdir, "--rule", "^epoch_=", "--out", out)
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {out}: --out already holds files; use --force to replace them\n"
    assert run("rename", logdir, "--rule", "^epoch_=", "--out", out, "--force").exit_code == 0
    assert not stale.exists() and (out / "notes.txt").read_text() == "kept"
    assert [p.name for p in event_files(out)] == ["events.out.tfevents.1700000000.a"]


def test_runs_glob_selects_runs_and_copies_the_rest(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    for name in ("exp1/train", "exp2/train"):
        write_file(logdir / name / "events.out.tfevents.1700000000.a", [scalar("epoch_loss", s, 1.0) for s in range(3)])
    result = run("rename", logdir, "--rule", "^epoch_=", "--runs", "exp1/*", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert list(first_values(tmp_path / "out/exp1/train/events.out.tfevents.1700000000.a")) == ["loss"]
    assert tree_hashes(tmp_path / "out" / "exp2") == tree_hashes(logdir / "exp2")


# --- in place: crash at every step, then a real SIGKILL ---------------------------------


def make_run(run_dir: Path, files: int, events: int) -> None:
    for f in range(files):
        write_file(
            run_dir / f"events.out.tfevents.{1700000000 + f}.host",
            [scalar("epoch_loss" if k % 2 else "other", f * events + k, float(k)) for k in range(events)],
        )


def event_set(run_dir: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_event_files(run_dir)}


def backup_set(folder: Path) -> dict[str, str]:
    """The originals kept in a backup folder, by their original names: none is an event file."""
    files = [p for p in sorted(folder.iterdir()) if p.is_file()]
    assert not list_event_files(folder)
    return {p.name.replace(BACKUP_MARKER, "tfevents"): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def stage(run_dir: Path) -> list[str]:
    """Write the new version of every event file of ``run_dir`` under its staged name."""
    plan = plan_run(".", run_dir, build_rules([r"^epoch_loss$=train/loss"]))
    results = write_run_files(
        WriteTask(plan, [run_dir / staged_name(f.path.name) for f in plan.files], True, False, run_dir)
    )
    return [r.name for r in results]


@pytest.mark.parametrize("backup_root", ["beside", "other-filesystem"])
def test_swap_interrupted_at_every_step_recovers_wholly_new(tmp_path: Path, backup_root: str) -> None:
    shm = Path("/dev/shm")
    if backup_root == "other-filesystem" and (not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev):
        pytest.skip("no second file system to back up to")
    base = tmp_path / "template"
    make_run(base / "run", files=3, events=4)
    old = event_set(base / "run")
    names = sorted(old)

    # A crash after staging, before the journal: recovery leaves the run wholly old.
    logdir = tmp_path / "staged-only"
    shutil.copytree(base, logdir)
    stage(logdir / "run")
    assert recover(logdir) == ["run: removed 3 unfinished staged file(s)"]
    assert sorted(p.name for p in (logdir / "run").iterdir()) == names
    assert event_set(logdir / "run") == old

    # A crash after each step of the swap: recovery finishes it, wholly new.
    new = None
    crash_after = 0
    while True:
        logdir = tmp_path / f"crash-{crash_after}"
        shutil.copytree(base, logdir)
        run_dir = logdir / "run"
        backup = (tmp_path if backup_root == "beside" else shm) / f"tbrewrite-test-{os.getpid()}-{crash_after}"
        write_journal(Swap.replacing(run_dir, backup, tuple(stage(run_dir))))
        steps = swap_steps(run_dir)
        for _ in range(crash_after):
            next(steps)
        steps.close()
        finished = not (run_dir / JOURNAL_NAME).exists()
        recovered = recover(logdir)
        assert recovered == ([] if finished else ["run: finished an interrupted swap of 3 file(s)"])
        assert sorted(p.name for p in run_dir.iterdir()) == names
        assert backup_set(backup) == old
        state = event_set(run_dir)
        new = new or state
        assert state == new and all(new[n] != old[n] for n in names)
        shutil.rmtree(backup)
        if finished:
            break
        crash_after += 1
    # Per file a backup (a hard link, or a copy across file systems) and a removal, then per
    # file a publication, then the journal's removal.
    assert crash_after == 10


def cli_process(*args: object) -> subprocess.Popen:
    code = "from tbrewrite.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def kill_when(proc: subprocess.Popen, ready) -> bool:
    """SIGKILL ``proc`` and its workers as soon as ``ready()``; False if it ended first."""
    while proc.poll() is None:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.0005)
    return False


def recover_cli(logdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from tbrewrite.cli import main; main()", "rename", str(logdir), "--recover"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_sigkill_mid_rename_leaves_every_run_wholly_old_or_new(tmp_path: Path) -> None:
    """Kill -9 the whole process group while it stages, then while it swaps; after
    ``--recover`` every run holds exactly its old or exactly its new event files."""
    template = tmp_path / "template"
    runs = [f"run{i}" for i in range(3)]
    for name in runs:
        make_run(template / name, files=200, events=40)  # many files: a long swap
    old = {name: event_set(template / name) for name in runs}
    rule = ("--rule", "^epoch_(.*)$=train/\\1", "--in-place")
    reference = tmp_path / "reference"
    shutil.copytree(template, reference)
    assert cli_process("rename", reference, *rule, "--jobs", "1").wait() == 0
    new = {name: event_set(reference / name) for name in runs}
    assert all(new[n] != old[n] for n in runs)

    def check(logdir: Path) -> None:
        recover_cli(logdir)
        backup = tmp_path / f"{logdir.name}.tbrewrite-backup-1"
        for name in runs:
            assert sorted(p.name for p in (logdir / name).iterdir()) == sorted(old[name])
            state = event_set(logdir / name)
            assert state in (old[name], new[name]), name
            if state == new[name]:
                assert backup_set(backup / name) == old[name]

    # While staging (two worker processes): nothing was swapped yet.
    logdir = tmp_path / "staging"
    shutil.copytree(template, logdir)
    proc = cli_process("rename", logdir, *rule, "--jobs", "2")
    staged = lambda: any(p.name.startswith(".tbrewrite-") for n in runs for p in (logdir / n).iterdir())  # noqa: E731
    assert kill_when(proc, staged)
    check(logdir)
    assert {name: event_set(logdir / name) for name in runs} == old

    # While swapping: a kill lands between the journal's creation and its removal.
    journals_left = 0
    for attempt in range(3):
        logdir = tmp_path / f"swapping-{attempt}"
        shutil.copytree(template, logdir)
        proc = cli_process("rename", logdir, *rule, "--jobs", "1")
        journal = lambda: any((logdir / n / JOURNAL_NAME).exists() for n in runs)  # noqa: E731
        if kill_when(proc, journal) and journal():
            journals_left += 1
        check(logdir)
        if journals_left:
            break
    assert journals_left == 1, "no kill landed inside a swap in 3 attempts"


def test_pending_journal_refused_by_out_and_finished_by_recover(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    make_run(logdir / "run", files=2, events=4)
    old = event_set(logdir / "run")
    backup = tmp_path / "backup"
    write_journal(Swap.replacing(logdir / "run", backup, tuple(stage(logdir / "run"))))
    result = run("rename", logdir, "--rule", "a=b", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.stderr == (
        f"tbrewrite: error: {logdir / 'run' / JOURNAL_NAME}: an in-place rename was interrupted here; "
        f"run 'tbrewrite rename {logdir} --recover' first\n"
    )
    result = run("rename", logdir, "--recover")
    assert result.exit_code == 0, result.output
    assert result.stdout == "recovered run: finished an interrupted swap of 2 file(s)\n1 folder(s) repaired\n"
    assert backup_set(backup) == old and sorted(event_set(logdir / "run")) == sorted(old)


def test_cli_rename_has_help_and_never_imports_tensorflow(tmp_path: Path) -> None:
    assert "Usage" in run("rename", "--help").stdout
    logdir = tmp_path / "logs"
    make_run(logdir / "a", files=1, events=4)
    make_run(logdir / "b", files=1, events=4)
    code = f"""
import sys
from tbrewrite.cli import main
sys.argv = ["tbrewrite", "rename", {str(logdir)!r}, "--rule", "^epoch_=", "--in-place", "--jobs", "2"]
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert list(first_values(list_event_files(logdir / "a")[0])) == ["other", "loss"]


def test_out_copies_file_symlinks_follows_folder_symlinks_and_skips_special_files(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    write_file(logdir / "run" / "events.out.tfevents.1700000000.a", [scalar("epoch_loss", s, 1.0) for s in range(3)])
    (logdir / "run" / "dangling").symlink_to("/nonexistent/target")
    (logdir / "run" / "events.out.tfevents.1700000001.dangling").symlink_to("gone")
    (logdir / "self").symlink_to("self")
    (logdir / "loop").mkdir()
    (logdir / "loop" / "x").symlink_to("../loop/x")
    (logdir / "real").mkdir()
    (logdir / "real" / "notes.txt").write_text("notes")
    (logdir / "dirlink").symlink_to("real")
    os.mkfifo(logdir / "run" / "pipe")
    os.mkfifo(logdir / "events.out.tfevents.1700000002.fifo")
    out = tmp_path / "out"
    result = run("rename", logdir, "--rule", "^epoch_=", "--out", out, "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        f"tbrewrite: warning: {logdir}/events.out.tfevents.1700000002.fifo: skipped: a named pipe\n"
        f"tbrewrite: warning: {logdir}/run/pipe: skipped: a named pipe\n"
    )
    links = {
        "run/dangling": "/nonexistent/target",
        "run/events.out.tfevents.1700000001.dangling": "gone",
        "self": "self",
        "loop/x": "../loop/x",
    }
    for rel, target in links.items():
        assert (out / rel).is_symlink() and os.readlink(out / rel) == target, rel
    # A symlinked folder is followed, as TensorBoard follows it: it comes out a folder.
    assert (out / "real" / "notes.txt").read_text() == "notes"
    assert not (out / "dirlink").is_symlink() and (out / "dirlink" / "notes.txt").read_text() == "notes"
    assert not os.path.lexists(out / "run" / "pipe")
    assert not os.path.lexists(out / "events.out.tfevents.1700000002.fifo")
    assert list(first_values(out / "run" / "events.out.tfevents.1700000000.a")) == ["loss"]
    report = rename(logdir, build_rules(["^epoch_="]), out=tmp_path / "out2")
    assert report.warnings == [
        f"{logdir}/events.out.tfevents.1700000002.fifo: skipped: a named pipe",
        f"{logdir}/run/pipe: skipped: a named pipe",
    ]


def _rename_under_file_size_limit(args: list[object], limit: int) -> subprocess.CompletedProcess:
    code = f"""
import resource, sys
from tbrewrite.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["tbrewrite", "rename", *{[str(a) for a in args]!r}]
main()
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


@pytest.mark.parametrize("big", ["event file", "other file"])
def test_write_error_names_the_output_file(tmp_path: Path, big: str) -> None:
    logdir = tmp_path / "logs"
    name = "events.out.tfevents.1700000000.a"
    events = 4000 if big == "event file" else 10
    write_file(logdir / "run" / name, [scalar("epoch_loss", s, 1.0) for s in range(events)])
    if big == "other file":
        (logdir / "run" / "weights.bin").write_bytes(b"w" * 200_000)
    before = tree_hashes(tmp_path)
    limit = 100_000
    result = _rename_under_file_size_limit(
        [logdir, "--rule", "^epoch_=", "--out", tmp_path / "out", "--jobs", "1"], limit
    )
    written = tmp_path / "out" / "run" / (name if big == "event file" else "weights.bin")
    assert result.returncode == 1
    assert result.stderr == f"tbrewrite: error: {written}: File too large\n"
    assert tree_hashes(tmp_path) == before and not (tmp_path / "out").exists()
    if big == "event file":
        result = _rename_under_file_size_limit([logdir, "--rule", "^epoch_=", "--in-place", "--jobs", "1"], limit)
        assert result.returncode == 1
        assert result.stderr == f"tbrewrite: error: {logdir / 'run' / staged_name(name)}: File too large\n"
        assert tree_hashes(tmp_path) == before


def test_readme_python_example_runs_as_a_script(tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## `tbrewrite rename LOGDIR`") :]
    section = section[: section.index("\n## ")]
    code = section[section.index("```python\n") + len("```python\n") :]
    code = code[: code.index("```")]
    for name in ("a", "b", "c"):
        make_run(tmp_path / "logs" / name, files=1, events=4)
    (tmp_path / "example.py").write_text(code)
    result = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "a [('epoch_loss', 'train/loss')]"
    assert list(first_values(list_event_files(tmp_path / "renamed" / "c")[0])) == ["other", "train/loss"]

"""The journaled in-place swap: journal formats, backup names, resuming from every step,
recovery, every backup before any change, undo when a backup fails.

A swap only moves files; their bytes here just say which version (old or new) a file is.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import io_wrapper

from tbrewrite.errors import InputError, OutputError
from tbrewrite.events.writer import TEMP_PREFIX, temp_path
from tbrewrite.output import swap as swap_module
from tbrewrite.output.swap import (
    JOURNAL_FORMAT,
    JOURNAL_NAME,
    STAGED_PREFIX,
    Swap,
    backup_name,
    commit,
    discard_staged,
    read_journal,
    recover,
    recover_interrupted,
    staged_name,
    swap_steps,
    write_journal,
)

OLD = ("events.out.tfevents.1700000000.a", "events.out.tfevents.1700000100.a", "events.out.tfevents.1700000200.a")
MERGED = ("events.out.tfevents.1700000000.tbrewrite",)
"""A merge's output: one new name, different from every name it retires."""


def listing(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def make_run(run_dir: Path, old: tuple[str, ...], new: tuple[str, ...]) -> Swap:
    """Write ``old`` files and staged versions of ``new``; return the swap retiring old for new."""
    run_dir.mkdir(parents=True)
    for name in old:
        (run_dir / name).write_bytes(b"old " + name.encode())
    for name in new:
        (run_dir / staged_name(name)).write_bytes(b"new " + name.encode())
    backup = run_dir.parent / "backup"
    return Swap(run_dir, backup, old, tuple((staged_name(n), n) for n in new))


def old_state(swap: Swap) -> dict[str, bytes]:
    return {n: b"old " + n.encode() for n in swap.names}


def staged_state(swap: Swap) -> dict[str, bytes]:
    return {**old_state(swap), **{staged: b"new " + final.encode() for staged, final in swap.new}}


def new_state(swap: Swap) -> dict[str, bytes]:
    return {final: b"new " + final.encode() for _, final in swap.new}


def backed_up(swap: Swap) -> dict[str, bytes]:
    return {b: b"old " + n.encode() for n, b in zip(swap.names, swap.backups, strict=True)}


def assert_wholly_new(swap: Swap) -> None:
    assert listing(swap.run_dir) == new_state(swap)
    assert listing(swap.backup_dir) == backed_up(swap)


# --- names and the journal --------------------------------------------------------------


def test_staged_names_are_hidden_and_never_loaded_by_tensorboard() -> None:
    assert staged_name(OLD[0]) == STAGED_PREFIX + "events.out.ev.1700000000.a"
    assert "tfevents" not in staged_name(OLD[0]) and staged_name(OLD[0]).startswith(".")
    assert "tfevents" not in JOURNAL_NAME


def test_backup_names_are_never_loaded_by_tensorboard() -> None:
    """TensorBoard loads a file only if its basename holds ``tfevents`` (``io_wrapper``'s
    ``IsTensorFlowEventsFile``; the Rust data server's ``EVENT_FILE_BASENAME_INFIX``)."""
    assert backup_name(OLD[0]) == "events.out.tbrewrite-backup.1700000000.a"
    assert backup_name("tfevents.x.tfevents") == "tbrewrite-backup.x.tbrewrite-backup"
    assert io_wrapper.IsTensorFlowEventsFile(OLD[0])
    assert not io_wrapper.IsTensorFlowEventsFile(backup_name(OLD[0]))
    swap = Swap(Path("run"), Path("backup"), OLD, ())
    assert swap.backups == tuple(backup_name(n) for n in OLD)


def test_journal_round_trip(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "run", OLD, MERGED)
    write_journal(swap)
    assert sorted(listing(swap.run_dir)) == sorted([JOURNAL_NAME, *OLD, staged_name(MERGED[0])])  # no temporary left
    body = json.loads((swap.run_dir / JOURNAL_NAME).read_text())
    assert body["format"] == JOURNAL_FORMAT == "tbrewrite-swap/3"
    assert body["backups"] == [backup_name(n) for n in OLD]
    assert read_journal(swap.run_dir) == swap
    assert read_journal(tmp_path) is None


def test_journal_format_1_replaces_each_file_by_its_staged_version(tmp_path: Path) -> None:
    """A journal written by the release before ``new`` existed: each name by its own staged
    file, each backup under its original's name."""
    swap = Swap(tmp_path / "run", tmp_path / "backup", OLD, tuple((staged_name(n), n) for n in OLD), OLD)
    make_run(swap.run_dir, OLD, OLD)
    body = {"format": "tbrewrite-swap/1", "backup_dir": str(swap.backup_dir), "files": list(OLD)}
    (swap.run_dir / JOURNAL_NAME).write_text(json.dumps(body))
    assert read_journal(swap.run_dir) == swap
    assert recover(tmp_path) == ["run: finished an interrupted swap of 3 file(s)"]
    assert_wholly_new(swap)
    assert sorted(listing(swap.backup_dir)) == sorted(OLD)


@pytest.mark.parametrize("moved", [0, 1, 3])
def test_journal_format_2_interrupted_by_the_previous_release_is_finished(tmp_path: Path, moved: int) -> None:
    """The previous release moved each original into the backup under its own name, then
    published: a journal it left after ``moved`` moves is finished with those names."""
    swap = make_run(tmp_path / "run", OLD, MERGED)
    body = {
        "format": "tbrewrite-swap/2",
        "backup_dir": str(swap.backup_dir),
        "files": list(OLD),
        "new": [list(pair) for pair in swap.new],
    }
    (swap.run_dir / JOURNAL_NAME).write_text(json.dumps(body))
    swap.backup_dir.mkdir()
    for name in OLD[:moved]:
        os.rename(swap.run_dir / name, swap.backup_dir / name)
    old_style = Swap(swap.run_dir, swap.backup_dir, OLD, swap.new, OLD)
    assert read_journal(swap.run_dir) == old_style
    assert recover(tmp_path) == ["run: finished an interrupted swap of 3 file(s)"]
    assert_wholly_new(old_style)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "tbrewrite-swap/9", "backup_dir": "b", "files": []}', "not a tbrewrite swap journal"),
        ("[1, 2]", "not a tbrewrite swap journal"),
        ("{half", "unreadable swap journal: "),
        ('{"format": "tbrewrite-swap/3", "backup_dir": "b", "files": ["x"]}', "malformed swap journal: "),
        (
            '{"format": "tbrewrite-swap/3", "backup_dir": "b", "files": ["x"], "backups": [], "new": []}',
            "malformed swap journal: ",
        ),
    ],
)
def test_a_journal_tbrewrite_did_not_write_is_an_error(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / JOURNAL_NAME).write_text(text)
    with pytest.raises(InputError) as e:
        read_journal(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / JOURNAL_NAME}: {message}")
    with pytest.raises(InputError):
        recover(tmp_path)
    assert (tmp_path / JOURNAL_NAME).read_text() == text  # left for a human to look at


# --- the swap ---------------------------------------------------------------------------


@pytest.mark.parametrize("new", [OLD, MERGED, (OLD[0], "events.out.tfevents.1700000300.tbrewrite")])
def test_commit_retires_every_original_and_publishes_every_new_file(tmp_path: Path, new: tuple[str, ...]) -> None:
    swap = make_run(tmp_path / "run", OLD, new)
    commit([swap])
    assert_wholly_new(swap)
    assert list(swap_steps(swap.run_dir)) == []  # no journal: nothing to do


def no_links(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``os.link`` fail as across file systems: backups are copied."""

    def link(src: Path, dst: Path) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(src), None, str(dst))

    monkeypatch.setattr(swap_module.os, "link", link)


@pytest.mark.parametrize("new", [OLD, MERGED], ids=["same-names", "new-names"])
@pytest.mark.parametrize("cross_device", [False, True], ids=["link", "copy"])
def test_swap_steps_finish_the_swap_from_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new: tuple[str, ...], cross_device: bool
) -> None:
    """Stop after each step (as a crash would), then stop again after each later step, then
    finish: every path through the steps ends wholly new, and the steps are the same ones."""
    if cross_device:  # copy, fsync, rename
        no_links(monkeypatch)

    def fresh(name: str) -> Swap:
        swap = make_run(tmp_path / name / "run", OLD, new)
        write_journal(swap)
        return swap

    reference = fresh("reference")
    steps = list(swap_steps(reference.run_dir))
    assert_wholly_new(reference)
    assert len(steps) == 2 * len(OLD) + len(new) + 1  # backed up, removed; published; journal
    assert steps[0] == (f"copied {OLD[0]} to the backup" if cross_device else f"backed up {OLD[0]}")
    assert steps[-1] == "removed journal"
    for first in range(len(steps)):
        for second in range(first, len(steps)):
            swap = fresh(f"crash-{first}-{second}")
            done = []
            for n, limit in ((0, first), (1, second - first)):
                run = swap_steps(swap.run_dir)
                done += [step for _, step in zip(range(limit), run, strict=False)]
                run.close()
                assert (swap.run_dir / JOURNAL_NAME).exists(), (first, second, n)
            done += list(swap_steps(swap.run_dir))
            assert_wholly_new(swap)
            assert not (swap.run_dir / JOURNAL_NAME).exists()
            # A resumed swap redoes nothing: as many steps as the uninterrupted swap.
            assert len(done) == len(steps), (first, second, done)


@pytest.mark.parametrize("new", [OLD, MERGED], ids=["same-names", "new-names"])
def test_every_original_is_backed_up_before_the_run_changes(tmp_path: Path, new: tuple[str, ...]) -> None:
    """While backups are made the run is wholly old; then originals go and new files come,
    never side by side."""
    swap = make_run(tmp_path / "run", OLD, new)
    write_journal(swap)
    steps = []
    for step in swap_steps(swap.run_dir):
        steps.append(step)
        files = listing(swap.run_dir)
        olds = [n for n in swap.names if files.get(n, b"").startswith(b"old ")]
        news = [n for n in files if files[n].startswith(b"new ") and not n.startswith(STAGED_PREFIX)]
        assert not (olds and news), (step, sorted(files))  # never old and new side by side
        if len(steps) <= len(OLD):
            assert step.startswith("backed up"), step
            assert olds == list(swap.names)  # the run is still wholly old
        if len(steps) == len(OLD):
            assert listing(swap.backup_dir) == backed_up(swap)
    assert_wholly_new(swap)


def test_a_failed_backup_undoes_the_swap_and_leaves_the_run_wholly_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swap = make_run(tmp_path / "run", OLD, MERGED)
    swap = Swap(swap.run_dir, tmp_path / "backups" / "run", swap.names, swap.new)
    before = staged_state(swap)
    real_link = os.link
    calls = []

    def full_disk(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(swap_module.os, "link", full_disk)
    with pytest.raises(OutputError) as e:
        commit([swap])
    backup = swap.backup_dir / backup_name(OLD[1])
    assert str(e.value) == f"{backup}: cannot write the backup (No space left on device); nothing was changed"
    assert listing(swap.run_dir) == old_state(swap)  # staged files and journal gone
    assert before != old_state(swap)
    assert not (tmp_path / "backups").exists()  # the folders commit made are gone too
    assert recover(tmp_path) == []


def test_every_run_is_backed_up_before_any_run_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backup failing in the last run leaves the first run old too."""
    swaps = []
    for name in ("a", "b"):
        swap = make_run(tmp_path / "logs" / name, OLD, MERGED)
        swaps.append(Swap(swap.run_dir, tmp_path / "backup" / name, swap.names, swap.new))
    (tmp_path / "backup").mkdir()
    real_link = os.link

    def full_disk(src: Path, dst: Path) -> None:
        if Path(dst).parent.name == "b":
            raise OSError(errno.ENOSPC, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(swap_module.os, "link", full_disk)
    with pytest.raises(OutputError, match="nothing was changed"):
        commit(swaps)
    for swap in swaps:
        assert listing(swap.run_dir) == old_state(swap)
    assert listing(tmp_path / "backup") == {}  # it existed before: kept, empty


def test_an_existing_backup_is_refused_and_kept(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "run", OLD, MERGED)
    swap.backup_dir.mkdir()
    (swap.backup_dir / backup_name(OLD[2])).write_bytes(b"someone else's")
    with pytest.raises(OutputError) as e:
        commit([swap])
    assert str(e.value) == (
        f"{swap.backup_dir / backup_name(OLD[2])}: backup already exists; choose another --backup-dir"
    )
    assert listing(swap.run_dir) == old_state(swap)
    assert listing(swap.backup_dir) == {backup_name(OLD[2]): b"someone else's"}


def test_ctrl_c_during_the_backups_undoes_after_them_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    swap = make_run(tmp_path / "early" / "run", OLD, MERGED)
    real_link = os.link
    calls = []

    def interrupted(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_link(src, dst)

    monkeypatch.setattr(swap_module.os, "link", interrupted)
    with pytest.raises(KeyboardInterrupt):
        commit([swap])
    assert listing(swap.run_dir) == old_state(swap)
    assert listing(swap.backup_dir) == {}
    monkeypatch.undo()

    swap = make_run(tmp_path / "late" / "run", OLD, MERGED)
    real_steps = swap_module.swap_steps
    runs = []

    def steps_interrupted(run_dir: Path):  # type: ignore[no-untyped-def]
        runs.append(run_dir)
        for n, step in enumerate(real_steps(run_dir)):
            if len(runs) == 1 and n == len(OLD) + 1:  # after the first original was removed
                raise KeyboardInterrupt
            yield step

    monkeypatch.setattr(swap_module, "swap_steps", steps_interrupted)
    with pytest.raises(KeyboardInterrupt):
        commit([swap])
    assert_wholly_new(swap)


# --- recovery ---------------------------------------------------------------------------


def test_recover_deletes_leftovers_of_a_swap_interrupted_before_its_journal(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    swap = make_run(logdir / "a" / "run", OLD, MERGED)
    (swap.run_dir / (TEMP_PREFIX + "events.out.ev.1700000400.a")).write_bytes(b"half written")
    (swap.run_dir / "notes.txt").write_text("not ours")
    (logdir / "b").mkdir()
    (logdir / "b" / staged_name(OLD[0])).write_bytes(b"new")
    assert recover(logdir) == ["a/run: removed 2 unfinished staged file(s)", "b: removed 1 unfinished staged file(s)"]
    assert listing(swap.run_dir) == {**old_state(swap), "notes.txt": b"not ours"}
    assert listing(logdir / "b") == {}
    assert recover(logdir) == []


def test_recover_finishes_journals_in_every_folder_and_reports_each(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    swaps = []
    for name in ("x", "y/deeper"):
        swap = make_run(logdir / name, OLD, MERGED)
        swap = Swap(swap.run_dir, tmp_path / "backups" / name, swap.names, swap.new)
        write_journal(swap)
        swaps.append(swap)
    next(swap_steps(swaps[1].run_dir))  # one interrupted after its first step
    (logdir / "x" / staged_name("events.out.tfevents.1.z")).write_bytes(b"stray")
    assert recover(logdir) == [
        "x: finished an interrupted swap of 3 file(s)",
        "x: removed 1 unfinished staged file(s)",
        "y/deeper: finished an interrupted swap of 3 file(s)",
    ]
    for swap in swaps:
        assert_wholly_new(swap)


def test_recover_interrupted_is_the_one_entry_of_merge_and_rename_recover(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "logs" / "run", OLD, MERGED)
    write_journal(swap)
    assert recover_interrupted(tmp_path / "logs", "LOGDIR") == ["run: finished an interrupted swap of 3 file(s)"]
    assert_wholly_new(swap)
    with pytest.raises(InputError, match=r"^.*missing: no such file or directory$"):
        recover_interrupted(tmp_path / "missing", "RUN")
    with pytest.raises(InputError, match=r": RUN must be a directory$"):
        recover_interrupted(swap.run_dir / MERGED[0], "RUN")


def test_discard_staged_removes_staged_files_and_their_writer_temporaries(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "run", OLD, OLD[:2])
    temp_path(swap.run_dir / staged_name(OLD[2])).write_bytes(b"partial")
    discard_staged(swap.run_dir, list(OLD))
    assert listing(swap.run_dir) == old_state(swap)

"""The journaled in-place swap: journal format, resuming from every step, recovery, backups first.

A swap only moves files; their bytes here just say which version (old or new) a file is.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from tbrewrite.errors import InputError
from tbrewrite.events.writer import TEMP_PREFIX, temp_path
from tbrewrite.output import swap as swap_module
from tbrewrite.output.swap import (
    JOURNAL_FORMAT,
    JOURNAL_NAME,
    STAGED_PREFIX,
    Swap,
    commit,
    discard_staged,
    pending_journals,
    read_journal,
    recover,
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


def new_state(swap: Swap) -> dict[str, bytes]:
    return {final: b"new " + final.encode() for _, final in swap.new}


def assert_wholly_new(swap: Swap) -> None:
    assert listing(swap.run_dir) == new_state(swap)
    assert listing(swap.backup_dir) == old_state(swap)


# --- the journal ------------------------------------------------------------------------


def test_staged_names_are_hidden_and_never_loaded_by_tensorboard() -> None:
    assert staged_name(OLD[0]) == STAGED_PREFIX + "events.out.ev.1700000000.a"
    assert "tfevents" not in staged_name(OLD[0]) and staged_name(OLD[0]).startswith(".")
    assert "tfevents" not in JOURNAL_NAME


def test_journal_round_trip(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "run", OLD, MERGED)
    write_journal(swap)
    assert sorted(listing(swap.run_dir)) == sorted([JOURNAL_NAME, *OLD, staged_name(MERGED[0])])  # no temporary left
    body = json.loads((swap.run_dir / JOURNAL_NAME).read_text())
    assert body["format"] == JOURNAL_FORMAT == "tbrewrite-swap/2"
    assert read_journal(swap.run_dir) == swap
    assert read_journal(tmp_path) is None


def test_journal_format_1_replaces_each_file_by_its_staged_version(tmp_path: Path) -> None:
    """A journal written by the release before ``new`` existed: each name by its own staged file."""
    swap = Swap.replacing(tmp_path / "run", tmp_path / "backup", OLD)
    make_run(swap.run_dir, OLD, OLD)
    body = {"format": "tbrewrite-swap/1", "backup_dir": str(swap.backup_dir), "files": list(OLD)}
    (swap.run_dir / JOURNAL_NAME).write_text(json.dumps(body))
    assert read_journal(swap.run_dir) == swap
    assert swap.new == tuple((staged_name(n), n) for n in OLD)
    assert recover(tmp_path) == ["run: finished an interrupted swap of 3 file(s)"]
    assert_wholly_new(swap)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": "tbrewrite-swap/9", "backup_dir": "b", "files": []}', "not a tbrewrite swap journal"),
        ("[1, 2]", "not a tbrewrite swap journal"),
        ("{half", "unreadable swap journal: "),
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
    commit(swap)
    assert_wholly_new(swap)
    assert list(swap_steps(swap.run_dir)) == []  # no journal: nothing to do


@pytest.mark.parametrize("new", [OLD, MERGED], ids=["same-names", "new-names"])
@pytest.mark.parametrize("cross_device", [False, True], ids=["rename", "copy"])
def test_swap_steps_finish_the_swap_from_every_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new: tuple[str, ...], cross_device: bool
) -> None:
    """Stop after each step (as a crash would), then stop again after each later step, then
    finish: every path through the steps ends wholly new, and the steps are the same ones."""
    if cross_device:  # every os.rename fails as across file systems: copy, fsync, rename, remove
        real_rename = os.rename

        def rename(src: Path, dst: Path) -> None:
            if Path(dst).parent.name == "backup":
                raise OSError(errno.EXDEV, "Invalid cross-device link")
            real_rename(src, dst)

        monkeypatch.setattr(swap_module.os, "rename", rename)

    def fresh(name: str) -> Swap:
        swap = make_run(tmp_path / name / "run", OLD, new)
        write_journal(swap)
        return swap

    reference = fresh("reference")
    steps = list(swap_steps(reference.run_dir))
    assert_wholly_new(reference)
    per_file = 2 if cross_device else 1  # copied + removed, or one rename
    assert len(steps) == per_file * len(OLD) + len(new) + 1
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
            # A resumed swap redoes nothing: as many steps as the uninterrupted swap (an original
            # already copied across devices is only removed).
            assert len(done) == len(steps), (first, second, done)


@pytest.mark.parametrize("new", [OLD, MERGED], ids=["same-names", "new-names"])
def test_every_original_is_backed_up_before_any_new_file_is_published(tmp_path: Path, new: tuple[str, ...]) -> None:
    swap = make_run(tmp_path / "run", OLD, new)
    write_journal(swap)
    seen_new = False
    for step in swap_steps(swap.run_dir):
        files = listing(swap.run_dir)
        olds = [n for n in swap.names if files.get(n, b"").startswith(b"old ")]
        news = [n for n in files if files[n].startswith(b"new ") and not n.startswith(STAGED_PREFIX)]
        assert not (olds and news), (step, sorted(files))  # never old and new side by side
        seen_new |= bool(news)
        if not seen_new:
            assert step.startswith("backed up"), step
    assert seen_new


def test_a_failed_backup_stops_before_any_new_file_and_recover_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    swap = make_run(tmp_path / "run", OLD, MERGED)
    real_rename = os.rename
    calls = []

    def full_disk(src: Path, dst: Path) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(swap_module.os, "rename", full_disk)
    with pytest.raises(OSError, match="No space left"):
        commit(swap)
    files = listing(swap.run_dir)
    assert MERGED[0] not in files and staged_name(MERGED[0]) in files  # nothing new published
    assert JOURNAL_NAME in files
    assert listing(swap.backup_dir) == {OLD[0]: b"old " + OLD[0].encode()}
    monkeypatch.setattr(swap_module.os, "rename", real_rename)
    assert pending_journals(tmp_path) == [swap.run_dir]
    assert recover(tmp_path) == ["run: finished an interrupted swap of 3 file(s)"]
    assert_wholly_new(swap)
    assert pending_journals(tmp_path) == []


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


def test_discard_staged_removes_staged_files_and_their_writer_temporaries(tmp_path: Path) -> None:
    swap = make_run(tmp_path / "run", OLD, OLD[:2])
    temp_path(swap.run_dir / staged_name(OLD[2])).write_bytes(b"partial")
    discard_staged(swap.run_dir, list(OLD))
    assert listing(swap.run_dir) == old_state(swap)

"""Transaction: what a command creates is published together or removed, folders included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.tfrecord import read_frames
from tbrewrite.errors import OutputError
from tbrewrite.events.writer import TEMP_PREFIX
from tbrewrite.output.transaction import Staged, Transaction, check_output_folder

T0 = 1_700_000_000.0


class Boom(Exception):
    pass


def tree(root: Path) -> list[str]:
    """Every path under ``root``, relative, folders with a trailing slash."""
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*"))


def write(t: Transaction, path: Path, records: int = 3) -> Staged:
    w = t.open(path, wall_time=T0)
    for k in range(records):
        w.write_record(b"record %d" % k)
    return t.stage(w)


def test_makedirs_remembers_only_the_folders_it_made(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    t = Transaction()
    assert t.makedirs(tmp_path / "out" / "a" / "b") == tmp_path / "out" / "a" / "b"
    assert t.created == [tmp_path / "out" / "a", tmp_path / "out" / "a" / "b"]  # parents first
    t.makedirs(tmp_path / "out" / "a" / "c")
    assert t.created[-1] == tmp_path / "out" / "a" / "c" and len(t.created) == 3


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
def test_an_error_removes_published_staged_and_open_files_and_the_folders_made(tmp_path: Path, error: type) -> None:
    out = tmp_path / "out"
    with pytest.raises(error), Transaction() as t:
        t.publish(write(t, out / "run1" / "events.out.tfevents.1.a"))
        t.publish(write(t, out / "run1" / "events.out.tfevents.2.a"), wait=False)  # fsync in the background
        write(t, out / "run2" / "deep" / "events.out.tfevents.1.a")  # staged, never published
        w = t.open(out / "run3" / "events.out.tfevents.1.a", wall_time=T0)  # still open
        w.write_record(b"x")
        w.flush()
        (out / "run1" / "notes.txt").write_text("copied")
        t.add_file(out / "run1" / "notes.txt")
        assert tree(out) == [
            "run1/",
            "run1/events.out.tfevents.1.a",
            "run1/events.out.tfevents.2.a",
            "run1/notes.txt",
            "run2/",
            "run2/deep/",
            f"run2/deep/{TEMP_PREFIX}events.out.ev.1.a",
            "run3/",
            f"run3/{TEMP_PREFIX}events.out.ev.1.a",
        ]
        raise error()
    assert list(tmp_path.iterdir()) == []


def test_rollback_keeps_what_existed_before_and_folders_holding_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)
    (out / "old" / "keep.txt").write_text("mine")
    with pytest.raises(Boom), Transaction() as t:
        t.publish(write(t, out / "old" / "events.out.tfevents.1.a"))
        t.publish(write(t, out / "new" / "events.out.tfevents.1.a"))
        t.publish(write(t, out / "shared" / "events.out.tfevents.1.a"))
        (out / "shared" / "theirs.txt").write_text("written by someone else meanwhile")
        raise Boom()
    assert tree(tmp_path) == ["out/", "out/old/", "out/old/keep.txt", "out/shared/", "out/shared/theirs.txt"]


def test_an_owned_folder_is_removed_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(Boom), Transaction() as t:
        t.own(out / "run")
        t.makedirs(out / "run")
        # What a killed worker process leaves: files the transaction never heard of.
        (out / "run" / f"{TEMP_PREFIX}events.out.ev.1.a").write_bytes(b"half")
        (out / "run" / "sub").mkdir()
        (out / "run" / "sub" / "x").write_text("x")
        raise Boom()
    assert tree(tmp_path) == ["out/"]


def test_publish_all_publishes_every_staged_file_once_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    finals = [out / f"run{k}" / f"events.out.tfevents.{k}.a" for k in range(4)]
    renamed: list[Path] = []
    replace = os.replace

    def recording_replace(src: Path, dst: Path) -> None:
        renamed.append(Path(dst))
        replace(src, dst)

    with Transaction() as t:
        staged = [write(t, f, records=k + 1) for k, f in enumerate(finals)]
        assert [s.final for s in staged] == finals and all(s.temp.exists() for s in staged)
        assert not any(f.exists() for f in finals)
        monkeypatch.setattr(os, "replace", recording_replace)
        t.publish(staged[2])
        t.publish_all()  # the three others; publishing #2 again would fail (its temporary is gone)
    assert renamed == [finals[2], finals[0], finals[1], finals[3]]
    assert tree(out) == sorted([f"run{k}/" for k in range(4)] + [f"run{k}/events.out.tfevents.{k}.a" for k in range(4)])
    for k, f in enumerate(finals):
        assert read_frames(f)[1:] == [b"record %d" % i for i in range(k + 1)]
    assert not any(s.temp.exists() for s in staged)


def test_files_published_by_a_successful_block_stay(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with Transaction() as t:
        t.publish(write(t, out / "events.out.tfevents.1.a"), wait=False)
    assert tree(out) == ["events.out.tfevents.1.a"]


def test_adopted_files_and_folders_are_published_or_removed_by_the_adopter(tmp_path: Path) -> None:
    def worker(out: Path) -> tuple[list[Staged], list[Path]]:
        """What a worker process does: stage, and hand over its staged files and folders."""
        inner = Transaction()
        write(inner, out / "a" / "run" / "events.out.tfevents.1.a")
        write(inner, out / "b" / "events.out.tfevents.1.a")
        return inner.staged, inner.created

    published = tmp_path / "published"
    with Transaction() as parent:
        parent.adopt(*worker(published))
        parent.publish_all()
    assert tree(published) == ["a/", "a/run/", "a/run/events.out.tfevents.1.a", "b/", "b/events.out.tfevents.1.a"]

    failed = tmp_path / "failed"
    with pytest.raises(Boom), Transaction() as parent:
        parent.adopt(*worker(failed))
        assert len(tree(failed)) == 5
        raise Boom()
    assert not failed.exists()

    half = tmp_path / "half"
    with pytest.raises(Boom), Transaction() as parent:
        parent.adopt(*worker(half))
        parent.publish(parent.staged[0])
        raise Boom()
    assert not half.exists()


def test_a_background_fsync_error_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tbrewrite.output.transaction as transaction

    def failing_fsync(path: Path) -> None:
        raise OSError(5, "Input/output error", str(path))

    out = tmp_path / "out"
    with pytest.raises(OSError, match="Input/output error"), Transaction() as t:
        staged = write(t, out / "events.out.tfevents.1.a")
        monkeypatch.setattr(transaction, "fsync_dir", failing_fsync)
        t.publish(staged, wait=False)
    assert not out.exists()


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("same", "{out}: OUT is the same folder as SRC; choose a new folder"),
        ("inside", "{out}: OUT is inside SRC; TensorBoard would load both"),
        ("parent", "{out}: OUT contains SRC; choose a folder outside it"),
        ("file", "{out}: OUT exists and is not a folder"),
        ("full", "{out}: OUT already holds files; use --force to replace them"),
    ],
)
def test_check_output_folder_refuses_what_tensorboard_would_mix_up(tmp_path: Path, where: str, message: str) -> None:
    src = tmp_path / "logs" / "src"
    src.mkdir(parents=True)
    out = {
        "same": src,
        "inside": src / "out",
        "parent": tmp_path / "logs",
        "file": tmp_path / "file",
        "full": tmp_path / "full",
    }[where]
    if where == "file":
        out.write_text("x")
    if where == "full":
        (out / "deep").mkdir(parents=True)
        (out / "deep" / "x").write_text("x")
    with pytest.raises(OutputError) as e:
        check_output_folder(src, out, force=False, src_label="SRC", out_label="OUT")
    assert str(e.value) == message.format(out=out)
    if where == "full":
        check_output_folder(src, out, force=True, src_label="SRC", out_label="OUT")


def test_check_output_folder_accepts_a_new_or_empty_folder_and_sees_through_symlinks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for out in (tmp_path / "new", tmp_path / "empty"):
        check_output_folder(src, out, force=False, src_label="SRC", out_label="OUT")
    os.symlink(src, tmp_path / "link")
    with pytest.raises(OutputError, match="same folder"):
        check_output_folder(src, tmp_path / "link", force=True, src_label="SRC", out_label="OUT")

"""The one walk of a logdir (:mod:`tbrewrite.logdir`): order, kinds of entries, symlinks, errors."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from tbrewrite import logdir as logdir_module
from tbrewrite.logdir import Folder, is_event_file, list_event_files, runs, walk

EV = "events.out.tfevents.1700000000.host"


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def by_rel(root: Path) -> dict[str, Folder]:
    return {f.rel: f for f in walk(root)}


def names(paths: tuple[Path, ...]) -> list[str]:
    return [p.name for p in paths]


def test_walk_is_top_down_and_sorted_and_runs_are_folders_with_event_files(tmp_path: Path) -> None:
    for rel in ("b/x", "a/z", "a/c", "a/c/deep", "B"):
        (tmp_path / rel).mkdir(parents=True)
    touch(tmp_path / "a" / "c" / "events.out.tfevents.1700000100.host")
    touch(tmp_path / "a" / "c" / "events.out.tfevents.1700000000.host")
    touch(tmp_path / "a" / "c" / "events.out.tfevents.0999999999.host")
    touch(tmp_path / "b" / EV)
    touch(tmp_path / EV)
    folders = list(walk(tmp_path))
    assert [f.rel for f in folders] == [".", "B", "a", "a/c", "a/c/deep", "a/z", "b", "b/x"]
    assert folders[0].path == tmp_path and folders[3].path == tmp_path / "a" / "c"
    assert names(folders[3].event_files) == [
        "events.out.tfevents.0999999999.host",
        "events.out.tfevents.1700000000.host",
        "events.out.tfevents.1700000100.host",
    ]
    assert [f.rel for f in runs(tmp_path)] == [".", "a/c", "b"]
    assert names(folders[0].event_files) == [EV] and not folders[1].is_run


def test_placeholders_and_other_files_are_listed_apart(tmp_path: Path) -> None:
    run = tmp_path / "run"
    touch(run / EV)
    touch(run / "events.out.tfevents.1700000000.host.profile-empty")
    touch(run / "notes.txt")
    touch(run / "checkpoint")
    (run / "plugins.tfevents.d").mkdir()  # a folder is walked into, whatever its name
    os.mkfifo(run / "events.out.tfevents.1700000001.fifo")  # not a regular file: not an event file
    folder = by_rel(tmp_path)["run"]
    assert names(folder.event_files) == [EV]
    assert names(folder.placeholders) == ["events.out.tfevents.1700000000.host.profile-empty"]
    assert names(folder.other_files) == ["checkpoint", "events.out.tfevents.1700000001.fifo", "notes.txt"]
    assert "run/plugins.tfevents.d" in by_rel(tmp_path)
    assert is_event_file(EV) and not is_event_file(EV + ".profile-empty") and not is_event_file("notes.txt")
    assert names(tuple(list_event_files(run))) == [EV]


def test_a_symlinked_folder_is_followed_as_tensorboard_follows_it(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    touch(logdir / "real" / "run" / EV)
    touch(tmp_path / "elsewhere" / "run" / EV)
    (logdir / "link").symlink_to("real")
    (logdir / "outside").symlink_to(tmp_path / "elsewhere")
    (logdir / "file-link").symlink_to(logdir / "real" / "run" / EV)
    folders = by_rel(logdir)
    assert [f.rel for f in runs(logdir)] == ["link/run", "outside/run", "real/run"]
    assert folders["link/run"].path == logdir / "link" / "run"  # reached through the link, named so
    assert names(folders["link/run"].event_files) == [EV]
    assert names(folders["."].event_files) == []  # "file-link" has no tfevents in its name
    assert names(folders["."].other_files) == ["file-link"]


def test_a_symlink_to_an_event_file_is_an_event_file(tmp_path: Path) -> None:
    touch(tmp_path / "store" / EV, b"x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / EV).symlink_to(tmp_path / "store" / EV)
    assert names(by_rel(tmp_path)["run"].event_files) == [EV]
    assert list_event_files(tmp_path / "run") == [tmp_path / "run" / EV]


def test_a_link_back_up_the_tree_is_not_entered(tmp_path: Path) -> None:
    logdir = tmp_path / "logs"
    touch(logdir / "a" / "run" / EV)
    (logdir / "a" / "run" / "up").symlink_to("..")  # back to a/
    (logdir / "a" / "root").symlink_to(logdir)  # back to the logdir
    (logdir / "a" / "self").symlink_to(".")
    walked = [f.rel for f in itertools.islice(walk(logdir), 20)]  # a walk into a loop would not end
    assert walked == [".", "a", "a/run"]
    assert [f.rel for f in runs(logdir)] == ["a/run"]


def test_dangling_symlinks_and_link_loops_are_other_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    touch(run / EV)
    touch(run / "z.txt")
    (run / "dangling").symlink_to("/nonexistent/target")
    (run / "events.out.tfevents.1700000001.gone").symlink_to("gone")
    (run / "loop1").symlink_to("loop2")
    (run / "loop2").symlink_to("loop1")
    folder = by_rel(tmp_path)["run"]
    assert names(folder.event_files) == [EV]
    assert names(folder.other_files) == ["dangling", "events.out.tfevents.1700000001.gone", "loop1", "loop2", "z.txt"]
    assert list_event_files(run) == [run / EV]


def test_list_event_files_of_a_missing_folder_or_a_file_is_empty(tmp_path: Path) -> None:
    assert list_event_files(tmp_path / "missing") == []
    assert list_event_files(touch(tmp_path / EV)) == []


def test_an_unlistable_folder_raises_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs are never left out silently. (Tests may run as root, whom ``chmod 000`` does not
    stop, so the refusal is made by ``os.scandir`` itself, with no file name as some OSes do.)"""
    touch(tmp_path / "a" / EV)
    touch(tmp_path / "b" / "locked" / EV)
    locked = tmp_path / "b" / "locked"
    scandir = os.scandir

    def refusing_scandir(path: os.PathLike[str]) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied")
        return scandir(path)

    monkeypatch.setattr(logdir_module.os, "scandir", refusing_scandir)
    walked = []
    with pytest.raises(PermissionError) as e:
        walked.extend(f.rel for f in walk(tmp_path))
    assert e.value.filename == str(locked)
    assert walked == [".", "a", "b"]
    with pytest.raises(PermissionError):
        list_event_files(locked)


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists folders whatever their mode")
def test_an_unreadable_folder_raises_naming_it(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    touch(locked / EV)
    locked.chmod(0)
    try:
        with pytest.raises(PermissionError) as e:
            list(walk(tmp_path))
        assert e.value.filename == str(locked)
    finally:
        locked.chmod(0o700)


def test_event_bytes_counts_event_files_only(tmp_path: Path) -> None:
    from tbrewrite.logdir import event_bytes

    (tmp_path / "train").mkdir()
    (tmp_path / "events.out.tfevents.1.a").write_bytes(b"x" * 10)
    (tmp_path / "train" / "events.out.tfevents.2.b").write_bytes(b"x" * 7)
    (tmp_path / "notes.txt").write_bytes(b"x" * 100)
    assert event_bytes(tmp_path) == 10
    assert event_bytes(tmp_path, tree=True) == 17

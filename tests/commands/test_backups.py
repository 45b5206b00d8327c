"""Backups of ``merge --in-place`` and ``rename --in-place``: TensorBoard never loads them
(issue 12 item 2), and a backup that cannot be written leaves every run wholly old (item 14).

The full disk is real: a small tmpfs mounted in a user namespace (``unshare -Urm``), or a
file-size limit (``RLIMIT_FSIZE``) on a backup folder of another file system, where the
backups are copies.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer
from tensorboard.compat.proto import event_pb2

from support.tensorboard_server import TensorBoardServer
from tbrewrite.events.writer import EventFileWriter
from tbrewrite.logdir import list_event_files
from tbrewrite.output.swap import BACKUP_MARKER

T0 = 1_700_000_000.0
CLI = [sys.executable, "-c", "from tbrewrite.cli import main; main()"]


def make_run(run: Path, files: int, events: int, *, tags: tuple[str, ...] = ("train/loss",)) -> None:
    """A run restarted ``files`` times, one point of every tag per step."""
    run.mkdir(parents=True)
    for f in range(files):
        with EventFileWriter(run / f"events.out.tfevents.{1700000000 + f}.host", wall_time=T0 + f * events) as w:
            for k in range(events):
                event = event_pb2.Event(wall_time=T0 + f * events + k, step=f * events + k)
                for tag in tags:
                    event.summary.value.add(tag=tag, simple_value=1.0 / (k + 1))
                w.write_event(event)


def make_sidecar(path: Path, epochs: int) -> Path:
    rows = ["epoch,step,wall_time,learning_rate"] + [f"{e},{e},{T0 + e + 0.5},{0.1 / (e + 1)}" for e in range(epochs)]
    path.write_text("\n".join(rows) + "\n")
    return path


def tbrewrite(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, check=False)


def shown(logdir: Path) -> dict[str, int]:
    """``run:tag`` -> number of scalar points TensorBoard's Python loaders load from ``logdir``."""
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    counts = {}
    for run, tags in mux.Runs().items():
        for tag in tags["scalars"]:
            counts[f"{run}:{tag}"] = len(mux.Scalars(run, tag))
        for tag in tags["tensors"]:
            counts[f"{run}:{tag}"] = len(mux.Tensors(run, tag))
    return counts


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def originals(backup: Path) -> dict[str, str]:
    """The files of a backup folder by the names they had: ``tbrewrite-backup`` -> ``tfevents``."""
    return {name.replace(BACKUP_MARKER, "tfevents"): digest for name, digest in hashes(backup).items()}


def in_place_merge_then_rename(tmp_path: Path) -> Path:
    """``logs/run`` (3 files, 60 points), merged with a 10-epoch sidecar in place, then renamed
    in place: TensorBoard is pointed at ``logs``, and both default backups land in it."""
    logs = tmp_path / "logs"
    run = logs / "run"
    make_run(run, files=3, events=20)
    first = hashes(run)
    assert shown(logs) == {"run:train/loss": 60}
    merged = tbrewrite("merge", run, "--sidecar", make_sidecar(tmp_path / "lr.csv", 10), "--in-place")
    assert merged.returncode == 0, merged.stderr
    assert shown(logs) == {"run:train/loss": 60, "run:train/learning_rate": 10}
    assert originals(logs / "run.tbrewrite-backup") == first
    second = hashes(run)
    renamed = tbrewrite("rename", run, "--rule", r"^train/(.*)$=t/\1", "--in-place", "--jobs", "1")
    assert renamed.returncode == 0, renamed.stderr
    assert originals(logs / "run.tbrewrite-backup-1") == second
    return logs


def test_tensorboard_loads_every_point_once_after_in_place_merge_and_rename(tmp_path: Path) -> None:
    """The previous release showed 120 ``train/loss`` points after the merge (60 in
    ``run.tbrewrite-backup``) and 190 points in 3 runs after the rename."""
    logs = in_place_merge_then_rename(tmp_path)
    assert shown(logs) == {"run:t/loss": 60, "run:t/learning_rate": 10}
    assert [p.relative_to(logs).as_posix() for p in sorted(logs.rglob("*")) if "tfevents" in p.name] == [
        "run/events.out.tfevents.1700000000.tbrewrite"
    ]
    # Renaming the backups back restores the originals as TensorBoard loads them.
    backup = logs / "run.tbrewrite-backup"
    for path in backup.iterdir():
        path.rename(backup / path.name.replace(BACKUP_MARKER, "tfevents"))
    assert shown(logs)["run.tbrewrite-backup:train/loss"] == 60


@pytest.mark.slow
def test_tensorboard_data_server_lists_only_the_run(tmp_path: Path) -> None:
    """The same with TensorBoard's Rust data server (``--load_fast=true``)."""
    logs = in_place_merge_then_rename(tmp_path)
    with TensorBoardServer(logs, load_fast="true") as tb:
        tags = tb.wait_for_tags("run", {"t/loss", "t/learning_rate"})
        assert tags == {"t/loss", "t/learning_rate"}
        assert list(tb.get("/data/plugin/scalars/tags")) == ["run"]
        assert len(tb.scalars("run", "t/loss")) == 60


# --- a backup that cannot be written (issue 12 item 14) -----------------------------------


def _userns_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt 2>/dev/null || exit 1"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _userns_tmpfs(), reason="needs unshare -Urm to mount a small tmpfs (user namespaces)")
def test_a_full_backup_disk_leaves_the_run_wholly_old(tmp_path: Path) -> None:
    """``merge --in-place --backup-dir`` on a 64 KiB tmpfs: the first original (49 KiB) fits,
    the second does not. Exit 1, one line naming the backup file, the run as before, nothing
    left in the run or on the full disk. The previous release had moved the first original
    away: the run showed 2 of its 3 files until space was freed and ``--recover`` ran."""
    run = tmp_path / "logs" / "run"
    make_run(run, files=3, events=1000)
    assert all(40_000 < p.stat().st_size < 64_000 for p in run.iterdir())
    before = hashes(run)
    sidecar = make_sidecar(tmp_path / "lr.csv", 10)
    mount = tmp_path / "small-disk"
    mount.mkdir()
    script = 'mount -t tmpfs -o size=64k tbrewrite-test "$0" || exit 97; "$@"; rc=$?; echo "backup disk:"; ls -A "$0"; exit $rc'
    backup = mount / "bk"
    command = ["unshare", "-Urm", "sh", "-c", script, str(mount), *CLI]
    result = subprocess.run(
        [*command, "merge", str(run), "--sidecar", str(sidecar), "--in-place", "--backup-dir", str(backup)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed = backup / "events.out.tbrewrite-backup.1700000001.host"
    assert result.stderr == (
        f"tbrewrite: error: {failed}: cannot write the backup (No space left on device); nothing was changed\n"
    )
    assert result.stdout == "backup disk:\n"  # the first backup and the folder made for it are gone
    assert hashes(run) == before  # no staged file, no journal: wholly old
    assert list_event_files(run) == sorted(run.iterdir())


@pytest.fixture()
def other_file_system(tmp_path: Path) -> Iterator[Path]:
    """A fresh folder on another file system than ``tmp_path`` (``/dev/shm``), removed after."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second file system (/dev/shm) to back up to")
    folder = shm / f"tbrewrite-test-{uuid.uuid4().hex}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_backup_over_the_file_size_limit_leaves_every_run_wholly_old(tmp_path: Path, other_file_system: Path) -> None:
    """``rename --in-place`` of two runs under ``RLIMIT_FSIZE`` = 16 KiB, backups copied to
    another file system: run ``a``'s original (small) is copied, run ``b``'s (75 KiB) is
    refused with EFBIG. Every original of every run is backed up before any run changes, so
    both runs stay wholly old and ``a``'s copy is removed again."""
    logs = tmp_path / "logs"
    make_run(logs / "a", files=1, events=50, tags=("loss",))
    make_run(logs / "b", files=1, events=200, tags=("loss", *(f"noise/{i}" for i in range(20))))
    assert next((logs / "a").iterdir()).stat().st_size < 16_384 < next((logs / "b").iterdir()).stat().st_size
    before = {run: hashes(logs / run) for run in ("a", "b")}
    backup = other_file_system / "bk"
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384)); "
    code = limit + "from tbrewrite.cli import main; main()"
    rules = ["--rule", "^loss$=train/loss", "--drop", "^noise/"]
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "rename",
            str(logs),
            *rules,
            "--in-place",
            "--backup-dir",
            str(backup),
            "--jobs",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    failed = backup / "b" / "events.out.tbrewrite-backup.1700000000.host"
    assert result.stderr == (
        f"tbrewrite: error: {failed}: cannot write the backup (File too large); nothing was changed\n"
    )
    assert {run: hashes(logs / run) for run in ("a", "b")} == before
    assert not backup.exists()
    # With room for the backups the same command succeeds.
    result = tbrewrite("rename", logs, *rules, "--in-place", "--backup-dir", backup, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert {run: originals(backup / run) for run in ("a", "b")} == before

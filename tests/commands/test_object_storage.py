"""Every command on s3:// against a real S3 API server on loopback (moto's server mode).

The corpus (and generated logs) are uploaded to a bucket; each command run on the bucket
must give the same bytes and the same report as on local disk. Publishing is checked
from outside: while an event file is uploaded slowly, a client listing the bucket never
sees an object named like an event file that is not whole, and a convert killed during
its upload leaves nothing TensorBoard would load.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import eventgen
from support.paths import CORPUS, needs_corpus
from support.s3server import S3Server, download_tree, s3_server, tree_bytes, upload_tree
from tbrewrite.cli import app
from tbrewrite.storage import publish

runner = CliRunner()
KERAS_TREE = CORPUS / "TensorBoard-Tutorial" / "archive"


@pytest.fixture(scope="module")
def server() -> S3Server:
    with s3_server() as s:
        yield s


@pytest.fixture
def bucket(server: S3Server) -> str:
    fs = server.fs()
    name = f"b{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return f"s3://{name}"


def cli(server: S3Server, *argv: str) -> tuple[int, str, str]:
    """Run the tbrewrite CLI in this process with the server as its endpoint."""
    result = runner.invoke(app, ["--storage-option", f"endpoint_url={server.endpoint}", *argv], env=server.env)
    return result.exit_code, result.stdout, result.stderr


def local(*argv: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(argv))
    return result.exit_code, result.stdout, result.stderr


def same_text(remote: str, local_text: str, url: str, path: Path) -> None:
    assert remote == local_text.replace(str(path), url)


@needs_corpus
def test_convert_inspect_export_on_a_bucket_equal_local_disk(server: S3Server, bucket: str, tmp_path: Path) -> None:
    fs = server.fs()
    src = tmp_path / "src"
    shutil.copytree(KERAS_TREE, src)
    upload_tree(fs, src, f"{bucket}/logs")

    code, out, err = cli(server, "convert", f"{bucket}/logs", f"{bucket}/out")
    lcode, lout, lerr = local("convert", str(src), str(tmp_path / "out"))
    assert (code, err) == (
        lcode,
        lerr.replace(str(src), f"{bucket}/logs").replace(str(tmp_path / "out"), f"{bucket}/out"),
    )
    assert out == lout.replace(str(tmp_path / "out"), f"{bucket}/out").replace(str(src), f"{bucket}/logs")
    download_tree(fs, f"{bucket}/out", tmp_path / "got")
    assert tree_bytes(tmp_path / "got") == tree_bytes(tmp_path / "out")

    code, out, _ = cli(server, "inspect", "--json", f"{bucket}/logs")
    lcode, lout, _ = local("inspect", "--json", str(src))
    assert code == lcode
    assert json.loads(out) == json.loads(lout.replace(str(src), f"{bucket}/logs"))

    code, _, err = cli(server, "export", f"{bucket}/out", f"{bucket}/table.csv")
    lcode, _, _ = local("export", str(tmp_path / "out"), str(tmp_path / "table.csv"))
    assert code == lcode, err
    assert fs.cat_file(f"{bucket}/table.csv") == (tmp_path / "table.csv").read_bytes()
    assert [k for k in fs.find(bucket) if k.rpartition("/")[2].startswith(".tbrewrite-")] == []


@needs_corpus
def test_rename_in_place_on_a_bucket_keeps_backups_beside_it(server: S3Server, bucket: str, tmp_path: Path) -> None:
    fs = server.fs()
    src = tmp_path / "logs"
    shutil.copytree(KERAS_TREE, src)
    upload_tree(fs, src, f"{bucket}/logs")
    args = ["--rule", "^epoch_(.*)$=train/\\1", "--in-place"]
    code, out, err = cli(server, "rename", f"{bucket}/logs", *args)
    lcode, lout, _ = local("rename", str(src), *args)
    assert code == lcode == 0, err
    assert out == lout.replace(str(src), f"{bucket}/logs").replace(str(tmp_path), bucket)
    download_tree(fs, f"{bucket}/logs", tmp_path / "got")
    assert tree_bytes(tmp_path / "got") == tree_bytes(src)
    download_tree(fs, f"{bucket}/logs.tbrewrite-backup-1", tmp_path / "got-backup")
    assert tree_bytes(tmp_path / "got-backup") == tree_bytes(tmp_path / "logs.tbrewrite-backup-1")
    assert not any("tfevents" in k for k in fs.find(f"{bucket}/logs.tbrewrite-backup-1"))


def test_merge_a_sidecar_from_the_bucket_in_place(server: S3Server, bucket: str, tmp_path: Path) -> None:
    fs = server.fs()
    eventgen.keras_split_sidecar(tmp_path)
    run = tmp_path / "keras_split_sidecar" / "train"
    sidecar = tmp_path / "keras_split_sidecar" / "learning_rate.csv"
    upload_tree(fs, run, f"{bucket}/run")
    fs.put(str(sidecar), f"{bucket}/lr.csv")
    code, out, err = cli(server, "merge", f"{bucket}/run", "--sidecar", f"{bucket}/lr.csv", "--in-place")
    lcode, lout, _ = local("merge", str(run), "--sidecar", str(sidecar), "--in-place")
    assert code == lcode == 0, err
    assert out == lout.replace(str(run), f"{bucket}/run").replace(str(sidecar), f"{bucket}/lr.csv").replace(
        str(tmp_path / "keras_split_sidecar"), bucket
    )
    download_tree(fs, f"{bucket}/run", tmp_path / "got")
    assert tree_bytes(tmp_path / "got") == tree_bytes(run)


def test_errors_name_the_url_and_write_nothing(server: S3Server, bucket: str) -> None:
    code, out, err = cli(server, "convert", f"{bucket}/missing", f"{bucket}/out")
    assert (code, out) == (1, "")
    assert err == f"tbrewrite: error: {bucket}/missing: no such file or directory\n"
    assert server.fs().find(bucket) == []


def test_aws_endpoint_url_points_the_command_at_the_server(server: S3Server, bucket: str, tmp_path: Path) -> None:
    eventgen.keras_flat(tmp_path)
    upload_tree(server.fs(), tmp_path / "keras_flat", f"{bucket}/run")
    env = {**os.environ, **server.env}
    done = subprocess.run(
        [sys.executable, "-m", "tbrewrite", "convert", f"{bucket}/run", f"{bucket}/out"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [k.rpartition("/")[2] for k in server.fs().find(f"{bucket}/out")] == [
        "events.out.tfevents.1700001000.tbrewrite"
    ]


class _Slow(io.RawIOBase):
    """``size`` bytes handed out in blocks, a pause before each: a slow network upload."""

    def __init__(self, data: bytes, pause: float) -> None:
        self.data = data
        self.at = 0
        self.pause = pause

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        time.sleep(self.pause)
        chunk = self.data[self.at : self.at + n]
        self.at += len(chunk)
        return chunk


def test_no_event_file_is_ever_visible_half_written(server: S3Server, bucket: str) -> None:
    """List the bucket over and over while an event file is published slowly."""
    fs = server.fs()
    data = os.urandom(3 * publish.BLOCK + 12345)
    finals = [f"{bucket}/run/events.out.tfevents.{n}.host" for n in (1, 2)]
    seen_temp = []
    seen_final = []
    failures = []

    def publish_both() -> None:
        try:
            for final in finals:
                publish.upload(server.fs(), _Slow(data, 0.3), publish.temp_key(final), block=5 << 20)
            publish.finish(
                server.fs(), publish.Publish(f"{bucket}/run", tuple((publish.temp_key(f), f) for f in finals))
            )
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            failures.append(e)

    worker = threading.Thread(target=publish_both)
    worker.start()
    while worker.is_alive():
        for info in fs.ls(f"{bucket}/run", detail=True, refresh=True) if fs.exists(f"{bucket}/run") else []:
            name = info["name"].rpartition("/")[2]
            if "tfevents" in name:
                seen_final.append(name)
                assert info["size"] == len(data), f"{name} visible with {info['size']} of {len(data)} bytes"
            elif name.startswith(publish.UPLOAD_PREFIX):
                seen_temp.append(name)
        time.sleep(0.05)
    worker.join()
    assert failures == []
    assert seen_temp, "the listing never caught the upload in progress"
    fs.invalidate_cache()  # the last listing may predate the last copy: s3fs answers from it otherwise
    assert all(fs.cat_file(f) == data for f in finals)
    assert [k.rpartition("/")[2] for k in fs.find(bucket)] == [f.rpartition("/")[2] for f in finals]


def test_a_killed_convert_leaves_nothing_loadable(server: S3Server, bucket: str, tmp_path: Path) -> None:
    """SIGKILL a convert while it uploads, then while it publishes: never a partial event file."""
    fs = server.fs()
    eventgen.keras_flat(tmp_path)
    runs = tmp_path / "runs"
    for n in range(40):
        shutil.copytree(tmp_path / "keras_flat", runs / f"r{n:02d}")
    upload_tree(fs, runs, f"{bucket}/logs")
    lcode, _, _ = local("convert", str(runs), str(tmp_path / "want"), "--jobs", "1")
    assert lcode == 0
    want = tree_bytes(tmp_path / "want")
    env = {**os.environ, **server.env}
    for moment in (publish.UPLOAD_PREFIX, publish.JOURNAL_NAME):
        out = f"{bucket}/out{moment}"
        base = out.split("://", 1)[1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "tbrewrite", "convert", f"{bucket}/logs", out, "--jobs", "1"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # A fast publish may end before a listing sees its moment (the journal lives for a few
        # copies); then the command finished and the checks below see it whole.
        while proc.poll() is None and not any(k.rpartition("/")[2].startswith(moment) for k in server.fs().find(out)):
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        left = server.fs().find(out)
        journaled = f"{base}/{publish.JOURNAL_NAME}" in left
        for key in left:
            name = key.rpartition("/")[2]
            if "tfevents" in name:
                assert fs.cat_file(key) == want[key[len(base) + 1 :]], f"{key} is not whole"
            else:
                assert name.startswith((publish.UPLOAD_PREFIX, publish.JOURNAL_NAME)), key
        code, _, err = cli(server, "rename", out, "--recover")
        assert code == 0, err
        got = {k[len(base) + 1 :]: fs.cat_file(k) for k in server.fs().find(out)}
        # All or nothing: everything once the journal was written, else nothing.
        assert got == want if journaled or moment == publish.JOURNAL_NAME else got in (want, {})


def test_rename_with_a_rules_file_in_memory_storage(tmp_path: Path) -> None:
    """memory:// (fsspec's in-process store): LOGDIR, --rules and --out all URLs."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"memory://m{uuid.uuid4().hex[:8]}"
    eventgen.keras_flat(tmp_path)
    (tmp_path / "rules.toml").write_text('[[rule]]\npattern = "^val_(.*)$"\nreplace = "val/\\\\1"\n')
    fs.put(str(tmp_path / "keras_flat"), f"{root}/logs", recursive=True)
    fs.put(str(tmp_path / "rules.toml"), f"{root}/rules.toml")
    code, out, err = local("rename", f"{root}/logs", "--rules", f"{root}/rules.toml", "--out", f"{root}/out")
    lcode, lout, _ = local(
        "rename", str(tmp_path / "keras_flat"), "--rules", str(tmp_path / "rules.toml"), "--out", str(tmp_path / "out")
    )
    assert code == lcode == 0, err
    assert out == lout.replace(str(tmp_path / "out"), f"{root}/out").replace(
        str(tmp_path / "keras_flat"), f"{root}/logs"
    )
    got = {k.rpartition("/")[2]: fs.cat_file(k) for k in fs.find(f"{root}/out")}
    assert got == {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    fs.rm(root, recursive=True)


def test_a_pending_publish_guards_the_urls_above_and_below_it(server: S3Server, bucket: str, tmp_path: Path) -> None:
    """A publish to logs killed after its journal: a command on logs/a (or the bucket) is refused.

    Its temporary keys have the names a command's own uploads get, so an in-place crop of
    ``logs/a`` used to overwrite and delete ``logs/a``'s pending upload: ``--recover`` then
    reported the publish finished while ``logs/a`` never got its new file. ``--recover`` on
    the bucket finishes the publish below it instead of deleting its uploads as leftovers.
    """
    from support import events as ev

    fs = server.fs()
    name = "events.out.tfevents.1700000000.host"
    old = [ev.file_version()] + [ev.summary(ev.T0 + k, k, ev.simple("loss", 1.0)) for k in range(4)]
    new = [ev.file_version()] + [ev.summary(ev.T0 + k, k, ev.simple("train/loss", 1.0)) for k in range(4)]
    for run in ("a", "b"):
        ev.write(tmp_path / "old" / run / name, old)
        ev.write(tmp_path / "new" / run / name, new)
    upload_tree(fs, tmp_path / "old", f"{bucket}/logs")
    moves = []
    for run in ("a", "b"):
        final = f"{bucket}/logs/{run}/{name}"
        with open(tmp_path / "new" / run / name, "rb") as source:
            publish.upload(fs, source, publish.temp_key(final))
        moves.append([publish.temp_key(final), final])
    body = {"format": publish.JOURNAL_FORMAT, "moves": moves, "deletes": []}
    fs.pipe_file(f"{bucket}/logs/{publish.JOURNAL_NAME}", json.dumps(body).encode())

    code, _, err = cli(server, "crop", f"{bucket}/logs/a", "--steps", "0:2", "--in-place")
    assert code == 1
    assert f"a publish to {bucket}/logs was interrupted; run 'tbrewrite rename {bucket}/logs --recover'" in err
    code, _, err = cli(server, "inspect", bucket)
    assert code == 1
    assert f"a publish to {bucket}/logs was interrupted" in err
    fs.invalidate_cache()
    assert fs.cat_file(moves[0][0]) == (tmp_path / "new" / "a" / name).read_bytes()

    code, out, err = cli(server, "rename", bucket, "--recover")  # a bucket: no traceback either
    assert code == 0, out + err
    assert f"{bucket}/logs: finished an interrupted publish (2 file(s))" in out
    fs.invalidate_cache()
    for run in ("a", "b"):
        assert fs.cat_file(f"{bucket}/logs/{run}/{name}") == (tmp_path / "new" / run / name).read_bytes()
    assert [k for k in fs.find(bucket) if k.rpartition("/")[2].startswith(".tbrewrite-")] == []


def test_a_missing_bucket_under_scheduler_is_one_line_naming_the_url(server: S3Server, bucket: str) -> None:
    """The bucket is listed before the scheduler is reached, so no cluster is needed here."""
    missing = f"s3://nobucket{uuid.uuid4().hex[:8]}/logs"
    code, out, err = cli(server, "convert", missing, f"{bucket}/out", "--scheduler", "tcp://127.0.0.1:1")
    assert (code, out) == (1, "")
    assert err.startswith(f"tbrewrite: error: {missing}: ") and err.count("\n") == 1, err
    assert server.fs().find(bucket) == []


@pytest.mark.parametrize(("stop", "code"), [(KeyboardInterrupt, 130), ("terminated", 143)])
def test_an_interrupted_publish_says_to_recover_not_that_output_was_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: object, code: int
) -> None:
    """Ctrl-C or SIGTERM once the publish has begun: the journal stays, and the message says so."""
    import fsspec

    from tbrewrite.errors import Terminated

    fs = fsspec.filesystem("memory")
    root = f"memory://m{uuid.uuid4().hex[:8]}"
    eventgen.keras_flat(tmp_path)
    fs.put(str(tmp_path / "keras_flat"), f"{root}/logs", recursive=True)

    def interrupted(fs_: object, plan: publish.Publish) -> None:
        fs.pipe_file(plan.journal, b"{}")  # as far as the journal, then the signal
        raise KeyboardInterrupt if stop is KeyboardInterrupt else Terminated()

    monkeypatch.setattr(publish, "finish", interrupted)
    code_, _, err = local("rename", f"{root}/logs", "--rule", "^val_(.*)$=val/\\1", "--out", f"{root}/out")
    assert code_ == code, err
    assert err == (
        f"tbrewrite: interrupted while publishing to {root}/out; run 'tbrewrite rename {root}/out --recover' to finish\n"
    )
    fs.rm(root, recursive=True)

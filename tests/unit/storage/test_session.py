"""The storage session on fsspec's memory:// filesystem: mirror, publish, recover, refuse."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")

from tbrewrite.errors import InputError, UsageError  # noqa: E402
from tbrewrite.storage import local_path, publish, recover, session, storage_options  # noqa: E402
from tbrewrite.storage.session import Session  # noqa: E402
from tbrewrite.storage.urls import as_url  # noqa: E402

EV = "events.out.tfevents.1700000000.host"


@pytest.fixture
def mem() -> tuple[object, str]:
    """The memory filesystem and a fresh bucket URL in it."""
    fs = fsspec.filesystem("memory")
    url = f"memory://b{uuid.uuid4().hex[:8]}"
    yield fs, url
    if fs.exists(url):
        fs.rm(url, recursive=True)


def keys(fs, url: str) -> dict[str, bytes]:
    base = fs._strip_protocol(url)
    return {k[len(base) + 1 :]: fs.cat_file(k) for k in sorted(fs.find(url))}


def test_urls_are_recognised_also_collapsed_by_pathlib() -> None:
    assert as_url("s3://b/logs/") == "s3://b/logs"
    assert as_url(Path("s3://b/logs")) == "s3://b/logs"
    assert as_url("memory://x") == "memory://x"
    assert as_url("C:/logs") is None
    assert as_url("logs/run") is None


def test_storage_options_nest_dotted_keys_and_read_json() -> None:
    got = storage_options(["endpoint_url=http://127.0.0.1:9000", "anon=false", "client_kwargs.region_name=eu-west-1"])
    assert got == {
        "endpoint_url": "http://127.0.0.1:9000",
        "anon": False,
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        storage_options(["novalue"])


def test_a_url_without_a_session_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^s3://b/logs: SRC is a URL; object storage works through"):
        local_path("s3://b/logs", "SRC")


def test_an_unknown_scheme_is_a_usage_error() -> None:
    with session(), pytest.raises(UsageError, match="nosuch://"):
        local_path("nosuch://b/x")


def test_a_tree_is_mirrored_and_only_what_changed_is_published(mem) -> None:
    fs, url = mem
    fs.pipe_file(f"{url}/logs/run/{EV}", b"old")
    fs.pipe_file(f"{url}/logs/run/notes.txt", b"kept")
    fs.pipe_file(f"{url}/logs/other/{EV}", b"gone")
    with session() as s:
        local = local_path(f"{url}/logs", "LOGDIR")
        assert local.is_dir() and (local / "run" / EV).read_bytes() == b"old"
        (local / "run" / EV).unlink()
        (local / "run" / EV).write_bytes(b"new")
        (local / "other" / EV).unlink()
        (local / "run" / "added.txt").write_bytes(b"added")
        assert s.display(f"{local}/run/{EV}") == f"{url}/logs/run/{EV}"
    assert keys(fs, url) == {f"logs/run/{EV}": b"new", "logs/run/added.txt": b"added", "logs/run/notes.txt": b"kept"}


def test_a_failing_block_publishes_nothing_and_errors_name_the_url(mem) -> None:
    fs, url = mem
    with pytest.raises(InputError) as info, session():
        local = local_path(f"{url}/out", "OUT")
        local.mkdir(parents=True)
        (local / EV).write_bytes(b"partial")
        raise InputError(f"{local / EV}: bad")
    assert str(info.value) == f"{url}/out/{EV}: bad"
    assert not fs.exists(f"{url}/out")


def test_backups_beside_the_url_are_published_and_numbered_past_existing_ones(mem) -> None:
    fs, url = mem
    fs.pipe_file(f"{url}/logs/{EV}", b"old")
    fs.pipe_file(f"{url}/logs.tbrewrite-backup-1/x", b"earlier backup")
    with session():
        local = local_path(f"{url}/logs", "LOGDIR")
        assert (local.parent / "logs.tbrewrite-backup-1").is_dir()  # so rename picks -2
        backup = local.parent / "logs.tbrewrite-backup-2"
        backup.mkdir()
        (backup / "events.out.tbrewrite-backup.1700000000.host").write_bytes(b"old")
        (local / EV).unlink()
        (local / EV).write_bytes(b"new")
    assert keys(fs, url) == {
        f"logs/{EV}": b"new",
        "logs.tbrewrite-backup-1/x": b"earlier backup",
        "logs.tbrewrite-backup-2/events.out.tbrewrite-backup.1700000000.host": b"old",
    }


def test_temp_keys_never_hold_tfevents() -> None:
    assert publish.temp_key(f"s3://b/run/{EV}") == "s3://b/run/.tbrewrite-upload-events.out.ev.1700000000.host"


class _Failing(io.RawIOBase):
    """A source that gives one block, then fails: an upload cut off part-way."""

    def __init__(self) -> None:
        self.calls = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 1:
            raise OSError(5, "input/output error")
        return b"x" * 100


def test_a_failed_upload_leaves_no_object(mem) -> None:
    fs, url = mem
    temp = publish.temp_key(f"{url}/run/{EV}")
    with pytest.raises(OSError, match="input/output error"):
        publish.upload(fs, _Failing(), temp, block=100)
    assert not fs.exists(temp)


def test_recover_finishes_a_publish_interrupted_after_its_journal(mem) -> None:
    fs, url = mem
    finals = [f"{url}/out/a/{EV}", f"{url}/out/b/{EV}"]
    for i, final in enumerate(finals):
        publish.upload(fs, io.BytesIO(b"v%d" % i), publish.temp_key(final))
    plan = publish.Publish(f"{url}/out", tuple((publish.temp_key(f), f) for f in finals))
    fs.pipe_file(
        plan.journal, json.dumps({"format": publish.JOURNAL_FORMAT, "moves": plan.moves, "deletes": []}).encode()
    )
    fs.copy(*plan.moves[0])  # the crash came after the first copy
    with pytest.raises(InputError, match=r"a publish to it was interrupted; run 'tbrewrite rename .* --recover'"):
        Session().local(f"{url}/out")
    with session():
        assert recover(f"{url}/out") == [f"{url}/out: finished an interrupted publish (2 file(s))"]
    assert keys(fs, f"{url}/out") == {f"a/{EV}": b"v0", f"b/{EV}": b"v1"}


def test_recover_deletes_uploads_left_before_the_journal(mem) -> None:
    fs, url = mem
    fs.pipe_file(f"{url}/logs/run/{EV}", b"old")
    publish.upload(fs, io.BytesIO(b"half"), publish.temp_key(f"{url}/logs/run/{EV}"))
    assert publish.recover(fs, f"{url}/logs") == [f"{url}/logs: removed 1 unfinished upload(s)"]
    assert keys(fs, f"{url}/logs") == {f"run/{EV}": b"old"}

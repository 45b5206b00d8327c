"""A real S3 API server on loopback for the object-storage tests: moto's server mode.

The server is a separate process (``python -m moto.server``) on 127.0.0.1 and a free port,
so worker processes (local workers, a Dask LocalCluster) reach it as they would a real
endpoint. ``AWS_ENDPOINT_URL`` and test credentials point every S3 client at it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("moto", reason="needs moto[server] (the test extra)")
pytest.importorskip("s3fs", reason="needs s3fs (the test extra)")

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass(frozen=True)
class S3Server:
    """A running moto server: its endpoint and the environment that points clients at it."""

    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key="testing", secret="testing", skip_instance_cache=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Start moto's S3 server on 127.0.0.1 and a free port; stop it afterwards."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **CREDENTIALS},
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upload_tree(fs, local: Path, url: str) -> None:
    """Copy every file under ``local`` to ``url`` (the test's own upload, not tbrewrite's)."""
    files = sorted(p for p in local.rglob("*") if p.is_file())
    fs.put([str(p) for p in files], [f"{url}/{p.relative_to(local).as_posix()}" for p in files])


def download_tree(fs, url: str, local: Path) -> None:
    """Copy every object under ``url`` to ``local``."""
    base = url.split("://", 1)[1].rstrip("/")
    keys = [k for k in fs.find(url) if not k.endswith("/")]
    targets = [local / k[len(base) + 1 :] for k in keys]
    for t in targets:
        t.parent.mkdir(parents=True, exist_ok=True)
    if keys:
        fs.get(keys, [str(t) for t in targets])


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

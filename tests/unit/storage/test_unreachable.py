"""An object store that cannot be reached: one line naming the URL, exit 1, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("s3fs")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [["inspect", "s3://bucket/logs"], ["convert", "s3://bucket/logs", "OUT"]])
def test_unreachable_endpoint_is_one_line_naming_the_url(tmp_path: Path, command: list[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    args = [a.replace("OUT", str(tmp_path / "out")) for a in command]
    env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-m", "tbrewrite", "--storage-option", f"endpoint_url={endpoint}", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("tbrewrite: error: s3://bucket/logs: Could not connect to the endpoint URL")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_s3_defaults_bound_the_wait_and_options_override_them_key_by_key() -> None:
    from tbrewrite.storage.urls import S3_DEFAULTS, filesystem

    fs = filesystem("s3", {"anon": True, "config_kwargs": {"read_timeout": 1}})
    assert fs.retries == S3_DEFAULTS["retries"]
    assert fs.config_kwargs == {**S3_DEFAULTS["config_kwargs"], "read_timeout": 1}
    assert filesystem("s3", {"anon": True, "retries": 1}).retries == 1


def test_a_store_that_never_answers_fails_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)  # connections are accepted by the kernel and never answered
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        env = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": "us-east-1", "PATH": ""}
        options = ["--storage-option", f"endpoint_url={endpoint}", "--storage-option", "config_kwargs.read_timeout=1"]
        result = subprocess.run(
            [sys.executable, "-m", "tbrewrite", *options, "convert", "s3://bucket/logs", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,  # a guard against a hang, not a timing: 3 reads of 1 s per request
        )
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("tbrewrite: error: s3://bucket/logs: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()

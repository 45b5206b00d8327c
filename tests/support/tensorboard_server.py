"""Run the real ``tensorboard`` server on loopback for end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoardServer:
    """``tensorboard --logdir LOGDIR`` on 127.0.0.1 and a free port, stopped on exit."""

    def __init__(self, logdir: Path, *, load_fast: str = "true") -> None:
        self.logdir = logdir
        self.load_fast = load_fast
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> TensorBoardServer:
        tensorboard = Path(sys.executable).with_name("tensorboard")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
        self.proc = subprocess.Popen(
            [
                str(tensorboard),
                "--logdir",
                str(self.logdir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                f"--load_fast={self.load_fast}",
                "--reload_interval=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def get(self, path: str, **params: str):
        query = urllib.parse.urlencode(params)
        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def wait_for_tags(self, run: str, wanted: set[str], timeout: float = 120.0) -> set[str]:
        """Poll /data/plugin/scalars/tags until ``run`` has every tag in ``wanted``."""
        deadline = time.monotonic() + timeout
        tags: set[str] = set()
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, "tensorboard exited"
            try:
                tags = set(self.get("/data/plugin/scalars/tags").get(run, {}))
            except OSError:
                tags = set()
            if wanted <= tags:
                return tags
            time.sleep(0.5)
        raise AssertionError(f"tensorboard never served {sorted(wanted - tags)} for run {run!r}; got {sorted(tags)}")

    def scalars(self, run: str, tag: str) -> list[list[float]]:
        """``[[wall_time, step, value], ...]`` from /data/plugin/scalars/scalars."""
        return self.get("/data/plugin/scalars/scalars", run=run, tag=tag)

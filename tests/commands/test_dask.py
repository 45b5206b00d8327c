"""``convert --scheduler``: a bucket of runs converted on a real Dask LocalCluster.

Two worker processes, a moto S3 server on loopback, ≥ 200 tiny runs: the output objects
must be byte-for-byte what a local convert of the same runs writes, and a run that fails
must fail the command with its own message and publish nothing.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support import eventgen
from support.s3server import S3Server, download_tree, s3_server, tree_bytes, upload_tree
from tbrewrite.cli import app

distributed = pytest.importorskip("distributed", reason="needs dask[distributed] (the test extra)")

runner = CliRunner()
RUNS = 200


@pytest.fixture(scope="module")
def server() -> S3Server:
    with s3_server() as s:
        yield s


@pytest.fixture(scope="module")
def cluster(server: S3Server):
    import os

    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)  # the worker processes inherit the endpoint and credentials
    try:
        with distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
        ) as c:
            yield c
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUNS tiny runs: Keras 2 flat folders and tf.keras split log_dirs, alternately."""
    made = tmp_path_factory.mktemp("gen")
    eventgen.keras_flat(made)
    eventgen.keras_split_sidecar(made)
    root = tmp_path_factory.mktemp("runs") / "logs"
    for n in range(RUNS):
        shutil.copytree(made / ("keras_flat" if n % 2 else "keras_split_sidecar"), root / f"g{n % 7}" / f"run{n:03d}")
    return root


def cli(server: S3Server, *argv: str):
    return runner.invoke(app, ["--storage-option", f"endpoint_url={server.endpoint}", *argv], env=server.env)


def test_a_bucket_of_runs_on_a_local_cluster_gives_the_bytes_of_a_local_convert(
    server: S3Server, cluster, runs: Path, tmp_path: Path
) -> None:
    fs = server.fs()
    bucket = f"s3://b{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket[5:])
    upload_tree(fs, runs, f"{bucket}/logs")
    result = cli(server, "convert", f"{bucket}/logs", f"{bucket}/out", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 0, result.stderr
    local = runner.invoke(app, ["convert", str(runs), str(tmp_path / "want")])
    assert local.exit_code == 0
    download_tree(fs, f"{bucket}/out", tmp_path / "got")
    want = tree_bytes(tmp_path / "want")
    assert len([k for k in want if "tfevents" in k]) == RUNS
    assert tree_bytes(tmp_path / "got") == want
    assert result.stdout == local.stdout.replace(str(tmp_path / "want"), f"{bucket}/out").replace(
        str(runs), f"{bucket}/logs"
    )


def test_a_failing_run_fails_the_command_and_publishes_nothing(
    server: S3Server, cluster, runs: Path, tmp_path: Path
) -> None:
    fs = server.fs()
    bucket = f"s3://b{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket[5:])
    broken = tmp_path / "logs"
    for n in range(6):
        shutil.copytree(runs / "g0" / f"run{14 * n:03d}", broken / f"run{n}")
    (broken / "run3" / "learning_rate.csv").write_text("epoch,learning_rate\nx,y\n")
    upload_tree(fs, broken, f"{bucket}/logs")
    result = cli(server, "convert", f"{bucket}/logs", f"{bucket}/out", "--scheduler", cluster.scheduler_address)
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"tbrewrite: error: {bucket}/logs/run3/learning_rate.csv")
    assert not fs.exists(f"{bucket}/out") or fs.find(f"{bucket}/out") == []

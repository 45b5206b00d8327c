"""Buckets of runs: ``convert`` from and to a local S3 server, local workers vs a Dask cluster.

Starts moto's S3 server on 127.0.0.1 (as the tests do), uploads N small Keras runs (the
``keras_flat`` and ``keras_split_sidecar`` logs of ``tests/support/eventgen.py``, alternately)
to a bucket, then times the ``tbrewrite`` command in a subprocess, start-up included:

* ``convert s3://.../logs s3://.../out-local`` (local worker processes, every core),
* ``convert ... --scheduler ADDRESS`` on a ``LocalCluster`` of 2 worker processes
  started before the clock,

each ``--repeat`` times (best kept), and prints runs/s and input bytes/s; with ``--write``
also into ``bench/RESULTS-storage.md``.

Run: ``.venv/bin/python bench/bench_storage.py [--runs 1000] [--repeat 2] [--write]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support import eventgen  # noqa: E402
from support.s3server import s3_server, upload_tree  # noqa: E402


def make_runs(root: Path, n: int) -> int:
    made = root / "gen"
    eventgen.keras_flat(made)
    eventgen.keras_split_sidecar(made)
    for i in range(n):
        shutil.copytree(made / ("keras_flat" if i % 2 else "keras_split_sidecar"), root / "logs" / f"run{i:04d}")
    return sum(p.stat().st_size for p in (root / "logs").rglob("*") if "tfevents" in p.name)


def timed(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS-storage.md")
    args = parser.parse_args()
    from distributed import LocalCluster

    work = Path(tempfile.mkdtemp(prefix="tbrewrite-bench-storage-"))
    try:
        size = make_runs(work, args.runs)
        with s3_server() as server:
            os.environ.update(server.env)
            fs = server.fs()
            fs.mkdir("bench")
            upload_tree(fs, work / "logs", "s3://bench/logs")
            env = {**os.environ, **server.env}
            cmd = [sys.executable, "-m", "tbrewrite", "convert", "s3://bench/logs"]
            rows = []
            best = min(timed([*cmd, f"s3://bench/local{k}"], env) for k in range(args.repeat))
            rows.append(("local workers (--jobs: every core)", best))
            with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1", dashboard_address=None) as cluster:
                best = min(
                    timed([*cmd, f"s3://bench/dask{k}", "--scheduler", cluster.scheduler_address], env)
                    for k in range(args.repeat)
                )
            rows.append(("Dask LocalCluster, 2 worker processes", best))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"{args.runs} runs, {size / 1e6:.2f} MB of event files, moto S3 server on loopback; "
        f"best of {args.repeat}; {platform.machine()}, {os.cpu_count()} cores; command start-up included.",
        "",
        "| convert s3:// → s3:// | seconds | runs/s | MB/s (input) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {t:.1f} | {args.runs / t:.1f} | {size / t / 1e6:.2f} |" for name, t in rows]
    print("\n".join(lines))
    if args.write:
        out = REPO / "bench" / "RESULTS-storage.md"
        text = "# Buckets of runs: convert on S3, local workers vs Dask\n\n" + "\n".join(lines) + "\n"
        tmp = out.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)


if __name__ == "__main__":
    main()

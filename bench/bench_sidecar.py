"""Peak memory and wall time of ``tbrewrite merge`` with a large per-batch learning-rate sidecar.

Issue 12 item 12: a 94 MB learning-rate CSV (3 M batch rows) took 4.3 GB RSS and 77 s in
``merge``. This script reproduces that measurement:

1. generates a small Keras 3 log deterministically (:func:`gen.scalar_log`, ``--events``
   events, 1,000 batches per epoch) and converts it with ``tbrewrite convert`` into a
   plain run folder, the kind ``merge`` takes;
2. writes a learning-rate sidecar of ``--rows`` batch rows beside it, as
   ``LearningRateLogger(every="batch")`` writes it (``epoch,step,wall_time,learning_rate``,
   ``\\r\\n`` line ends, steps 1, 2, ... and one wall_time per batch from the log's start);
3. runs ``tbrewrite merge RUN --sidecar CSV --out OUT`` in a fresh interpreter under GNU
   ``time`` (``/usr/bin/time -f %M``: peak RSS in KiB) for each row count, and prints a
   table: if memory is flat, every row count peaks at about the same RSS.

``--src DIR`` runs another checkout's ``src/`` (put first on ``PYTHONPATH``), e.g. the code
before a change, extracted with ``git archive HEAD src | tar -x -C /tmp/head``. Everything
is written under ``--work`` (default a new folder in the system temp dir, never the
repository) and deleted afterwards unless ``--keep``.

Usage::

    .venv/bin/python bench/bench_sidecar.py [--rows 300000,1000000,3000000] [--events 20000]
        [--src /tmp/head/src] [--engine python|native] [--work DIR] [--keep]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gen  # bench/gen.py, next to this script

REPO = Path(__file__).resolve().parents[1]
BATCH_DT = 0.004  # seconds between two sidecar rows
BATCHES_PER_EPOCH = 1000


def write_sidecar(path: Path, rows: int, start: float) -> int:
    """Write ``rows`` batch rows as LearningRateLogger(every="batch") does; return the size in bytes."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write("epoch,step,wall_time,learning_rate\r\n")
        chunk = []
        for step in range(1, rows + 1):
            epoch = (step - 1) // BATCHES_PER_EPOCH
            rate = 0.05 * 0.9 ** (step / 100_000)
            chunk.append(f"{epoch},{step},{start + step * BATCH_DT!r},{rate!r}\r\n")
            if len(chunk) == 100_000:
                f.write("".join(chunk))
                chunk = []
        f.write("".join(chunk))
    return path.stat().st_size


def measure(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, int, str]:
    """Run ``argv`` under GNU time; return (peak RSS KiB, wall s, CPU s, exit code, stderr tail)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        began = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-o", out.name, "-f", "%M %U %S", *argv], env=env, capture_output=True, text=True
        )
        wall = time.perf_counter() - began
        lines = [line.split() for line in open(out.name).read().splitlines() if line.strip()]
    try:
        rss, user, system = int(lines[-1][0]), float(lines[-1][1]), float(lines[-1][2])
    except (IndexError, ValueError):
        rss, user, system = -1, -1.0, 0.0
    return rss, wall, user + system, done.returncode, done.stderr.strip()[-300:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="300000,1000000,3000000", help="comma-separated sidecar row counts")
    parser.add_argument("--events", type=int, default=20_000, help="events of the generated log")
    parser.add_argument("--src", type=Path, default=None, help="a checkout's src/ to run instead of this one")
    parser.add_argument("--engine", choices=("python", "native"), default=None, help="TBREWRITE_ENGINE")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()

    work = args.work or Path(tempfile.mkdtemp(prefix="tbrewrite-sidecar-bench-"))
    if work.resolve().is_relative_to(REPO):
        sys.exit(f"--work {work}: not inside the repository")
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if args.src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(args.src.resolve()), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.engine:
        env["TBREWRITE_ENGINE"] = args.engine
    tbrewrite = [sys.executable, "-m", "tbrewrite"]
    try:
        info = gen.scalar_log(work / "log", events=args.events)
        run = work / "run"
        if not run.exists():
            convert = [*tbrewrite, "convert", str(work / "log"), str(run)]
            subprocess.run(convert, env=env, check=True, capture_output=True)
        machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs"
        print(f"machine: {machine}, Python {platform.python_version()}")
        print(f"code: {args.src or REPO / 'src'}; engine: {args.engine or 'default'}")
        print(f"log: {info['events']} events, {info['bytes'] / 1e6:.1f} MB, converted to {run}")
        print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print()
        print("| sidecar rows | CSV size (MB) | peak RSS (MiB) | wall time (s) | CPU time (s) | exit |")
        print("|---|---|---|---|---|---|")
        rss, wall, cpu, code, _ = measure([*tbrewrite, "--help"], env)
        print(
            f"| `tbrewrite --help` (interpreter + imports) | - | {rss / 1024:.0f} | {wall:.1f} | {cpu:.1f} | {code} |"
        )
        for rows in (int(r) for r in args.rows.split(",")):
            sidecar = work / f"lr-{rows}.csv"
            size = write_sidecar(sidecar, rows, gen.T0)
            out = work / f"merged-{rows}"
            shutil.rmtree(out, ignore_errors=True)
            rss, wall, cpu, code, err = measure(
                [*tbrewrite, "merge", str(run), "--sidecar", str(sidecar), "--out", str(out)], env
            )
            print(f"| {rows:,} | {size / 1e6:.0f} | {rss / 1024:.0f} | {wall:.1f} | {cpu:.1f} | {code} |", flush=True)
            if code:
                print(f"  stderr: {err}")
            shutil.rmtree(out, ignore_errors=True)
            sidecar.unlink()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            work.with_name(work.name + ".json").unlink(missing_ok=True)
            (work / "log.json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

"""The engine without the CLI: inspect, convert and export of one log in process, imports done.

    TBREWRITE_ENGINE=native .venv/bin/python bench/bench_inprocess.py /tmp/tbrewrite-bench/scalar

Prints the best and median of 5 runs of each, and events (rows) per second of the best, for
the engine ``TBREWRITE_ENGINE`` selects. What ``bench/run.py`` measures minus the CLI's start-up
(figures in ``RESULTS.md``).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tbrewrite.commands.convert import convert
from tbrewrite.commands.export import export
from tbrewrite.commands.inspect import inspect_logdir
from tbrewrite.engine.select import engine_name


def timed(f: Callable[[], object], n: int = 5) -> tuple[float, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    src = Path(sys.argv[1])
    work = Path(tempfile.mkdtemp(prefix="tbrewrite-inprocess-"))
    try:
        events = sum(run.scan.events for run in inspect_logdir(src).runs)

        def run_convert() -> None:
            shutil.rmtree(work / "out", ignore_errors=True)
            convert(src, work / "out")

        for name, f in (
            ("inspect", lambda: inspect_logdir(src)),
            ("convert", run_convert),
            ("export", lambda: export(src, work / "out.parquet", force=True)),
        ):
            best, median = timed(f)
            print(
                f"{engine_name()} {name}: best {best:.3f} s, median {median:.3f} s, {events / best / 1e6:.2f} M events/s"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

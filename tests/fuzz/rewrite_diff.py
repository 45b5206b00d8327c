"""Long differential run of the rewrite loop: native against Python, plan after plan.

The plans of ``tests/native/test_rewrite_differential.py`` (random sources, damage, extra
events, keep-last, replaced steps, drops, renames, NaN wall_times), generated from a seed
and rewritten by both engines; any difference in output bytes or result stops the run
with the seed and case, which reproduce it. Prints plans, input files and records per
second as it goes.

    .venv/bin/python tests/fuzz/rewrite_diff.py --plans 100000 --seed 1 [--work DIR]

Figures of the long run: ``native/README.md``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest

from native.test_rewrite_differential import _compare, _plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plans", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary one)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tbrewrite-rewrite-diff-", dir=args.work))
    rng = random.Random(args.seed)
    monkeypatch = pytest.MonkeyPatch()
    start = time.monotonic()
    files = 0
    try:
        for case in range(args.plans):
            plan = _plan(rng, work, case)
            files += sum(len(s.files) for s in plan.sources)
            _compare(plan, monkeypatch, f"seed {args.seed} case {case}")
            shutil.rmtree(work / f"in{case}", ignore_errors=True)
            shutil.rmtree(work / f"out{case}", ignore_errors=True)
            if (case + 1) % 1000 == 0:
                elapsed = time.monotonic() - start
                print(f"{case + 1} plans, {files} input files, {elapsed:.0f} s, no difference", flush=True)
    finally:
        monkeypatch.undo()
        shutil.rmtree(work, ignore_errors=True)
    print(f"done: {args.plans} plans, {files} input files, {time.monotonic() - start:.0f} s, no difference")


if __name__ == "__main__":
    main()

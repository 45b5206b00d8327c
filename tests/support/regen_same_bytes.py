"""Regenerate ``tests/data/same_bytes.json`` from a BASELINE install of ``tbrewrite``.

Run it with the interpreter of a virtual environment holding the release to pin (never the
working tree's editable install), from the repository root, with the real corpus present:

    git worktree add /tmp/baseline <commit>
    python3 -m venv /tmp/baseline/.venv && /tmp/baseline/.venv/bin/pip install /tmp/baseline
    /tmp/baseline/.venv/bin/python tests/support/regen_same_bytes.py --repeat 2
    git worktree remove --force /tmp/baseline

The command run is the ``tbrewrite`` console script beside that interpreter (``--tbrewrite``
names another). ``--repeat N`` runs every case N times (in fresh folders, with fresh inputs)
and stops if any run differs: the pinned bytes must not depend on the run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for ``support``

from support import same_bytes as sb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tbrewrite", help="the baseline's tbrewrite console script (default: beside this python)")
    parser.add_argument("--out", type=Path, default=sb.DATA)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    cli = [args.tbrewrite] if args.tbrewrite else sb.default_cli()
    if not sb.CORPUS.is_dir():
        sys.exit(f"regen_same_bytes: {sb.CORPUS} not found; the corpus cases need it")
    where = subprocess.run(
        [Path(cli[0]).with_name("python"), "-c", "import tbrewrite, sys; print(tbrewrite.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"regen_same_bytes: running {cli} (tbrewrite from {where})", file=sys.stderr)
    if Path(where).resolve().is_relative_to(sb.REPO / "src"):
        sys.exit("regen_same_bytes: that is the working tree's tbrewrite; use a baseline install")

    results = []
    for attempt in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="same_bytes_") as tmp:
            places = sb.write_inputs(Path(tmp) / "inputs")
            data = {"inputs": sb.input_hashes(places), "cases": {}}
            for n, case in enumerate(sb.cases()):
                start = time.monotonic()
                entry, proc = sb.run_case(case, cli, places, Path(tmp) / f"case{n:03d}")
                data["cases"][case.id] = entry
                print(
                    f"  {case.id}: exit {entry['exit']}, {len(entry['files'])} files, {time.monotonic() - start:.2f}s",
                    file=sys.stderr,
                )
                if entry["exit"] not in (0, 3):
                    print("    " + proc.stderr.strip().replace("\n", "\n    "), file=sys.stderr)
        results.append(data)
        if data != results[0]:
            diff = [k for k in data["cases"] if data["cases"][k] != results[0]["cases"][k]]
            if data["inputs"] != results[0]["inputs"]:
                diff.insert(0, "inputs")
            sys.exit(f"regen_same_bytes: run {attempt + 1} differs from run 1 in: {', '.join(diff)}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(sb.dump(results[0]), encoding="utf-8")
    print(f"regen_same_bytes: wrote {len(results[0]['cases'])} cases to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

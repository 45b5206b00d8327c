"""Reading a log into pandas DataFrames: ``tbrewrite.read`` against tbparse, in one run (issue 17).

On the scalar-heavy and the large-record log of :mod:`gen` (the logs of ``run.py``), every
tool runs as its own subprocess (GNU ``time`` for the peak RSS, as ``run.py``) and reports
how long its imports took and how long reading into DataFrames took:

* ``tbrewrite.read`` -- every kind, native engine (and the Python engine on the scalar log);
* ``tbrewrite iter_chunks`` -- the same rows streamed as Arrow record batches and dropped,
  what ``export --kind all`` does: the memory of streaming;
* ``tbparse`` -- ``SummaryReader(LOG)`` and every table it can build: without TensorFlow
  (its stub reader) scalars, tensors, histograms, text, hparams; with TensorFlow also images
  and audio.

Results go to ``RESULTS-frames.md`` (``--no-write`` leaves it), with the targets of issue 17
checked: reading ≥ 50× faster than tbparse, ≤ 1/10 of its peak memory.

Usage::

    python bench/bench_frames.py               # 400k-event scalar log, 1 GiB large-record log
    python bench/bench_frames.py --quick       # 100k events, 256 MiB, one run each
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
KINDS = ("scalars", "tensors", "histograms", "images", "audio", "text", "hparams")
MB = 1e6


def child(tool: str, src: str) -> None:
    """Run one tool in this process and print one JSON line (see the module doc)."""
    start = time.perf_counter()
    if tool == "tbparse":
        sys.modules["tensorflow"] = None  # type: ignore[assignment]  # import tensorflow -> ImportError
    if tool.startswith("tbparse"):
        import pandas
        from tbparse import SummaryReader

        if tool == "tbparse-tf":
            import tensorflow  # noqa: F401
        imported = time.perf_counter()
        reader = SummaryReader(src)
        kinds = KINDS if tool == "tbparse-tf" else ("scalars", "tensors", "histograms", "text", "hparams")
        rows = {kind: len(reader.get_events(kind)) for kind in kinds}
    else:
        import pandas  # noqa: F401

        from tbrewrite.frames import iter_chunks, read

        imported = time.perf_counter()
        if tool == "tbrewrite-stream":
            import pyarrow  # noqa: F401

            rows = dict.fromkeys(KINDS, 0)
            for chunk in iter_chunks(src):
                chunk.arrow()
                rows[chunk.kind] += chunk.rows
        else:
            frames = read(src)
            rows = {kind: len(frames[kind]) for kind in KINDS}
    done = time.perf_counter()
    print(json.dumps({"import_s": imported - start, "read_s": done - imported, "rows": rows}))


TOOLS = {
    "tbrewrite": ("tbrewrite.read (native)", "every kind into DataFrames", {"TBREWRITE_ENGINE": "native"}),
    "tbrewrite-python": ("tbrewrite.read (python)", "the same, Python engine", {"TBREWRITE_ENGINE": "python"}),
    "tbrewrite-stream": (
        "tbrewrite iter_chunks (native)",
        "every kind streamed as Arrow batches, none kept",
        {"TBREWRITE_ENGINE": "native"},
    ),
    "tbparse": ("tbparse, no TF", "SummaryReader + every table it builds without TensorFlow", {}),
    "tbparse-tf": ("tbparse, with TF", "SummaryReader + every table (TensorFlow's reader)", {}),
}


def measure(tool: str, src: Path, repeat: int) -> tuple[list[Any], list[dict]]:
    from run import PY, run_once

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", **TOOLS[tool][2]}
    samples, docs = [], []
    for _ in range(repeat):
        s = run_once([PY, __file__, "child", tool, str(src)], timeout=3600, env=env)
        samples.append(s)
        lines = s.stdout.strip().splitlines()
        docs.append(json.loads(lines[-1]) if s.code == 0 and lines else {})
        label = TOOLS[tool][0]
        print(f"  {label:<32} {s.wall:7.2f} s  {s.rss_kb / 1024:7.1f} MiB  exit {s.code}", flush=True)
        if s.code != 0:
            print("   ", (s.stderr.strip().splitlines() or [""])[-1], flush=True)
            break
    return samples, docs


def table(results: dict[str, tuple[list[Any], list[dict]]]) -> list[str]:
    lines = [
        "| tool | runs | wall s (median) | imports s | read s (median) | rows per kind | peak RSS MB | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for tool, (samples, docs) in results.items():
        label, note, _ = TOOLS[tool]
        if not samples or samples[-1].code != 0:
            detail = (samples[-1].stderr.strip().splitlines() or [""])[-1] if samples else "not run"
            lines.append(f"| {label} | {len(samples)} | failed | | | | | {note}; `{detail}` |")
            continue
        wall = statistics.median(s.wall for s in samples)
        imports = statistics.median(d["import_s"] for d in docs)
        read = statistics.median(d["read_s"] for d in docs)
        rows = ", ".join(f"{k} {v:,}" for k, v in docs[-1]["rows"].items() if v)
        rss = max(s.rss_kb for s in samples) * 1024 / MB
        lines.append(
            f"| {label} | {len(samples)} | {wall:.2f} | {imports:.2f} | {read:.2f} | {rows} | {rss:.0f} | {note} |"
        )
    return lines


def summary(name: str, results: dict[str, tuple[list[Any], list[dict]]]) -> list[str]:
    """The targets: read ≥ 50× faster than tbparse and ≤ 1/10 of its peak RSS."""

    def figures(tool: str) -> tuple[float, float, float] | None:
        samples, docs = results.get(tool, ([], []))
        if not samples or samples[-1].code != 0:
            return None
        wall = statistics.median(s.wall for s in samples)
        read = statistics.median(d["read_s"] for d in docs)
        return wall, read, max(s.rss_kb for s in samples) * 1024 / MB

    ours = figures("tbrewrite")
    stream = figures("tbrewrite-stream")
    lines = []
    for peer in ("tbparse", "tbparse-tf"):
        theirs = figures(peer)
        if ours is None or theirs is None:
            continue
        label = TOOLS[peer][0]
        speed = theirs[1] / ours[1]
        whole = theirs[0] / ours[0]
        memory = ours[2] / theirs[2]
        lines.append(
            f"- {name}, against {label}: reading **{speed:.0f}×** faster ({ours[1]:.2f} s vs {theirs[1]:.2f} s; "
            f"whole process with imports {whole:.1f}×: {ours[0]:.2f} s vs {theirs[0]:.2f} s) → "
            f"{'met' if speed >= 50 else 'NOT met'}; peak RSS **{memory:.2f}×** of tbparse's "
            f"({ours[2]:.0f} MB vs {theirs[2]:.0f} MB) → {'met' if memory <= 0.1 else 'NOT met'}"
            + (f"; streamed: {stream[2]:.0f} MB ({stream[2] / theirs[2]:.2f}×)" if stream else "")
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--work", type=Path, default=Path("/tmp/tbrewrite-bench"))
    parser.add_argument("--repeat", type=int, default=None, help="runs of each tbrewrite tool (default 3; quick 1)")
    parser.add_argument("--only", default="scalar,large")
    parser.add_argument("--no-tf", dest="with_tf", action="store_false", help="skip tbparse with TensorFlow")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args()
    import gen
    from run import engine_version, machine

    repeat = args.repeat or (1 if args.quick else 3)
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    body: list[str] = []
    targets: list[str] = []
    logs = []
    for name in args.only.split(","):
        src = work / name
        if name == "scalar":
            info = gen.scalar_log(src, 100_000 if args.quick else 400_000)
            tools = ["tbrewrite", "tbrewrite-python", "tbrewrite-stream", "tbparse", "tbparse-tf"]
            title = "Scalar-heavy Keras 3 log"
        else:
            info = gen.large_log(src, 256 if args.quick else 1024)
            # tbparse without TensorFlow reads through TensorBoard's pure-Python CRC (minutes per GB).
            tools = ["tbrewrite", "tbrewrite-stream", "tbparse-tf"]
            title = "Large-record log (histograms + images)"
        if not args.with_tf:
            tools = [t for t in tools if t != "tbparse-tf"]
        logs.append(src)
        print(f"\n{title}: {info['events']} events, {info['bytes'] / MB:.1f} MB", flush=True)
        results = {}
        for tool in tools:
            results[tool] = measure(tool, src, 1 if tool.startswith("tbparse") else repeat)
        body += [
            "",
            f"### {title}",
            "",
            f"{info['events']:,} events, {info['bytes'] / MB:.1f} MB in {info['files']} files "
            f"(`bench/gen.py`, params `{json.dumps(info['params'])}`).",
            "",
            *table(results),
        ]
        targets += summary(title, results)
    elapsed = time.perf_counter() - started
    text = [
        "# Reading logs into DataFrames: tbrewrite.read against tbparse",
        "",
        f"Generated by `python bench/bench_frames.py {' '.join(sys.argv[1:])}`".rstrip()
        + f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the whole run took {elapsed:.0f} s.",
        "",
        "### Machine",
        "",
        *machine({engine: engine_version(engine) for engine in ("native", "python")}),
        "",
        "Each tool is a subprocess; `imports s` and `read s` are what it measured itself",
        "(`read s`: from its imports done to every DataFrame built), `wall s` the whole process,",
        "peak RSS from GNU `time`. Warm page cache.",
        *body,
        "",
        "### Targets (issue 17)",
        "",
        *targets,
    ]
    print("\n".join(text))
    if args.write:
        (BENCH / "RESULTS-frames.md").write_text("\n".join(text) + "\n")
        print(f"\nwrote {BENCH / 'RESULTS-frames.md'}")
    if not args.keep_logs:
        for src in logs:
            shutil.rmtree(src, ignore_errors=True)
            src.with_name(src.name + ".json").unlink(missing_ok=True)


if __name__ == "__main__":
    sys.path.insert(0, str(BENCH))
    if len(sys.argv) == 4 and sys.argv[1] == "child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()

"""Benchmark ``tbrewrite`` against the tools people use today, side by side, in one run.

Generates the logs of :mod:`gen` under a work folder (default ``/tmp/tbrewrite-bench``,
never inside the repository), runs every tool on each as a subprocess, and prints a
table per log; with ``--write`` (the default) it also replaces the generated part of
``bench/RESULTS.md`` (between the ``bench:begin``/``bench:end`` markers; text around
them is kept).

Each measurement is one subprocess reaped with ``os.wait4``: wall time
(``time.perf_counter`` around start and reap), CPU time (user + system of the process
and every descendant it waited for) and peak RSS (GNU ``time -f %M`` around the command:
the largest resident set of the process or of any descendant it waited for, so a process
pool counts its largest worker, not the sum). Fast tools run ``--repeat`` times and the
median wall time is reported; slow peers run ``--slow-repeat`` times; the tools take
turns (round robin), so a change in the shared machine's load hits all of them alike. All runs read a
warm page cache (the logs were just written or read); outputs go to a fresh folder each
run and are deleted afterwards.

Usage::

    python bench/run.py                 # the full run (about 10 minutes on 2 cores)
    python bench/run.py --quick         # smaller logs, one run each, no TF peers
    python bench/run.py --only scalar --repeat 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import gen

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PY = sys.executable
TBREWRITE = str(Path(sys.executable).with_name("tbrewrite"))
RULES = [
    r"^batch_(.*)$=train/batch_\1",
    r"^epoch_(.*)$=epoch/\1",
    r"^evaluation_(.*)_vs_iterations$=val/\1_vs_iterations",
]
"""The renames measured: every scalar tag of the generated logs matches one rule."""
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
MB = 1e6


@dataclass
class Sample:
    """One run of one command."""

    wall: float
    cpu: float
    rss_kb: int
    code: int
    stdout: str
    stderr: str


@dataclass
class Result:
    """All runs of one tool on one log."""

    tool: str
    note: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.samples) and all(s.code == 0 for s in self.samples)

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def rss_mb(self) -> float:
        return max(s.rss_kb for s in self.samples) * 1024 / MB

    def detail(self) -> str:
        """The last stdout line (peers print a JSON summary), or the error."""
        last = self.samples[-1]
        if last.code != 0:
            lines = (last.stderr.strip() or last.stdout.strip()).splitlines()
            return f"exit {last.code}: {lines[-1] if lines else ''}"
        lines = last.stdout.strip().splitlines()
        return lines[-1] if lines else ""


TIME = "/usr/bin/time"
"""GNU time, if present, reports the peak RSS of the command alone (see :func:`run_once`)."""


def run_once(cmd: list[str], timeout: float = 1800) -> Sample:
    """Run ``cmd`` and return its wall time, CPU time, peak RSS and output.

    Peak RSS comes from GNU ``time -f %M`` when it exists: a child started straight
    from this process inherits this process's peak RSS in its own ``ru_maxrss`` (Linux
    carries the high-water mark of the pre-``exec`` address space over, and
    ``subprocess`` uses ``vfork``), while the command ``time`` starts is forked from
    the tiny ``time`` process. Without GNU time, ``ru_maxrss`` from ``wait4`` is used.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as rss:
        if os.access(TIME, os.X_OK):
            cmd = [TIME, "-f", "%M", "-o", rss.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, 9)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = usage.ru_maxrss
        lines = rss.read().split()
        if lines and lines[-1].isdigit():
            peak = int(lines[-1])
        return Sample(
            wall,
            usage.ru_utime + usage.ru_stime,
            peak,
            proc.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def measure_once(result: Result, make_cmd, out: Path) -> None:
    """Run ``make_cmd(out)`` once into a fresh ``out`` and add the sample to ``result``."""
    shutil.rmtree(out, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    sample = run_once(make_cmd(out))
    result.samples.append(sample)
    shutil.rmtree(out, ignore_errors=True)
    print(f"  {result.tool:<28} {sample.wall:8.2f} s  {sample.rss_kb / 1024:7.1f} MiB  exit {sample.code}", flush=True)


def measure(tool: str, note: str, make_cmd, out: Path, repeat: int) -> Result:
    """Run ``make_cmd(out)`` ``repeat`` times, each into a fresh ``out``."""
    result = Result(tool, note)
    for _ in range(repeat):
        measure_once(result, make_cmd, out)
        if result.samples[-1].code != 0:
            break
    return result


def has_rename() -> bool:
    """Return True if this ``tbrewrite`` has a ``rename`` command."""
    try:
        return run_once([TBREWRITE, "rename", "--help"], timeout=60).code == 0
    except OSError:
        return False


def tools_for(kind: str, src: Path, args: argparse.Namespace, rename: bool) -> list[tuple[str, str, object, int]]:
    """Return ``(tool, note, make_cmd, repeats)`` for one log."""
    rules = [a for r in RULES for a in ("--rule", r)]
    fast, slow = args.repeat, args.slow_repeat
    tools: list[tuple[str, str, object, int]] = [
        (
            "tbrewrite convert",
            "CLI; train/+validation/ merged into one file",
            lambda o: [TBREWRITE, "convert", str(src), str(o)],
            fast,
        ),
    ]
    if rename:
        tools.append(
            (
                "tbrewrite rename",
                "CLI; --out mirror, 3 regex rules",
                lambda o: [TBREWRITE, "rename", str(src), *rules, "--out", str(o)],
                fast,
            )
        )
    tools.append(
        (
            "raw record copy (floor)",
            "framing + both CRCs, no protobuf, fsync",
            lambda o: [PY, str(BENCH / "peers" / "raw_copy.py"), str(src), str(o)],
            fast,
        )
    )
    splice = str(BENCH / "peers" / "splice_rename.py")
    tools.append(
        (
            "splice sketch",
            "one pass, tags spliced into bytes, same rules",
            lambda o: [PY, splice, str(src), str(o), *rules],
            fast,
        )
    )
    if kind == "scalar":
        tools.append(
            (
                "splice sketch + scan pass",
                "the same after a planning pass",
                lambda o: [PY, splice, str(src), str(o), "--scan", *rules],
                fast,
            )
        )
    if kind == "large":
        tools.append(("cp -r", "no fsync", lambda o: ["cp", "-r", str(src), str(o)], fast))
        tools.append(
            (
                "cp -r + fsync",
                "then `sync FILE...` (fsync each file)",
                lambda o: ["sh", "-c", 'cp -r "$0" "$1" && find "$1" -type f -exec sync {} +', str(src), str(o)],
                fast,
            )
        )
    peers = kind == "scalar" or (kind == "tree" and args.tree_peers) or (kind == "large" and args.large_peers)
    if not peers:
        return tools
    loader = str(BENCH / "peers" / "tb_loader_rename.py")
    tbparse = str(BENCH / "peers" / "tbparse_read.py")
    tools.append(
        (
            "TB loader script, no TF",
            "EventFileLoader + EventFileWriter, stub reader",
            lambda o: [PY, loader, str(src), str(o), *rules],
            slow,
        )
    )
    if args.with_tf and kind == "scalar":
        tools.append(
            (
                "TB loader script, with TF",
                "same, TensorFlow's C++ reader",
                lambda o: [PY, loader, str(src), str(o), "--with-tf", *rules],
                slow,
            )
        )
    if kind == "scalar":
        tools.append(
            ("tbparse, no TF", "SummaryReader(...).scalars + .tensors", lambda o: [PY, tbparse, str(src)], slow)
        )
        if args.with_tf:
            tools.append(
                (
                    "tbparse, with TF",
                    "same, TensorFlow's C++ reader",
                    lambda o: [PY, tbparse, str(src), "--with-tf"],
                    slow,
                )
            )
    return tools


@dataclass
class LogRun:
    """The results on one generated log."""

    kind: str
    title: str
    info: dict[str, object]
    results: list[Result]

    def get(self, tool: str) -> Result | None:
        for r in self.results:
            if r.tool == tool and r.ok:
                return r
        return None


def bench_log(
    kind: str, title: str, src: Path, info: dict[str, object], args: argparse.Namespace, rename: bool
) -> LogRun:
    print(f"\n{title}: {info['events']} events, {info['bytes'] / MB:.1f} MB in {info['files']} files", flush=True)
    tools = tools_for(kind, src, args, rename)
    results = [Result(tool, note) for tool, note, _, _ in tools]
    # Round robin, so a change in the machine's load hits every tool alike.
    for round_ in range(max(repeat for *_, repeat in tools)):
        for result, (_, _, make_cmd, repeat) in zip(results, tools, strict=False):
            failed = result.samples and result.samples[-1].code != 0
            if round_ < repeat and not failed:
                measure_once(result, make_cmd, args.work / "out" / kind)
    return LogRun(kind, title, info, results)


def table(run: LogRun) -> list[str]:
    events, size = run.info["events"], run.info["bytes"]
    base = run.get("tbrewrite convert")
    lines = [
        "| tool | runs | wall s (median) | events/s | MB/s | CPU s | cores used | peak RSS MB | × convert's time | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in run.results:
        if not r.ok:
            lines.append(f"| {r.tool} | {len(r.samples)} | failed | | | | | | | {r.note}; {r.detail()} |")
            continue
        walls = [s.wall for s in r.samples]
        spread = f" ({min(walls):.2f}–{max(walls):.2f})" if len(walls) > 1 else ""
        ratio = f"{r.wall / base.wall:.2f}" if base else ""
        extra = r.detail() if not r.tool.startswith("tbrewrite") and not r.tool.startswith("cp") else ""
        extra = extra.replace("|", "/")
        note = r.note + (f"; `{extra}`" if extra else "")
        lines.append(
            f"| {r.tool} | {len(r.samples)} | {r.wall:.2f}{spread} | {events / r.wall:,.0f} | {size / MB / r.wall:,.0f} "
            f"| {r.cpu:.2f} | {r.cpu / r.wall:.2f} | {r.rss_mb:.0f} | {ratio} | {note} |"
        )
    return lines


def machine() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        total = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{total / 1024 / 1024:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import google_crc32c
    from google.protobuf.internal import api_implementation

    versions = []
    for pkg in ("tbrewrite", "tensorboard", "protobuf", "google-crc32c", "tbparse", "pandas", "numpy", "tensorflow"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    commit = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src"], capture_output=True, text=True
    ).stdout.strip()
    return [
        f"- CPU: {os.cpu_count()} × {cpu} (`nproc` = {len(os.sched_getaffinity(0))}); {mem}; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {', '.join(versions)}; protobuf backend `{api_implementation.Type()}`, google-crc32c `{google_crc32c.implementation}`",
        f"- tbrewrite at commit `{commit}`" + (" (src/ has uncommitted changes)" if dirty else ""),
        f"- load average before the run: {LOAD_BEFORE}; after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared)",
    ]


LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())


def targets(runs: dict[str, LogRun], growth: list[tuple[str, float, float]]) -> list[str]:
    """Check the DESIGN.md targets against the figures; one line per target."""
    lines = []
    scalar = runs.get("scalar")
    if scalar and (conv := scalar.get("tbrewrite convert")):
        for name in ("TB loader script, no TF", "TB loader script, with TF"):
            if peer := scalar.get(name):
                x = peer.wall / conv.wall
                y = peer.cpu / conv.cpu
                lines.append(
                    f"- convert ≥ 10× faster than the {name} (scalar log): **{x:.1f}×** in wall time ({y:.1f}× in CPU time) → {'met' if x >= 10 else 'NOT met'}"
                )
        if floor := scalar.get("raw record copy (floor)"):
            x = conv.wall / floor.wall
            y = conv.cpu / floor.cpu
            lines.append(
                f"- convert within 2× of the raw record copy (scalar log): **{x:.2f}×** the copy's wall time ({y:.2f}× its CPU time) → {'met' if x <= 2 else 'NOT met'}"
            )
    large = runs.get("large")
    if large and (conv := large.get("tbrewrite convert")):
        size = large.info["bytes"]
        rate = size / conv.wall / 1e9
        lines.append(
            f"- ≥ 1 GB/s on the large-record log: **{rate:.2f} GB/s** ({size / 1e9:.2f} GB in {conv.wall:.2f} s) → {'met' if rate >= 1 else 'NOT met'}"
        )
        for name in ("cp -r", "cp -r + fsync"):
            if cp := large.get(name):
                x = conv.wall / cp.wall
                lines.append(
                    f"- within 3× of `{name}` on the large-record log: **{x:.2f}×** → {'met' if x <= 3 else 'NOT met'}"
                )
        gb = size / 1e9
        rss = conv.rss_mb
        lines.append(
            f"- peak RSS ≤ 200 MB on a {gb:.2f} GB log: **{rss:.0f} MB** → {'met' if rss <= 200 else 'NOT met'}"
            + ("" if gb >= 1 else " (log smaller than 1 GB; run without --quick)")
        )
    for label, small, big in growth:
        lines.append(
            f"- RSS flat as the log grows ({label}): {small:.0f} MB → {big:.0f} MB ({big / small:.2f}×) → {'met' if big <= small * 1.25 else 'NOT met'}"
        )
    tree = runs.get("tree")
    if tree:
        for name in ("tbrewrite convert", "tbrewrite rename"):
            if r := tree.get(name):
                cores = r.cpu / r.wall
                n = len(os.sched_getaffinity(0))
                lines.append(
                    f"- {name} on the {tree.info.get('runs')}-run tree uses every core: **{cores:.2f} of {n} cores busy** → {'met' if cores >= 0.8 * n else 'NOT met'}"
                )
    return lines


def write_results(path: Path, body: list[str]) -> None:
    block = "\n".join([BEGIN, *body, END])
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark tbrewrite against its peers.")
    parser.add_argument("--quick", action="store_true", help="small logs, one run each, no TF peers, no growth check")
    parser.add_argument(
        "--only", default="scalar,large,tree,growth", help="comma-separated subset of scalar,large,tree,growth"
    )
    parser.add_argument(
        "--scalar-events", type=int, default=None, help="events in the scalar-heavy log (default 400000; quick 100000)"
    )
    parser.add_argument(
        "--large-mb", type=int, default=None, help="MiB in the large-record log (default 1024; quick 256)"
    )
    parser.add_argument("--tree-runs", type=int, default=None, help="runs in the tree (default 1000; quick 200)")
    parser.add_argument(
        "--growth", type=int, default=4, help="the growth check converts a scalar log this many times larger"
    )
    parser.add_argument("--repeat", type=int, default=None, help="runs of each fast tool (default 3; quick 1)")
    parser.add_argument("--slow-repeat", type=int, default=1, help="runs of each slow peer (TB loader script, tbparse)")
    parser.add_argument(
        "--no-tf", dest="with_tf", action="store_false", help="skip the peer variants that import TensorFlow"
    )
    parser.add_argument(
        "--tree-peers", action=argparse.BooleanOptionalAction, default=True, help="run the TB loader script on the tree"
    )
    parser.add_argument(
        "--large-peers",
        action="store_true",
        help="run the TB loader script on the large-record log (slow: pure-Python CRC)",
    )
    parser.add_argument(
        "--work", type=Path, default=Path("/tmp/tbrewrite-bench"), help="where logs and outputs go (outside the repo)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the generated logs for the next run")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=True, help="update bench/RESULTS.md")
    args = parser.parse_args()
    q = args.quick
    args.scalar_events = args.scalar_events or (100_000 if q else 400_000)
    args.large_mb = args.large_mb or (256 if q else 1024)
    args.tree_runs = args.tree_runs or (200 if q else 1000)
    args.repeat = args.repeat or (1 if q else 3)
    if q:
        args.with_tf = False
    only = set(args.only.split(","))
    if q:
        only.discard("growth")
    work = args.work.resolve()
    if work == REPO or REPO in work.parents:
        parser.error("--work must be outside the repository")
    args.work = work
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rename = has_rename()
    print(f"tbrewrite rename {'found' if rename else 'not found (skipped)'}", flush=True)

    runs: dict[str, LogRun] = {}
    logs: list[Path] = []
    if "scalar" in only:
        src = work / "scalar"
        info = gen.scalar_log(src, args.scalar_events)
        logs.append(src)
        runs["scalar"] = bench_log("scalar", "Scalar-heavy Keras 3 log", src, info, args, rename)
    if "large" in only:
        src = work / "large"
        info = gen.large_log(src, args.large_mb)
        logs.append(src)
        runs["large"] = bench_log("large", "Large-record log (histograms + images)", src, info, args, rename)
    if "tree" in only:
        src = work / "tree"
        info = gen.run_tree(src, args.tree_runs)
        logs.append(src)
        runs["tree"] = bench_log("tree", f"Tree of {args.tree_runs} small Keras 3 runs", src, info, args, rename)

    growth: list[tuple[str, float, float]] = []
    growth_lines: list[str] = []
    if "growth" in only:
        print("\nRSS growth check", flush=True)
        measured = []
        scalar = runs.get("scalar")
        if scalar and (conv := scalar.get("tbrewrite convert")):
            measured.append((scalar.info, conv))
        n = args.scalar_events * args.growth
        src = work / f"growth-{n}"
        info = gen.scalar_log(src, n)
        logs.append(src)
        r = measure(
            f"convert {n} events", "", lambda o: [TBREWRITE, "convert", str(src), str(o)], work / "out" / "growth", 1
        )
        if r.ok:
            measured.append((info, r))
        if len(measured) == 2:
            (i1, r1), (i2, r2) = measured
            growth.append((f"scalar log {i1['bytes'] / MB:.0f} → {i2['bytes'] / MB:.0f} MB", r1.rss_mb, r2.rss_mb))
        for info, r in measured:
            growth_lines.append(
                f"| {info['events']:,} | {info['bytes'] / MB:.0f} | {r.wall:.2f} | {info['events'] / r.wall:,.0f} | {r.rss_mb:.0f} |"
            )
        large = runs.get("large")
        if large and (conv := large.get("tbrewrite convert")) and args.large_mb > 256:
            src = work / "growth-large"
            info = gen.large_log(src, 256)
            logs.append(src)
            r = measure(
                "convert large 256 MiB",
                "",
                lambda o: [TBREWRITE, "convert", str(src), str(o)],
                work / "out" / "growth",
                1,
            )
            if r.ok:
                growth.append(
                    (
                        f"large-record log {info['bytes'] / MB:.0f} → {large.info['bytes'] / MB:.0f} MB",
                        r.rss_mb,
                        conv.rss_mb,
                    )
                )

    elapsed = time.perf_counter() - started
    body = [
        f"Generated by `python bench/run.py {' '.join(sys.argv[1:])}`".rstrip()
        + f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the whole run took {elapsed:.0f} s.",
        "",
        "### Machine",
        "",
        *machine(),
        "",
        "MB = 10^6 bytes of input event files; events/s counts input records. `CPU s` is user + system",
        "time of the process and its children; `cores used` = CPU s / wall s. `× convert's time` > 1 means",
        "slower than `tbrewrite convert`. Warm page cache throughout.",
    ]
    if not rename:
        body += ["", "`tbrewrite rename` does not exist at this commit, so it was not measured."]
    for run in runs.values():
        body += [
            "",
            f"### {run.title}",
            "",
            f"{run.info['events']:,} events, {run.info['bytes'] / MB:.1f} MB in {run.info['files']} files (`bench/gen.py`, params `{json.dumps(run.info['params'])}`).",
            "",
            *table(run),
        ]
    if growth_lines:
        body += [
            "",
            "### Peak RSS of `convert` as the scalar log grows",
            "",
            "| events | MB | wall s | events/s | peak RSS MB |",
            "|---|---|---|---|---|",
            *growth_lines,
        ]
    body += ["", "### Targets (DESIGN.md)", "", *targets(runs, growth)]
    print("\n" + "\n".join(body))
    if args.write:
        write_results(BENCH / "RESULTS.md", body)
        print(f"\nwrote {BENCH / 'RESULTS.md'}")
    shutil.rmtree(work / "out", ignore_errors=True)
    if not args.keep_logs:
        for src in logs:
            shutil.rmtree(src, ignore_errors=True)
            src.with_name(src.name + ".json").unlink(missing_ok=True)


if __name__ == "__main__":
    main()

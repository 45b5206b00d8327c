"""Benchmark ``tbrewrite`` against the tools people use today, side by side, in one run.

Generates the logs of :mod:`gen` under a work folder (default ``/tmp/tbrewrite-bench``,
never inside the repository), runs every tool on each as a subprocess, and prints a
table per log; with ``--write`` (the default) it also replaces the generated part of
``bench/RESULTS.md`` (between the ``bench:begin``/``bench:end`` markers; text around
them is kept).

``tbrewrite``'s commands run once per engine (``TBREWRITE_ENGINE=native`` and ``=python``
in the subprocess's environment); beside them run the peers, the pure-Python raw record
copy and the native yardstick (``../shared/bench/native_floor.c``, compiled into the work
folder with ``cc``). The targets of issue 13 are checked at the end.

Each measurement is one subprocess reaped with ``os.wait4``: wall time
(``time.perf_counter`` around start and reap), CPU time (user + system of the process
and every descendant it waited for) and peak RSS (GNU ``time -f %M`` around the command:
the largest resident set of the process or of any descendant it waited for, so a process
pool counts its largest worker, not the sum). Fast tools run ``--repeat`` times and the
median wall time is reported; slow peers run ``--slow-repeat`` times; the tools take
turns (round robin), so a change in the shared machine's load hits all of them alike. All runs read a
warm page cache (the logs were just written or read); outputs go to a fresh path each
run and are deleted afterwards.

Usage::

    python bench/run.py                 # the full run (about 15 minutes on 2 cores)
    python bench/run.py --quick         # smaller logs, one run each, no TF peers
    python bench/run.py --only scalar --repeat 5 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import gen

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PY = sys.executable
TBREWRITE = str(Path(sys.executable).with_name("tbrewrite"))
FLOOR_SRC = REPO.parent / "shared" / "bench" / "native_floor.c"
"""The native yardstick (see the README beside it); compiled into the work folder."""
FIXTURE = REPO / "fixtures" / "keras3_run"
"""The tiny run the CLI start-up is measured on."""
ENGINES = ("native", "python")
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


RowCounter = Callable[[Sample], "int | None"]


@dataclass
class Tool:
    """One command to measure on one log."""

    name: str
    note: str
    make_cmd: Callable[[Path], list[str]]
    """Builds the command from a fresh output path (a folder or a file the tool creates)."""
    repeat: int
    env: dict[str, str] | None = None
    rows: RowCounter | None = None
    """Counts the rows (scalar points) the tool produced, from its output."""
    skip: str = ""
    """Why the tool is not run (shown in the table), or empty."""


@dataclass
class Result:
    """All runs of one tool on one log."""

    tool: str
    note: str
    samples: list[Sample] = field(default_factory=list)
    rows_of: RowCounter | None = None
    skip: str = ""

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

    @property
    def rows(self) -> int | None:
        return self.rows_of(self.samples[-1]) if self.rows_of and self.samples else None

    def detail(self) -> str:
        """The last stdout line (peers print a JSON summary) or stderr line, or the error."""
        last = self.samples[-1]
        if last.code != 0:
            lines = (last.stderr.strip() or last.stdout.strip()).splitlines()
            return f"exit {last.code}: {lines[-1] if lines else ''}"
        lines = (last.stdout.strip() or last.stderr.strip()).splitlines()
        return lines[-1] if lines else ""


TIME = "/usr/bin/time"
"""GNU time, if present, reports the peak RSS of the command alone (see :func:`run_once`)."""


def run_once(cmd: list[str], timeout: float = 1800, env: dict[str, str] | None = None) -> Sample:
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
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
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


def _remove(path: Path) -> None:
    """Delete ``path``, a folder or a file, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def measure_once(result: Result, tool: Tool, out: Path) -> None:
    """Run ``tool`` once and add the sample to ``result``.

    ``out`` is made a fresh, empty folder; the tool writes to ``out/result`` (a folder or
    a file it creates, or ``out/result.parquet``), and ``out`` is deleted afterwards.
    """
    _remove(out)
    out.mkdir(parents=True)
    sample = run_once(tool.make_cmd(out / "result"), env=tool.env)
    result.samples.append(sample)
    _remove(out)
    print(
        f"  {result.tool:<32} {sample.wall:8.2f} s  {sample.cpu:7.2f} s CPU  {sample.rss_kb / 1024:7.1f} MiB  exit {sample.code}",
        flush=True,
    )


def measure(tool: Tool, out: Path) -> Result:
    """Run ``tool`` ``tool.repeat`` times, each into a fresh ``out``."""
    result = Result(tool.name, tool.note, rows_of=tool.rows)
    for _ in range(tool.repeat):
        measure_once(result, tool, out)
        if result.samples[-1].code != 0:
            break
    return result


def engine_env(engine: str) -> dict[str, str]:
    """The environment that forces ``engine`` (``TBREWRITE_ENGINE``)."""
    return {**os.environ, "TBREWRITE_ENGINE": engine}


def engine_version(engine: str) -> str:
    """``tbrewrite --version`` with ``engine`` forced (it names the engine in use), or the error."""
    try:
        s = run_once([TBREWRITE, "--version"], timeout=60, env=engine_env(engine))
    except OSError as exc:
        return f"error: {exc}"
    text = (s.stdout.strip() or s.stderr.strip()).splitlines()
    line = text[-1] if text else ""
    return line if s.code == 0 else f"exit {s.code}: {line}"


def has_rename() -> bool:
    """Return True if this ``tbrewrite`` has a ``rename`` command."""
    try:
        return run_once([TBREWRITE, "rename", "--help"], timeout=60).code == 0
    except OSError:
        return False


def build_floor(work: Path) -> tuple[Path | None, str]:
    """Compile the native yardstick into ``work``; return its path (or None) and a note."""
    if not FLOOR_SRC.is_file():
        return None, f"skipped: {FLOOR_SRC} not found"
    cc = shutil.which("cc")
    if cc is None:
        return None, "skipped: no `cc` on the PATH"
    exe = work / "native_floor"
    cmd = [cc, "-O2", "-msse4.2", "-o", str(exe), str(FLOOR_SRC)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        return None, f"skipped: `cc` failed ({lines[-1] if lines else proc.returncode})"
    return exe, "`cc -O2 -msse4.2`"


def keras_split_shape(src: Path) -> str:
    """Return "" if ``src`` is what the yardstick handles (one event file each in train/ and validation/)."""
    for split in ("train", "validation"):
        files = [p for p in (src / split).glob("*") if "tfevents" in p.name] if (src / split).is_dir() else []
        if len(files) != 1:
            return f"{split}/ holds {len(files)} event files (the yardstick needs exactly one)"
    return ""


_EXPORTED = re.compile(r"exported (\d+) scalar values")


def export_rows(sample: Sample) -> int | None:
    """The row count ``tbrewrite export`` prints (``exported N scalar values``)."""
    m = _EXPORTED.search(sample.stdout + sample.stderr)
    return int(m.group(1)) if m else None


def tbparse_rows(sample: Sample) -> int | None:
    """``scalars_rows + tensors_rows`` from the JSON line ``peers/tbparse_read.py`` prints."""
    lines = sample.stdout.strip().splitlines()
    try:
        doc = json.loads(lines[-1])
    except (IndexError, ValueError):
        return None
    return int(doc.get("scalars_rows", 0)) + int(doc.get("tensors_rows", 0))


def tools_for(
    kind: str, src: Path, args: argparse.Namespace, rename: bool, floor: tuple[Path | None, str]
) -> list[Tool]:
    """Return the tools measured on one log."""
    rules = [a for r in RULES for a in ("--rule", r)]
    fast, slow = args.repeat, args.slow_repeat
    tools: list[Tool] = []
    for engine in args.engines:
        env = engine_env(engine)
        tools.append(
            Tool(
                f"tbrewrite convert ({engine})",
                f"CLI, TBREWRITE_ENGINE={engine}; train/+validation/ merged into one file",
                lambda o: [TBREWRITE, "convert", str(src), str(o)],
                fast,
                env,
            )
        )
        if rename:
            tools.append(
                Tool(
                    f"tbrewrite rename ({engine})",
                    f"CLI, TBREWRITE_ENGINE={engine}; --out mirror, 3 regex rules",
                    lambda o: [TBREWRITE, "rename", str(src), *rules, "--out", str(o)],
                    fast,
                    env,
                )
            )
    if kind == "scalar":
        for engine in args.engines:
            env = engine_env(engine)
            tools.append(
                Tool(
                    f"tbrewrite inspect ({engine})",
                    f"CLI, TBREWRITE_ENGINE={engine}; the tables to stdout",
                    lambda o: [TBREWRITE, "inspect", str(src)],
                    fast,
                    env,
                )
            )
            tools.append(
                Tool(
                    f"tbrewrite export parquet ({engine})",
                    f"CLI, TBREWRITE_ENGINE={engine}; `export SRC OUT.parquet`",
                    lambda o: [TBREWRITE, "export", str(src), str(o.with_suffix(".parquet"))],
                    fast,
                    env,
                    export_rows,
                )
            )
    if kind in ("scalar", "large"):
        exe, note = floor
        shape = keras_split_shape(src)
        skip = "" if exe else note
        if exe and shape:
            skip = f"skipped: {shape}"
        tools.append(
            Tool(
                "native yardstick",
                f"`native_floor RUN OUTFILE` ({note}): one pass, both CRCs, Keras retag, merge, fsync",
                lambda o: [str(exe), str(src), str(o)],
                fast,
                skip=skip,
            )
        )
    tools.append(
        Tool(
            "raw record copy (Python floor)",
            "framing + both CRCs, no protobuf, fsync",
            lambda o: [PY, str(BENCH / "peers" / "raw_copy.py"), str(src), str(o)],
            fast,
        )
    )
    splice = str(BENCH / "peers" / "splice_rename.py")
    tools.append(
        Tool(
            "splice sketch",
            "one pass, tags spliced into bytes, same rules",
            lambda o: [PY, splice, str(src), str(o), *rules],
            fast,
        )
    )
    if kind == "large":
        tools.append(Tool("cp -r", "no fsync", lambda o: ["cp", "-r", str(src), str(o)], fast))
        tools.append(
            Tool(
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
        Tool(
            "TB loader script, no TF",
            "EventFileLoader + EventFileWriter, stub reader",
            lambda o: [PY, loader, str(src), str(o), *rules],
            slow,
        )
    )
    if args.with_tf and kind == "scalar":
        tools.append(
            Tool(
                "TB loader script, with TF",
                "same, TensorFlow's C++ reader",
                lambda o: [PY, loader, str(src), str(o), "--with-tf", *rules],
                slow,
            )
        )
    if kind == "scalar":
        tools.append(
            Tool(
                "tbparse, no TF",
                "SummaryReader(...).scalars + .tensors",
                lambda o: [PY, tbparse, str(src)],
                slow,
                rows=tbparse_rows,
            )
        )
        if args.with_tf:
            tools.append(
                Tool(
                    "tbparse, with TF",
                    "same, TensorFlow's C++ reader",
                    lambda o: [PY, tbparse, str(src), "--with-tf"],
                    slow,
                    rows=tbparse_rows,
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


def run_tools(tools: list[Tool], out: Path) -> list[Result]:
    """Measure ``tools`` round robin (so a change in the machine's load hits every tool alike)."""
    results = [Result(t.name, t.note, rows_of=t.rows, skip=t.skip) for t in tools]
    for round_ in range(max((t.repeat for t in tools), default=0)):
        for result, tool in zip(results, tools, strict=True):
            failed = result.samples and result.samples[-1].code != 0
            if round_ < tool.repeat and not failed and not tool.skip:
                measure_once(result, tool, out)
    for result in results:
        if result.skip:
            print(f"  {result.tool:<32} {result.skip}", flush=True)
    return results


def bench_log(
    kind: str,
    title: str,
    src: Path,
    info: dict[str, object],
    args: argparse.Namespace,
    rename: bool,
    floor: tuple[Path | None, str],
) -> LogRun:
    print(f"\n{title}: {info['events']} events, {info['bytes'] / MB:.1f} MB in {info['files']} files", flush=True)
    tools = tools_for(kind, src, args, rename, floor)
    return LogRun(kind, title, info, run_tools(tools, args.work / "out" / kind))


def baseline(run: LogRun) -> Result | None:
    """The row the ``×`` column divides by: ``tbrewrite convert`` of the first engine measured."""
    for r in run.results:
        if r.tool.startswith("tbrewrite convert (") and r.ok:
            return r
    return None


def table(run: LogRun) -> list[str]:
    events, size = run.info["events"], run.info["bytes"]
    base = baseline(run)
    label = base.tool.replace("tbrewrite ", "") if base else "convert"
    lines = [
        f"| tool | runs | wall s (median) | events/s | rows/s | MB/s | CPU s | cores used | peak RSS MB | × {label}'s time | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in run.results:
        if r.skip:
            lines.append(f"| {r.tool} | 0 | skipped | | | | | | | | {r.note}; {r.skip} |")
            continue
        if not r.ok:
            lines.append(f"| {r.tool} | {len(r.samples)} | failed | | | | | | | | {r.note}; {r.detail()} |")
            continue
        walls = [s.wall for s in r.samples]
        spread = f" ({min(walls):.2f}–{max(walls):.2f})" if len(walls) > 1 else ""
        ratio = f"{r.wall / base.wall:.2f}" if base else ""
        rows = r.rows
        rows_s = f"{rows / r.wall:,.0f}" if rows is not None else ""
        extra = "" if r.tool.startswith(("tbrewrite", "cp")) else r.detail()
        if rows is not None and r.tool.startswith("tbrewrite export"):
            extra = f"{rows:,} rows"
        extra = extra.replace("|", "/")
        note = r.note + (f"; `{extra}`" if extra else "")
        lines.append(
            f"| {r.tool} | {len(r.samples)} | {r.wall:.2f}{spread} | {events / r.wall:,.0f} | {rows_s} "
            f"| {size / MB / r.wall:,.0f} | {r.cpu:.2f} | {r.cpu / r.wall:.2f} | {r.rss_mb:.0f} | {ratio} | {note} |"
        )
    return lines


def startup(args: argparse.Namespace) -> list[Result]:
    """``tbrewrite inspect`` on ``fixtures/keras3_run`` with each engine: the CLI's start-up cost."""
    print(f"\nCLI start-up: tbrewrite inspect {FIXTURE.relative_to(REPO)}", flush=True)
    tools = [
        Tool(
            f"tbrewrite inspect ({engine})",
            f"TBREWRITE_ENGINE={engine}",
            lambda o: [TBREWRITE, "inspect", str(FIXTURE)],
            max(args.repeat, 5),
            engine_env(engine),
        )
        for engine in args.engines
    ]
    return run_tools(tools, args.work / "out" / "startup")


def import_times(repeat: int = 3) -> tuple[float | None, list[tuple[str, float]]]:
    """``python -X importtime -c 'import tbrewrite.cli'``: total seconds, and where they go.

    Returns the median cumulative import time of ``tbrewrite.cli`` and, from the median
    run, the self time summed per top-level package (``stdlib`` for the standard library),
    largest first: the shares add up to the total.
    """
    pattern = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")
    runs: list[tuple[float, dict[str, float]]] = []
    for _ in range(repeat):
        proc = subprocess.run([PY, "-X", "importtime", "-c", "import tbrewrite.cli"], capture_output=True, text=True)
        if proc.returncode != 0:
            return None, []
        total = 0.0
        by_root: dict[str, float] = {}
        for line in proc.stderr.splitlines():
            m = pattern.match(line)
            if not m:
                continue
            name = m.group(3)
            if name == "tbrewrite.cli":
                total = int(m.group(2)) / 1e6
            root = name.split(".")[0]
            if root in sys.stdlib_module_names or root.startswith("_"):
                root = "stdlib"
            by_root[root] = by_root.get(root, 0.0) + int(m.group(1)) / 1e6
        runs.append((total, by_root))
    runs.sort(key=lambda r: r[0])
    total, by_root = runs[len(runs) // 2]
    return total, sorted(by_root.items(), key=lambda kv: -kv[1])[:8]


def machine(versions_of_engines: dict[str, str]) -> list[str]:
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
    for pkg in (
        "tbrewrite",
        "tensorboard",
        "protobuf",
        "google-crc32c",
        "pyarrow",
        "tbparse",
        "pandas",
        "numpy",
        "tensorflow",
    ):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    commit = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%h %s"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "src", "native"], capture_output=True, text=True
    ).stdout.strip()
    cc = "no cc"
    if shutil.which("cc"):
        cc = subprocess.run(["cc", "--version"], capture_output=True, text=True).stdout.split("\n", 1)[0] or cc
    engines = "; ".join(f"`TBREWRITE_ENGINE={e}` → `{v}`" for e, v in versions_of_engines.items())
    return [
        f"- CPU: {os.cpu_count()} × {cpu} (`nproc` = {len(os.sched_getaffinity(0))}); {mem}; {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}; {', '.join(versions)}; protobuf backend `{api_implementation.Type()}`, google-crc32c `{google_crc32c.implementation}`; {cc}",
        f"- engines: {engines}",
        f"- tbrewrite at commit `{commit[:160]}`"
        + (" (src/ or native/ has uncommitted changes: the tree is shared)" if dirty else ""),
        f"- load average before the run: {LOAD_BEFORE}; after: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared)",
    ]


LOAD_BEFORE = " ".join(f"{x:.2f}" for x in os.getloadavg())


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def targets(
    runs: dict[str, LogRun],
    growth: list[tuple[str, float, float]],
    start: list[Result],
) -> list[str]:
    """Check issue 13's targets against the figures; one line per target and command."""
    lines = []
    scalar = runs.get("scalar")
    if scalar:
        events = int(scalar.info["events"])
        floor = scalar.get("native yardstick")
        for cmd in ("convert", "rename"):
            r = scalar.get(f"tbrewrite {cmd} (native)")
            if not r:
                lines.append(f"- scalar log, `{cmd}` (native): not measured or failed → NOT met")
                continue
            if floor:
                x = r.wall / floor.wall
                lines.append(
                    f"- scalar log, `{cmd}` (native) within 2× of the native yardstick's wall time: **{x:.2f}×** "
                    f"({r.wall:.2f} s vs {floor.wall:.2f} s; CPU {r.cpu:.2f} s vs {floor.cpu:.2f} s) → {_met(x <= 2)}"
                )
            else:
                lines.append(f"- scalar log, `{cmd}` (native) within 2× of the native yardstick: yardstick not run")
            rate = events / r.wall
            lines.append(
                f"- scalar log, `{cmd}` (native) ≥ 2 M events/s: **{rate / 1e6:.2f} M events/s** "
                f"({events:,} events in {r.wall:.2f} s) → {_met(rate >= 2e6)}"
            )
        if r := scalar.get("tbrewrite inspect (native)"):
            rate = events / r.wall
            lines.append(
                f"- `inspect` (native, scalar log) ≥ 5 M events/s: **{rate / 1e6:.2f} M events/s** "
                f"({r.wall:.2f} s) → {_met(rate >= 5e6)}"
            )
        if (r := scalar.get("tbrewrite export parquet (native)")) and r.rows is not None:
            rate = r.rows / r.wall
            peers = []
            for name in ("tbparse, no TF", "tbparse, with TF"):
                if (p := scalar.get(name)) and p.rows:
                    peers.append(f"{name}: {p.rows / p.wall:,.0f} rows/s, {p.wall / r.wall:.0f}× slower")
            lines.append(
                f"- `export` to Parquet (native, scalar log) ≥ 2 M rows/s: **{rate / 1e6:.2f} M rows/s** "
                f"({r.rows:,} rows in {r.wall:.2f} s) → {_met(rate >= 2e6)}"
                + (f" ({'; '.join(peers)})" if peers else "")
            )
    large = runs.get("large")
    if large:
        size = int(large.info["bytes"])
        gb = size / 1e9
        conv = large.get("tbrewrite convert (native)")
        cp = large.get("cp -r + fsync")
        if conv and cp:
            x = conv.wall / cp.wall
            lines.append(
                f"- large-record log ({gb:.2f} GB), `convert` (native) within 1.5× of `cp -r` + fsync: **{x:.2f}×** "
                f"({conv.wall:.2f} s vs {cp.wall:.2f} s) → {_met(x <= 1.5)}"
                + ("" if size >= 512e6 else " (log smaller than the 512 MB the issue asks; run without --quick)")
            )
        for engine in ENGINES:
            for cmd in ("convert", "rename"):
                if r := large.get(f"tbrewrite {cmd} ({engine})"):
                    lines.append(
                        f"- peak RSS ≤ 100 MB on a 1 GB log, `{cmd}` ({engine}) on the {gb:.2f} GB log: "
                        f"**{r.rss_mb:.0f} MB** → {_met(r.rss_mb <= 100)}"
                        + ("" if gb >= 1 else " (log smaller than 1 GB; run without --quick)")
                    )
    for label, small, big in growth:
        lines.append(
            f"- RSS flat as the log grows ({label}): {small:.0f} MB → {big:.0f} MB ({big / small:.2f}×) → {_met(big <= small * 1.25)}"
        )
    tree = runs.get("tree")
    if tree:
        n = len(os.sched_getaffinity(0))
        for engine in ENGINES:
            for cmd in ("convert", "rename"):
                if r := tree.get(f"tbrewrite {cmd} ({engine})"):
                    cores = r.cpu / r.wall
                    lines.append(
                        f"- {tree.info.get('runs')}-run tree, `{cmd}` ({engine}) ≥ {0.9 * n:.1f} of {n} cores busy: "
                        f"**{cores:.2f}** ({r.cpu:.2f} s CPU in {r.wall:.2f} s) → {_met(cores >= 0.9 * n)}"
                    )
    for r in start:
        if r.ok:
            lines.append(
                f"- CLI start on a tiny run ≤ 0.3 s CPU, `{r.tool.replace('tbrewrite ', '')}` on "
                f"`{FIXTURE.relative_to(REPO)}`: **{r.cpu:.2f} s CPU** ({r.wall:.2f} s wall) → {_met(r.cpu <= 0.3)}"
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


def growth_check(
    args: argparse.Namespace, runs: dict[str, LogRun], logs: list[Path]
) -> tuple[list[tuple[str, float, float]], list[str]]:
    """Convert a scalar log ``--growth`` times larger (and a 256 MiB large-record log) with each engine."""
    print("\nRSS growth check", flush=True)
    work = args.work
    growth: list[tuple[str, float, float]] = []
    rows: list[str] = []
    n = args.scalar_events * args.growth
    big_src = work / f"growth-{n}"
    big_info = gen.scalar_log(big_src, n)
    logs.append(big_src)
    scalar = runs.get("scalar")
    large = runs.get("large")
    small_src = work / "growth-large"
    small_info: dict[str, object] | None = None
    if large and args.large_mb > 256:
        small_info = gen.large_log(small_src, 256)
        logs.append(small_src)
    for engine in args.engines:
        env = engine_env(engine)
        measured = []
        if scalar and (conv := scalar.get(f"tbrewrite convert ({engine})")):
            measured.append((scalar.info, conv))
        r = measure(
            Tool(
                f"convert {n} events ({engine})",
                "",
                lambda o: [TBREWRITE, "convert", str(big_src), str(o)],
                1,
                env,
            ),
            work / "out" / "growth",
        )
        if r.ok:
            measured.append((big_info, r))
        if len(measured) == 2:
            (i1, r1), (i2, r2) = measured
            growth.append(
                (
                    f"`convert` ({engine}), scalar log {i1['bytes'] / MB:.0f} → {i2['bytes'] / MB:.0f} MB",
                    r1.rss_mb,
                    r2.rss_mb,
                )
            )
        for info, r in measured:
            rows.append(
                f"| {engine} | scalar | {info['events']:,} | {info['bytes'] / MB:.0f} | {r.wall:.2f} | {info['events'] / r.wall:,.0f} | {r.rss_mb:.0f} |"
            )
        if small_info and large and (conv := large.get(f"tbrewrite convert ({engine})")):
            r = measure(
                Tool(
                    f"convert large 256 MiB ({engine})",
                    "",
                    lambda o: [TBREWRITE, "convert", str(small_src), str(o)],
                    1,
                    env,
                ),
                work / "out" / "growth",
            )
            if r.ok:
                growth.append(
                    (
                        f"`convert` ({engine}), large-record log {small_info['bytes'] / MB:.0f} → {large.info['bytes'] / MB:.0f} MB",
                        r.rss_mb,
                        conv.rss_mb,
                    )
                )
                for i, x in ((small_info, r), (large.info, conv)):
                    rows.append(
                        f"| {engine} | large-record | {i['events']:,} | {i['bytes'] / MB:.0f} | {x.wall:.2f} | {i['events'] / x.wall:,.0f} | {x.rss_mb:.0f} |"
                    )
    return growth, rows


def warm_bytecode() -> None:
    """Let the measured processes use cached bytecode, as an installed package does.

    ``pip install`` compiles a package's modules once; a shell with
    ``PYTHONDONTWRITEBYTECODE`` set (some CI and sandboxes) would make every run of the
    CLI compile tbrewrite's modules again, ~0.1 s of CPU that users do not pay.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([PY, "-m", "compileall", "-q", str(REPO / "src")], check=False, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark tbrewrite against its peers.")
    parser.add_argument("--quick", action="store_true", help="small logs, one run each, no TF peers, no growth check")
    parser.add_argument(
        "--only",
        default="scalar,large,tree,growth,startup",
        help="comma-separated subset of scalar,large,tree,growth,startup",
    )
    parser.add_argument(
        "--engines", default=",".join(ENGINES), help="comma-separated engines to measure (default native,python)"
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
    warm_bytecode()
    q = args.quick
    args.scalar_events = args.scalar_events or (100_000 if q else 400_000)
    args.large_mb = args.large_mb or (256 if q else 1024)
    args.tree_runs = args.tree_runs or (200 if q else 1000)
    args.repeat = args.repeat or (1 if q else 3)
    args.engines = [e for e in args.engines.split(",") if e]
    if unknown := set(args.engines) - set(ENGINES):
        parser.error(f"unknown engine(s): {', '.join(sorted(unknown))}")
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
    versions = {e: engine_version(e) for e in args.engines}
    for e, v in versions.items():
        print(f"TBREWRITE_ENGINE={e}: {v}", flush=True)
        if f"({e} engine)" not in v:
            print(
                f"  warning: the {e} engine does not answer as itself; its rows measure what runs instead", flush=True
            )
    floor = build_floor(work)
    print(f"native yardstick: {floor[0] or floor[1]}", flush=True)

    runs: dict[str, LogRun] = {}
    logs: list[Path] = []
    if "scalar" in only:
        src = work / "scalar"
        info = gen.scalar_log(src, args.scalar_events)
        logs.append(src)
        runs["scalar"] = bench_log("scalar", "Scalar-heavy Keras 3 log", src, info, args, rename, floor)
    if "large" in only:
        src = work / "large"
        info = gen.large_log(src, args.large_mb)
        logs.append(src)
        runs["large"] = bench_log("large", "Large-record log (histograms + images)", src, info, args, rename, floor)
    if "tree" in only:
        src = work / "tree"
        info = gen.run_tree(src, args.tree_runs)
        logs.append(src)
        runs["tree"] = bench_log("tree", f"Tree of {args.tree_runs} small Keras 3 runs", src, info, args, rename, floor)

    growth: list[tuple[str, float, float]] = []
    growth_rows: list[str] = []
    if "growth" in only:
        growth, growth_rows = growth_check(args, runs, logs)
    start: list[Result] = []
    imports: tuple[float | None, list[tuple[str, float]]] = (None, [])
    if "startup" in only:
        start = startup(args)
        imports = import_times()

    elapsed = time.perf_counter() - started
    body = [
        f"Generated by `python bench/run.py {' '.join(sys.argv[1:])}`".rstrip()
        + f" on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; the whole run took {elapsed:.0f} s.",
        "",
        "### Machine",
        "",
        *machine(versions),
        "",
        "MB = 10^6 bytes of input event files; events/s counts input records; rows/s counts the scalar",
        "points a reader returned (`export`: the count it prints; tbparse: `.scalars` + `.tensors` rows).",
        "`CPU s` is user + system time of the process and its children; `cores used` = CPU s / wall s.",
        "`× convert (native)'s time` > 1 means slower than `tbrewrite convert` with the native engine.",
        "`(native)` / `(python)`: the engine forced with `TBREWRITE_ENGINE`. The native yardstick is",
        "`../shared/bench/native_floor.c` (one Keras 3 split run → one file). Warm page cache throughout.",
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
    if growth_rows:
        body += [
            "",
            "### Peak RSS of `convert` as the log grows",
            "",
            "| engine | log | events | MB | wall s | events/s | peak RSS MB |",
            "|---|---|---|---|---|---|---|",
            *growth_rows,
        ]
    if start:
        body += [
            "",
            f"### CLI start-up: `tbrewrite inspect {FIXTURE.relative_to(REPO)}`",
            "",
            "| tool | runs | wall s (median) | CPU s (median) | peak RSS MB |",
            "|---|---|---|---|---|",
        ]
        for r in start:
            if r.ok:
                body.append(f"| {r.tool} | {len(r.samples)} | {r.wall:.2f} | {r.cpu:.2f} | {r.rss_mb:.0f} |")
            else:
                body.append(f"| {r.tool} | {len(r.samples)} | failed | | {r.detail()} |")
        total, top = imports
        if total is not None:
            heavy = ", ".join(f"{name} {t:.3f} s" for name, t in top)
            body += [
                "",
                f"`python -X importtime -c 'import tbrewrite.cli'`: **{total:.2f} s** (median of 3);"
                f" self time per top-level package: {heavy}.",
            ]
    body += ["", "### Targets (issue 13)", "", *targets(runs, growth, start)]
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

"""Peak memory of ``tbrewrite inspect --json`` on a generated ~1 GB log (target: <= 200 MB RSS).

Generates a Keras-3-shaped ``log_dir`` deterministically (seeded values, fixed wall times
from 1700000000.0): ``train/`` holds ``--files`` event files read as one stream, each with
per-batch ``batch_loss`` / ``batch_accuracy`` scalars (rank-0 float32 tensors with
``"scalars"`` metadata, as TF2 writes them), per-epoch ``epoch_*`` scalars and 8 weight
histograms of ``--histogram-kb`` KiB each (DT_DOUBLE tensors, ``"histograms"``
metadata), so most bytes are in large records and most events are small ones;
``validation/`` holds the epoch scalars. Records are framed with
:func:`tbrewrite.events.framing.encode_record`.

Then it runs ``tbrewrite inspect --json`` in a fresh interpreter, once on one file of the
log and once on the whole log, and reads each child's peak RSS with ``os.wait4``
(``ru_maxrss``, KiB on Linux): if memory is flat, both figures are about the same. With
``--repeated-steps N`` it also measures a generic run of N scalar events all at step 0
(what a PyTorch ``add_scalar`` without ``global_step`` writes), where every value counts
as a repeated step.

The log is written under ``--dir`` (default: a new folder in the system temp dir, never
the repository) and deleted afterwards.

Usage::

    .venv/bin/python bench/bench_inspect_memory.py [--gigabytes 1.0] [--files 8]
        [--repeated-steps 0] [--results bench/RESULTS-inspect.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2

from tbrewrite.events.framing import encode_record

WALL_TIME = 1700000000.0
BATCHES_PER_EPOCH = 100
HISTOGRAMS = [f"model/dense_{i}/{w}/histogram" for i in range(4) for w in ("kernel", "bias")]
TARGET_MB = 200


def _metadata(plugin: str) -> summary_pb2.SummaryMetadata:
    metadata = summary_pb2.SummaryMetadata()
    metadata.plugin_data.plugin_name = plugin
    return metadata


SCALARS = _metadata("scalars")
HISTOGRAM_META = _metadata("histograms")


def _event(
    tag: str, step: int, wall_time: float, tensor: tensor_pb2.TensorProto, metadata: summary_pb2.SummaryMetadata
) -> bytes:
    """Return one framed record: an Event with one tensor value (TF2 ``tf.summary`` style)."""
    event = event_pb2.Event(wall_time=wall_time, step=step)
    value = event.summary.value.add(tag=tag)
    value.metadata.CopyFrom(metadata)
    value.tensor.CopyFrom(tensor)
    return encode_record(event.SerializeToString())


def _scalar(x: float) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=struct.pack("<f", x))


def _histogram(rng: random.Random, rows: int) -> tensor_pb2.TensorProto:
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=rows), tensor_shape_pb2.TensorShapeProto.Dim(size=3)]
    )
    content = rng.randbytes(rows * 3 * 8)
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_DOUBLE, tensor_shape=shape, tensor_content=content)


def _header(wall_time: float) -> bytes:
    return encode_record(event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2").SerializeToString())


def generate(log_dir: Path, total_bytes: int, files: int, histogram_kb: int, seed: int = 0) -> dict[str, int]:
    """Write the log; return counts of files, events and bytes written."""
    rng = random.Random(seed)
    rows = max(1, histogram_kb * 1024 // 24)
    train, validation = log_dir / "train", log_dir / "validation"
    train.mkdir(parents=True)
    validation.mkdir()
    per_file = total_bytes // files
    written = events = 0
    epoch = batch = 0
    t = WALL_TIME
    val = open(validation / "events.out.tfevents.1700000000.bench.1.1.v2", "wb")
    val.write(_header(t))
    events += 1
    for n in range(files):
        name = f"events.out.tfevents.{int(t):010d}.bench.1.{n:04d}.v2"
        with open(train / name, "wb", buffering=1 << 20) as f:
            size = f.write(_header(t))
            events += 1
            while size < per_file:
                for _ in range(BATCHES_PER_EPOCH):
                    batch += 1
                    t += 0.01
                    for tag in ("batch_loss", "batch_accuracy"):
                        size += f.write(_event(tag, batch, t, _scalar(rng.random()), SCALARS))
                        events += 1
                for tag in ("epoch_loss", "epoch_accuracy", "epoch_learning_rate"):
                    size += f.write(_event(tag, epoch, t, _scalar(rng.random()), SCALARS))
                    events += 1
                for tag in HISTOGRAMS:
                    size += f.write(_event(tag, epoch, t, _histogram(rng, rows), HISTOGRAM_META))
                    events += 1
                for tag in ("epoch_loss", "epoch_accuracy"):
                    written += val.write(_event(tag, epoch, t, _scalar(rng.random()), SCALARS))
                    events += 1
                epoch += 1
            written += size
    val.close()
    return {"files": files + 1, "events": events, "bytes": written, "epochs": epoch}


def generate_repeated_steps(run: Path, count: int) -> int:
    """Write ``count`` scalar events all at step 0 (simple_value, as tensorboardX writes)."""
    run.mkdir(parents=True)
    with open(run / "events.out.tfevents.1700000000.bench", "wb", buffering=1 << 20) as f:
        size = f.write(_header(WALL_TIME))
        for i in range(count):
            event = event_pb2.Event(wall_time=WALL_TIME + i * 0.001, step=0)
            event.summary.value.add(tag="loss", simple_value=float(i % 97))
            size += f.write(encode_record(event.SerializeToString()))
    return size


def peak_rss_mb(*args: str) -> tuple[float, float, int]:
    """Run ``tbrewrite inspect --json ARGS`` in a fresh interpreter.

    Returns:
        (peak RSS in MiB, wall seconds, exit code).
    """
    code = "import sys; from tbrewrite.cli import main; sys.argv = ['tbrewrite', *sys.argv[1:]]; main()"
    start = time.perf_counter()
    with open(os.devnull, "wb") as devnull:
        child = subprocess.Popen([sys.executable, "-c", code, "inspect", "--json", *args], stdout=devnull)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    return usage.ru_maxrss / 1024, seconds, os.waitstatus_to_exitcode(status)


def machine() -> str:
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f", {int(line.split()[1]) // 1024} MiB RAM"
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{mem}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--histogram-kb", type=int, default=32)
    parser.add_argument("--repeated-steps", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write the log (default: a temp dir).")
    parser.add_argument("--results", type=Path, default=None, help="Write the figures to this Markdown file.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tbrewrite-bench-inspect-", dir=args.dir))
    rows = []
    try:
        log_dir = work / "logs"
        start = time.perf_counter()
        info = generate(log_dir, int(args.gigabytes * 1e9), args.files, args.histogram_kb)
        print(
            f"generated {info['bytes'] / 1e9:.3f} GB, {info['events']} events, {info['files']} files "
            f"in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
        baseline = peak_rss_mb("--help")
        one = next(iter(sorted((log_dir / "train").iterdir())))
        rows.append(("`tbrewrite --help` (interpreter + imports)", "-", baseline))
        rows.append((f"`inspect --json` one file ({one.stat().st_size / 1e6:.0f} MB)", "1 file", peak_rss_mb(str(one))))
        rows.append(
            (
                f"`inspect --json` whole log ({info['bytes'] / 1e9:.2f} GB)",
                f"{info['files']} files, {info['events']} events",
                peak_rss_mb(str(log_dir)),
            )
        )
        if args.repeated_steps:
            size = generate_repeated_steps(work / "repeated", args.repeated_steps)
            rows.append(
                (
                    f"`inspect --json` {args.repeated_steps} scalars all at step 0 ({size / 1e6:.0f} MB)",
                    "1 file",
                    peak_rss_mb(str(work / "repeated")),
                )
            )
    finally:
        shutil.rmtree(work)
    lines = [
        "| case | input | peak RSS (MiB) | wall time (s) | exit |",
        "|---|---|---|---|---|",
        *(f"| {case} | {what} | {rss:.0f} | {secs:.1f} | {code} |" for case, what, (rss, secs, code) in rows),
    ]
    whole = rows[2][2][0]
    verdict = (
        f"whole-log peak RSS {whole:.0f} MiB: {'within' if whole <= TARGET_MB else 'OVER'} the {TARGET_MB} MB target"
    )
    report = "\n".join([f"machine: {machine()}", "", *lines, "", verdict])
    print(report)
    if args.results:
        args.results.write_text(
            "# `tbrewrite inspect` peak memory\n\n"
            "Command: `.venv/bin/python bench/bench_inspect_memory.py "
            + " ".join(sys.argv[1:])
            + "`\n(peak RSS of each `tbrewrite inspect --json` child process, `os.wait4` `ru_maxrss`; "
            "the generated log is deleted afterwards).\n\n" + report + "\n"
        )


if __name__ == "__main__":
    main()

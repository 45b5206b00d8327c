"""Deterministic generators of the benchmark logs (the same bytes on every machine).

Three shapes, all written the way TensorFlow 2's C++ summary writer writes Keras 3 logs
(``fixtures/keras3_run`` is the model; ``../shared/FORMATS.md`` §2):

* **scalar-heavy** -- one Keras 3 ``log_dir`` with ``train/`` and ``validation/``: per
  batch ``batch_accuracy`` and ``batch_loss`` (step = global batch), per epoch
  ``epoch_accuracy``, ``epoch_loss``, ``epoch_learning_rate`` in ``train/`` and
  ``evaluation_{accuracy,loss}_vs_iterations`` + ``epoch_{accuracy,loss}`` in
  ``validation/``. Every value is a rank-0 float32 tensor (4 bytes of ``tensor_content``)
  carrying ``"scalars"`` plugin metadata on every event, one value per event, as TF2
  writes them. The train file also starts with the ``keras`` model-config summary.
* **large-record** -- the same layout with, per epoch, weight histograms (DT_DOUBLE
  ``[30, 3]``, ``"histograms"`` metadata) and weight images (DT_STRING ``[3]``:
  width, height, encoded image bytes of ``--image-kb`` KiB; ``"images"`` metadata), plus
  the epoch scalars: most bytes are in large records.
* **tree** -- ``runs`` small scalar-heavy Keras 3 runs ``run_0000/ ...``.

Records are framed here (masked CRC-32C via ``google_crc32c``), independently of
``tbrewrite``, so the benchmark does not test the code with itself. Values come from a
seeded :class:`random.Random`; wall times advance by fixed amounts from 1700000000.0.

Each generated folder gets a sibling ``<folder>.json`` describing it; generating again
with the same parameters reuses the folder.

Usage: ``python bench/gen.py scalar|large|tree OUT_DIR [--events N] [--megabytes N]
[--runs N] [--seed N]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import struct
from pathlib import Path

import google_crc32c
from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_shape_pb2, types_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.image import metadata as image_metadata

T0 = 1_700_000_000.0
HOST = "benchhost"
PID = 4242
BATCH_DT = 0.004
"""Seconds between two batch events."""
BATCHES_PER_EPOCH = 1000
EVENTS_PER_BATCH = 2
EVENTS_PER_EPOCH = 7
"""Epoch-end events: 3 in ``train/``, 4 in ``validation/``."""
WEIGHTS = ("model/dense/kernel", "model/dense/bias", "model/output/kernel", "model/output/bias")

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
_F32 = struct.Struct("<f")


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord."""
    header = _U64.pack(len(data))
    return header + _U32.pack(_masked_crc(header)) + data + _U32.pack(_masked_crc(data))


class _File:
    """An event file being written, counting events and bytes."""

    def __init__(self, path: Path, wall_time: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(path, "wb", buffering=1 << 20)
        self.events = 0
        self.bytes = 0
        head = event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
        head.source_metadata.writer = "tensorflow.core.util.events_writer"
        self.write(head.SerializeToString())

    def write(self, data: bytes) -> None:
        record = frame(data)
        self._f.write(record)
        self.events += 1
        self.bytes += len(record)

    def close(self) -> None:
        self._f.close()


_SCALAR_META = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
_SCALAR_SHAPE = tensor_shape_pb2.TensorShapeProto()


def _scalar(tag: str, step: int, wall_time: float, value: float) -> bytes:
    event = event_pb2.Event(wall_time=wall_time, step=step)
    v = event.summary.value.add(tag=tag)
    v.tensor.dtype = types_pb2.DT_FLOAT
    v.tensor.tensor_shape.CopyFrom(_SCALAR_SHAPE)
    v.tensor.tensor_content = _F32.pack(value)
    v.metadata.CopyFrom(_SCALAR_META)
    return event.SerializeToString()


def _model_config(wall_time: float) -> bytes:
    event = event_pb2.Event(wall_time=wall_time)
    v = event.summary.value.add(tag="keras")
    v.tensor.dtype = types_pb2.DT_STRING
    config = {"module": "keras", "class_name": "Sequential", "config": {"name": "bench_mlp"}}
    v.tensor.string_val.append(json.dumps(config).encode())
    v.metadata.plugin_data.plugin_name = "graph_keras_model"
    v.metadata.plugin_data.content = b"1"
    return event.SerializeToString()


def _keras_run(
    log_dir: Path,
    epochs: int,
    batches: int,
    rng: random.Random,
    *,
    epoch_extras=None,
) -> dict[str, int]:
    """Write one Keras 3 ``log_dir``; return its event and byte counts."""
    train = _File(log_dir / "train" / f"events.out.tfevents.{int(T0)}.{HOST}.{PID}.0.v2", T0)
    val = _File(log_dir / "validation" / f"events.out.tfevents.{int(T0) + 1}.{HOST}.{PID}.1.v2", T0 + 1)
    t = T0 + 0.5
    train.write(_model_config(t))
    step = 0
    loss, acc = 2.5, 0.1
    for epoch in range(epochs):
        for _ in range(batches):
            step += 1
            loss = max(0.01, loss * 0.9995 + rng.gauss(0.0, 0.01))
            acc = min(0.999, acc + (1.0 - acc) * 0.0005 + rng.gauss(0.0, 0.002))
            t += BATCH_DT
            train.write(_scalar("batch_accuracy", step, t, acc))
            train.write(_scalar("batch_loss", step, t + 0.0005, loss))
        t += 0.01
        for tag, value in (
            ("evaluation_accuracy_vs_iterations", acc * 0.97),
            ("evaluation_loss_vs_iterations", loss * 1.1),
        ):
            val.write(_scalar(tag, step, t, value))
            t += 0.001
        for tag, value in (
            ("epoch_accuracy", acc),
            ("epoch_loss", loss),
            ("epoch_learning_rate", 0.001 * 0.95**epoch),
        ):
            train.write(_scalar(tag, epoch, t, value))
            t += 0.001
        for tag, value in (("epoch_accuracy", acc * 0.97), ("epoch_loss", loss * 1.1)):
            val.write(_scalar(tag, epoch, t, value))
            t += 0.001
        if epoch_extras is not None:
            t = epoch_extras(train, epoch, t)
    train.close()
    val.close()
    return {"events": train.events + val.events, "bytes": train.bytes + val.bytes, "files": 2}


def _fresh(out: Path, params: dict[str, object]) -> dict[str, object] | None:
    """Return the stored description if ``out`` was generated with ``params``."""
    desc = out.with_name(out.name + ".json")
    if out.is_dir() and desc.is_file():
        stored = json.loads(desc.read_text())
        if stored.get("params") == params:
            return stored
    if out.exists():
        shutil.rmtree(out)
    if desc.exists():
        desc.unlink()
    return None


def _done(out: Path, params: dict[str, object], stats: dict[str, int]) -> dict[str, object]:
    info = {"params": params, **stats}
    out.with_name(out.name + ".json").write_text(json.dumps(info, indent=1) + "\n")
    return info


def scalar_log(out: str | os.PathLike[str], events: int = 400_000, seed: int = 1) -> dict[str, object]:
    """Generate the scalar-heavy Keras 3 log (at least ``events`` events) at ``out``.

    Returns:
        dict with ``params``, ``events``, ``bytes`` (total file bytes) and ``files``.
    """
    out = Path(out)
    params = {"kind": "scalar", "events": events, "seed": seed}
    if (stored := _fresh(out, params)) is not None:
        return stored
    per_epoch = BATCHES_PER_EPOCH * EVENTS_PER_BATCH + EVENTS_PER_EPOCH
    epochs = max(1, math.ceil(events / per_epoch))
    stats = _keras_run(out, epochs, BATCHES_PER_EPOCH, random.Random(seed))
    return _done(out, params, stats)


def _histogram(tag: str, epoch: int, wall_time: float, rng: random.Random) -> bytes:
    event = event_pb2.Event(wall_time=wall_time, step=epoch)
    v = event.summary.value.add(tag=tag)
    v.tensor.dtype = types_pb2.DT_DOUBLE
    v.tensor.tensor_shape.dim.add(size=30)
    v.tensor.tensor_shape.dim.add(size=3)
    left = rng.uniform(-1.0, -0.5)
    width = rng.uniform(0.01, 0.05)
    cells = []
    for i in range(30):
        cells += [left + i * width, left + (i + 1) * width, float(rng.randint(0, 100))]
    v.tensor.tensor_content = struct.pack("<90d", *cells)
    v.metadata.CopyFrom(histogram_metadata.create_summary_metadata(display_name="", description=""))
    return event.SerializeToString()


def _image(tag: str, epoch: int, wall_time: float, payload: bytes) -> bytes:
    event = event_pb2.Event(wall_time=wall_time, step=epoch)
    v = event.summary.value.add(tag=tag)
    v.tensor.dtype = types_pb2.DT_STRING
    v.tensor.tensor_shape.dim.add(size=3)
    v.tensor.string_val.extend([b"512", b"512", payload])
    v.metadata.CopyFrom(image_metadata.create_summary_metadata(display_name="", description=""))
    return event.SerializeToString()


def large_log(
    out: str | os.PathLike[str], megabytes: int = 1024, image_kb: int = 1024, seed: int = 2
) -> dict[str, object]:
    """Generate the large-record Keras 3 log (about ``megabytes`` MiB) at ``out``.

    Per epoch: the epoch scalars, one histogram per weight and one image per weight of
    ``image_kb`` KiB (random bytes; a PNG header, not a decodable image).
    """
    out = Path(out)
    params = {"kind": "large", "megabytes": megabytes, "image_kb": image_kb, "seed": seed}
    if (stored := _fresh(out, params)) is not None:
        return stored
    rng = random.Random(seed)
    pool = [b"\x89PNG\r\n\x1a\n" + rng.randbytes(image_kb * 1024 - 8) for _ in range(8)]
    per_epoch = len(WEIGHTS) * image_kb * 1024
    epochs = max(1, math.ceil(megabytes * (1 << 20) / per_epoch))

    def extras(train: _File, epoch: int, t: float) -> float:
        for name in WEIGHTS:
            train.write(_histogram(f"{name}/histogram", epoch, t, rng))
            t += 0.001
        for i, name in enumerate(WEIGHTS):
            payload = pool[(epoch + i) % len(pool)]
            stamp = struct.pack("<II", epoch, i)
            train.write(_image(f"{name}/image", epoch, t, payload[:8] + stamp + payload[16:]))
            t += 0.001
        return t

    stats = _keras_run(out, epochs, 10, rng, epoch_extras=extras)
    return _done(out, params, stats)


def run_tree(
    out: str | os.PathLike[str], runs: int = 1000, batches: int = 50, epochs: int = 2, seed: int = 3
) -> dict[str, object]:
    """Generate ``runs`` small Keras 3 runs ``out/run_0000 ...`` (``epochs`` x ``batches`` each)."""
    out = Path(out)
    params = {"kind": "tree", "runs": runs, "batches": batches, "epochs": epochs, "seed": seed}
    if (stored := _fresh(out, params)) is not None:
        return stored
    rng = random.Random(seed)
    total = {"events": 0, "bytes": 0, "files": 0}
    for r in range(runs):
        stats = _keras_run(out / f"run_{r:04d}", epochs, batches, rng)
        for k in total:
            total[k] += stats[k]
    return _done(out, params, {**total, "runs": runs})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("scalar", "large", "tree"))
    parser.add_argument("out", type=Path)
    parser.add_argument("--events", type=int, default=400_000, help="scalar: minimum events")
    parser.add_argument("--megabytes", type=int, default=1024, help="large: MiB")
    parser.add_argument("--image-kb", type=int, default=1024, help="large: KiB per image")
    parser.add_argument("--runs", type=int, default=1000, help="tree: runs")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = {} if args.seed is None else {"seed": args.seed}
    if args.kind == "scalar":
        info = scalar_log(args.out, args.events, **seed)
    elif args.kind == "large":
        info = large_log(args.out, args.megabytes, args.image_kb, **seed)
    else:
        info = run_tree(args.out, args.runs, **seed)
    print(json.dumps(info))


if __name__ == "__main__":
    main()

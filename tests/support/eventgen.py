"""Small synthetic event logs, byte-for-byte deterministic, written without ``tbrewrite``.

Only ``tensorboard.compat.proto`` messages and a TFRecord framing function (masked CRC-32C
via ``google_crc32c``) are used, so the same bytes come out on the release that pinned
``tests/data/same_bytes.json`` and on any later ``tbrewrite``. Wall times are fixed binary
fractions from ``T0``; values are closed-form (no randomness). ``tests/data/same_bytes.json``
records the sha256 of every generated file, so a change here shows up as "input changed",
not as a spurious output difference.

``generate(root)`` writes every input below ``root`` and returns their names:

* ``keras_split`` -- a Keras 3 ``log_dir``: ``train/`` (model config, ``batch_*`` at the
  global batch, ``epoch_*`` incl. ``epoch_learning_rate``, weight histograms),
  ``validation/`` (``evaluation_*_vs_iterations``, ``epoch_*``) and an hparams session
  start/end file in the ``log_dir`` itself. Scalars are rank-0 float32 tensors.
* ``keras_split_sidecar`` -- a tf.keras-style ``log_dir`` (``simple_value`` scalars, no plugin
  metadata) with ``learning_rate.csv`` (epoch rows) beside ``train/`` and ``validation/``.
* ``keras_flat`` -- a Keras 2 / TF1 folder: ``graph_def``, then per epoch ``val_loss``,
  ``val_acc``, ``loss``, ``acc``, ``lr`` (one ``simple_value`` per event) and a
  ``HistogramProto`` histogram.
* ``generic`` -- a tree of two PyTorch-``SummaryWriter``-like runs (``exp1``, ``exp2``):
  ``simple_value`` scalars without metadata, ``histo`` histograms, ``Summary.Image`` images, a
  text tensor.
* ``restarted`` -- a Keras 3 ``log_dir`` written by two processes (pids 100 and 200): the
  second resumes at epoch 3 and restarts the batch counter, so steps go backwards.
* ``collisions`` -- a Keras 3 ``log_dir`` whose ``train/``, ``validation/`` and root file all
  hold a ``keras`` model config, whose ``train/`` and ``validation/`` both hold the histogram
  ``dense/kernel_0/histogram`` and the image ``dense/kernel_0/image``, and whose ``train/``
  holds scalars for rename merges: ``loss_a`` / ``loss_b`` (disjoint steps) and ``acc_a`` /
  ``acc_b`` (overlapping steps).
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
from tensorboard.compat.proto import (
    event_pb2,
    graph_pb2,
    node_def_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)

T0 = 1_700_000_000.0
HOST = "genhost"

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

# HParamsPluginData{session_start_info{hparams{units: 16, optimizer: "adam"}, group_name: "g0",
# start_time_secs: 1700000000}} and {session_end_info{status: STATUS_SUCCESS,
# end_time_secs: 1700000100}}, serialized once with tensorboard.plugins.hparams and frozen here.
HPARAMS_START = (
    b"\x1a6\n\x12\n\x05units\x12\t\x11\x00\x00\x00\x00\x00\x000@\n\x13\n\toptimizer"
    b'\x12\x06\x1a\x04adam"\x02g0)\x00\x00\x00@\xfcT\xd9A'
)
HPARAMS_END = b'"\x0b\x08\x01\x11\x00\x00\x00Y\xfcT\xd9A'
FAKE_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
"""Image payload: a PNG signature and 64 fixed bytes (nothing here decodes it)."""


def _masked_crc(data: bytes) -> int:
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """Return ``data`` framed as one TFRecord (length, masked CRC, data, masked CRC)."""
    header = _U64.pack(len(data))
    return header + _U32.pack(_masked_crc(header)) + data + _U32.pack(_masked_crc(data))


# ---------------------------------------------------------------- values


def _meta(plugin: str, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content)
    )


def _shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def scalar_tensor(tag: str, x: float) -> summary_pb2.Summary.Value:
    """A TF2 ``tf.summary.scalar``: rank-0 float32 tensor, plugin ``scalars`` (every event)."""
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(), tensor_content=struct.pack("<f", x))
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=_meta("scalars"))


def simple(tag: str, x: float) -> summary_pb2.Summary.Value:
    """A TF1 / PyTorch scalar: ``simple_value``, no metadata."""
    return summary_pb2.Summary.Value(tag=tag, simple_value=x)


def histogram_tensor(tag: str, k: int) -> summary_pb2.Summary.Value:
    """A TF2 histogram: DT_DOUBLE ``[6, 3]`` (left, right, count), plugin ``histograms``."""
    rows = []
    for i in range(6):
        left = -1.5 + 0.5 * i + 0.0625 * k
        rows += [left, left + 0.5, float((i * 7 + k * 3) % 11)]
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_DOUBLE, tensor_shape=_shape(6, 3), tensor_content=struct.pack("<18d", *rows)
    )
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=_meta("histograms"))


def histo(tag: str, k: int) -> summary_pb2.Summary.Value:
    """A TF1 / PyTorch histogram: ``HistogramProto``."""
    limits = [-1.0 + 0.25 * i for i in range(9)]
    counts = [float((i * 5 + k) % 7) for i in range(9)]
    h = summary_pb2.HistogramProto(
        min=-1.0 + 0.125 * k,
        max=1.0 - 0.125 * k,
        num=sum(counts),
        sum=0.5 * k,
        sum_squares=3.25 + k,
        bucket_limit=limits,
        bucket=counts,
    )
    return summary_pb2.Summary.Value(tag=tag, histo=h)


def image(tag: str, k: int) -> summary_pb2.Summary.Value:
    """A TF1 / PyTorch image: ``Summary.Image``."""
    img = summary_pb2.Summary.Image(height=4, width=4 + k, colorspace=3, encoded_image_string=FAKE_PNG + bytes([k]))
    return summary_pb2.Summary.Value(tag=tag, image=img)


def image_tensor(tag: str, k: int) -> summary_pb2.Summary.Value:
    """A TF2 image: DT_STRING ``[3]`` (width, height, PNG), plugin ``images``."""
    t = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING, tensor_shape=_shape(3), string_val=[b"4", b"4", FAKE_PNG + bytes([k])]
    )
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=_meta("images", b"\x10\x03"))


def text(tag: str, s: str) -> summary_pb2.Summary.Value:
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(), string_val=[s.encode()])
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=_meta("text"))


def keras_config(name: str) -> summary_pb2.Summary.Value:
    config = f'{{"module": "keras", "class_name": "Sequential", "config": {{"name": "{name}", "layers": []}}}}'
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, tensor_shape=_shape(), string_val=[config.encode()])
    return summary_pb2.Summary.Value(tag="keras", tensor=t, metadata=_meta("graph_keras_model", b"1"))


def hparams(tag: str, content: bytes) -> summary_pb2.Summary.Value:
    t = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=_shape(0))
    return summary_pb2.Summary.Value(tag=tag, tensor=t, metadata=_meta("hparams", content))


def graph_def_bytes() -> bytes:
    g = graph_pb2.GraphDef(
        node=[
            node_def_pb2.NodeDef(name="input", op="Placeholder"),
            node_def_pb2.NodeDef(name="dense/MatMul", op="MatMul", input=["input", "dense/kernel"]),
            node_def_pb2.NodeDef(name="dense/kernel", op="VariableV2"),
        ]
    )
    return g.SerializeToString()


# ---------------------------------------------------------------- files


class EventFile:
    """An event file being built in memory; ``write()`` puts it on disk."""

    def __init__(self, path: Path, wall_time: float, tf2: bool = True) -> None:
        self.path = path
        self.records: list[bytes] = []
        e = event_pb2.Event(wall_time=wall_time, file_version="brain.Event:2")
        if tf2:  # TF2's C++ writer also names itself
            e.source_metadata.writer = "tensorflow.core.util.events_writer"
        self.records.append(e.SerializeToString())

    def summary(self, wall_time: float, step: int, *values: summary_pb2.Summary.Value) -> None:
        e = event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=list(values)))
        self.records.append(e.SerializeToString())

    def graph(self, wall_time: float) -> None:
        self.records.append(event_pb2.Event(wall_time=wall_time, graph_def=graph_def_bytes()).SerializeToString())

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_bytes(b"".join(frame(r) for r in self.records))


def _name(t: float, tail: str) -> str:
    return f"events.out.tfevents.{int(t)}.{HOST}{tail}"


def _loss(e: int, off: float = 0.0) -> float:
    return 1.0 / (e + 2) + off


def _keras3_process(
    log_dir: Path,
    t0: float,
    pid: int,
    epochs: range,
    first_batch: int,
    batches: int = 4,
    update_freq: int = 2,
    histograms: bool = True,
) -> None:
    """One Keras 3 ``fit`` process writing ``train/`` and ``validation/`` under ``log_dir``."""
    train = EventFile(log_dir / "train" / _name(t0, f".{pid}.0.v2"), t0)
    val = EventFile(log_dir / "validation" / _name(t0 + 1, f".{pid}.1.v2"), t0 + 1)
    t = t0 + 0.125
    train.summary(t, 0, keras_config("gen_mlp"))
    b = first_batch
    for e in epochs:
        for _ in range(batches):
            b += 1
            t += 0.25
            if b % update_freq == 0:
                train.summary(t, b, scalar_tensor("batch_accuracy", 0.5 + 0.03125 * (b % 8)))
                train.summary(t + 0.0625, b, scalar_tensor("batch_loss", _loss(e, 0.125 / b)))
        t += 0.5
        val.summary(t, b, scalar_tensor("evaluation_accuracy_vs_iterations", 0.5 + 0.0625 * e))
        val.summary(t + 0.0625, b, scalar_tensor("evaluation_loss_vs_iterations", _loss(e, 0.25)))
        val.summary(t + 0.125, e, scalar_tensor("epoch_accuracy", 0.5 + 0.0625 * e))
        val.summary(t + 0.1875, e, scalar_tensor("epoch_loss", _loss(e, 0.25)))
        t += 0.25
        train.summary(t, e, scalar_tensor("epoch_accuracy", 0.5 + 0.046875 * e))
        train.summary(t + 0.0625, e, scalar_tensor("epoch_learning_rate", 0.5 * 0.75 ** (e + 1)))
        train.summary(t + 0.125, e, scalar_tensor("epoch_loss", _loss(e)))
        if histograms:
            for i, w in enumerate(("gen_mlp/dense/kernel/histogram", "gen_mlp/dense/bias/histogram")):
                train.summary(t + 0.1875 + 0.0625 * i, e, histogram_tensor(w, e + i))
        t += 0.5
    train.write()
    val.write()


def keras_split(root: Path) -> None:
    log_dir = root / "keras_split"
    hp = EventFile(log_dir / _name(T0, ".4242.2.v2"), T0)
    hp.summary(T0 + 0.0625, 0, hparams("_hparams_/session_start_info", HPARAMS_START))
    _keras3_process(log_dir, T0, 4242, range(4), 0)
    hp.summary(T0 + 100.0, 0, hparams("_hparams_/session_end_info", HPARAMS_END))
    hp.write()


def keras_split_sidecar(root: Path) -> None:
    """tf.keras style: ``simple_value`` epoch scalars and a ``learning_rate.csv`` sidecar."""
    log_dir = root / "keras_split_sidecar"
    t0 = T0 + 500
    train = EventFile(log_dir / "train" / _name(t0, ".5151.0.v2"), t0)
    val = EventFile(log_dir / "validation" / _name(t0 + 1, ".5151.1.v2"), t0 + 1)
    rows = ["epoch,step,wall_time,learning_rate"]
    t = t0 + 0.5
    lrs = ("0.5", "0.25", "0.125", "0.0625")
    for e in range(4):
        rows.append(f"{e},{4 * (e + 1)},{t + 0.25!r},{lrs[e]}")
        t += 2.0
        val.summary(t, e, simple("epoch_loss", _loss(e, 0.25)))
        val.summary(t + 0.0625, e, simple("epoch_accuracy", 0.5 + 0.0625 * e))
        val.summary(t + 0.125, 4 * (e + 1), simple("evaluation_loss_vs_iterations", _loss(e, 0.25)))
        t += 0.25
        train.summary(t, e, simple("epoch_loss", _loss(e)))
        train.summary(t + 0.0625, e, simple("epoch_accuracy", 0.5 + 0.046875 * e))
    train.write()
    val.write()
    (log_dir / "learning_rate.csv").write_text("\n".join(rows) + "\n", encoding="ascii", newline="\n")


def keras_flat(root: Path) -> None:
    t0 = T0 + 1000
    f = EventFile(root / "keras_flat" / _name(t0, ""), t0, tf2=False)
    f.graph(t0 + 0.5)
    t = t0 + 1.0
    for e in range(5):
        t += 10.0
        f.summary(t, e, simple("val_loss", _loss(e, 0.25)))
        f.summary(t, e, simple("val_acc", 0.5 + 0.0625 * e))
        f.summary(t, e, simple("loss", _loss(e)))
        f.summary(t, e, simple("acc", 0.5 + 0.046875 * e))
        f.summary(t, e, simple("lr", 0.01))
        f.summary(t + 0.125, e, histo("dense_1/kernel_0", e))
    f.write()


def generic(root: Path) -> None:
    for n, t0 in ((1, T0 + 2000), (2, T0 + 2100)):
        f = EventFile(root / "generic" / f"exp{n}" / _name(t0, f".{700 + n}.0"), t0, tf2=False)
        t = t0 + 0.5
        for step in range(0, 60, 10):
            t += 0.25
            f.summary(t, step, simple("Loss/train", 2.0 / (step + 1 + n)))
            if step % 20 == 0:
                f.summary(t + 0.0625, step, simple("Loss/test", 2.5 / (step + 1 + n)))
                f.summary(t + 0.125, step, simple("Accuracy/test", 0.25 + step / 128))
                f.summary(t + 0.1875, step, histo("fc1.weight", step // 10 + n))
                f.summary(t + 0.1875, step, histo("fc1.bias", step // 10))
                f.summary(t + 0.25, step, image("samples", step // 10 + n))
        f.summary(t + 1.0, 0, text("notes", f"experiment {n}: deterministic"))
        f.write()


def restarted(root: Path) -> None:
    log_dir = root / "restarted"
    _keras3_process(log_dir, T0 + 3000, 100, range(5), 0, batches=3, update_freq=1, histograms=False)
    _keras3_process(log_dir, T0 + 3100, 200, range(3, 7), 0, batches=3, update_freq=1, histograms=False)


def collisions(root: Path) -> None:
    log_dir = root / "collisions"
    t0 = T0 + 4000
    rootf = EventFile(log_dir / _name(t0, ".9.2.v2"), t0)
    rootf.summary(t0 + 0.0625, 0, keras_config("root_model"))
    rootf.write()
    train = EventFile(log_dir / "train" / _name(t0, ".9.0.v2"), t0)
    val = EventFile(log_dir / "validation" / _name(t0, ".9.1.v2"), t0)
    train.summary(t0 + 0.125, 0, keras_config("m"))
    val.summary(t0 + 0.1875, 0, keras_config("m"))
    t = t0 + 1.0
    for e in range(6):
        t += 1.0
        train.summary(t, e, scalar_tensor("epoch_loss", _loss(e)))
        train.summary(t + 0.0625, e, histogram_tensor("dense/kernel_0/histogram", e))
        train.summary(t + 0.125, e, image_tensor("dense/kernel_0/image", e))
        train.summary(t + 0.1875, e, scalar_tensor("loss_a" if e < 3 else "loss_b", _loss(e, 0.5)))
        if e < 4:
            train.summary(t + 0.25, e, scalar_tensor("acc_a", 0.5 + 0.0625 * e))
        if e >= 2:
            train.summary(t + 0.3125, e, scalar_tensor("acc_b", 0.25 + 0.0625 * e))
        val.summary(t + 0.5, e, scalar_tensor("epoch_loss", _loss(e, 0.25)))
        val.summary(t + 0.5625, e, histogram_tensor("dense/kernel_0/histogram", e + 1))
        val.summary(t + 0.625, e, image_tensor("dense/kernel_0/image", e + 1))
    train.write()
    val.write()


GENERATORS = {
    "keras_split": keras_split,
    "keras_split_sidecar": keras_split_sidecar,
    "keras_flat": keras_flat,
    "generic": generic,
    "restarted": restarted,
    "collisions": collisions,
}


def generate(root: Path) -> list[str]:
    """Write every input under ``root`` (which must not hold them yet); return their names."""
    for fn in GENERATORS.values():
        fn(root)
    return list(GENERATORS)

"""A small logdir holding every kind, TF1 and TF2 forms, built from TensorBoard's protos (``tbrewrite.frames`` tests)."""

from __future__ import annotations

import struct
import wave
from io import BytesIO
from pathlib import Path

from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
from tensorboard.plugins.hparams import plugin_data_pb2

from support.events import T0, file_version, graph, metadata, simple, summary, tensor, write

DT_DOUBLE, DT_STRING, DT_INT32 = 2, 7, 3
PNG = b"\x89PNG\r\n\x1a\n" + b"rest"


def shape(*dims: int) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in dims])


def strings(*items: bytes, dims: tuple[int, ...] | None = None) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(dtype=DT_STRING, tensor_shape=shape(*(dims or (len(items),))), string_val=list(items))


def value(tag: str, plugin: str, t: tensor_pb2.TensorProto | None = None, **kw: object) -> summary_pb2.Summary.Value:
    v = summary_pb2.Summary.Value(tag=tag, metadata=metadata(plugin, **kw))  # type: ignore[arg-type]
    if t is not None:
        v.tensor.CopyFrom(t)
    return v


def wav(rate: int = 8000, frames: int = 10, channels: int = 2) -> bytes:
    out = BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * channels * frames)
    return out.getvalue()


def hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    return value(tag, "hparams", content=data.SerializeToString())


def write_every_kind(tmp_path: Path) -> Path:
    """Every kind in TF1 and TF2 form in run ``a``; hparams sessions ``s1``, ``s2``; a graph; a stray file."""
    hist2 = tensor_pb2.TensorProto(
        dtype=DT_DOUBLE, tensor_shape=shape(2, 3), tensor_content=struct.pack("<6d", 0, 1, 3, 1, 2, 4)
    )
    histo = summary_pb2.HistogramProto(
        min=-1, max=5, num=3, sum=4, sum_squares=26, bucket_limit=[0, 2, 9], bucket=[1, 0, 2]
    )
    raw = tensor_pb2.TensorProto(dtype=DT_INT32, tensor_shape=shape(2), int_val=[7, 8])
    records = [
        file_version(),
        graph(T0),
        summary(T0 + 1, 1, tensor("loss", 0.5, metadata("scalars"))),
        summary(T0 + 2, 1, value("h2", "histograms", hist2)),
        summary(T0 + 3, 2, summary_pb2.Summary.Value(tag="h1", histo=histo), simple("acc", 0.25)),
        summary(T0 + 4, 2, value("img", "images", strings(b"5", b"4", PNG, b"GIF89a..."))),
        summary(
            T0 + 5,
            3,
            summary_pb2.Summary.Value(
                tag="im1", image=summary_pb2.Summary.Image(width=3, height=2, colorspace=3, encoded_image_string=PNG)
            ),
        ),
        summary(T0 + 6, 3, value("aud", "audio", strings(wav(), b"label", dims=(1, 2)))),
        summary(
            T0 + 7,
            4,
            summary_pb2.Summary.Value(
                tag="au1",
                audio=summary_pb2.Summary.Audio(
                    sample_rate=16000,
                    num_channels=1,
                    length_frames=5,
                    encoded_audio_string=b"RIFF",
                    content_type="audio/wav",
                ),
            ),
        ),
        summary(T0 + 8, 4, value("note/text_summary", "text", strings(b"h\xc3\xa9llo", dims=(1,)))),
        summary(T0 + 9, 5, value("raw", "", raw)),
        summary(T0 + 10, 5, value("pr", "pr_curves", raw)),
        summary(T0 + 11, 6, summary_pb2.Summary.Value(tag="weird", simple_value=1.0, metadata=metadata("custom"))),
    ]
    write(tmp_path / "a" / "events.out.tfevents.1.host", records)
    experiment = plugin_data_pb2.HParamsPluginData()
    experiment.experiment.metric_infos.add().name.tag = "acc"
    write(
        tmp_path / "events.out.tfevents.0.host",
        [file_version(), summary(T0, 0, hparams_value("_hparams_/experiment", experiment))],
    )
    for i, (lr, opt) in enumerate(((0.1, "adam"), (0.01, "sgd")), 1):
        start = plugin_data_pb2.HParamsPluginData()
        start.session_start_info.hparams["lr"].number_value = lr
        start.session_start_info.hparams["opt"].string_value = opt
        write(
            tmp_path / f"s{i}" / "events.out.tfevents.2.host",
            [
                file_version(),
                summary(T0, 0, hparams_value("_hparams_/session_start_info", start)),
                summary(T0 + 1, 0, simple("acc", 0.5 * i)),
                summary(T0 + 2, 1, simple("acc", 0.6 * i)),
            ],
        )
    (tmp_path / "a" / "notes.txt").write_text("x")
    return tmp_path

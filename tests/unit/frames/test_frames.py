"""``tbrewrite.frames``: each kind's decoder on hand-built values, filters, left-out reasons, both engines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto import tensor_pb2

from support.events import T0, file_version, simple, summary, write
from support.every_kind import DT_DOUBLE, PNG, shape, strings, value, wav, write_every_kind
from tbrewrite import read
from tbrewrite.errors import UsageError
from tbrewrite.frames import histogram_buckets, histograms, media
from tbrewrite.frames.filters import Filters, parse_kinds, parse_steps


@pytest.fixture(params=["native", "python"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TBREWRITE_ENGINE", request.param)
    return str(request.param)


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return write_every_kind(tmp_path)


def test_every_kind(logdir: Path, engine: str) -> None:
    frames = read(logdir)
    assert frames.scalars[["run", "tag", "step", "value"]].values.tolist() == [
        ["a", "loss", 1, 0.5],
        ["a", "acc", 2, 0.25],
        ["s1", "acc", 0, 0.5],
        ["s1", "acc", 1, pytest.approx(0.6)],
        ["s2", "acc", 0, 1.0],
        ["s2", "acc", 1, pytest.approx(1.2)],
    ]
    h = frames.histograms.set_index("tag")
    assert h.loc["h2", "limits"].tolist() == [0, 1, 2] and h.loc["h2", "counts"].tolist() == [0, 3, 4]
    assert (h.loc["h2", "min"], h.loc["h2", "max"], h.loc["h2", "num"]) == (0, 2, 7)
    assert math.isnan(h.loc["h2", "sum"])
    assert h.loc["h1", "limits"].tolist() == [0, 2, 9] and h.loc["h1", "counts"].tolist() == [1, 0, 2]
    assert (h.loc["h1", "min"], h.loc["h1", "max"], h.loc["h1", "sum"], h.loc["h1", "sum_squares"]) == (-1, 5, 4, 26)
    buckets = histogram_buckets(frames.histograms)
    assert buckets[buckets.tag == "h1"][["left", "right", "count"]].values.tolist() == [
        [-1, 0, 1],
        [0, 2, 0],
        [2, 5, 2],
    ]
    assert buckets[buckets.tag == "h2"][["left", "right", "count"]].values.tolist() == [[0, 1, 3], [1, 2, 4]]
    images = frames.images
    assert images[["tag", "index", "width", "height", "format"]].values.tolist() == [
        ["img", 0, 5, 4, "png"],
        ["img", 1, 5, 4, "gif"],
        ["im1", 0, 3, 2, "png"],
    ]
    assert images.value.tolist() == [PNG, b"GIF89a...", PNG]
    audio = frames.audio
    assert audio[["tag", "sample_rate", "num_channels", "length_frames", "content_type", "label"]].values.tolist() == [
        ["aud", 8000.0, 2, 10, "audio/wav", "label"],
        ["au1", 16000.0, 1, 5, "audio/wav", ""],
    ]
    assert frames.text[["tag", "value"]].values.tolist() == [["note", "héllo"]]
    tensors = frames.tensors
    assert tensors[["tag", "dtype", "shape", "plugin"]].values.tolist() == [
        ["raw", "int32", (2,), ""],
        ["pr", "int32", (2,), "pr_curves"],
    ]
    assert tensors.value[0].tolist() == [7, 8]
    assert frames.hparams.to_dict("list") == {
        "run": ["s1", "s2"],
        "lr": [0.1, 0.01],
        "opt": ["adam", "sgd"],
        "acc": [pytest.approx(0.6), pytest.approx(1.2)],
    }
    assert [(x.what, x.reason, x.count, x.examples) for x in frames.left_out] == [
        ("files", "not an event file (its name has no 'tfevents')", 1, ["a/notes.txt"]),
        ("graphs", "a GraphDef is a graph, not a table (TensorBoard's Graphs dashboard)", 1, ["a"]),
        ("scalars", "a simple_value under the plugin 'custom', not a scalar of the Scalars dashboard", 1, ["weird"]),
    ]


def test_kinds_not_asked_for_are_counted(logdir: Path, engine: str) -> None:
    frames = read(logdir / "a", kinds="text")
    assert len(frames.text) == 1 and frames.scalars.empty and frames.images.empty
    counted = {x.what: (x.count, x.reason) for x in frames.left_out}
    assert counted["images"] == (2, "not asked for")  # values (one holds two images)
    assert counted["scalars"] == (2, "not asked for")
    assert counted["tensors"] == (2, "not asked for")
    assert counted["histograms"] == (2, "not asked for")


def test_pivot_is_wide_and_keeps_repeated_steps_as_lists(tmp_path: Path) -> None:
    write(
        tmp_path / "events.out.tfevents.1.h",
        [
            file_version(),
            *(
                summary(T0 + i, s, simple(t, x))
                for i, (s, t, x) in enumerate([(0, "a", 1.0), (0, "b", 2.0), (1, "a", 3.0), (1, "a", 4.0)])
            ),
        ],
    )
    wide = read(tmp_path, kinds="scalars", pivot=True).scalars
    assert list(wide.columns) == ["run", "step", "a", "b"]
    assert wide.a.tolist() == [1.0, [3.0, 4.0]]


def test_media_helpers() -> None:
    assert media.image_format(b"\xff\xd8\xff\xe0") == "jpeg" and media.image_format(b"xyz") == ""
    assert media.wav_info(wav(22050, 7, 1)) == (22050.0, 1, 7)
    assert media.wav_info(b"RIFF....WAVEjunk") == (0.0, 0, 0)
    with pytest.raises(ValueError, match="not \\[2 \\+ k\\] strings"):
        media.images_from_tensor(strings(b"1", dims=(1,)))
    with pytest.raises(ValueError, match="not \\[k, 3\\]"):
        histograms.from_tensor(tensor_pb2.TensorProto(dtype=DT_DOUBLE, tensor_shape=shape(2), double_val=[1, 2]))


def test_a_value_that_does_not_decode_as_its_kind_is_left_out_with_the_reason(tmp_path: Path, engine: str) -> None:
    bad = value("h", "histograms", tensor_pb2.TensorProto(dtype=DT_DOUBLE, tensor_shape=shape(2), double_val=[1, 2]))
    write(tmp_path / "events.out.tfevents.1.h", [file_version(), summary(T0, 0, bad)])
    frames = read(tmp_path)
    assert frames.histograms.empty
    assert [(x.what, x.reason) for x in frames.left_out] == [
        ("histograms", "does not decode as its kind says (a histogram tensor of shape [2], not [k, 3])")
    ]


def test_filters() -> None:
    assert parse_kinds(None) == parse_kinds("all") == parse_kinds(["scalars", "all"])
    assert parse_kinds("text, scalars") == ("scalars", "text")
    with pytest.raises(UsageError, match="unknown kind graphs; expected all or scalars"):
        parse_kinds("graphs")
    assert (
        parse_steps("5") == slice(5, 6)
        and parse_steps("10:") == slice(10, None)
        and parse_steps("::3") == slice(None, None, 3)
    )
    with pytest.raises(UsageError, match="--steps 'x'"):
        parse_steps("x")
    f = Filters.make("^val/", range(0, 10, 5))
    assert [f.step(s) for s in (0, 3, 5, 10)] == [True, False, True, False]
    assert f.step_mask(np.array([0, 3, 5, 10])).tolist() == [True, False, True, False]
    assert f.tag("val/loss") and not f.tag("train/loss")
    with pytest.raises(UsageError, match="not a regular expression"):
        Filters.make("(", None)
    with pytest.raises(UsageError, match="stride must be positive"):
        Filters.make(None, slice(0, 5, -1))


def test_a_url_is_read_through_object_storage(logdir: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    for path in logdir.rglob("*"):
        if path.is_file():
            fs.pipe(f"/frames-test/{path.relative_to(logdir).as_posix()}", path.read_bytes())
    try:
        frames = read("memory://frames-test", kinds="scalars,images")
    finally:
        fs.rm("/frames-test", recursive=True)
    local = read(logdir, kinds="scalars,images")
    assert frames.scalars.drop(columns="wall_time").equals(local.scalars.drop(columns="wall_time"))
    assert frames.images.value.tolist() == local.images.value.tolist()

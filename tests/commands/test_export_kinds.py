"""``export --kind``: every kind into a folder of tables and media files, with what was left out and why."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from support.every_kind import PNG, write_every_kind
from tbrewrite import read
from tbrewrite.cli import app

runner = CliRunner()


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    return write_every_kind(tmp_path / "logs")


def test_export_all_to_parquet(logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(logdir), str(out), "--kind", "all"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"exported 6 scalars rows to {out}/scalars.parquet",
        f"exported 2 histograms rows to {out}/histograms.parquet",
        f"exported 3 images rows, 3 files to {out}/images.parquet",
        f"exported 2 audio rows, 2 files to {out}/audio.parquet",
        f"exported 1 text rows to {out}/text.parquet",
        f"exported 2 hparams rows to {out}/hparams.parquet",
        "left out 1 files (not an event file (its name has no 'tfevents')): a/notes.txt",
        "left out 1 graphs (a GraphDef is a graph, not a table (TensorBoard's Graphs dashboard)): a",
        "left out 1 scalars (a simple_value under the plugin 'custom', not a scalar of the Scalars dashboard): weird",
        "left out 2 tensors (tensors have no export table (shapes and types vary); "
        "tbrewrite.read(PATH, kinds='tensors') returns them): raw (no plugin), pr (pr_curves)",
    ]
    frames = read(logdir)
    assert pd.read_parquet(out / "scalars.parquet").equals(frames.scalars)
    images = pd.read_parquet(out / "images.parquet")
    assert images.path.tolist() == ["images/a/img/2.png", "images/a/img/2_1.gif", "images/a/im1/3.png"]
    assert [(out / p).read_bytes() for p in images.path] == frames.images.value.tolist()
    assert images.bytes.tolist() == [len(PNG), 9, len(PNG)]
    audio = pd.read_parquet(out / "audio.parquet")
    assert audio.path.tolist() == ["audio/a/aud/3.wav", "audio/a/au1/4.wav"]
    histograms = pd.read_parquet(out / "histograms.parquet")
    assert [list(x) for x in histograms.limits] == [list(x) for x in frames.histograms.limits]
    buckets = pd.read_parquet(out / "histogram_buckets.parquet")
    assert buckets.equals(frames.histogram_buckets)
    assert pd.read_parquet(out / "text.parquet").value.tolist() == ["héllo"]
    assert pd.read_parquet(out / "hparams.parquet").to_dict("list") == {
        "run": ["s1", "s2"],
        "lr": [0.1, 0.01],
        "opt": ["adam", "sgd"],
        "acc": [pytest.approx(0.6), pytest.approx(1.2)],
    }
    summary = json.loads((out / "export_summary.json").read_text())
    assert [k["kind"] for k in summary["exported"]] == ["scalars", "histograms", "images", "audio", "text", "hparams"]
    assert {x["what"] for x in summary["left_out"]} == {"files", "graphs", "scalars", "tensors"}
    assert not list(tmp_path.glob(".*tbrewrite*"))


def test_export_some_kinds_to_csv_names_the_others_not_asked_for(logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(logdir), str(out), "--kind", "histograms,text", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "export_summary.json",
        "histogram_buckets.csv",
        "histograms.csv",
        "text.csv",
    ]
    assert list(pd.read_csv(out / "histograms.csv").columns) == [
        "run",
        "tag",
        "step",
        "wall_time",
        "min",
        "max",
        "num",
        "sum",
        "sum_squares",
    ]
    assert pd.read_csv(out / "histogram_buckets.csv")[["left", "right", "count"]].values.tolist()[:3] == [
        [0, 1, 3],
        [1, 2, 4],
        [-1, 0, 1],
    ]
    assert "left out 2 images (not asked for (--kind)): img, im1" in result.stdout
    assert "left out 6 scalars (not asked for (--kind))" in result.stdout


def test_one_table_kind_to_a_file_with_filters(logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "acc.csv"
    result = runner.invoke(
        app, ["export", str(logdir), str(out), "--kind", "scalars", "--tags", "^acc$", "--steps", "1:"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == f"exported 3 scalar values to {out}\n"
    table = pd.read_csv(out)
    assert table[["run", "step"]].values.tolist() == [["a", 2], ["s1", 1], ["s2", 1]]
    result = runner.invoke(app, ["export", str(logdir), str(tmp_path / "text.parquet"), "--kind", "text"])
    assert result.exit_code == 0 and pd.read_parquet(tmp_path / "text.parquet").value.tolist() == ["héllo"]


def test_errors(logdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(logdir), str(tmp_path / "h.parquet"), "--kind", "histograms"])
    assert result.exit_code == 1
    assert "--kind histograms writes a folder of tables; give OUT without a .csv/.parquet suffix" in result.stderr
    result = runner.invoke(app, ["export", str(logdir), str(tmp_path / "t"), "--kind", "tensors"])
    assert result.exit_code == 1 and "export has no table for tensors" in result.stderr
    result = runner.invoke(app, ["export", str(logdir), str(tmp_path / "t"), "--kind", "graphs"])
    assert result.exit_code == 2 and "unknown kind graphs" in result.stderr
    result = runner.invoke(app, ["export", str(logdir), str(tmp_path / "t"), "--kind", "text", "--steps", "a:b"])
    assert result.exit_code == 2 and "--steps 'a:b'" in result.stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["export", str(logdir), str(other), "--kind", "text", "--force"])
    assert result.exit_code == 1 and "a folder that is not an earlier export" in result.stderr
    assert (other / "keep.txt").read_text() == "mine"


def test_force_replaces_an_earlier_export_only(logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert runner.invoke(app, ["export", str(logdir), str(out), "--kind", "all"]).exit_code == 0
    result = runner.invoke(app, ["export", str(logdir), str(out), "--kind", "text"])
    assert result.exit_code == 1 and "already exists; use --force" in result.stderr
    result = runner.invoke(app, ["export", str(logdir), str(out), "--kind", "text", "--force"])
    assert result.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["export_summary.json", "text.parquet"]


def test_media_file_names_are_safe_and_never_collide(tmp_path: Path) -> None:
    from tbrewrite.commands.export_kinds import _MediaFiles

    files = _MediaFiles(tmp_path, "images")
    assert files.write(".", "a/b", 1, 0, "png", b"1") == "images/a/b/1.png"
    assert files.write(".", "a/b", 1, 0, "png", b"2") == "images/a/b/1~1.png"
    assert files.write(".", "A/B", 1, 0, "png", b"3") == "images/A/B/1~2.png"  # case-insensitive file systems
    assert files.write("..", "../x y?/5.png", -2, 1, "", b"4") == "images/%2E./%2E./x y%3F/%35.png/-2_1.bin"
    assert (tmp_path / "images/a/b/1.png").read_bytes() == b"1"


def test_partition_by_run_writes_datasets_pandas_reads_back(logdir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(logdir), str(out), "--kind", "scalars,images", "--partition-by-run"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (out / "scalars.parquet").iterdir()) == ["run=a", "run=s1", "run=s2"]
    scalars = pd.read_parquet(out / "scalars.parquet")
    expected = read(logdir).scalars
    assert scalars.run.astype(str).tolist() == expected.run.tolist()
    assert scalars.value.tolist() == expected.value.tolist()
    images = pd.read_parquet(out / "images.parquet")
    assert [(out / p).read_bytes() for p in images.path] == expected_images(logdir)
    result = runner.invoke(
        app, ["export", str(logdir), str(tmp_path / "c"), "--kind", "text", "--partition-by-run", "--format", "csv"]
    )
    assert result.exit_code == 1 and "--partition-by-run writes Parquet datasets" in result.stderr


def expected_images(logdir: Path) -> list[bytes]:
    return read(logdir, kinds="images").images.value.tolist()


def test_csv_cells_a_spreadsheet_would_run_are_quoted(tmp_path: Path) -> None:
    from support.events import T0, file_version, summary, write
    from support.every_kind import strings, value

    write(
        tmp_path / "logs" / "events.out.tfevents.1.h",
        [file_version(), summary(T0, 0, value("=t", "text", strings(b"=1+1", dims=(1,))))],
    )
    out = tmp_path / "out"
    assert (
        runner.invoke(app, ["export", str(tmp_path / "logs"), str(out), "--kind", "text", "--format", "csv"]).exit_code
        == 0
    )
    assert pd.read_csv(out / "text.csv")[["tag", "value"]].values.tolist() == [["'=t", "'=1+1"]]
    parquet = tmp_path / "p"
    assert runner.invoke(app, ["export", str(tmp_path / "logs"), str(parquet), "--kind", "text"]).exit_code == 0
    assert pd.read_parquet(parquet / "text.parquet").value.tolist() == ["=1+1"]


def test_media_file_names_of_long_tags_fit_the_file_system(tmp_path: Path) -> None:
    from tbrewrite.commands.export_kinds import _MediaFiles

    files = _MediaFiles(tmp_path, "images")
    long_a, long_b, wide = "x" * 300 + "a", "x" * 300 + "b", "ü" * 100  # TensorBoard takes any tag; NAME_MAX is 255
    paths = [files.write(".", tag, 1, 0, "png", tag.encode()) for tag in (long_a, long_b, wide, f"{wide}/{long_a}")]
    assert len(set(paths)) == 4
    for path, tag in zip(paths, (long_a, long_b, wide, f"{wide}/{long_a}"), strict=True):
        assert all(len(part.encode()) <= 200 for part in path.split("/"))
        assert (tmp_path / path).read_bytes() == tag.encode()

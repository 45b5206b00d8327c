"""``tbrewrite inspect``: checked against the corpus's PROVENANCE.md and TensorBoard's own loader."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.expect import assert_matches_loader
from support.logs import loader_values
from support.paths import CORPUS, FIXTURES, REPO, needs_corpus, require_corpus
from tbrewrite.cli import app
from tbrewrite.commands.inspect import inspect_logdir

runner = CliRunner()

# "- raw TFRecord scan: 4 valid records, bad data CRC at offset 773645"
_SCAN = re.compile(
    r"- raw TFRecord scan: (\d+) valid records, "
    r"(clean|bad data CRC at offset (\d+)|bad length CRC at offset (\d+)|truncated record at (\d+) .*)$"
)


def provenance() -> dict[str, tuple[int, str | None, int | None, str | None]]:
    """Parse PROVENANCE.md: corpus path -> (records, damage kind, offset, checksum detail)."""
    out: dict[str, tuple[int, str | None, int | None, str | None]] = {}
    if not CORPUS.is_dir():
        return out
    path = None
    for line in (CORPUS / "PROVENANCE.md").read_text().splitlines():
        heading = re.match(r"### `(.+)`$", line)
        if heading:
            path = heading.group(1)
            continue
        m = _SCAN.match(line)
        if m and path is not None:
            records = int(m.group(1))
            if m.group(3):
                out[path] = (records, "crc_mismatch", int(m.group(3)), "data checksum mismatch")
            elif m.group(4):
                out[path] = (records, "crc_mismatch", int(m.group(4)), "length checksum mismatch")
            elif m.group(5):
                out[path] = (records, "truncated", int(m.group(5)), "truncated record")
            else:
                out[path] = (records, None, None, None)
            path = None
    return out


PROVENANCE = provenance()


def inspect_json(path: Path, *args: str) -> tuple[int, dict]:
    result = runner.invoke(app, ["inspect", str(path), "--json", *args])
    assert "Traceback" not in result.output
    return result.exit_code, json.loads(result.stdout)


@pytest.fixture(scope="module")
def corpus_doc() -> tuple[int, dict]:
    return inspect_json(require_corpus())


@needs_corpus
def test_provenance_parses_every_entry() -> None:
    assert len(PROVENANCE) == 48
    assert sum(1 for v in PROVENANCE.values() if v[1]) == 4


def test_corpus_files_match_provenance_raw_scan(corpus_doc: tuple[int, dict]) -> None:
    code, doc = corpus_doc
    assert code == 3
    files = {f["path"]: f for run in doc["runs"] for f in run["files"]}
    assert set(files) == set(PROVENANCE)  # every event file listed, the xplane.pb files not
    for path, (records, kind, offset, detail) in PROVENANCE.items():
        f = files[path]
        assert f["records"] == records, path
        assert f["bytes"] == (CORPUS / path).stat().st_size, path
        assert f["loaded"] == (not path.endswith(".profile-empty")), path
        if kind is None:
            assert f["damage"] is None and f["all_damage"] == [], path
            continue
        damage = f["damage"]
        assert (damage["kind"], damage["offset"], damage["records_before"]) == (kind, offset, records), path
        assert damage["detail"].startswith(detail) and damage["resumed_at"] is None, path
    assert doc["files"] == 48 and doc["damaged_files"] == 4


@needs_corpus
@pytest.mark.parametrize("path", sorted(PROVENANCE) or ["(no corpus)"])
def test_single_file_matches_provenance(path: str) -> None:
    records, kind, offset, _ = PROVENANCE[path]
    code, doc = inspect_json(CORPUS / path)
    assert code == (3 if kind else 0)
    [run] = doc["runs"]
    [f] = run["files"]
    assert run["run"] == "." and f["path"] == Path(path).name
    assert f["records"] == records
    if kind is None:
        assert f["damage"] is None
    else:
        assert (f["damage"]["kind"], f["damage"]["offset"], f["damage"]["records_before"]) == (kind, offset, records)


KERAS_LAYOUTS = {
    # Keras 2 / TF1: one flat folder.
    "eyenet/src/Graph": ("keras-flat", None, None),
    "Callbacks-in-Keras/notebooks/log_dir": ("keras-flat", None, None),
    "Callbacks-in-Keras/notebooks/logs": ("keras-flat", None, None),
    # tf.keras: train/ (+ validation/) of a log_dir; 2231's log_dir holds a profiler placeholder.
    **{
        f"OCTTextureDetector/Train/logs/fit/{ts}/{split}": (
            "keras-split",
            f"OCTTextureDetector/Train/logs/fit/{ts}",
            split,
        )
        for ts, splits in {
            "20220104-160116": ["train"],
            "20220104-162100": ["train"],
            "20220104-193303": ["train", "validation"],
            "20220105-073828": ["train", "validation"],
            "20220106-123415": ["train", "validation"],
        }.items()
        for split in splits
    },
    **{
        f"2231-Project/logs/{ts}{sub}": ("keras-split", f"2231-Project/logs/{ts}", split)
        for ts in ("20230302-205125", "20230302-205257", "20230302-211243", "20230302-212259")
        for sub, split in (("", ""), ("/train", "train"))
    },
    "TensorBoard-Tutorial/archive/logs/final-reuters-1690485427/train": (
        "keras-split",
        "TensorBoard-Tutorial/archive/logs/final-reuters-1690485427",
        "train",
    ),
    **{
        f"TensorBoard-Tutorial/archive/logs/imdb-model-1690485351/{split}": (
            "keras-split",
            "TensorBoard-Tutorial/archive/logs/imdb-model-1690485351",
            split,
        )
        for split in ("train", "validation")
    },
    # TF1 FileWriter graphs in graphs/train and graphs/test: train/ makes graphs/ a split log_dir
    # and test/ its evaluation split (issue 12 item 7).
    "Callbacks-in-Keras/notebooks/graphs/train": ("keras-split", "Callbacks-in-Keras/notebooks/graphs", "train"),
    "Callbacks-in-Keras/notebooks/graphs/test": ("keras-split", "Callbacks-in-Keras/notebooks/graphs", "test"),
    # Not Keras TensorBoard-callback layouts: the HParams tutorial and PyTorch runs.
    "TensorBoard-Tutorial/archive/hparam_tuning": ("generic", None, None),
    "TensorBoard-Tutorial/archive/hparam_tuning/Experiment 0_adam_200_0.2": ("generic", None, None),
    **{
        f"tensorboard-reducer/tests/runs/{group}/run_{i}": ("generic", None, None)
        for group in ("duplicate_steps", "lax", "strict")
        for i in (1, 2, 3)
    },
}


def test_corpus_layouts(corpus_doc: tuple[int, dict]) -> None:
    _, doc = corpus_doc
    got = {r["run"]: (r["layout"], r["log_dir"], r["split"]) for r in doc["runs"]}
    assert got == KERAS_LAYOUTS
    placeholders_only = {r["run"] for r in doc["runs"] if not r["tensorboard_run"]}
    assert placeholders_only == {
        f"2231-Project/logs/{ts}" for ts in ("20230302-205125", "20230302-205257", "20230302-211243", "20230302-212259")
    }


@needs_corpus
def test_layout_of_a_train_folder_names_its_log_dir_above_path() -> None:
    code, doc = inspect_json(CORPUS / "OCTTextureDetector/Train/logs/fit/20220104-193303/train")
    assert code == 0
    [run] = doc["runs"]
    assert (run["run"], run["layout"], run["log_dir"], run["split"]) == (".", "keras-split", "..", "train")
    code, doc = inspect_json(CORPUS / "OCTTextureDetector/Train/logs/fit/20220104-193303")
    assert [(r["run"], r["log_dir"]) for r in doc["runs"]] == [("train", "."), ("validation", ".")]
    assert doc["runs"][0]["files"][0]["path"].startswith("train/events.out.tfevents.")


def test_corpus_tags_match_tensorboard_loader(corpus_doc: tuple[int, dict]) -> None:
    _, doc = corpus_doc
    assert_matches_loader(CORPUS, doc)
    eyenet = next(r for r in doc["runs"] if r["run"] == "eyenet/src/Graph")
    assert eyenet["events"]["graph_def"] == 6 and eyenet["events"]["meta_graph_def"] == 6


def test_corpus_tag_fields(corpus_doc: tuple[int, dict]) -> None:
    _, doc = corpus_doc
    runs = {r["run"]: r for r in doc["runs"]}
    tags = {t["tag"]: t for t in runs["2231-Project/logs/20230302-205125/train"]["tags"]}
    assert {k: (t["kind"], t["form"], t["plugin"]) for k, t in tags.items()} == {
        "keras": ("graph", "tensor", "graph_keras_model"),
        "batch_5": ("graph", "tensor", "graph_run_metadata_graph"),
        "epoch_loss": ("scalar", "tensor", "scalars"),
        "epoch_accuracy": ("scalar", "tensor", "scalars"),
        **{
            f"{layer}/{w}_0/histogram": ("histogram", "tensor", "histograms")
            for layer in ("conv2d", "dense")
            for w in ("kernel", "bias")
        },
    }
    loss = next(t for t in runs["eyenet/src/Graph"]["tags"] if t["tag"] == "loss")
    assert (loss["kind"], loss["form"], loss["plugin"]) == ("scalar", "simple_value", None)
    hparams = runs["TensorBoard-Tutorial/archive/hparam_tuning"]["tags"]
    assert [(t["tag"], t["kind"]) for t in hparams] == [("_hparams_/experiment", "hparams")]


def test_restarts_are_listed(corpus_doc: tuple[int, dict]) -> None:
    _, doc = corpus_doc
    runs = {r["run"]: r for r in doc["runs"]}
    dup = runs["tensorboard-reducer/tests/runs/duplicate_steps/run_1"]["restarts"]
    assert {r["tag"] for r in dup} == {"dup_steps/foo", "dup_steps/bar"}
    # Six Keras 2 runs in one folder: every tag starts again at step 0 in the next file.
    eyenet = {r["tag"]: r for r in runs["eyenet/src/Graph"]["restarts"]}
    assert set(eyenet) == {"loss", "acc", "val_loss", "val_acc"}
    assert (eyenet["loss"]["first_from_step"], eyenet["loss"]["first_to_step"]) == (2, 0)
    assert not runs["tensorboard-reducer/tests/runs/strict/run_1"]["restarts"]


@needs_corpus
@pytest.mark.parametrize("run", ["tensorboard-reducer/tests/runs/duplicate_steps/run_1", "eyenet/src/Graph"])
def test_restart_counts_match_the_loader_and_memory_stays_flat(run: str) -> None:
    files = [CORPUS / run / f for f in sorted(p.name for p in (CORPUS / run).iterdir())]
    steps: dict[str, list[int]] = {}
    for tag, step, _, _ in loader_values(files):
        steps.setdefault(tag, []).append(step)
    [inspected] = inspect_logdir(CORPUS / run).runs
    restarts = {r["tag"]: r for r in inspected.to_dict()["restarts"]}
    for tag, seq in steps.items():
        if tag == "__run_graph__":
            continue
        pairs = list(itertools.pairwise(seq))
        down = sum(1 for a, b in pairs if b < a)
        same = sum(1 for a, b in pairs if b == a)
        if down + same == 0:
            assert tag not in restarts
            continue
        first = next((a, b) for a, b in pairs if b <= a)
        r = restarts[tag]
        assert (r["backwards"], r["repeated"], r["first_from_step"], r["first_to_step"]) == (down, same, *first)
    # Only the first restart of each tag is kept in memory; the rest are counted.
    assert all(len(t.backwards) == 1 for t in inspected.restarts())


def test_no_tf49109_warning_on_healthy_keras_runs(corpus_doc: tuple[int, dict]) -> None:
    _, doc = corpus_doc
    assert all(r["warnings"] == [] for r in doc["runs"])
    report = inspect_logdir(FIXTURES / "keras3_run")
    assert [(r.run, r.warnings) for r in report.runs] == [("train", []), ("validation", [])]


@needs_corpus
def test_human_output_names_runs_tags_and_damage() -> None:
    result = runner.invoke(app, ["inspect", str(CORPUS / "eyenet")])
    assert result.exit_code == 3
    assert "src/Graph (keras-flat)" in result.stdout
    assert "val_loss" in result.stdout and "simple_value" in result.stdout
    assert "6 graph_def, 6 meta_graph_def" in result.stdout
    assert "crc_mismatch at byte 773645" in result.stdout
    damaged = CORPUS / "eyenet/src/Graph/events.out.tfevents.1506627099.ip-172-31-26-224"
    assert result.stderr == (
        f"tbrewrite: warning: {damaged}: crc_mismatch at byte 773645 (data checksum mismatch: "
        "got 0x112a0110, want 0x46a79fa9; 4 records recovered before it)\n"
    )


def test_clean_run_exits_0() -> None:
    result = runner.invoke(app, ["inspect", str(FIXTURES / "keras3_run")])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_missing_path_is_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = runner.invoke(app, ["inspect", str(missing), "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"tbrewrite: error: {missing}: no such file or directory\n"


def test_folder_without_event_files_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"tbrewrite: error: {tmp_path}: no event files found (names containing 'tfevents')\n"


def test_resync_reports_every_damaged_stretch(tmp_path: Path) -> None:
    source = next((FIXTURES / "keras3_run" / "train").iterdir())
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / source.name
    damaged.write_bytes(bytes(data))
    clean = inspect_logdir(source).runs[0].files[0].stats.records
    code, plain = inspect_json(damaged)
    assert code == 3
    before = plain["runs"][0]["files"][0]
    assert before["damage"]["kind"] == "crc_mismatch" and len(before["all_damage"]) == 1
    code, doc = inspect_json(damaged, "--resync")
    assert code == 3
    after = doc["runs"][0]["files"][0]
    assert after["damage"]["offset"] == before["damage"]["offset"]
    assert after["damage"]["resumed_at"] > after["damage"]["offset"]
    assert before["records"] < after["records"] == clean - 1


def test_cli_inspect_never_imports_tensorflow() -> None:
    code = f"""
import sys
from tbrewrite.cli import main
sys.argv = ["tbrewrite", "inspect", "--json", {str(FIXTURES / "keras3_run")!r}]
try:
    main()
except SystemExit as e:
    assert e.code == 0, e.code
print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "tf_keras")))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _keys(value: object) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_readme_documents_every_json_key(corpus_doc: tuple[int, dict], tmp_path: Path) -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## `tbrewrite inspect PATH`", 1)[1].split("\n## ", 1)[0]
    damaged = tmp_path / "events.out.tfevents.1.x"
    shutil.copy(CORPUS / "eyenet/src/Graph/events.out.tfevents.1506627099.ip-172-31-26-224", damaged)
    keys = _keys(corpus_doc[1]) | _keys(inspect_json(damaged)[1])
    missing = sorted(k for k in keys if f'"{k}"' not in section)
    assert not missing
    help_text = runner.invoke(app, ["inspect", "--help"]).stdout
    assert "--json" in help_text and "--resync" in help_text

"""What a correct conversion must contain, computed independently of the library.

The mapping below is DESIGN.md's default table written out again by hand, so a bug in
``tbrewrite.producers.keras`` cannot hide itself. Inputs and outputs are both read with
TensorBoard's own ``EventFileLoader`` and TensorFlow's ``TFRecordDataset``, and the framing of
outputs is checked by the strict parser of :mod:`support.tfrecord`; nothing here imports
tbrewrite.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from support.logs import event_files, loader_events, loader_values
from support.tfrecord import read_frames

LR = ("lr", "learning_rate", "epoch_lr", "epoch_learning_rate")
EVALUATION: dict[str, str | None] = {
    "validation": None,
    "val": None,
    "valid": None,
    "eval": "eval",
    "evaluation": "eval",
    "test": "test",
    "testing": "test",
}
"""Evaluation folders of a Keras log_dir beside ``train/`` and their split (None: the val split)."""


def expected_tag(layout: str, source: str, tag: str, scalar: bool, train: str = "train", val: str = "val") -> str:
    if not scalar:
        return tag
    if layout == "keras-flat":
        if "/" in tag:
            return tag
        if tag in LR:
            return f"{train}/learning_rate"
        if tag.startswith("val_"):
            return f"{val}/{tag[4:]}"
        return f"{train}/{tag}"
    if layout != "keras-split":
        return tag
    if source == "train":
        if tag in LR:
            return f"{train}/learning_rate"
        if tag.startswith("epoch_"):
            return f"{train}/{tag[6:]}"
        if tag.startswith("batch_"):
            return f"{train}/{tag}"
    if source in EVALUATION:
        split = EVALUATION[source] or val
        if tag.startswith("epoch_"):
            return f"{split}/{tag[6:]}"
        if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
            return f"{split}/{tag[len('evaluation_') :]}"
    return tag


def scalar_tags(files: list[Path]) -> set[str]:
    """Tags TensorBoard classifies as scalars (plugin ``scalars`` after migration)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    tags = set()
    for f in files:
        for e in EventFileLoader(str(f)).Load():
            for v in e.summary.value:
                if v.metadata.plugin_data.plugin_name == "scalars":
                    tags.add(v.tag)
    return tags


def source_files(run_dir: Path) -> dict[str, list[Path]]:
    def direct(d: Path) -> list[Path]:
        return [p for p in event_files(d) if p.parent == d]

    sources = {"": direct(run_dir), "train": direct(run_dir / "train"), "validation": direct(run_dir / "validation")}
    if sources["train"] or sources["validation"]:
        sources.update((d, direct(run_dir / d)) for d in sorted(EVALUATION) if d != "validation")
    return sources


def expected_values(run_dir: Path, layout: str) -> Counter:
    expected: Counter = Counter()
    for source, files in source_files(run_dir).items():
        scalars = scalar_tags(files)
        for tag, step, wall_time, value in loader_values(files):
            expected[(expected_tag(layout, source, tag, tag in scalars), step, wall_time, value)] += 1
    return expected


def tensorflow_records(path: Path) -> list[bytes]:
    """Every record of ``path`` as TensorFlow's ``TFRecordDataset`` reads it."""
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(str(path))]


def assert_tensorflow_reads(path: Path) -> int:
    """TFRecordDataset reads ``path`` whole, yielding exactly the records a strict parser finds.

    Returns the number of records.
    """
    records = tensorflow_records(path)
    assert records == read_frames(path)
    return len(records)


def assert_converted(run_dir: Path, out_dir: Path, layout: str) -> Path:
    """Every input event is in the output exactly once, mapped, bit-identical."""
    from tensorboard.compat.proto import event_pb2

    (output,) = [p for p in event_files(out_dir) if p.parent == out_dir]
    assert Counter(loader_values([output])) == expected_values(run_dir, layout)
    inputs = [f for files in source_files(run_dir).values() for f in files]
    assert loader_events([output]) == loader_events(inputs)
    assert_tensorflow_reads(output)
    first = read_frames(output)[0]
    assert event_pb2.Event.FromString(first).file_version == "brain.Event:2"
    return output


def assert_matches_loader(path: Path, doc: dict) -> None:
    """Per run, per tag: inspect's counts and step ranges equal TensorBoard's EventFileLoader's.

    The loader turns each graph_def event into an extra ``__run_graph__`` summary value and
    each tagged_run_metadata event into a value under its tag (``dataclass_compat.py``);
    inspect counts those as events, so they are matched against ``events`` instead.
    """
    for run in doc["runs"]:
        files = [path / f["path"] for f in run["files"] if f["loaded"]]
        steps: dict[str, list[int]] = {}
        for tag, step, _, _ in loader_values(files):
            steps.setdefault(tag, []).append(step)
        counts = Counter({tag: len(s) for tag, s in steps.items()})
        assert counts.pop("__run_graph__", 0) == run["events"]["graph_def"], run["run"]
        mine = {t["tag"]: (t["count"], t["first_step"], t["last_step"]) for t in run["tags"]}
        extra = set(counts) - set(mine)
        assert sum(counts[t] for t in extra) == run["events"]["tagged_run_metadata"], run["run"]
        expected = {t: (counts[t], steps[t][0], steps[t][-1]) for t in counts if t not in extra}
        assert mine == expected, run["run"]

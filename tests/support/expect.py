"""What a correct conversion must contain, computed independently of the library.

The mapping below is DESIGN.md's default table written out again by hand, so a bug in
``tbrewrite.producers.keras`` cannot hide itself. Inputs and outputs are both read with
TensorBoard's own ``EventFileLoader`` and TensorFlow's ``TFRecordDataset``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from conftest import event_files, loader_events, loader_values
from tbrewrite.events.framing import RecordReader

LR = ("lr", "learning_rate", "epoch_lr", "epoch_learning_rate")


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
    if source == "validation":
        if tag.startswith("epoch_"):
            return f"{val}/{tag[6:]}"
        if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
            return f"{val}/{tag[len('evaluation_'):]}"
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

    return {"": direct(run_dir), "train": direct(run_dir / "train"), "validation": direct(run_dir / "validation")}


def expected_values(run_dir: Path, layout: str) -> Counter:
    expected: Counter = Counter()
    for source, files in source_files(run_dir).items():
        scalars = scalar_tags(files)
        for tag, step, wall_time, value in loader_values(files):
            expected[(expected_tag(layout, source, tag, tag in scalars), step, wall_time, value)] += 1
    return expected


def assert_tensorflow_reads(path: Path) -> int:
    """TFRecordDataset reads ``path`` and yields exactly the records our reader yields."""
    import tensorflow as tf

    records = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    assert records == list(RecordReader(path))
    return len(records)


def assert_converted(run_dir: Path, out_dir: Path, layout: str) -> Path:
    """Every input event is in the output exactly once, mapped, bit-identical."""
    from tensorboard.compat.proto import event_pb2

    (output,) = [p for p in event_files(out_dir) if p.parent == out_dir]
    assert Counter(loader_values([output])) == expected_values(run_dir, layout)
    inputs = [f for files in source_files(run_dir).values() for f in files]
    assert loader_events([output]) == loader_events(inputs)
    first = next(iter(RecordReader(output)))
    assert event_pb2.Event.FromString(first).file_version == "brain.Event:2"
    assert_tensorflow_reads(output)
    return output

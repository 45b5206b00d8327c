"""Event logs as TensorBoard itself sees them, read with its own loader (never tbrewrite's)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def event_files(path: Path) -> list[Path]:
    """Every file under ``path`` TensorBoard loads as an event file, sorted."""
    return sorted(
        p for p in path.rglob("*") if p.is_file() and "tfevents" in p.name and not p.name.endswith(".profile-empty")
    )


def loader_values(files: list[Path]) -> list[tuple[str, int, float, bytes]]:
    """Every summary value as TensorBoard's own EventFileLoader yields it.

    Returns (tag, step, wall_time, serialized tensor) in file order; the loader's
    data_compat migration turns simple_value into a float32 tensor on both sides.
    """
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    out = []
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            if event.HasField("summary"):
                for v in event.summary.value:
                    out.append((v.tag, event.step, event.wall_time, v.tensor.SerializeToString()))
    return out


def loader_events(files: list[Path]) -> Counter:
    """Non-summary events (graph_def, meta_graph_def, ...) by kind and bytes."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    counts: Counter = Counter()
    for f in files:
        for event in EventFileLoader(str(f)).Load():
            what = event.WhichOneof("what")
            if what not in ("summary", "file_version"):
                counts[(what, event.step, event.wall_time, event.SerializeToString())] += 1
    return counts


def tensor_value(serialized: bytes) -> float:
    """The number a serialized scalar ``TensorProto`` (from :func:`loader_values`) holds."""
    from tensorboard.compat.proto import tensor_pb2
    from tensorboard.util import tensor_util

    return float(tensor_util.make_ndarray(tensor_pb2.TensorProto.FromString(serialized)))


def points(root: Path, tag: str) -> list[tuple[int, float, float]]:
    """``(step, wall_time, value)`` of scalar ``tag`` in every event file under ``root``, sorted."""
    return sorted((step, wall, tensor_value(v)) for t, step, wall, v in loader_values(event_files(root)) if t == tag)

"""What each writer's log layout means: which runs it writes, and how its tags map.

A producer recognises its layout from a run's sources (``""`` for the run folder,
``"train"``, ``"validation"``) and their scans, maps scalar tags to hierarchical ones,
and reports problems its writer is known for. Producers are tried in
:data:`PRODUCERS` order; the first that claims a run decides its layout. Adding a
writer (say PyTorch Lightning's ``version_N/`` folders) is one new module here and one
entry in :data:`PRODUCERS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tbrewrite.engine.scan import StreamScan
from tbrewrite.producers.generic import GENERIC, Generic
from tbrewrite.producers.keras import KERAS_FLAT, KERAS_SPLIT, KerasFlat, KerasSplit, TagMapping

__all__ = ["GENERIC", "KERAS_FLAT", "KERAS_SPLIT", "PRODUCERS", "Producer", "TagMapping", "detect", "producer"]


class Producer(Protocol):
    """One writer's layout."""

    name: str
    """The layout's name in reports (``keras-split``, ``keras-flat``, ``generic``)."""

    def claims(self, sources: Sequence[str], scans: Sequence[StreamScan]) -> bool:
        """Return True if a run with these sources (and their scans) has this layout."""
        ...

    def map_scalar(self, source: str, tag: str, mapping: TagMapping) -> str | None:
        """Return the output tag of a scalar tag of ``source``, or None to keep it."""
        ...

    def warnings(self, source: str, scan: StreamScan) -> list[str]:
        """Return notes about problems this writer is known for, seen in ``source``."""
        ...


PRODUCERS: tuple[Producer, ...] = (KerasSplit(), KerasFlat(), Generic())


def detect(sources: Sequence[str], scans: Sequence[StreamScan]) -> Producer:
    """Return the first producer of :data:`PRODUCERS` that claims the run."""
    return next(p for p in PRODUCERS if p.claims(sources, scans))


def producer(name: str) -> Producer:
    """Return the producer of layout ``name``.

    Raises:
        KeyError: no producer has that name.
    """
    for p in PRODUCERS:
        if p.name == name:
            return p
    raise KeyError(name)

"""Any other writer (PyTorch, tensorboardX, JAX/CLU, an already converted run).

Its tags are left as they are.
"""

from __future__ import annotations

from collections.abc import Sequence

from tbrewrite.engine.scan import StreamScan
from tbrewrite.producers.keras import TagMapping

GENERIC = "generic"


class Generic:
    """The layout of every run no other producer claims."""

    name = GENERIC

    def claims(self, sources: Sequence[str], scans: Sequence[StreamScan]) -> bool:
        """True: every run is generic if nothing more specific is."""
        return True

    def map_scalar(self, source: str, tag: str, mapping: TagMapping) -> str | None:
        """None: tags keep their names."""
        return None

    def warnings(self, source: str, scan: StreamScan) -> list[str]:
        """None."""
        return []

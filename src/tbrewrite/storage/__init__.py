"""Where logs live: local paths and fsspec URLs (``s3://``, ``gs://``, ``az://``, ``memory://``).

:func:`local_path` is the one door every command's paths go through; a URL is mirrored
by the open :func:`session` and published back when the command succeeds
(:mod:`tbrewrite.storage.session`, :mod:`tbrewrite.storage.publish`).
"""

from __future__ import annotations

from tbrewrite.storage.session import Session, active, local_path, recover, session
from tbrewrite.storage.urls import as_url, is_url, storage_options

__all__ = ["Session", "active", "as_url", "is_url", "local_path", "recover", "session", "storage_options"]

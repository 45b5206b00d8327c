"""Where logs live. Today: local paths only.

Every path a command is given passes through :func:`local_path`, so a URL (``s3://``,
``gs://``, ``az://``, ``memory://``, ...) is refused with a usage error naming it instead of
being written as a local folder called ``s3:`` (object storage is planned, through fsspec,
here and nowhere else).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tbrewrite.errors import UsageError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_COLLAPSED_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")  # Path("s3://b") is "s3:/b"


def local_path(path: str | os.PathLike[str], what: str = "path") -> Path:
    """Return ``path`` as a local Path, refusing URLs.

    Args:
        path: str or PathLike.
        what: str. How messages name it (``SRC``, ``--out``, ...).

    Raises:
        UsageError: ``path`` is a URL such as ``s3://bucket/logs`` (also after
            ``pathlib`` collapsed its ``//``): object storage is not supported yet.
    """
    text = os.fspath(path)
    match = _URL.match(text) or _COLLAPSED_URL.match(text)
    if match and len(match.group(1)) > 1:  # "C:/..." is a drive, not a scheme
        scheme = match.group(1)
        url = f"{scheme}://{text[match.end() :]}"
        raise UsageError(
            f"{url}: {what} is a URL ({scheme}://); object storage is not supported yet, give a local path"
        )
    return Path(path)

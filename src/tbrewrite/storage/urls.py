"""What a path names: a local path, or an object-store URL opened through fsspec.

A URL is ``scheme://...`` with a scheme of two letters or more (``C:/...`` is a Windows
drive). ``pathlib`` collapses ``s3://b`` to ``s3:/b``; that form is recognised too, so a
URL that went through a ``Path`` is never taken for a local folder called ``s3:``.

The filesystem of a scheme is fsspec's (``fsspec.filesystem``): ``s3`` needs ``s3fs``
(``pip install 'tbrewrite[s3]'``), ``gs``/``gcs`` ``gcsfs`` (``[gcs]``), ``az``/``abfs``
``adlfs`` (``[azure]``); ``memory`` and ``file`` come with fsspec. Connection settings
come from each filesystem's usual sources (``AWS_ENDPOINT_URL``, ``AWS_PROFILE``,
``GOOGLE_APPLICATION_CREDENTIALS``, ...) and from ``--storage-option KEY=VALUE``
(:func:`parse_storage_option`), passed to the filesystem's constructor.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tbrewrite.errors import UsageError

_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_COLLAPSED_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/(?!/)")  # Path("s3://b") is "s3:/b"

S3_DEFAULTS: Mapping[str, Any] = {
    "config_kwargs": {"connect_timeout": 10, "read_timeout": 15, "retries": {"max_attempts": 3, "mode": "standard"}},
    "retries": 1,
}
"""What ``s3://`` gets unless a ``--storage-option`` says otherwise: botocore's ``Config``
(seconds to connect and to wait for each read; attempts per request, botocore's "standard"
retries of throttling, 5xx and connection errors) and s3fs's own tries of a request
(``S3FileSystem.retries``, 5 by default, each of them botocore's attempts over again).
Without them a store that accepts connections but never answers holds a command for many
minutes (botocore waits 60 s per read); with them it fails, in one line, in about a minute
or two. A server-side copy that takes longer still answers in time: S3 keeps a ``CopyObject``
connection alive while it copies."""
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}
"""The ``tbrewrite[...]`` extra that brings each scheme's filesystem package."""


def as_url(path: str | os.PathLike[str]) -> str | None:
    """Return ``path`` as ``scheme://rest`` if it is a URL (also collapsed by pathlib), else None.

    Example:
        >>> as_url("s3:/bucket/logs"), as_url("logs/run1"), as_url("C:/logs")
        ('s3://bucket/logs', None, None)
    """
    text = os.fspath(path)
    match = _URL.match(text) or _COLLAPSED_URL.match(text)
    if match is None or len(match.group(1)) < 2:  # "C:/..." is a drive, not a scheme
        return None
    return f"{match.group(1).lower()}://{text[match.end() :].rstrip('/')}"


def is_url(path: str | os.PathLike[str]) -> bool:
    """Return whether ``path`` is a URL (``s3://``, ``memory://``, ...), not a local path."""
    return as_url(path) is not None


def split_url(url: str) -> tuple[str, str]:
    """Return ``(scheme, rest)`` of ``scheme://rest``."""
    scheme, _, rest = url.partition("://")
    return scheme, rest


def parse_storage_option(text: str) -> tuple[list[str], Any]:
    """Parse one ``--storage-option KEY=VALUE``.

    ``KEY`` may be dotted (``client_kwargs.region_name``) to reach a nested argument.
    ``VALUE`` is read as JSON where it parses (``true``, ``3``, ``{"a": 1}``), else
    kept as text (``http://127.0.0.1:9000``).

    Returns:
        (list of str: the key's parts, the value).

    Raises:
        UsageError: no ``=``, or an empty key.

    Example:
        >>> parse_storage_option("client_kwargs.region_name=eu-west-1")
        (['client_kwargs', 'region_name'], 'eu-west-1')
    """
    key, sep, value = text.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise UsageError(f"--storage-option {text!r}: expected KEY=VALUE")
    try:
        parsed: Any = json.loads(value)
    except ValueError:
        parsed = value
    return parts, parsed


def storage_options(texts: Iterable[str]) -> dict[str, Any]:
    """Return the filesystem keyword arguments given by ``--storage-option`` texts, in order.

    Raises:
        UsageError: as :func:`parse_storage_option`.
    """
    options: dict[str, Any] = {}
    for text in texts:
        parts, value = parse_storage_option(text)
        target = options
        for part in parts[:-1]:
            nested = target.setdefault(part, {})
            if not isinstance(nested, dict):
                raise UsageError(f"--storage-option {text!r}: {part} is already set to a value")
            target = nested
        target[parts[-1]] = value
    return options


def filesystem(scheme: str, options: Mapping[str, Any]) -> Any:
    """Return fsspec's filesystem for ``scheme``, made with ``options``.

    ``s3://`` gets :data:`S3_DEFAULTS` under ``options`` (``retries`` is s3fs's own count).

    Returns:
        fsspec.AbstractFileSystem.

    Raises:
        UsageError: fsspec or the scheme's filesystem package is not installed (the
            message names the extra to install), or the scheme is unknown to fsspec.
    """
    try:
        import fsspec
    except ImportError:
        raise UsageError(
            f"{scheme}://: object storage needs fsspec: pip install 'tbrewrite[{EXTRAS.get(scheme, 's3')}]'"
        ) from None
    retries = None
    if scheme in ("s3", "s3a"):
        options = _merged(S3_DEFAULTS, options)
        retries = options.pop("retries")
    try:
        fs = fsspec.filesystem(scheme, **options)
    except ImportError as e:
        extra = EXTRAS.get(scheme)
        hint = f"pip install 'tbrewrite[{extra}]'" if extra else str(e)
        raise UsageError(f"{scheme}://: its filesystem package is not installed ({hint})") from None
    except ValueError as e:  # fsspec: "Protocol not known"
        raise UsageError(f"{scheme}://: {e}") from None
    except TypeError as e:  # a --storage-option the filesystem does not take
        raise UsageError(f"{scheme}://: a --storage-option is not accepted: {e}") from None
    if retries is not None:
        fs.retries = retries
    return fs


def _merged(defaults: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``defaults`` with ``options`` put over them, nested mappings merged key by key."""
    merged = dict(defaults)
    for key, value in options.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged

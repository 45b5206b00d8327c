"""Which engine reads and writes records: the native core or the Python reference.

``tbrewrite._native`` (the Rust crate in ``native/``) is built by ``pip install`` where a
Rust toolchain exists; the pure-Python modules are the reference implementation and the
fallback, as msgpack and PyYAML keep theirs. ``TBREWRITE_ENGINE=python`` or ``=native``
forces one; without it the native core is used when it imports.

Example:
    >>> from tbrewrite.engine.select import engine_name
    >>> engine_name() in ("native", "python")
    True
"""

from __future__ import annotations

import os
from types import ModuleType

from tbrewrite.errors import UsageError

ENV = "TBREWRITE_ENGINE"
"""The environment variable that forces an engine."""
PYTHON = "python"
NATIVE = "native"
ENGINES = (PYTHON, NATIVE)

_native: ModuleType | None = None
_native_error: str | None = None
_tried = False


def _import_native() -> ModuleType | None:
    global _native, _native_error, _tried
    if not _tried:
        _tried = True
        try:
            import tbrewrite._native as module
        except ImportError as e:
            _native_error = str(e)
        else:
            _native = module
    return _native


def native_available() -> bool:
    """Return whether the native core is built and imports."""
    return _import_native() is not None


def engine_name() -> str:
    """Return the engine in use: ``"native"`` or ``"python"``.

    Read from ``TBREWRITE_ENGINE`` on every call (empty or unset: native when built).

    Raises:
        UsageError: ``TBREWRITE_ENGINE`` names no engine, or asks for ``native`` where
            the native core is not built.
    """
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted == PYTHON:
        return PYTHON
    if wanted == NATIVE:
        if _import_native() is None:
            raise UsageError(
                f"{ENV}=native: the native core (tbrewrite._native) is not built "
                f"({_native_error}); reinstall with cargo on the PATH, or set {ENV}=python"
            )
        return NATIVE
    if wanted:
        raise UsageError(f"{ENV}={os.environ[ENV]!r}: expected 'python' or 'native'")
    return NATIVE if _import_native() is not None else PYTHON


def native() -> ModuleType | None:
    """Return ``tbrewrite._native`` if it is the engine in use, else None.

    Raises:
        UsageError: as :func:`engine_name`.
    """
    return _import_native() if engine_name() == NATIVE else None

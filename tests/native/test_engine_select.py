"""``TBREWRITE_ENGINE`` and the engine selector (``tbrewrite.engine.select``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tbrewrite.engine import select
from tbrewrite.errors import TbRewriteError, UsageError


def test_forced_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(select.ENV, "python")
    assert select.engine_name() == "python"
    assert select.native() is None


def test_default_is_native_when_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(select.ENV, raising=False)
    expected = "native" if select.native_available() else "python"
    assert select.engine_name() == expected


def test_forced_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(select.ENV, "Native")
    if select.native_available():
        assert select.engine_name() == "native"
        assert select.native() is not None
    else:
        with pytest.raises(UsageError, match="not built"):
            select.engine_name()


def test_unknown_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(select.ENV, "rust")
    with pytest.raises(TbRewriteError) as e:
        select.engine_name()
    assert str(e.value) == "TBREWRITE_ENGINE='rust': expected 'python' or 'native'"


def test_native_requested_but_not_built_is_one_line() -> None:
    """Simulate a pure-Python install: the extension module cannot be imported."""
    code = (
        "import sys; sys.modules['tbrewrite._native'] = None\n"
        "from tbrewrite.engine import select\n"
        "assert not select.native_available()\n"
        "try:\n"
        "    select.engine_name()\n"
        "except Exception as e:\n"
        "    print(type(e).__name__, e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"TBREWRITE_ENGINE": "native", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.count("\n") == 1
    assert out.startswith("UsageError TBREWRITE_ENGINE=native: the native core (tbrewrite._native) is not built (")
    assert out.rstrip().endswith("reinstall with cargo on the PATH, or set TBREWRITE_ENGINE=python")

"""The suite as a fresh clone runs it: without ``../shared/corpus`` (issue 12 item 15).

``TBREWRITE_TEST_CORPUS`` names a folder that does not exist, so :data:`support.paths.CORPUS`
is missing in a second pytest run: collection must succeed, and every test that reads the
corpus skips with the one reason :data:`support.paths.CORPUS_MISSING` while the rest pass.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO


def pytest_without_corpus(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    missing = tmp_path / "no-corpus"
    env = {**os.environ, "TBREWRITE_TEST_CORPUS": str(missing)}
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"), *args]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False), missing


def test_collection_needs_no_corpus(tmp_path: Path) -> None:
    result, _ = pytest_without_corpus(tmp_path, "--collect-only", "-q")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert re.fullmatch(r"\d+ tests collected in [\d.]+s", result.stdout.strip().splitlines()[-1]), result.stdout[-500:]


@pytest.mark.slow
def test_quick_suite_passes_without_corpus_and_skips_its_tests_with_one_reason(tmp_path: Path) -> None:
    """About a minute: the README's quick test command, as a fresh clone runs it."""
    result, missing = pytest_without_corpus(tmp_path, "-q", "-m", "not slow", "-rs")
    assert result.returncode == 0, result.stdout[-6000:]
    skips = re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", result.stdout, re.MULTILINE)
    corpus = [(int(n), reason) for n, reason in skips if "corpus" in reason]
    assert {reason for _, reason in corpus} == {f"needs the real-log corpus, not found at {missing}"}
    assert sum(n for n, _ in corpus) >= 50

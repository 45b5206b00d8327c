"""The suite as a fresh clone runs it: without ``../shared/corpus`` (issue 12 item 15).

``TBREWRITE_TEST_CORPUS`` names a folder that does not exist, so :data:`support.paths.CORPUS`
is missing in a second pytest run: collection of the whole suite must succeed, and in every
test file that names the corpus, the tests that read it skip with the one reason
:data:`support.paths.CORPUS_MISSING` while the rest pass (files that never name it cannot
depend on it, and the suite runs them anyway).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.paths import REPO, TESTS


def corpus_test_files() -> list[str]:
    """The test files (relative to the repository) that name the corpus, this one excepted."""
    found = []
    for path in sorted(TESTS.rglob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        if path.name != Path(__file__).name and ("CORPUS" in text or "needs_corpus" in text):
            found.append(str(path.relative_to(REPO)))
    return found


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
    """The quick tests of every file that names the corpus, as a fresh clone runs them."""
    files = corpus_test_files()
    assert len(files) >= 10, files
    result, missing = pytest_without_corpus(tmp_path, "-q", "-m", "not slow", "-rs", *files)
    assert result.returncode == 0, result.stdout[-6000:]
    skips = re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", result.stdout, re.MULTILINE)
    corpus = [(int(n), reason) for n, reason in skips if "corpus" in reason]
    assert {reason for _, reason in corpus} == {f"needs the real-log corpus, not found at {missing}"}
    assert sum(n for n, _ in corpus) >= 50

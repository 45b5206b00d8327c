"""Where the tests find things: the repository, its fixtures, the shared real-log corpus.

Every path is absolute and independent of the test file asking, so a test can move between
``tests/unit/...``, ``tests/commands/`` and ``tests/e2e/`` without its paths changing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parent
"""``tests/support/``."""
TESTS = SUPPORT.parent
"""``tests/``."""
REPO = TESTS.parent
"""The repository root (``README.md``, ``fixtures/``, ``src/``)."""
FIXTURES = REPO / "fixtures"
"""Small real Keras runs shipped with the repository (``fixtures/README.md``)."""
CORPUS = Path(os.environ.get("TBREWRITE_TEST_CORPUS") or REPO.parent / "shared" / "corpus")
"""The real-log corpus, read in place (``PROVENANCE.md`` describes every file); a fresh clone
has none. ``TBREWRITE_TEST_CORPUS`` points elsewhere (``tests/test_without_corpus.py`` names a
missing folder to run the suite as a fresh clone would)."""
CORPUS_MISSING = f"needs the real-log corpus, not found at {CORPUS}"
"""The one reason every test that reads the corpus gives when it skips."""
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=CORPUS_MISSING)
"""Mark of a test that reads the corpus: skipped with :data:`CORPUS_MISSING` without it."""


def require_corpus() -> Path:
    """Return :data:`CORPUS`, or skip the calling test or fixture with :data:`CORPUS_MISSING`."""
    if not CORPUS.is_dir():
        pytest.skip(CORPUS_MISSING)
    return CORPUS


SCRIPTS = SUPPORT / "scripts"
"""Stand-alone scripts the tests run in a fresh interpreter (training tiny real models)."""

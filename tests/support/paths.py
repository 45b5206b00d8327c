"""Where the tests find things: the repository, its fixtures, the shared real-log corpus.

Every path is absolute and independent of the test file asking, so a test can move between
``tests/unit/...``, ``tests/commands/`` and ``tests/e2e/`` without its paths changing.
"""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
"""``tests/support/``."""
TESTS = SUPPORT.parent
"""``tests/``."""
REPO = TESTS.parent
"""The repository root (``README.md``, ``fixtures/``, ``src/``)."""
FIXTURES = REPO / "fixtures"
"""Small real Keras runs shipped with the repository (``fixtures/README.md``)."""
CORPUS = REPO.parent / "shared" / "corpus"
"""The real-log corpus, read in place (``PROVENANCE.md`` describes every file)."""
SCRIPTS = SUPPORT / "scripts"
"""Stand-alone scripts the tests run in a fresh interpreter (training tiny real models)."""

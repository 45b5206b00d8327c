"""The ``tbrewrite`` command line: a thin layer over the library.

Each command lives in its own module and only parses options, calls the library and
formats the result. Exit codes, for every command: 0 all clean; 3 finished, but some
input was damaged (everything before the damage was used and the damage reported);
1 error (nothing written); 2 usage.
"""

from __future__ import annotations

from tbrewrite.cli import compact as _compact  # noqa: F401  (registers the command)
from tbrewrite.cli import concat as _concat  # noqa: F401  (registers the command)
from tbrewrite.cli import convert as _convert  # noqa: F401  (registers the command)
from tbrewrite.cli import crop as _crop  # noqa: F401  (registers the command)
from tbrewrite.cli import export as _export  # noqa: F401  (registers the command)
from tbrewrite.cli import hparams as _hparams  # noqa: F401  (registers the command)
from tbrewrite.cli import inspect as _inspect  # noqa: F401  (registers the command)
from tbrewrite.cli import merge as _merge  # noqa: F401  (registers the command)
from tbrewrite.cli import overlay as _overlay  # noqa: F401  (registers the command)
from tbrewrite.cli import plot as _plot  # noqa: F401  (registers the command)
from tbrewrite.cli import rename as _rename  # noqa: F401  (registers the command)
from tbrewrite.cli._app import app, handle_sigterm


def main() -> None:
    """Entry point of the ``tbrewrite`` console script."""
    handle_sigterm()
    app()


__all__ = ["app", "main"]

"""``python -m tbrewrite``: the same as the ``tbrewrite`` command."""

from tbrewrite.cli import main

main()

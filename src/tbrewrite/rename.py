"""Public entry point of ``rename`` (see :mod:`tbrewrite.commands.rename`)."""

from tbrewrite.commands.rename import RenameReport, rename

__all__ = ["RenameReport", "rename"]

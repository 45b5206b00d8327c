"""Public entry point of ``convert`` (see :mod:`tbrewrite.commands.convert`)."""

from tbrewrite.commands.convert import ConvertReport, convert

__all__ = ["ConvertReport", "convert"]

"""Public entry point of ``inspect`` (see :mod:`tbrewrite.commands.inspect`)."""

from tbrewrite.commands.inspect import InspectedFile, InspectedRun, LogdirReport, inspect_logdir, iter_runs

__all__ = ["InspectedFile", "InspectedRun", "LogdirReport", "inspect_logdir", "iter_runs"]

"""tbrewrite: fix TensorBoard event logs after training.

Convert Keras's flat tags into ``train/...`` and ``val/...`` runs, rename tags across a
tree of runs, and merge learning-rate sidecars into event logs, losing nothing.
Importing this package never imports TensorFlow or Keras; only
:mod:`tbrewrite.keras` (the training callback) does.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

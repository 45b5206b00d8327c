"""Shared test helpers, imported as ``support.<module>`` (pytest's ``pythonpath = ["tests"]``).

Nothing here imports ``tbrewrite``, so a helper means the same on any version of it: the
generated logs and pinned bytes (``eventgen``, ``same_bytes``), the oracles (``expect``,
``rename_rules``, ``logs`` reading with TensorBoard's own loader, ``tfrecord`` parsing frames
on its own), worker tasks (``parallel_tasks``), paths, training scripts and the TensorBoard
server. Fixtures stay in ``conftest.py``.
"""

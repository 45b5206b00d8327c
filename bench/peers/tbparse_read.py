"""``tbparse``: read a whole log into pandas DataFrames, as its users do.

``SummaryReader(SRC).scalars`` and ``.tensors``. Keras 3 (TF2) writes scalars as float32
tensors, which TensorBoard's ``EventAccumulator`` (used by tbparse) files under
*tensors*, so ``.scalars`` comes back empty for these logs and ``.tensors`` holds the
values (tbparse ``docs/pages/parsing-scalars.rst``); both are built and their row counts
printed. By default ``tensorflow`` is made unimportable first, so tbparse and
TensorBoard use the pure-Python stub reader; ``--with-tf`` lets them use TensorFlow's.

Usage: ``python bench/peers/tbparse_read.py SRC [--with-tf]``
Prints one JSON line: reader, scalars rows, tensors rows.
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src")
    parser.add_argument("--with-tf", action="store_true")
    args = parser.parse_args()
    if not args.with_tf:
        sys.modules["tensorflow"] = None  # import tensorflow -> ImportError
    from tbparse import SummaryReader
    from tensorboard.compat import tf

    reader = SummaryReader(args.src)
    scalars = reader.scalars
    tensors = reader.tensors
    name = "tensorflow_stub (pure Python)" if tf.__version__ == "stub" else f"tensorflow {tf.__version__}"
    print(json.dumps({"reader": name, "scalars_rows": len(scalars), "tensors_rows": len(tensors)}))


if __name__ == "__main__":
    main()

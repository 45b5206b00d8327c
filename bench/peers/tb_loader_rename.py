"""What users write today: rename tags with TensorBoard's ``EventFileLoader`` + ``EventFileWriter``.

For every event file under SRC, read it with
``tensorboard.backend.event_processing.event_file_loader.EventFileLoader`` and write
every event (its ``file_version`` excepted: the writer writes its own) with
``tensorboard.summary.writer.event_file_writer.EventFileWriter`` into the mirrored
folder under OUT, renaming each summary value's tag with the first matching rule
(``re.search``, then ``re.sub``, the rule semantics of ``tbrewrite rename``). A
dict caches the result per tag, as a careful script would.

By default ``tensorflow`` is made unimportable before TensorBoard is imported, so
TensorBoard falls back to its stub: the reader is ``tensorflow_stub``'s
``PyRecordReader_New`` (pure-Python CRC-32C). With ``--with-tf`` TensorFlow is imported
and the reader is TensorFlow's C++ ``PyRecordReader_New`` / ``tf_record_iterator``.
The writer always frames records with TensorBoard's pure-Python ``masked_crc32c``
(``tensorboard/summary/writer/record_writer.py``), on a background thread.

Usage: ``python bench/peers/tb_loader_rename.py SRC OUT [--with-tf] --rule REGEX=REPL ...``
Prints one JSON line: reader, files, events.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("src", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--with-tf", action="store_true")
    parser.add_argument("--rule", action="append", default=[])
    args = parser.parse_args()
    if not args.with_tf:
        sys.modules["tensorflow"] = None  # import tensorflow -> ImportError
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.compat import tf
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    rules = [(re.compile(p), r) for p, r in (rule.split("=", 1) for rule in args.rule)]
    cache: dict[str, str] = {}

    def rename(tag: str) -> str:
        new = cache.get(tag)
        if new is None:
            new = tag
            for pattern, repl in rules:
                if pattern.search(tag):
                    new = pattern.sub(repl, tag)
                    break
            cache[tag] = new
        return new

    files = events = 0
    for dirpath, dirnames, filenames in os.walk(args.src):
        dirnames.sort()
        for name in sorted(filenames):
            if "tfevents" not in name:
                continue
            out_dir = args.out / Path(dirpath).relative_to(args.src)
            out_dir.mkdir(parents=True, exist_ok=True)
            writer = EventFileWriter(str(out_dir))
            for event in EventFileLoader(os.path.join(dirpath, name)).Load():
                events += 1
                if event.HasField("file_version"):
                    continue
                for value in event.summary.value:
                    value.tag = rename(value.tag)
                writer.add_event(event)
            writer.close()
            files += 1
    reader = "tensorflow_stub (pure Python)" if tf.__version__ == "stub" else f"tensorflow {tf.__version__}"
    print(json.dumps({"reader": reader, "files": files, "events": events}))


if __name__ == "__main__":
    main()

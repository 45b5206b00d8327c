"""Every value that is not a scalar, decoded into its kind's rows; what is left out, counted.

A value's kind follows the plugin named by its tag's first value in the run (as the
scalars of ``commands.export``; TensorBoard's ``plugin_event_accumulator.py``) and its
stored form:

============================  ===========================================================
kind                          values
============================  ===========================================================
``scalars``                   read by :mod:`tbrewrite.frames.scalars`, skipped here
``histograms``                ``histo`` (TF1); a tensor of the ``histograms`` plugin (TF2)
``images``                    ``image`` (TF1); a tensor of the ``images`` plugin (TF2)
``audio``                     ``audio`` (TF1); a tensor of the ``audio`` plugin (TF2)
``text``                      a tensor of the ``text`` plugin
``hparams``                   a value of the ``hparams`` plugin (its data is in the metadata)
``tensors``                   every other tensor (``pr_curves``, ``mesh``, the Keras model
                              config ``graph_keras_model``, custom summaries, ...)
============================  ===========================================================

Everything else is *left out* and counted with the reason (:class:`Report`): events that
are not summaries (graphs, run metadata, session logs, log messages), a ``simple_value``
under another plugin, an old-style histogram, a value with no data, a value that does not
decode as its kind says, and values of kinds not asked for.

With the native engine, ``_native.FileScanner`` reads each file's records into columns;
kinds are found from those columns for every record at once, and only the records that
hold a value to decode (or to look at closer) are read again and decoded here, so a log of
scalars costs one native pass. With the Python engine every event is decoded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from tbrewrite.events.framing import Damage, DamageKind
from tbrewrite.events.summary import SCALAR_DTYPES, SummaryMetadata, scalar_number
from tbrewrite.frames import histograms, media
from tbrewrite.frames.filters import Filters
from tbrewrite.frames.hparams import Sessions
from tbrewrite.frames.tensors import tensor_value, text_tag, text_value

Emit = Callable[[str, tuple[Any, ...], int], None]
"""``emit(kind, row, payload bytes)``: receives each decoded row."""

NO_TAG = 0xFFFFFFFF
"""``_native.NO_TAG``: a record without summary values."""
# Kind codes of a record's first value (the native path's columns).
SCALAR, TENSOR, HIST, IMAGE, AUDIO, TEXT, HPARAMS, LOOK, NONSUMMARY, EMPTY = range(10)
_CODE_KIND = {SCALAR: "scalars", TENSOR: "tensors", HIST: "histograms", IMAGE: "images", AUDIO: "audio"}
_CODE_KIND.update({TEXT: "text", HPARAMS: "hparams"})
_KIND_CODE = {kind: code for code, kind in _CODE_KIND.items()}
_PLUGIN_CODE = {"": SCALAR, "scalars": SCALAR, "histograms": HIST, "images": IMAGE, "audio": AUDIO}
_PLUGIN_CODE.update({"text": TEXT, "hparams": HPARAMS})

NON_SUMMARY = {
    "graph_def": ("graphs", "a GraphDef is a graph, not a table (TensorBoard's Graphs dashboard)"),
    "meta_graph_def": ("meta graphs", "a MetaGraphDef is a graph, not a table"),
    "tagged_run_metadata": ("run metadata", "per-step profiling data (RunMetadata), not a table"),
    "session_log": ("session logs", "TF1 START/STOP/CHECKPOINT markers; they hold no values"),
    "log_message": ("log messages", "TF1 log messages, not summaries"),
}
"""``Event.what`` fields that are not summaries: (what, why they are left out)."""
DTYPE_NAMES = {code: name for code, (name, _, _) in SCALAR_DTYPES.items()}
_WHAT_FIELDS = {4: "graph_def", 6: "log_message", 7: "session_log", 8: "tagged_run_metadata", 9: "meta_graph_def"}
_EXAMPLES = 5


@dataclass
class LeftOut:
    """Values or files not in any table, and why.

    Attributes:
        what: str. ``graphs``, ``images``, ``tensors (plugin 'pr_curves')``, ``files``, ...
        reason: str.
        count: int. Values, events or files.
        examples: list of str. Up to five tags (or file names).
    """

    what: str
    reason: str
    count: int = 0
    examples: list[str] = field(default_factory=list)


class Report:
    """What was left out, summed over the whole read."""

    def __init__(self, skipped: dict[str, str] | None = None) -> None:
        self.entries: dict[tuple[str, str], LeftOut] = {}
        self.skipped = skipped or {}

    def add(self, what: str, reason: str, count: int = 1, examples: Iterable[str] = ()) -> None:
        """Count ``count`` more of ``what`` left out for ``reason``, naming ``examples``."""
        entry = self.entries.get((what, reason))
        if entry is None:
            entry = self.entries[(what, reason)] = LeftOut(what, reason)
        entry.count += count
        for example in examples:
            if len(entry.examples) >= _EXAMPLES:
                break
            if example not in entry.examples:
                entry.examples.append(example)

    def not_asked(self, kind: str, count: int, examples: Iterable[str] = ()) -> None:
        """Count values of ``kind``, a kind that was not asked for."""
        self.add(kind, self.skipped.get(kind, "not asked for"), count, examples)

    @property
    def left_out(self) -> list[LeftOut]:
        """Every entry, sorted by what and reason (the same whichever way the log was read)."""
        return [self.entries[k] for k in sorted(self.entries)]


class RunScan:
    """Decode the non-scalar values of one run's files.

    Args:
        run: str. The run's name.
        kinds: the kinds asked for.
        filters: tag and step filters.
        emit: receives each row (see :data:`Emit`).
        sessions: receives the hparams values.
        report: counts what is left out.
    """

    def __init__(
        self, run: str, kinds: Iterable[str], filters: Filters, emit: Emit, sessions: Sessions, report: Report
    ) -> None:
        self.run = run
        self.kinds = frozenset(kinds)
        self.filters = filters
        self.emit = emit
        self.sessions = sessions
        self.report = report
        self.plugins: dict[str, str] = {}
        """Tag -> plugin name of its first value in the run ('' without metadata)."""
        self.scalars_counted = False
        """True when the scalar reader counts the scalars not asked for (so they are not counted here)."""
        self.scalars_here = False
        """True when the scalars are read here too (the Python engine's one pass), not by the scalar reader."""
        self.last: dict[tuple[str, str], float] | None = None
        """With :attr:`scalars_here`: receives the last value of each (run, tag), for the hparams metrics."""

    # --- one decoded event -------------------------------------------------------------

    def event(self, event: Any) -> None:
        """Take in one decoded ``Event``."""
        what = event.WhichOneof("what")
        if what == "summary":
            for value in event.summary.value:
                self.value(event.step, event.wall_time, value)
        elif what in NON_SUMMARY:
            self.report.add(*NON_SUMMARY[what], examples=[self.run])

    def _plugin(self, value: Any) -> str:
        plugin = self.plugins.get(value.tag)
        if plugin is None:
            plugin = value.metadata.plugin_data.plugin_name if value.HasField("metadata") else ""
            self.plugins[value.tag] = plugin
        return plugin

    def value(self, step: int, wall_time: float, value: Any) -> None:
        """Classify one ``Summary.Value`` and emit its rows (scalars are read elsewhere)."""
        plugin = self._plugin(value)
        which = value.WhichOneof("value")
        tag = value.tag
        number = scalar_number(value) if plugin in ("", "scalars") else None
        if number is not None:
            if self.scalars_here:
                self._scalar(tag, step, wall_time, number)
            elif "scalars" not in self.kinds and not self.scalars_counted:
                self.report.not_asked("scalars", 1, [tag])
            return
        kind = _kind(which, plugin)
        if kind is None:
            self._odd(which, plugin, tag)
            return
        if kind not in self.kinds:
            self.report.not_asked(kind, 1, [tag] if kind != "tensors" else [f"{tag} ({plugin or 'no plugin'})"])
            return
        if kind == "hparams":
            if value.HasField("metadata") and value.metadata.plugin_data.content:
                self._decode(kind, tag, lambda: self.sessions.add(self.run, tag, value.metadata.plugin_data.content))
            else:
                self.report.add("hparams", "a value of the hparams plugin without its plugin data", 1, [tag])
            return
        shown = text_tag(tag) if kind == "text" else tag
        if not (self.filters.tag(shown) and self.filters.step(step)):
            return
        self._decode(kind, tag, lambda: self._rows(kind, which, plugin, shown, step, wall_time, value))

    def _scalar(self, tag: str, step: int, wall_time: float, number: tuple[float, int]) -> None:
        if self.last is not None:
            self.last[(self.run, tag)] = number[0]
        if "scalars" not in self.kinds:
            self.report.not_asked("scalars", 1, [tag])
        elif self.filters.tag(tag) and self.filters.step(step):
            self.emit("scalars", (self.run, tag, step, wall_time, number[0], DTYPE_NAMES[number[1]]), 0)

    def _odd(self, which: str | None, plugin: str, tag: str) -> None:
        if which == "simple_value":
            self.report.add(
                "scalars",
                f"a simple_value under the plugin {plugin!r}, not a scalar of the Scalars dashboard",
                1,
                [tag],
            )
        elif which == "obsolete_old_style_histogram":
            self.report.add("histograms", "an obsolete old-style histogram (no reader decodes it)", 1, [tag])
        else:
            self.report.add("values", f"a value with no data (plugin {plugin!r})", 1, [tag])

    def _decode(self, kind: str, tag: str, decode: Callable[[], None]) -> None:
        from google.protobuf.message import DecodeError

        try:
            decode()
        except (ValueError, TypeError, DecodeError) as e:  # DecodeError is not a ValueError in every protobuf
            self.report.add(kind, f"does not decode as its kind says ({e})", 1, [tag])

    def _rows(
        self, kind: str, which: str | None, plugin: str, tag: str, step: int, wall_time: float, value: Any
    ) -> None:
        key = (self.run, tag, step, wall_time)
        if kind == "histograms":
            histogram = histograms.from_histo(value.histo) if which == "histo" else histograms.from_tensor(value.tensor)
            self.emit(kind, (*key, *histogram), 0)
        elif kind == "images":
            images = (
                media.images_from_image(value.image) if which == "image" else media.images_from_tensor(value.tensor)
            )
            for image in images:
                self.emit(kind, (*key, *image), len(image[-1]))
        elif kind == "audio":
            clips = media.audio_from_audio(value.audio) if which == "audio" else media.audio_from_tensor(value.tensor)
            for clip in clips:
                self.emit(kind, (*key, *clip), len(clip[-1]))
        elif kind == "text":
            self.emit(kind, (*key, text_value(value.tensor)), 0)
        else:
            array, dtype, shape = tensor_value(value.tensor)
            self.emit(kind, (*key, array, dtype, shape, plugin), getattr(array, "nbytes", 0))

    # --- a run's files -----------------------------------------------------------------

    def python_files(self, files: Iterable[Path], damage: list[Damage] | None) -> None:
        """Decode every event of ``files`` (the Python engine)."""
        from tbrewrite.events.reader import EventFileReader

        for file in files:
            reader = EventFileReader(file)
            for event in reader.events():
                self.event(event)
            if damage is not None:
                damage.extend(reader.damage)

    def native_files(self, native: ModuleType, files: Iterable[Path], damage: list[Damage] | None) -> None:
        """Find the records to decode from ``_native.FileScanner``'s columns; decode only those."""
        for file in files:
            name = os.fspath(file)
            scanner = native.FileScanner(name)
            scan = _FileColumns(native)
            with open(name, "rb") as handle:
                while True:
                    batch = scanner.read(65_536)
                    self._native_batch(scan, batch, handle)
                    if batch["done"]:
                        break
            if damage is not None:
                damage.extend(
                    Damage(name, DamageKind(kind), offset, before, detail, resumed)
                    for kind, offset, before, detail, resumed in batch["damage"]
                )

    def _native_batch(self, scan: _FileColumns, batch: dict[str, Any], handle: Any) -> None:
        import numpy as np

        rows = scan.take(batch, self.plugins)
        if rows is None:
            return
        codes, whats, tag_ids, steps = rows
        offsets = np.frombuffer(batch["offsets"], "<u8")
        lengths = np.frombuffer(batch["lengths"], "<u8")
        tags = scan.tags or [""]
        plugins = [scan.plugin_names.get(t, "") for t in tags]
        self._dispatch(codes, whats, tag_ids, steps, tags, plugins, lambda at: (handle, offsets[at], lengths[at]))

    def native_others(self, batch: dict[str, Any], tags: list[str], plugins: list[str], files: list[Path]) -> None:
        """Decode the records ``_native.ScalarReader(..., others=True)`` left in a batch.

        Args:
            batch: the reader's batch (its ``other_*`` columns).
            tags: the run's tags so far (ids as the reader's).
            plugins: each tag's plugin name (of its first value in the run).
            files: the run's files.
        """
        import numpy as np

        whats = np.frombuffer(batch["other_whats"], "u1")
        if not len(whats):
            return
        for tag, name in zip(tags, plugins, strict=True):
            self.plugins.setdefault(tag, name)
        tag_ids = np.frombuffer(batch["other_tag_ids"], "<u4").astype(np.int64)
        has_tag = tag_ids != NO_TAG
        tag_ids = np.where(has_tag, tag_ids, 0)
        codes_of_tag = np.array([_PLUGIN_CODE.get(p, TENSOR) for p in plugins] or [0], dtype=np.uint8)
        plugin = codes_of_tag[tag_ids]
        kinds = np.frombuffer(batch["other_kinds"], "u1")
        counts = np.frombuffer(batch["other_values"], "<u4")
        codes = np.full(len(whats), LOOK, dtype=np.uint8)
        tensor = kinds == 8
        codes[tensor] = plugin[tensor]
        codes[tensor & (plugin == SCALAR)] = TENSOR  # a tensor the scalar reader did not take
        codes[kinds == 5] = HIST
        codes[kinds == 4] = IMAGE
        codes[kinds == 6] = AUDIO
        codes[(kinds == 0) & (plugin == HPARAMS)] = HPARAMS
        codes[counts > 1] = LOOK
        codes[(counts == 0) | ~has_tag] = EMPTY
        codes[whats != 5] = NONSUMMARY
        file_ids = np.frombuffer(batch["other_files"], "<u4")
        offsets = np.frombuffer(batch["other_offsets"], "<u8")
        lengths = np.frombuffer(batch["other_lengths"], "<u8")
        steps = np.frombuffer(batch["other_steps"], "<i8")
        handles: dict[int, Any] = {}
        try:

            def locate(at: int) -> tuple[Any, int, int]:
                number = int(file_ids[at])
                handle = handles.get(number)
                if handle is None:
                    handle = handles[number] = open(files[number], "rb")  # noqa: SIM115
                return handle, offsets[at], lengths[at]

            self._dispatch(codes, whats, tag_ids, steps, tags or [""], plugins or [""], locate)
        finally:
            for handle in handles.values():
                handle.close()

    def _dispatch(
        self,
        codes: Any,
        whats: Any,
        tag_ids: Any,
        steps: Any,
        tags: list[str],
        plugins: list[str],
        locate: Callable[[int], tuple[Any, int, int]],
    ) -> None:
        """Count what is left out of the records ``codes`` classify; decode the ones asked for."""
        import numpy as np

        from tbrewrite.events.summary import Event

        # Non-summary events: counted, never decoded.
        for number, count in zip(*np.unique(whats[codes == NONSUMMARY], return_counts=True), strict=True):
            field_name = _WHAT_FIELDS.get(int(number))
            if field_name is not None:
                self.report.add(*NON_SUMMARY[field_name], int(count), [self.run])
        # Values of kinds not asked for: counted by kind, never decoded.
        for code, kind in _CODE_KIND.items():
            if kind in self.kinds:
                continue
            chosen = codes == code
            count = int(chosen.sum())
            if count:
                ids = np.unique(tag_ids[chosen])[:_EXAMPLES].tolist()
                if kind == "tensors":
                    examples = [f"{tags[i]} ({plugins[i] or 'no plugin'})" for i in ids]
                else:
                    examples = [tags[i] for i in ids]
                self.report.not_asked(kind, count, examples)
        # The rest: decoded one by one, unless their tag or step is filtered out.
        wanted = np.isin(codes, [_KIND_CODE[k] for k in self.kinds if k != "scalars"] + [LOOK])
        always = (codes == LOOK) | (codes == HPARAMS)
        if self.filters.steps is not None:
            wanted &= self.filters.step_mask(steps) | always
        if self.filters.tags is not None:
            passes = np.fromiter((self.filters.tag(text_tag(t)) for t in tags), dtype=bool, count=len(tags))
            wanted &= passes[tag_ids] | always
        for at in np.flatnonzero(wanted).tolist():
            handle, offset, length = locate(at)
            handle.seek(int(offset) + 12)
            self.event(Event.FromString(handle.read(int(length))))


class _FileColumns:
    """One file's tags and their plugins, across ``FileScanner`` batches."""

    def __init__(self, native: ModuleType) -> None:
        import numpy as np

        self.native = native
        self.tags: list[str] = []
        self.codes = np.zeros(0, dtype=np.uint8)
        """File tag id -> the kind code its plugin gives a tensor."""
        self.plugin_names: dict[str, str] = {}

    def take(self, batch: dict[str, Any], plugins: dict[str, str]) -> tuple[Any, Any, Any, Any] | None:
        """Return ``(codes, whats, tag_ids, steps)`` of the batch's records; update ``plugins``."""
        import numpy as np

        native = self.native
        first_new = len(self.tags)
        self.tags.extend(batch["tags"])
        whats = np.frombuffer(batch["whats"], "u1")
        if not len(whats):
            return None
        tag_ids = np.frombuffer(batch["tag_ids"], "<u4").astype(np.int64)
        flags = np.frombuffer(batch["flags"], "u1")
        if len(self.tags) > first_new:
            self._new_tags(batch, first_new, tag_ids, flags, plugins)
        counts = np.frombuffer(batch["values"], "<u4")
        kinds = np.frombuffer(batch["value_kinds"], "u1")
        steps = np.frombuffer(batch["steps"], "<i8")
        has_tag = tag_ids != native.NO_TAG
        tag_ids = np.where(has_tag, tag_ids, 0)
        plugin = self.codes[tag_ids] if len(self.codes) else np.zeros(len(tag_ids), dtype=np.uint8)
        scalar_flag = (flags & native.FLAG_SCALAR) != 0
        codes = np.full(len(whats), LOOK, dtype=np.uint8)
        tensor = kinds == 8
        codes[tensor] = plugin[tensor]
        codes[tensor & (plugin == SCALAR) & ~scalar_flag] = TENSOR
        codes[(kinds == 2) & (plugin == SCALAR)] = SCALAR
        codes[kinds == 5] = HIST
        codes[kinds == 4] = IMAGE
        codes[kinds == 6] = AUDIO
        codes[(kinds == 0) & (plugin == HPARAMS)] = HPARAMS
        codes[counts > 1] = LOOK
        codes[(counts == 0) | ~has_tag] = EMPTY
        codes[whats != 5] = NONSUMMARY
        return codes, whats, tag_ids, steps

    def _new_tags(
        self, batch: dict[str, Any], first_new: int, tag_ids: Any, flags: Any, plugins: dict[str, str]
    ) -> None:
        """Give the tags first seen in this batch their plugin: the run's, or their first value's."""
        import numpy as np

        metadata = dict(batch["metadata"])
        more_rows = np.frombuffer(batch["more_rows"], "<u4")
        more_ids = np.frombuffer(batch["more_tag_ids"], "<u4")
        more_flags = np.frombuffer(batch["more_flags"], "u1")
        codes = np.zeros(len(self.tags), dtype=np.uint8)
        codes[: len(self.codes)] = self.codes
        for tag_id in range(first_new, len(self.tags)):
            tag = self.tags[tag_id]
            if tag not in plugins:
                plugins[tag] = self._first_plugin(tag_id, metadata, tag_ids, flags, more_rows, more_ids, more_flags)
            name = plugins[tag]
            self.plugin_names[tag] = name
            codes[tag_id] = _PLUGIN_CODE.get(name, TENSOR)
        self.codes = codes

    def _first_plugin(
        self,
        tag_id: int,
        metadata: dict[int, bytes],
        tag_ids: Any,
        flags: Any,
        more_rows: Any,
        more_ids: Any,
        more_flags: Any,
    ) -> str:
        import numpy as np

        main = np.flatnonzero(tag_ids == tag_id)
        more = np.flatnonzero(more_ids == tag_id)
        if len(main) and (not len(more) or main[0] <= more_rows[more[0]]):
            has_metadata = bool(flags[main[0]] & self.native.FLAG_HAS_METADATA)
        elif len(more):
            has_metadata = bool(more_flags[more[0]] & self.native.FLAG_HAS_METADATA)
        else:
            has_metadata = False
        if not has_metadata or tag_id not in metadata:
            return ""
        name: str = SummaryMetadata.FromString(metadata[tag_id]).plugin_data.plugin_name
        return name


def _kind(which: str | None, plugin: str) -> str | None:
    """The kind of a value that is not a scalar, from its stored form and plugin; None if none."""
    if which == "histo":
        return "histograms"
    if which == "image":
        return "images"
    if which == "audio":
        return "audio"
    if which in ("simple_value", "obsolete_old_style_histogram"):
        return None
    if plugin == "hparams":
        return "hparams"
    if which != "tensor":
        return None
    code = _PLUGIN_CODE.get(plugin, TENSOR)
    return "tensors" if code == SCALAR else _CODE_KIND[code]

"""Planning one ``convert`` run: its sources, layout, tag mapping and output name.

The first, streaming pass of ``convert`` (:func:`tbrewrite.engine.scan.scan_files` per source)
decides everything before a byte is written; :mod:`tbrewrite.engine.rewrite` then writes
the plan. See :mod:`tbrewrite.commands.convert` for the whole command and
:mod:`tbrewrite.producers.keras` for the Keras layouts and the default mapping.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tbrewrite.events.reader import find_run_dirs, list_event_files
from tbrewrite.producers.keras import (
    GENERIC,
    KERAS_FLAT,
    KERAS_SPLIT,
    TRAIN_DIR,
    VALIDATION_DIR,
    TagMapping,
    is_flat_keras_tags,
    is_split_run,
    tf49109_warnings,
)
from tbrewrite.events.framing import Damage
from tbrewrite.engine.scan import StreamScan, TagStats, scan_files
from tbrewrite.sidecars.read import CSV_LOGGER, Sidecar
from tbrewrite.events.writer import output_file_name


@dataclass
class Source:
    """One input stream of a run: the root folder, ``train/`` or ``validation/``.

    Attributes:
        name: str. ``"train"``, ``"validation"``, or ``""`` for the run folder itself.
        files: list of Path, in TensorBoard's order.
    """

    name: str
    files: list[Path]


@dataclass
class RunPlan:
    """Everything decided about one run before a byte is written.

    Attributes:
        run: str. The run's path relative to SRC (``"."`` for SRC itself).
        src_dir: Path. The Keras run folder.
        out_dir: Path. The output run folder.
        layout: str. ``keras-split``, ``keras-flat`` or ``generic``.
        sources: list of Source.
        scans: list of StreamScan, one per source.
        tag_map: list of dict tag -> output tag, one per source (every tag present).
        out_name: str. The output event file's name.
        sidecars: list of Sidecar to merge into the output.
    """

    run: str
    src_dir: Path
    out_dir: Path
    layout: str
    sources: list[Source]
    scans: list[StreamScan]
    tag_map: list[dict[str, str]]
    out_name: str
    sidecars: list[Sidecar] = field(default_factory=list)

    def holds_events(self) -> bool:
        """True if the run has any event besides file_version (else there is nothing to
        write: e.g. only an empty, truncated or non-event file)."""
        return any(n for scan in self.scans for what, n in scan.event_kinds.items() if what != "file_version")

    def warnings(self) -> list[str]:
        """Return notes about problems the log itself shows.

        A keras-split run looks hit by tensorflow#49109 (Keras's TensorBoard callback
        dropping epoch summaries when an integer ``update_freq`` does not divide the
        batches per epoch) as :func:`tbrewrite.producers.keras.tf49109_warnings` tells.
        """
        notes = []
        fixed = any(s.kind == CSV_LOGGER for s in self.sidecars)
        for source, scan in zip(self.sources, self.scans):
            if source.name == TRAIN_DIR:
                for note in tf49109_warnings(scan):
                    if fixed:
                        note = note.replace("merge a CSVLogger file with --sidecar", "the CSVLogger sidecar restores them")
                    notes.append(note)
        return notes

    @property
    def damage(self) -> list[Damage]:
        return [d for s in self.scans for d in s.damage]

    @property
    def events_in(self) -> int:
        return sum(s.events for s in self.scans)

    def renamed(self) -> list[tuple[str, str, str, TagStats]]:
        """Return ``(source, old tag, new tag, stats)`` for every tag whose name changes."""
        out = []
        for source, scan, tmap in zip(self.sources, self.scans, self.tag_map):
            for tag, stats in scan.tags.items():
                if tmap[tag] != tag:
                    out.append((source.name, tag, tmap[tag], stats))
        return out

    def backwards(self) -> dict[str, tuple[int, int, int]]:
        """Return, per output tag whose steps go back, ``(times, previous step, step)``
        of the first time."""
        out: dict[str, tuple[int, int, int]] = {}
        for scan, tmap in zip(self.scans, self.tag_map):
            for tag, stats in scan.tags.items():
                if stats.backwards:
                    _, prev, step = stats.backwards[0]
                    out[tmap[tag]] = (stats.backwards_count, prev, step)
        return out


def discover_runs(src: Path) -> list[tuple[str, Path]]:
    """Return ``(relative name, folder)`` of every Keras run under ``src``.

    A folder holding ``train/`` or ``validation/`` event files is one keras-split run
    (its own event files, e.g. an hparams summary, belong to it too); any other folder
    holding event files is one run of its own.
    """
    roots: dict[Path, None] = {}
    for d in find_run_dirs(src):
        if d.name in (TRAIN_DIR, VALIDATION_DIR) and d != src and is_split_run(d.parent):
            roots.setdefault(d.parent, None)
        else:
            roots.setdefault(d, None)
    for d in list(roots):
        if is_split_run(d):
            roots.setdefault(d, None)
    ordered = sorted(roots, key=lambda p: p.relative_to(src).parts)
    return [(str(p.relative_to(src)) if p != src else ".", p) for p in ordered]


def plan_run(
    run: str,
    src_dir: Path,
    out_dir: Path,
    mapping: TagMapping,
    *,
    resync: bool = False,
    files: dict[str, list[Path]] | None = None,
    keep_last: bool = False,
) -> RunPlan:
    """Scan one Keras run and decide its layout, tag mapping and output name.

    Args:
        run: str. Name of the run relative to SRC.
        src_dir: Path. The run folder.
        out_dir: Path. Where its output event file goes.
        mapping: TagMapping.
        resync: bool. Read past damage.
        files: optional dict source name -> files, to convert a subset (restart split).

    Raises:
        OSError: if a file cannot be read.
    """
    if files is None:
        files = {
            "": list_event_files(src_dir),
            TRAIN_DIR: list_event_files(src_dir / TRAIN_DIR),
            VALIDATION_DIR: list_event_files(src_dir / VALIDATION_DIR),
        }
    sources = [Source(name, paths) for name, paths in files.items() if paths]
    # Only --restarts keep-last needs every backwards step; reporting needs the first.
    limit = None if keep_last else 1
    scans = [scan_files(s.files, resync=resync, backwards_limit=limit) for s in sources]
    if any(s.name in (TRAIN_DIR, VALIDATION_DIR) for s in sources):
        layout = KERAS_SPLIT
    elif scans and is_flat_keras_tags(scans[0].scalar_tags()):
        layout = KERAS_FLAT
    else:
        layout = GENERIC
    tag_map = _assign_tags(sources, scans, layout, mapping)
    out_name = output_file_name(start_wall_time(scans))
    return RunPlan(run, src_dir, out_dir, layout, sources, scans, tag_map, out_name)


def _assign_tags(
    sources: list[Source], scans: list[StreamScan], layout: str, mapping: TagMapping
) -> list[dict[str, str]]:
    """Map every source tag to a unique output tag.

    Scalars get the Keras mapping; all other tags keep their name. Tags that keep their
    name claim it first, in source order (run folder, train, validation); a later claim
    on a taken name -- e.g. the ``keras`` model config in both train and validation --
    is prefixed with its split name (``val/keras``).
    """
    proposals = []
    for i, (source, scan) in enumerate(zip(sources, scans)):
        for tag, stats in scan.tags.items():
            new = None
            if stats.kind == "scalar":
                if layout == KERAS_SPLIT and source.name:
                    new = mapping.map_split(source.name, tag)
                elif layout == KERAS_FLAT:
                    new = mapping.map_flat(tag)
            proposals.append((new is not None, i, tag, new or tag))
    proposals.sort(key=lambda p: p[0])  # stable: unchanged names claim first
    taken: set[str] = set()
    result: list[dict[str, str]] = [{} for _ in sources]
    for _, i, tag, out in proposals:
        if out in taken:
            split = {TRAIN_DIR: mapping.train_name, VALIDATION_DIR: mapping.val_name}
            base = f"{split.get(sources[i].name, 'run')}/{tag}"
            out, n = base, 2
            while out in taken:
                out, n = f"{base}_{n}", n + 1
        taken.add(out)
        result[i][tag] = out
    return result


def start_wall_time(scans: Sequence[StreamScan]) -> float:
    """Return the output's start: the earliest first wall_time of ``scans``, in seconds.

    Values no event-file name can hold (NaN, infinite, negative, 10**10 s or more:
    damaged or hostile input) are skipped; with none left, 0.0.
    """
    starts = [s.first_wall_time for s in scans if s.first_wall_time is not None]
    return min((t for t in starts if 0 <= t < 1e10), default=0.0)


def split_sessions(run_dir: Path) -> list[tuple[str, dict[str, list[Path]]]]:
    """Group a run's event files into one session per writing process.

    tf.keras / Keras 3 file names end in ``.<pid>.<uid>.v2`` (TF
    ``summary_ops_v2.py``); the ``train/`` and ``validation/`` files of one ``fit``
    share the pid. Files without that shape are a session each, paired by position.
    Each session is named after the seconds field of its first file name.
    """
    by_source = {
        "": list_event_files(run_dir),
        TRAIN_DIR: list_event_files(run_dir / TRAIN_DIR),
        VALIDATION_DIR: list_event_files(run_dir / VALIDATION_DIR),
    }
    sessions: dict[str, dict[str, list[Path]]] = {}
    for source, files in by_source.items():
        for position, path in enumerate(files):
            parts = path.name.split(".")
            key = parts[-3] if parts[-1] == "v2" and len(parts) >= 6 else f"#{position}"
            sessions.setdefault(key, {"": [], TRAIN_DIR: [], VALIDATION_DIR: []})[source].append(path)
    named: list[tuple[str, dict[str, list[Path]]]] = []
    used: set[str] = set()
    for files in sorted(sessions.values(), key=lambda s: min(p.name for v in s.values() for p in v)):
        first = min((p for v in files.values() for p in v), key=lambda p: p.name)
        parts = first.name.split(".")
        base = parts[3] if len(parts) > 3 and parts[3].isdigit() else first.name
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        named.append((name, files))
    return named

"""Planning one ``convert`` run: sources, layout, mapping, sidecars and the engine's plan.

Its result is the :class:`~tbrewrite.engine.plan.OutputPlan` the engine writes.

A first streaming pass (:func:`tbrewrite.engine.scan.scan_files` per source) learns
each source's tags, kinds, first plugin metadata, restarts and damage; the run's
producer (:mod:`tbrewrite.producers`) decides its layout and mapping; sidecars are
placed (:mod:`tbrewrite.sidecars.place`). Everything is decided before a byte is
written, in one frozen :class:`RunPlan`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tbrewrite.engine.plan import Header, OutputPlan, SourceFile, SourcePlan, TagAction
from tbrewrite.engine.scan import StreamScan, TagStats, scan_files
from tbrewrite.events.framing import Damage
from tbrewrite.events.writer import output_file_name
from tbrewrite.logdir import list_event_files
from tbrewrite.producers import Producer, detect
from tbrewrite.producers.keras import TagMapping, split_sources
from tbrewrite.sidecars.place import MergePlan, plan_merge
from tbrewrite.sidecars.read import CSV_LOGGER, Sidecar

KEEP = "keep"
KEEP_LAST = "keep-last"
SPLIT = "split"
RESTART_POLICIES = (KEEP, KEEP_LAST, SPLIT)


@dataclass(frozen=True)
class Source:
    """One input stream of a run: the run folder itself, ``train/``, ``validation/``, ``test/``, ...

    Attributes:
        name: str. A split folder's name (``"train"``, ``"validation"``, ``"test"``, ...),
            or ``""`` for the run folder itself.
        files: tuple of Path, in TensorBoard's order.
    """

    name: str
    files: tuple[Path, ...]


@dataclass(frozen=True)
class RunScan:
    """What the first pass learned about one run, and the tag mapping it decided.

    Attributes:
        run: str. The run's path relative to SRC (``"."`` for SRC itself).
        src_dir: Path. The run folder.
        producer: Producer. Whose layout the run has.
        sources: tuple of Source.
        scans: tuple of StreamScan, one per source.
        tag_map: tuple of mappings tag -> output tag, one per source (every tag present).
    """

    run: str
    src_dir: Path
    producer: Producer
    sources: tuple[Source, ...]
    scans: tuple[StreamScan, ...]
    tag_map: tuple[Mapping[str, str], ...]

    @property
    def layout(self) -> str:
        """``keras-split``, ``keras-flat`` or ``generic``."""
        return self.producer.name


@dataclass(frozen=True)
class RunPlan:
    """Everything decided about one run before a byte is written.

    Attributes:
        scan: RunScan.
        out_dir: Path. The output run folder.
        out_name: str. The output event file's name.
        sidecars: tuple of Sidecar merged into the output.
        merge: MergePlan. The sidecar points and what they replace.
        output: OutputPlan. What the engine writes.
    """

    scan: RunScan
    out_dir: Path
    out_name: str
    sidecars: tuple[Sidecar, ...]
    merge: MergePlan
    output: OutputPlan

    @property
    def run(self) -> str:
        """The run's path relative to SRC."""
        return self.scan.run

    @property
    def src_dir(self) -> Path:
        """The run folder."""
        return self.scan.src_dir

    @property
    def layout(self) -> str:
        """``keras-split``, ``keras-flat`` or ``generic``."""
        return self.scan.layout

    @property
    def sources(self) -> tuple[Source, ...]:
        """The run's sources."""
        return self.scan.sources

    @property
    def scans(self) -> tuple[StreamScan, ...]:
        """One StreamScan per source."""
        return self.scan.scans

    @property
    def tag_map(self) -> tuple[Mapping[str, str], ...]:
        """One mapping tag -> output tag per source."""
        return self.scan.tag_map

    @property
    def damage(self) -> list[Damage]:
        """Every damaged stretch the scan found."""
        return [d for s in self.scans for d in s.damage]

    @property
    def events_in(self) -> int:
        """Events read by the scan (file_version included)."""
        return sum(s.events for s in self.scans)

    def has_output(self) -> bool:
        """Return True if there is something to write.

        That is an event besides file_version, or a sidecar point (a run of only empty,
        truncated or non-event files has none).
        """
        return bool(self.merge.events) or any(
            n for scan in self.scans for what, n in scan.event_kinds.items() if what != "file_version"
        )

    def warnings(self) -> list[str]:
        """Return notes about problems the log itself shows.

        They are the producer's, e.g. tensorflow#49109 for a Keras ``train/`` source.
        """
        notes = []
        fixed = any(s.kind == CSV_LOGGER for s in self.sidecars)
        for source, scan in zip(self.sources, self.scans, strict=False):
            for note in self.scan.producer.warnings(source.name, scan):
                if fixed:
                    note = note.replace("merge a CSVLogger file with --sidecar", "the CSVLogger sidecar restores them")
                notes.append(note)
        return notes

    def renamed(self) -> list[tuple[str, str, str, TagStats]]:
        """Return ``(source, old tag, new tag, stats)`` for every tag whose name changes."""
        out = []
        for source, scan, tmap in zip(self.sources, self.scans, self.tag_map, strict=False):
            for tag, stats in scan.tags.items():
                if tmap[tag] != tag:
                    out.append((source.name, tag, tmap[tag], stats))
        return out

    def backwards(self) -> dict[str, tuple[int, int, int]]:
        """Return ``(times, previous step, step)`` of the first time, per output tag whose steps go back."""
        out: dict[str, tuple[int, int, int]] = {}
        for scan, tmap in zip(self.scans, self.tag_map, strict=False):
            for tag, stats in scan.tags.items():
                if stats.backwards:
                    _, prev, step = stats.backwards[0]
                    out[tmap[tag]] = (stats.backwards_count, prev, step)
        return out


def scan_run(
    run: str,
    src_dir: Path,
    mapping: TagMapping | None,
    *,
    resync: bool = False,
    files: Mapping[str, Sequence[Path]] | None = None,
    keep_last: bool = False,
) -> RunScan:
    """Scan one run and decide its layout and tag mapping.

    Args:
        run: str. Name of the run relative to SRC.
        src_dir: Path. The run folder.
        mapping: TagMapping, or None to keep every tag's name (``merge``).
        resync: bool. Read past damage.
        files: optional mapping source name -> files, to plan a subset (restart split);
            default the run folder's and its split folders' event files
            (:func:`tbrewrite.producers.keras.split_sources`).
        keep_last: bool. Record every step that goes back (``--restarts keep-last``).

    Raises:
        OSError: if a file cannot be read.
    """
    if files is None:
        files = {"": list_event_files(src_dir)}
        files.update((d, list_event_files(src_dir / d)) for d in split_sources(src_dir, mapping))
    sources = tuple(Source(name, tuple(paths)) for name, paths in files.items() if paths)
    # Only --restarts keep-last needs every backwards step; reporting needs the first.
    limit = None if keep_last else 1
    scans = tuple(scan_files(s.files, resync=resync, backwards_limit=limit) for s in sources)
    producer = detect([s.name for s in sources], scans)
    tag_map = _assign_tags(sources, scans, producer, mapping)
    return RunScan(run, src_dir, producer, sources, scans, tag_map)


def plan_run(
    scan: RunScan,
    out_dir: Path,
    *,
    restarts: str = KEEP,
    resync: bool = False,
    sidecars: Sequence[Sidecar] = (),
    mapping: TagMapping | None = None,
    sessions: Sequence[Collection[Path]] = (),
    merge: MergePlan | None = None,
) -> RunPlan:
    """Decide the output of a scanned run: its file, sidecar points and engine plan.

    Args:
        scan: RunScan.
        out_dir: Path. Where its output event file goes.
        restarts: str. ``keep`` or ``keep-last`` (see :mod:`tbrewrite.engine.restarts`).
        resync: bool. Read past damage.
        sidecars: Sidecar files to merge.
        mapping: TagMapping of the sidecar tags (and how a Keras tag would convert).
        sessions: the run's event files grouped by writing process
            (:func:`tbrewrite.producers.keras.split_sessions`), so that each sidecar row
            replaces points of its own process only (:mod:`tbrewrite.sidecars.place`).
        merge: MergePlan decided already for this run among others
            (:func:`tbrewrite.sidecars.place.plan_merges`, ``--restarts split``); then
            ``sidecars`` are the files it was decided from.

    Raises:
        SidecarError: a sidecar matches nothing in the run.
        OSError: if a file cannot be read.
    """
    if merge is None:
        merge = plan_merge(scan, sidecars, sessions=sessions, resync=resync, mapping=mapping)
    merged = {r.path for r in merge.reports}
    sidecars = [s for s in sidecars if str(s.path) in merged]
    keep_last = restarts == KEEP_LAST
    wall_time = start_wall_time(scan.scans)
    out_name = output_file_name(wall_time)
    sources = tuple(
        SourcePlan(
            source.name,
            tuple(SourceFile.from_stats(f) for f in stats.files),
            {
                tag: TagAction(tmap[tag], ts.metadata, tuple(ts.backwards) if keep_last and ts.backwards else ())
                for tag, ts in stats.tags.items()
            },
        )
        for source, stats, tmap in zip(scan.sources, scan.scans, scan.tag_map, strict=False)
    )
    output = OutputPlan(
        out_dir / out_name,
        sources,
        Header.OWN,
        wall_time,
        merge.events,
        dict(merge.drop),
        resync,
    )
    return RunPlan(scan, out_dir, out_name, tuple(sidecars), merge, output)


def _assign_tags(
    sources: Sequence[Source], scans: Sequence[StreamScan], producer: Producer, mapping: TagMapping | None
) -> tuple[Mapping[str, str], ...]:
    """Map every source tag to a unique output tag.

    Scalars get the producer's mapping; all other tags keep their name. Tags that keep
    their name claim it first, in source order (run folder, train, validation, others);
    a later claim on a taken name -- e.g. the ``keras`` model config in both train and
    validation -- is prefixed with its split name (``val/keras``, ``test/keras``).
    """
    proposals = []
    for i, (source, scan) in enumerate(zip(sources, scans, strict=False)):
        for tag, stats in scan.tags.items():
            new = None
            if stats.kind == "scalar" and mapping is not None:
                new = producer.map_scalar(source.name, tag, mapping)
            proposals.append((new is not None, i, tag, new or tag))
    proposals.sort(key=lambda p: p[0])  # stable: unchanged names claim first
    taken: set[str] = set()
    result: list[dict[str, str]] = [{} for _ in sources]
    names = mapping or TagMapping()
    for _, i, tag, out in proposals:
        if out in taken:
            base = f"{names.split_name(sources[i].name) or 'run'}/{tag}"
            out, n = base, 2
            while out in taken:
                out, n = f"{base}_{n}", n + 1
        taken.add(out)
        result[i][tag] = out
    return tuple(result)


def start_wall_time(scans: Sequence[StreamScan]) -> float:
    """Return the output's start: the earliest first wall_time of ``scans``, in seconds.

    Values no event-file name can hold (NaN, infinite, negative, 10**10 s or more:
    damaged or hostile input) are skipped; with none left, 0.0.
    """
    starts = [s.first_wall_time for s in scans if s.first_wall_time is not None]
    return min((t for t in starts if 0 <= t < 1e10), default=0.0)

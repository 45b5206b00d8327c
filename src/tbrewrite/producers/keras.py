"""Keras's log layouts.

How to recognise them, and the default mapping of Keras's flat tags to hierarchical ones.

What each Keras version writes (``../shared/FORMATS.md`` §4):

* **keras-split** -- tf.keras (TF 2.x), tf_keras and Keras 3 write a ``log_dir`` holding
  the runs ``train/`` and ``validation/`` with ``epoch_<metric>``, ``batch_<metric>``
  and ``evaluation_<metric>_vs_iterations`` tags (``keras/src/callbacks/tensorboard.py``
  ``_log_epoch_metrics``; ``tf_keras/callbacks.py``). Users add evaluation runs beside
  them under other names -- a ``tf.summary`` writer on ``<log_dir>/test`` for what
  ``evaluate`` returns, TF1 ``FileWriter`` objects on ``train/`` and ``test/`` (the
  layout of the TensorFlow 1 tutorials) -- so the usual evaluation folder names
  (:data:`EVALUATION_DIRS`) are splits of their own, and ``--split NAME=SPLIT`` names others.
* **keras-flat** -- Keras 2.0-2.3 on TF1 writes one folder with the raw ``logs`` keys as
  tags: ``loss``, ``acc``, ``val_loss``, ``val_acc``, ``lr`` (``keras/callbacks.py``
  @2.1.6 ``TensorBoard.on_epoch_end``).
* **generic** -- anything else (PyTorch, tensorboardX, an already converted run): tags
  are left unchanged.

Only scalar tags are mapped; histograms, images, text, hparams, the ``keras`` model
config and graphs pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tbrewrite.engine.scan import StreamScan
from tbrewrite.errors import UsageError
from tbrewrite.logdir import list_event_files, walk

KERAS_FLAT = "keras-flat"
KERAS_SPLIT = "keras-split"

TRAIN_DIR = "train"
VALIDATION_DIR = "validation"

EVALUATION_DIRS: dict[str, str | None] = {
    VALIDATION_DIR: None,
    "val": None,
    "valid": None,
    "eval": "eval",
    "evaluation": "eval",
    "test": "test",
    "testing": "test",
}
"""Evaluation folders of a Keras ``log_dir`` by default, and the split each maps to.

None is the validation split (``--val-name``, default ``val``). These folders are
sources of a log_dir only beside ``train/`` or ``validation/`` (or a ``--split``
folder): a lone ``test/`` run elsewhere in a tree stays a run of its own. Their data is
never given the training split's name.
"""

LEARNING_RATE = "learning_rate"
LEARNING_RATE_TAGS = frozenset({"lr", "learning_rate", "epoch_lr", "epoch_learning_rate"})
PATTERNS = ("{split}/{metric}", "{metric}/{split}")


@dataclass(frozen=True)
class TagMapping:
    """How split and metric names combine into output tags.

    Args:
        train_name: str. The split name for training data (default ``train``).
        val_name: str. The split name for validation data (default ``val``).
        pattern: str. ``"{split}/{metric}"`` (TensorBoard groups by split) or
            ``"{metric}/{split}"`` (train and val of one metric share a section).
        splits: tuple of ``(folder, split)`` pairs (``--split NAME=SPLIT``): the
            folder ``NAME`` of a Keras ``log_dir`` is a source whose scalars go to split
            ``SPLIT``; it overrides :data:`EVALUATION_DIRS`. The folder is evaluation
            data unless ``SPLIT`` is the training split's name (``--split training=train``).

    Raises:
        UsageError: if the pattern lacks ``{split}`` or ``{metric}``, or a name is
            empty, or the two names are equal; if a ``splits`` folder is ``train``,
            empty, holds ``/`` or is given twice, or a split is empty; or if
            ``train_name`` is the split of an evaluation folder of
            :data:`EVALUATION_DIRS` that ``splits`` does not remap.
    """

    train_name: str = "train"
    val_name: str = "val"
    pattern: str = "{split}/{metric}"
    splits: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if "{split}" not in self.pattern or "{metric}" not in self.pattern:
            raise UsageError(f"--pattern must contain {{split}} and {{metric}}; got {self.pattern!r}")
        try:
            self.pattern.format(split="s", metric="m")
        except (KeyError, IndexError, ValueError) as e:
            raise UsageError(f"--pattern {self.pattern!r} is not a valid pattern: {e}") from None
        if not self.train_name or not self.val_name:
            raise UsageError("--train-name and --val-name must not be empty")
        if self.train_name == self.val_name:
            raise UsageError(f"--train-name and --val-name must differ; both are {self.train_name!r}")
        given: set[str] = set()
        for folder, split in self.splits:
            if not folder or "/" in folder or "\\" in folder or folder in (".", ".."):
                raise UsageError(f"--split {folder}={split}: NAME must be one folder name")
            if folder == TRAIN_DIR:
                raise UsageError(f"--split {folder}={split}: train/ is the training split; name it with --train-name")
            if not split:
                raise UsageError(f"--split {folder}=: SPLIT must not be empty")
            if folder in given:
                raise UsageError(f"--split {folder}=...: given twice")
            given.add(folder)
        for folder in EVALUATION_DIRS:
            if folder not in given and self.split_name(folder) == self.train_name:
                raise UsageError(
                    f"--train-name {self.train_name!r} is the split of evaluation folder {folder}/; "
                    f"give that folder its own with --split {folder}=NAME"
                )

    def tag(self, split: str, metric: str) -> str:
        """Return the output tag for ``metric`` in ``split`` (``"train"`` or ``"val"``)."""
        name = self.train_name if split == "train" else self.val_name
        return self.pattern.format(split=name, metric=metric)

    def split_name(self, folder: str) -> str | None:
        """Return the split a source folder of a Keras ``log_dir`` maps to, or None.

        Args:
            folder: str. A folder name (``"train"``, ``"validation"``, ``"test"``, ...);
                ``""`` (the log_dir itself) has no split.

        Returns:
            ``train_name`` for ``train``; the ``--split`` given for the folder; else the
            split of :data:`EVALUATION_DIRS` (``val_name`` for ``validation``, ``val``,
            ``valid``); None for any other name.
        """
        if folder == TRAIN_DIR:
            return self.train_name
        for name, split in self.splits:
            if name == folder:
                return split
        if folder in EVALUATION_DIRS:
            return EVALUATION_DIRS[folder] or self.val_name
        return None

    def is_training(self, folder: str) -> bool:
        """Return True if a source folder holds training data (``train/``, or a ``--split`` to the train split)."""
        return folder == TRAIN_DIR or any(name == folder and split == self.train_name for name, split in self.splits)

    def split_folders(self) -> tuple[str, ...]:
        """Return every folder name that can be a source of a Keras ``log_dir``, in source order.

        ``train``, ``validation``, then the other evaluation folders and the ``--split``
        ones in name order.
        """
        others = (set(EVALUATION_DIRS) | {name for name, _ in self.splits}) - {TRAIN_DIR, VALIDATION_DIR}
        return (TRAIN_DIR, VALIDATION_DIR, *sorted(others))

    def anchors(self, folder: str) -> bool:
        """Return True if event files in ``folder`` make its parent a Keras ``log_dir`` on their own.

        That is ``train/`` and ``validation/`` (what Keras writes) and the ``--split``
        folders; ``test/``, ``eval/``, ... join a log_dir only beside one of those.
        """
        return folder in (TRAIN_DIR, VALIDATION_DIR) or any(name == folder for name, _ in self.splits)

    def map_split(self, source: str, tag: str) -> str | None:
        """Map a scalar tag of a source folder of a keras-split run.

        A training source (``train/``) maps ``epoch_<metric>``, ``batch_<metric>`` and
        the learning rate; an evaluation source (``validation/``, ``test/``, ...) maps
        ``epoch_<metric>`` and ``evaluation_<metric>_vs_iterations`` to its own split
        (:meth:`split_name`), so evaluation data never gets the training split's name.

        Args:
            source: str. The source folder's name (``"train"``, ``"validation"``, ...).
            tag: str. The tag as Keras wrote it.

        Returns:
            The output tag, or None if the tag is not one Keras names this way, or the
            folder is not a split.
        """
        split = self.split_name(source)
        if split is None:
            return None
        if self.is_training(source):
            if tag in LEARNING_RATE_TAGS:
                return self.pattern.format(split=split, metric=LEARNING_RATE)
            if tag.startswith("epoch_learning_rate_"):
                return self.pattern.format(split=split, metric=tag[len("epoch_") :])
            if tag.startswith("epoch_") and len(tag) > 6:
                return self.pattern.format(split=split, metric=tag[6:])
            if tag.startswith("batch_") and len(tag) > 6:
                return self.pattern.format(split=split, metric=tag)
            return None
        if tag.startswith("epoch_") and len(tag) > 6:
            return self.pattern.format(split=split, metric=tag[6:])
        if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
            metric = tag[len("evaluation_") : -len("_vs_iterations")]
            if metric:
                return self.pattern.format(split=split, metric=f"{metric}_vs_iterations")
        return None

    def map_flat(self, tag: str) -> str | None:
        """Map a scalar tag of a keras-flat (Keras 2 / TF1) run.

        ``val_<metric>`` goes to the val split, learning-rate names to
        ``train/learning_rate``, any other tag without ``/`` to the train split.
        Tags that already hold a ``/`` are left alone (None).
        """
        if "/" in tag or not tag:
            return None
        if tag in LEARNING_RATE_TAGS:
            return self.tag("train", LEARNING_RATE)
        if tag.startswith("val_") and len(tag) > 4:
            return self.tag("val", tag[4:])
        return self.tag("train", tag)


def parse_split(text: str) -> tuple[str, str]:
    """Parse ``--split NAME=SPLIT`` into ``(folder, split)``.

    Raises:
        UsageError: there is no ``=``.
    """
    folder, eq, split = text.partition("=")
    if not eq:
        raise UsageError(f"--split must be NAME=SPLIT (a folder beside train/ and its split); got {text!r}")
    return folder.strip(), split.strip()


def split_sources(
    path: Path, mapping: TagMapping | None = None, has_events: Callable[[Path], bool] | None = None
) -> list[str]:
    """Return the split folders of the Keras ``log_dir`` at ``path`` that hold event files.

    Args:
        path: Path. A folder.
        mapping: TagMapping whose ``splits`` name more folders (default: none).
        has_events: optional function folder -> whether it holds event files, for a
            caller that walked the tree already; default: list the folder.

    Returns:
        list of folder names in source order (:meth:`TagMapping.split_folders`); empty
        unless one of them is ``train``, ``validation`` or a ``--split`` folder
        (:meth:`TagMapping.anchors`).

    Raises:
        OSError: a folder exists but cannot be listed.
    """
    mapping = mapping or TagMapping()
    has = has_events or (lambda folder: bool(list_event_files(folder)))
    present = [d for d in mapping.split_folders() if has(path / d)]
    return present if any(mapping.anchors(d) for d in present) else []


def is_split_run(path: Path, mapping: TagMapping | None = None) -> bool:
    """Return True if ``path`` is a Keras ``log_dir`` (see :func:`split_sources`)."""
    return bool(split_sources(path, mapping))


def flat_keras_reason(scan: StreamScan) -> str | None:
    """Return why a single-folder run is Keras 2 / TF1's flat layout, or None if it is not.

    Only what Keras writes counts, since ``loss`` or ``accuracy`` alone are everyone's
    names (flax/clu, PyTorch scripts): Keras 2's ``TensorBoard.on_epoch_end`` logs the
    ``logs`` dict, where every validation metric is the ``val_`` twin of a training one
    (``keras/callbacks.py`` @2.1.6), and on TF1 its ``FileWriter`` names files
    ``events.out.tfevents.<secs>.<host>``, without the ``.v2`` TF2's writers add.

    Args:
        scan: StreamScan of the run's folder.

    Returns:
        str: the reason, e.g. ``"val_loss is the val_ twin of loss"``; or None.
    """
    plain = {t for t in scan.scalar_tags() if "/" not in t}
    twins = sorted(t for t in plain if t.startswith("val_") and t[4:] in plain)
    if twins:
        return f"{twins[0]} is the val_ twin of {twins[0][4:]} (Keras 2 logs)"
    keras_names = sorted((plain & {"loss", "acc", "lr"}) | {t for t in plain if t.startswith("val_")})
    tf1_files = bool(scan.files) and not any(f.path.name.endswith(".v2") for f in scan.files)
    if keras_names and tf1_files:
        return f"{keras_names[0]} in TF1-named event files (no .v2): Keras 2 on TF1"
    return None


def is_flat_keras(scan: StreamScan) -> bool:
    """Return True if a single-folder run has Keras 2 / TF1's flat layout."""
    return flat_keras_reason(scan) is not None


TF49109_WARNING = (
    "no epoch_ summaries although batch_ summaries exist: looks like tensorflow#49109 "
    "(update_freq not dividing the batches per epoch); merge a CSVLogger file with --sidecar"
)
"""Warning for a Keras ``train/`` run with ``batch_*`` scalars but no ``epoch_*`` ones.

Keras's TensorBoard callback wraps every summary, the epoch-end ones included, in
``record_if(step % update_freq == 0)`` keyed on the global batch it pushed last
(``keras/src/callbacks/tensorboard.py`` ``_push_writer``); with an integer
``update_freq`` that no epoch's last batch number is a multiple of, no epoch summary is
ever recorded. When only some epochs' last batch numbers are multiples, only those epochs
are recorded: :data:`TF49109_PARTIAL_WARNING`.
"""

TF49109_PARTIAL_WARNING = (
    "epoch_ summaries missing for some epochs although batch_ summaries exist "
    "({tag}: {count} value(s), epochs {first}..{last}): looks like tensorflow#49109 "
    "(update_freq not dividing the batches per epoch); merge a CSVLogger file with --sidecar"
)
"""Warning for a Keras ``train/`` run some of whose epochs have no ``epoch_*`` scalars.

Given, as ``convert`` does (``RunPlan.warnings``), when a scalar ``epoch_*`` tag whose
steps never go backwards has gaps between its first and last epoch, or starts after epoch
0 although the batch summaries start at the first logged batch (so the run was not
resumed with ``initial_epoch``).
"""


def tf49109_warnings(scan: StreamScan) -> list[str]:
    """Return the tensorflow#49109 warnings for the scan of a Keras ``train/`` run.

    Args:
        scan: StreamScan of the ``train/`` run.

    Returns:
        list of str: empty, :data:`TF49109_WARNING` or :data:`TF49109_PARTIAL_WARNING`.
    """
    scalars = [t for t in scan.tags.values() if t.kind == "scalar"]
    batch = [t for t in scalars if t.tag.startswith("batch_")]
    if not batch:
        return []
    epoch = [t for t in scalars if t.tag.startswith("epoch_")]
    if not epoch:
        return [TF49109_WARNING]
    b = max(batch, key=lambda t: t.count)
    spacing = (b.last_step - b.first_step) // (b.count - 1) if b.count > 1 else b.first_step
    from_start = b.first_step == spacing
    for t in epoch:
        gaps = t.count < t.last_step - t.first_step + 1
        if not t.backwards and (gaps or (from_start and t.first_step > 0)):
            return [TF49109_PARTIAL_WARNING.format(tag=t.tag, count=t.count, first=t.first_step, last=t.last_step)]
    return []


class KerasSplit:
    """tf.keras, tf_keras and Keras 3: a ``log_dir`` with ``train/`` and ``validation/`` runs (or ``test/``, ...)."""

    name = KERAS_SPLIT

    def claims(self, sources: Sequence[str], scans: Sequence[StreamScan]) -> bool:
        """True if the run has a split source (``train/``, ``validation/``, ...: :func:`split_sources`)."""
        return any(sources)

    def map_scalar(self, source: str, tag: str, mapping: TagMapping) -> str | None:
        """Map a scalar of a split source (see :meth:`TagMapping.map_split`)."""
        return mapping.map_split(source, tag) if source else None

    def warnings(self, source: str, scan: StreamScan) -> list[str]:
        """The tensorflow#49109 warnings of the ``train/`` source."""
        return tf49109_warnings(scan) if source == TRAIN_DIR else []


class KerasFlat:
    """Keras 2 / TF1: one folder with the raw ``logs`` keys as tags."""

    name = KERAS_FLAT

    def claims(self, sources: Sequence[str], scans: Sequence[StreamScan]) -> bool:
        """True if the run's (first) source is Keras 2's (see :func:`flat_keras_reason`)."""
        return bool(scans) and is_flat_keras(scans[0])

    def map_scalar(self, source: str, tag: str, mapping: TagMapping) -> str | None:
        """Map a scalar (see :meth:`TagMapping.map_flat`)."""
        return mapping.map_flat(tag)

    def warnings(self, source: str, scan: StreamScan) -> list[str]:
        """None: Keras 2 has no tensorflow#49109."""
        return []


def discover_runs(src: Path, mapping: TagMapping | None = None) -> list[tuple[str, Path]]:
    """Return ``(relative name, folder)`` of every Keras run under ``src``.

    A Keras ``log_dir`` (:func:`split_sources`: event files in ``train/``,
    ``validation/``, and ``test/``, ``eval/``, ... beside them) is one keras-split run
    (its own event files, e.g. an hparams summary, belong to it too); any other folder
    holding event files is one run of its own.

    Args:
        src: Path. A folder.
        mapping: TagMapping whose ``splits`` name more split folders.
    """
    mapping = mapping or TagMapping()
    folders = {folder.path: folder.is_run for folder in walk(src)}  # one walk; no folder listed twice

    def has_events(folder: Path) -> bool:
        return folders.get(folder, False)  # not walked: missing, or a symlink loop

    splits: dict[Path, list[str]] = {}
    roots: dict[Path, None] = {}
    for d, is_run in folders.items():
        if not is_run:
            continue
        if d != src and d.parent not in splits:
            splits[d.parent] = split_sources(d.parent, mapping, has_events)
        if d != src and d.name in splits[d.parent]:
            roots.setdefault(d.parent, None)
        else:
            roots.setdefault(d, None)
    ordered = sorted(roots, key=lambda p: p.relative_to(src).parts)
    return [(str(p.relative_to(src)) if p != src else ".", p) for p in ordered]


def split_sessions(run_dir: Path, mapping: TagMapping | None = None) -> list[tuple[str, dict[str, list[Path]]]]:
    """Group a run's event files into one session per writing process.

    tf.keras / Keras 3 file names end in ``.<pid>.<uid>.v2`` (TF
    ``summary_ops_v2.py``); the ``train/`` and ``validation/`` files of one ``fit``
    share the pid. Files without that shape are a session each, paired by position.
    Each session is named after the seconds field of its first file name.

    Args:
        run_dir: Path. The run folder.
        mapping: TagMapping whose ``splits`` name more split folders.

    Returns:
        list of ``(name, {source: files})``; sources as in :func:`split_sources`,
        ``""`` first.
    """
    by_source = {"": list_event_files(run_dir)}
    by_source.update((d, list_event_files(run_dir / d)) for d in split_sources(run_dir, mapping))
    sessions: dict[str, dict[str, list[Path]]] = {}
    for source, files in by_source.items():
        for position, path in enumerate(files):
            parts = path.name.split(".")
            key = parts[-3] if parts[-1] == "v2" and len(parts) >= 6 else f"#{position}"
            sessions.setdefault(key, {d: [] for d in by_source})[source].append(path)
    named: list[tuple[str, dict[str, list[Path]]]] = []
    used: set[str] = set()
    for session in sorted(sessions.values(), key=lambda s: min(p.name for v in s.values() for p in v)):
        first = min((p for v in session.values() for p in v), key=lambda p: p.name)
        parts = first.name.split(".")
        base = parts[3] if len(parts) > 3 and parts[3].isdigit() else first.name
        name, n = base, 2
        while name in used:
            name, n = f"{base}-{n}", n + 1
        used.add(name)
        named.append((name, session))
    return named

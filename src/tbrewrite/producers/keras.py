"""Keras's log layouts.

How to recognise them, and the default mapping of Keras's flat tags to hierarchical ones.

What each Keras version writes (``../shared/FORMATS.md`` §4):

* **keras-split** -- tf.keras (TF 2.x), tf_keras and Keras 3 write a ``log_dir`` holding
  the runs ``train/`` and ``validation/`` with ``epoch_<metric>``, ``batch_<metric>``
  and ``evaluation_<metric>_vs_iterations`` tags (``keras/src/callbacks/tensorboard.py``
  ``_log_epoch_metrics``; ``tf_keras/callbacks.py``).
* **keras-flat** -- Keras 2.0-2.3 on TF1 writes one folder with the raw ``logs`` keys as
  tags: ``loss``, ``acc``, ``val_loss``, ``val_acc``, ``lr`` (``keras/callbacks.py``
  @2.1.6 ``TensorBoard.on_epoch_end``).
* **generic** -- anything else (PyTorch, tensorboardX, an already converted run): tags
  are left unchanged.

Only scalar tags are mapped; histograms, images, text, hparams, the ``keras`` model
config and graphs pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tbrewrite.engine.scan import StreamScan
from tbrewrite.errors import UsageError
from tbrewrite.logdir import list_event_files, runs

KERAS_FLAT = "keras-flat"
KERAS_SPLIT = "keras-split"

TRAIN_DIR = "train"
VALIDATION_DIR = "validation"

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

    Raises:
        UsageError: if the pattern lacks ``{split}`` or ``{metric}``, or a name is
            empty, or the two names are equal.
    """

    train_name: str = "train"
    val_name: str = "val"
    pattern: str = "{split}/{metric}"

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

    def tag(self, split: str, metric: str) -> str:
        """Return the output tag for ``metric`` in ``split`` (``"train"`` or ``"val"``)."""
        name = self.train_name if split == "train" else self.val_name
        return self.pattern.format(split=name, metric=metric)

    def map_split(self, source: str, tag: str) -> str | None:
        """Map a scalar tag of a keras-split run's ``train/`` or ``validation/`` run.

        Args:
            source: str. ``"train"`` or ``"validation"``.
            tag: str. The tag as Keras wrote it.

        Returns:
            The output tag, or None if the tag is not one Keras names this way.
        """
        if source == TRAIN_DIR:
            if tag in LEARNING_RATE_TAGS:
                return self.tag("train", LEARNING_RATE)
            if tag.startswith("epoch_learning_rate_"):
                return self.tag("train", tag[len("epoch_") :])
            if tag.startswith("epoch_") and len(tag) > 6:
                return self.tag("train", tag[6:])
            if tag.startswith("batch_") and len(tag) > 6:
                return self.tag("train", tag)
            return None
        if source == VALIDATION_DIR:
            if tag.startswith("epoch_") and len(tag) > 6:
                return self.tag("val", tag[6:])
            if tag.startswith("evaluation_") and tag.endswith("_vs_iterations"):
                metric = tag[len("evaluation_") : -len("_vs_iterations")]
                if metric:
                    return self.tag("val", f"{metric}_vs_iterations")
            return None
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


def is_split_run(path: Path) -> bool:
    """Return True if ``path`` is a Keras ``log_dir`` with ``train/`` or ``validation/`` runs."""
    return any(list_event_files(path / d) for d in (TRAIN_DIR, VALIDATION_DIR))


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
    """tf.keras, tf_keras and Keras 3: a ``log_dir`` with ``train/`` and ``validation/`` runs."""

    name = KERAS_SPLIT

    def claims(self, sources: Sequence[str], scans: Sequence[StreamScan]) -> bool:
        """True if the run has a ``train/`` or ``validation/`` source."""
        return any(s in (TRAIN_DIR, VALIDATION_DIR) for s in sources)

    def map_scalar(self, source: str, tag: str, mapping: TagMapping) -> str | None:
        """Map a scalar of the ``train/`` or ``validation/`` source (see :meth:`TagMapping.map_split`)."""
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


def discover_runs(src: Path) -> list[tuple[str, Path]]:
    """Return ``(relative name, folder)`` of every Keras run under ``src``.

    A folder holding ``train/`` or ``validation/`` event files is one keras-split run
    (its own event files, e.g. an hparams summary, belong to it too); any other folder
    holding event files is one run of its own.
    """
    roots: dict[Path, None] = {}
    for folder in runs(src):
        d = folder.path
        if d.name in (TRAIN_DIR, VALIDATION_DIR) and d != src and is_split_run(d.parent):
            roots.setdefault(d.parent, None)
        else:
            roots.setdefault(d, None)
    for d in list(roots):
        if is_split_run(d):
            roots.setdefault(d, None)
    ordered = sorted(roots, key=lambda p: p.relative_to(src).parts)
    return [(str(p.relative_to(src)) if p != src else ".", p) for p in ordered]


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

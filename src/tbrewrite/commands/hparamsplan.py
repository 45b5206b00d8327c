"""The HParams plugin's summaries, as its backend reads them: sessions, experiment, metrics.

What TensorBoard's hparams plugin reads (``tensorboard/plugins/hparams``; the same with
``--load_fast`` true and false, through its data provider):

* a **session** is a run holding the tag ``_hparams_/session_start_info``; its hparams
  are the ``SessionStartInfo`` in the tag's summary *metadata*
  (``plugin_data.content``, an ``HParamsPluginData`` of version 0), the value itself a
  null tensor (``metadata.py`` ``NULL_TENSOR``, ``create_summary_metadata``). Only the
  first metadata of a tag in a run counts, event files read in name order
  (``plugin_event_accumulator.py``; ``data/server/run.rs``), so a session's hparams
  can only be replaced by removing the tag from the files holding it;
* the **experiment** is the first ``_hparams_/experiment`` summary found in *any* run
  (``backend_context.py`` ``_find_experiment_tag``: "arbitrarily pick the first one"):
  its ``hparam_infos`` are the dashboard's hparam columns and its ``metric_infos`` the
  metric columns. A run's own experiment hides every other run's new hparams -- the
  stable-baselines3#1099 symptom ("a new hyperparameter only shows if the first run
  logged it"), since PyTorch's ``add_hparams`` writes one per call (pytorch#37738). So
  exactly one experiment is written, holding every session's hparams;
* a **metric** ``(group, tag)`` of a session is the scalar ``tag`` of the run
  ``<session>/<group>``, its value the *last* point TensorBoard holds for it
  (``list_session_groups.py`` ``read_last_scalars``; ``metrics.py``
  ``run_tag_from_session_and_metric``). Without ``--metric`` every scalar tag of every run
  at or below a session is one, grouped by the longest session folder above it, as the
  plugin's own fallback computes them (``backend_context.py`` ``_compute_metric_names``).

Hparam types and domains follow ``_compute_hparam_info_from_values``: one type per hparam
(``DATA_TYPE_FLOAT64`` with an interval, ``BOOL`` and ``STRING`` with a discrete domain);
``differs`` when two sessions' values differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf import struct_pb2
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hp_metadata
from tensorboard.plugins.hparams.error import HParamsError as PluginError

from tbrewrite.commands.hparamsread import HParamSet, Value, type_name
from tbrewrite.errors import HParamsError

EXPERIMENT_TAG = hp_metadata.EXPERIMENT_TAG
START_TAG = hp_metadata.SESSION_START_INFO_TAG
END_TAG = hp_metadata.SESSION_END_INFO_TAG
_TYPES = {"bool": api_pb2.DATA_TYPE_BOOL, "number": api_pb2.DATA_TYPE_FLOAT64, "string": api_pb2.DATA_TYPE_STRING}


def to_pb(value: Value) -> struct_pb2.Value:
    """Return ``value`` as the ``google.protobuf.Value`` a SessionStartInfo holds."""
    if isinstance(value, bool):
        return struct_pb2.Value(bool_value=value)
    if isinstance(value, float):
        return struct_pb2.Value(number_value=value)
    return struct_pb2.Value(string_value=value)


def from_pb(value: struct_pb2.Value) -> Value | None:
    """Return a stored hparam as a Value; None for kinds the plugin ignores (null, list, struct)."""
    kind = value.WhichOneof("kind")
    if kind == "bool_value":
        return bool(value.bool_value)
    if kind == "number_value":
        return float(value.number_value)
    if kind == "string_value":
        return str(value.string_value)
    return None


def parse_start(metadata: summary_pb2.SummaryMetadata, where: str) -> plugin_data_pb2.SessionStartInfo:
    """Return the SessionStartInfo a ``_hparams_/session_start_info`` value's metadata holds.

    Raises:
        HParamsError: not one the plugin can read (naming ``where``).
    """
    try:
        return hp_metadata.parse_session_start_info_plugin_data(metadata.plugin_data.content)
    except (PluginError, ValueError) as e:
        raise HParamsError(f"{where}: {START_TAG} is not a summary TensorBoard can read: {e}") from None


def parse_experiment(metadata: summary_pb2.SummaryMetadata, where: str) -> api_pb2.Experiment:
    """Return the Experiment a ``_hparams_/experiment`` value's metadata holds.

    Raises:
        HParamsError: not one the plugin can read (naming ``where``).
    """
    try:
        return hp_metadata.parse_experiment_plugin_data(metadata.plugin_data.content)
    except (PluginError, ValueError) as e:
        raise HParamsError(f"{where}: {EXPERIMENT_TAG} is not a summary TensorBoard can read: {e}") from None


def values_of(start: plugin_data_pb2.SessionStartInfo | None) -> dict[str, Value]:
    """The hparams of a session (those of a kind the plugin shows), by name."""
    if start is None:
        return {}
    out = {}
    for name, pb in start.hparams.items():
        value = from_pb(pb)
        if value is not None:
            out[name] = value
    return out


@dataclass(frozen=True)
class Merge:
    """A session's hparams after attaching a set to it.

    Attributes:
        start: SessionStartInfo. What the session's summary will hold.
        added: tuple of str. Names the session did not have.
        replaced: tuple of ``(name, old, new)``: values ``--replace`` overwrote.
        changed: bool. ``start`` differs from the session's summary (False: nothing to write).
    """

    start: plugin_data_pb2.SessionStartInfo
    added: tuple[str, ...]
    replaced: tuple[tuple[str, Value, Value], ...]
    changed: bool


def merge(
    existing: plugin_data_pb2.SessionStartInfo | None, given: HParamSet, *, replace: bool, start_time: float
) -> Merge:
    """Merge ``given`` into a session's summary (kept: its other hparams, group, times, URIs).

    Args:
        existing: SessionStartInfo or None. The session's summary now.
        given: HParamSet.
        replace: bool. A value differing from the session's replaces it (else refused).
        start_time: float. ``start_time_secs`` of a new session (its run's first wall time).

    Raises:
        HParamsError: without ``replace``, a given value differs from the session's.
    """
    start = plugin_data_pb2.SessionStartInfo()
    if existing is not None:
        start.CopyFrom(existing)
    else:
        start.start_time_secs = start_time
    old = values_of(existing)
    added, replaced = [], []
    for name in sorted(given.values):
        value = given.values[name]
        if name not in start.hparams:
            added.append(name)
        elif name in old and _same(old[name], value):
            continue
        elif not replace:
            shown = repr(old[name]) if name in old else "a value of another kind"
            raise HParamsError(
                f"{given.origin}: run {given.run!r} has hparam {name!r} = {shown} already; "
                f"--from gives {value!r} (--replace to overwrite)"
            )
        else:
            replaced.append((name, old.get(name, ""), value))
        start.hparams[name].CopyFrom(to_pb(value))
    return Merge(start, tuple(added), tuple(replaced), existing is None or bool(added or replaced))


def _same(a: Value, b: Value) -> bool:
    return type_name(a) == type_name(b) and a == b


def check_types(sessions: Mapping[str, plugin_data_pb2.SessionStartInfo], given: Mapping[str, HParamSet]) -> None:
    """Refuse an hparam whose given value is of another type than another session's.

    The plugin would make such a column a string (``_compute_hparam_info_from_values``),
    losing its numeric axis. Values already in the log that disagree among themselves
    are left as they are.

    Args:
        sessions: session run -> its final SessionStartInfo.
        given: session run -> the HParamSet attached to it.

    Raises:
        HParamsError: naming the given set's origin, the hparam and both runs.
    """
    first: dict[str, dict[str, str]] = {}  # name -> type -> first run holding it
    for run in sorted(sessions):
        for name, value in values_of(sessions[run]).items():
            first.setdefault(name, {}).setdefault(type_name(value), run)
    for run in sorted(given):
        for name, value in given[run].values.items():
            mine = type_name(value)
            others = {t: r for t, r in first.get(name, {}).items() if t != mine}
            if others:
                kind, other = sorted(others.items())[0]
                raise HParamsError(
                    f"{given[run].origin}: hparam {name!r} of run {run!r} is a {mine} ({value!r}), "
                    f"but a {kind} in run {other!r}; one hparam must have one type"
                )


def metric_names(
    scalar_tags: Mapping[str, Iterable[str]], sessions: Iterable[str], chosen: Iterable[str] = ()
) -> list[tuple[str, str]]:
    """The experiment's metrics ``(group, tag)``, as the plugin's fallback computes them.

    Args:
        scalar_tags: run -> its scalar tags (every run of LOGDIR).
        sessions: the session runs (``.``: LOGDIR).
        chosen: tags to keep (``--metric``); empty keeps every one.

    Returns:
        list of ``(group, tag)`` sorted by ``(tag, group)`` (``_compute_metric_names``);
        group is the run's path below its longest session folder (``""`` for the session).

    Raises:
        HParamsError: a chosen tag is no scalar of any run at or below a session.
    """
    session_set = set(sessions)
    names: set[tuple[str, str]] = set()
    for run, tags in scalar_tags.items():
        session = longest_session(session_set, run)
        if session is None:
            continue
        group = "" if run == session else run if session == "." else run[len(session) + 1 :]
        names.update((group, tag) for tag in tags)
    wanted = set(chosen)
    if wanted:
        missing = sorted(wanted - {tag for _, tag in names})
        if missing:
            raise HParamsError(f"--metric {missing[0]}: no run at or below a session holds a scalar tag {missing[0]!r}")
        names = {(g, t) for g, t in names if t in wanted}
    return sorted(names, key=lambda gt: (gt[1], gt[0]))


def longest_session(sessions: set[str], run: str) -> str | None:
    """The longest session folder at or above ``run`` (``_find_longest_parent_path``), or None."""
    path = run
    while path not in sessions:
        if path == ".":
            return None
        path = path.rpartition("/")[0] or "."
    return path


def experiment(
    sessions: Mapping[str, plugin_data_pb2.SessionStartInfo],
    metrics: list[tuple[str, str]],
    *,
    previous: api_pb2.Experiment | None,
    time_created: float,
) -> api_pb2.Experiment:
    """Build the one experiment: every session's hparams, and the metrics.

    Display names and descriptions of hparams and metrics the ``previous`` experiment
    declared are kept; domains are computed from the values (widened by a previous
    interval or discrete domain of the same type).
    """
    by_name: dict[str, list[Value]] = {}
    for run in sorted(sessions):
        for name, value in values_of(sessions[run]).items():
            by_name.setdefault(name, []).append(value)
    old_h = {h.name: h for h in previous.hparam_infos} if previous is not None else {}
    old_m = {(m.name.group, m.name.tag): m for m in previous.metric_infos} if previous is not None else {}
    result = api_pb2.Experiment(time_created_secs=time_created)
    for name in sorted(by_name):
        values = by_name[name]
        types = {type_name(v) for v in values}
        kind = types.pop() if len(types) == 1 else "string"
        info = api_pb2.HParamInfo(name=name, type=_TYPES[kind], differs=len({(type_name(v), v) for v in values}) > 1)
        old = old_h.get(name)
        if old is not None:
            info.display_name, info.description = old.display_name, old.description
        if kind == "number":
            numbers = [float(v) for v in values]
            if old is not None and old.type == info.type and old.HasField("domain_interval"):
                numbers += [old.domain_interval.min_value, old.domain_interval.max_value]
            info.domain_interval.min_value, info.domain_interval.max_value = min(numbers), max(numbers)
        else:
            domain = {v if kind == "bool" else str(v) for v in values}
            if old is not None and old.type == info.type and old.HasField("domain_discrete"):
                domain.update(v for v in (from_pb(x) for x in old.domain_discrete.values) if v is not None)
            info.domain_discrete.extend(sorted(domain, key=lambda v: (type_name(v), str(v))))
        result.hparam_infos.append(info)
    for group, tag in metrics:
        info = api_pb2.MetricInfo(name=api_pb2.MetricName(group=group, tag=tag))
        prev = old_m.get((group, tag))
        if prev is not None:
            info.display_name, info.description, info.dataset_type = (
                prev.display_name,
                prev.description,
                prev.dataset_type,
            )
        result.metric_infos.append(info)
    return result


def summary_event(tag: str, data: plugin_data_pb2.HParamsPluginData, wall_time: float) -> event_pb2.Event:
    """The Event holding one hparams summary at step 0 (what ``summary_v2._summary_pb`` writes)."""
    value = summary_pb2.Summary.Value(
        tag=tag, metadata=hp_metadata.create_summary_metadata(data), tensor=hp_metadata.NULL_TENSOR
    )
    return event_pb2.Event(wall_time=wall_time, step=0, summary=summary_pb2.Summary(value=[value]))


def start_event(start: plugin_data_pb2.SessionStartInfo, wall_time: float) -> event_pb2.Event:
    """The ``_hparams_/session_start_info`` Event of a session."""
    return summary_event(START_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=start), wall_time)


def experiment_event(exp: api_pb2.Experiment, wall_time: float) -> event_pb2.Event:
    """The ``_hparams_/experiment`` Event."""
    return summary_event(EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=exp), wall_time)

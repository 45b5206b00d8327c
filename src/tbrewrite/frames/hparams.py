"""Hyperparameters and final metrics: one row per session run, as TensorBoard's HParams dashboard.

The ``hparams`` plugin keeps everything in the summary metadata's ``plugin_data.content``,
an ``HParamsPluginData`` (``tensorboard/plugins/hparams/plugin_data.proto``):

* ``_hparams_/session_start_info`` -- a session: the run it is in, and its hyperparameters
  (``hp.hparams``, Keras ``hp.KerasCallback``, PyTorch and tensorboardX ``add_hparams``);
* ``_hparams_/experiment`` -- the experiment's metrics (``hp.hparams_config``; PyTorch
  writes one per session);
* ``_hparams_/session_end_info`` -- the session's end status.

A metric ``(group, tag)`` of a session run ``S`` is the last scalar of ``tag`` in the run
``S/group`` (``S`` itself for an empty group), as the dashboard shows it
(``hparams/metrics.py`` ``last_metric_eval``). Without an experiment, the metrics are
every scalar tag of the session's runs and the runs below them, sorted by (tag, group)
(``backend_context.py`` ``_compute_metric_names``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PREFIX = "_hparams_/"
SESSION_START = "_hparams_/session_start_info"
EXPERIMENT = "_hparams_/experiment"
SESSION_END = "_hparams_/session_end_info"


def plugin_data(content: bytes) -> Any:  # an HParamsPluginData
    """Parse a value's ``plugin_data.content``.

    Raises:
        google.protobuf.message.DecodeError: the bytes are not an ``HParamsPluginData``.
    """
    from tensorboard.plugins.hparams import plugin_data_pb2

    return plugin_data_pb2.HParamsPluginData.FromString(content)


def _value(value: Any) -> Any:
    """The Python value of a ``google.protobuf.Value``: float, str, bool, or None."""
    which = value.WhichOneof("kind")
    if which in (None, "null_value"):
        return None
    if which in ("struct_value", "list_value"):
        from google.protobuf import json_format

        return json_format.MessageToDict(value)
    return getattr(value, which)


@dataclass
class Sessions:
    """What the hparams summaries of a logdir say, gathered run by run while reading."""

    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Session run -> hyperparameter name -> value, in the order found."""
    metrics: list[tuple[str, str]] = field(default_factory=list)
    """The experiments' metrics as ``(group, tag)``, in the order found."""
    experiment: bool = False
    status: dict[str, str] = field(default_factory=dict)
    """Session run -> its end status name (``STATUS_SUCCESS``, ...)."""

    def add(self, run: str, tag: str, content: bytes) -> None:
        """Take in one ``hparams`` plugin value of ``run``.

        Raises:
            google.protobuf.message.DecodeError: as :func:`plugin_data`.
        """
        data = plugin_data(content)
        which = data.WhichOneof("data")
        if which == "session_start_info":
            values = self.hparams.setdefault(run, {})
            for name, value in data.session_start_info.hparams.items():
                values[name] = _value(value)
        elif which == "experiment":
            self.experiment = True
            for info in data.experiment.metric_infos:
                key = (info.name.group, info.name.tag)
                if key not in self.metrics:
                    self.metrics.append(key)
        elif which == "session_end_info":
            from tensorboard.plugins.hparams import api_pb2

            self.status[run] = api_pb2.Status.Name(data.session_end_info.status)

    def metric_names(self, scalar_tags: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The metrics: the experiments', else inferred from ``scalar_tags`` ``(run, tag)``."""
        if self.experiment:
            return list(self.metrics)
        found = set()
        for run, tag in scalar_tags:
            session = _session_of(run, self.hparams)
            if session is not None:
                found.add((_group(run, session), tag))
        return sorted(found, key=lambda gt: (gt[1], gt[0]))

    def rows(self, last: dict[tuple[str, str], float]) -> tuple[list[str], list[list[Any]]]:
        """Return the table's columns and rows: ``run``, each hyperparameter (sorted), each metric.

        Args:
            last: ``(run, tag) -> last scalar value`` of every scalar tag read.
        """
        names = sorted({n for values in self.hparams.values() for n in values})
        metrics = self.metric_names(last)
        columns = ["run", *names]
        for group, tag in metrics:
            name = f"{group}/{tag}" if group else tag
            while name in columns:
                name += " (metric)"
            columns.append(name)
        rows = []
        for run in sorted(self.hparams):
            values = self.hparams[run]
            row: list[Any] = [run, *(values.get(n) for n in names)]
            for group, tag in metrics:
                row.append(last.get((_join(run, group), tag), math.nan))
            rows.append(row)
        return columns, rows


def _session_of(run: str, sessions: dict[str, Any]) -> str | None:
    """The session run ``run`` is in or under (the longest such), or None."""
    best = None
    for session in sessions:
        inside = session == "." or run == session or run.startswith(session + "/")
        if inside and (best is None or len(session) > len(best) or best == "."):
            best = session
    return best


def _group(run: str, session: str) -> str:
    if run == session:
        return ""
    return run if session == "." else run[len(session) + 1 :]


def _join(session: str, group: str) -> str:
    if not group:
        return session
    return group if session == "." else f"{session}/{group}"

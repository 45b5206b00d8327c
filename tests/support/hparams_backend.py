"""What TensorBoard's HParams dashboard gets for a logdir, from the plugin's own backend.

In process: the ``get_experiment`` and ``list_session_groups`` handlers over TensorBoard's
data provider on an ``EventMultiplexer`` (what ``--load_fast=false`` serves). Over HTTP:
the same two routes of a running ``tensorboard`` (``support.tensorboard_server``), asked
as its dashboard asks (POST with a JSON body and the ``X-XSRF-Protected`` header).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
SESSION_GROUPS_REQUEST = {"startIndex": 0, "sliceSize": 1000, "allowedStatuses": STATUSES}


@dataclass
class Dashboard:
    """The experiment and the sessions, as plain values.

    Attributes:
        hparams: dict name -> (type name, domain): ``("DATA_TYPE_FLOAT64", (min, max))``
            or ``("DATA_TYPE_STRING", [values])``.
        metrics: list of ``(group, tag)``.
        sessions: dict session (run) name -> dict with ``group`` (its session group's
            name), ``hparams`` (the group's: name -> value) and ``metrics``
            (``(group, tag)`` -> the session's last value).
    """

    hparams: dict[str, tuple[str, object]]
    metrics: list[tuple[str, str]]
    sessions: dict[str, dict]


def from_json(experiment: dict, groups: dict) -> Dashboard:
    """Read the JSON the plugin's ``/experiment`` and ``/session_groups`` routes return."""
    hparams = {}
    for info in experiment.get("hparamInfos", []):
        if "domainInterval" in info:
            domain: object = (info["domainInterval"]["minValue"], info["domainInterval"]["maxValue"])
        else:
            domain = info.get("domainDiscrete", [])
        hparams[info["name"]] = (info.get("type", "DATA_TYPE_UNSET"), domain)
    metrics = [(m["name"].get("group", ""), m["name"]["tag"]) for m in experiment.get("metricInfos", [])]
    sessions = {}
    for g in groups.get("sessionGroups", []):
        for session in g.get("sessions", []):
            values = {
                (m["name"].get("group", ""), m["name"]["tag"]): m.get("value", 0.0)
                for m in session.get("metricValues", [])
            }
            sessions[session["name"]] = {"group": g["name"], "hparams": g.get("hparams", {}), "metrics": values}
    return Dashboard(hparams, metrics, sessions)


def in_process(logdir: Path) -> Dashboard:
    """The dashboard's data from the plugin's handlers over an ``EventMultiplexer``."""
    from tensorboard.backend.event_processing.data_provider import MultiplexerDataProvider
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.context import RequestContext
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment, list_session_groups

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = MultiplexerDataProvider(mux, str(logdir))
    context = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), multiplexer=mux, data_provider=provider)
    )
    experiment = get_experiment.Handler(RequestContext(), context, "", api_pb2.GetExperimentRequest()).run()
    request = json_format.ParseDict(SESSION_GROUPS_REQUEST, api_pb2.ListSessionGroupsRequest())
    groups = list_session_groups.Handler(RequestContext(), context, "", request).run()
    return from_json(json_format.MessageToDict(experiment), json_format.MessageToDict(groups))


def post(port: int, route: str, body: dict) -> dict:
    """POST ``body`` as JSON to ``/data/plugin/hparams/<route>`` as the dashboard does."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/data/plugin/hparams/{route}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-XSRF-Protected": "1"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def served(port: int, sessions: int, timeout: float = 120.0) -> Dashboard:
    """Poll a running tensorboard until its dashboard has ``sessions`` sessions with metric values."""
    deadline = time.monotonic() + timeout
    last: Dashboard | None = None
    while time.monotonic() < deadline:
        try:
            experiment = post(port, "experiment", {"experimentName": ""})
            groups = post(port, "session_groups", SESSION_GROUPS_REQUEST)
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.5)
            continue
        last = from_json(experiment, groups)
        if len(last.sessions) >= sessions and all(g["metrics"] for g in last.sessions.values()):
            return last
        time.sleep(0.5)
    raise AssertionError(f"tensorboard never served {sessions} session(s) with metrics; last: {last}")

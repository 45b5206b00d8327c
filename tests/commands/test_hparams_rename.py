"""``rename`` keeps the HParams dashboard's metric columns (issue 12 item 5).

Renaming a metric tag left the ``_hparams_/experiment`` summary naming the old tag
(``metricInfos`` still ``m/loss``) and every session's ``metricValues`` empty. The logs
here are written with the hparams plugin's own summary builders
(``summary_v2.hparams_config_pb``, ``hparams_pb``) and read back by the plugin's own
backend (``get_experiment`` and ``list_session_groups`` handlers over TensorBoard's data
provider), as the dashboard asks for them; both engines.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.compat.proto import event_pb2
from typer.testing import CliRunner

from tbrewrite.cli import app
from tbrewrite.engine.select import ENV

runner = CliRunner()
T0 = 1_700_000_000.0
ENGINES = ["python", pytest.param("native", marks=pytest.mark.skipif("not _has_native()"))]


def _has_native() -> bool:
    try:
        import tbrewrite._native  # noqa: F401
    except ImportError:
        return False
    return True


def write_experiment(logdir: Path, *, twice: bool = False) -> None:
    """An experiment (metrics ``m/loss`` in group ``validation``, ``m/acc``, ``m/lr``) at the
    logdir's root, and two sessions ``run-0``, ``run-1`` logging those metrics.

    ``twice``: the experiment is written a second time into the same file (a process that
    wrote its config again), with one more metric.
    """
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.scalar import summary_v2 as scalar
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    lr = hp.HParam("lr", hp.RealInterval(0.001, 0.1))
    metrics = [hp.Metric("m/loss", group="validation", display_name="loss"), hp.Metric("m/acc"), hp.Metric("m/lr")]
    w = EventFileWriter(str(logdir))
    w.add_event(event_pb2.Event(wall_time=T0, summary=hp.hparams_config_pb([lr], metrics, time_created_secs=T0)))
    if twice:
        more = [*metrics, hp.Metric("m/loss2")]
        w.add_event(event_pb2.Event(wall_time=T0 + 1, summary=hp.hparams_config_pb([lr], more, time_created_secs=T0)))
    w.close()
    for k in range(2):
        w = EventFileWriter(str(logdir / f"run-{k}"))
        w.add_event(event_pb2.Event(wall_time=T0 + 1, summary=hp.hparams_pb({lr: 0.01 * (k + 1)}, trial_id=f"t{k}")))
        for s in range(3):
            w.add_event(event_pb2.Event(wall_time=T0 + 2 + s, step=s, summary=scalar.scalar_pb("m/acc", s + k)))
            w.add_event(event_pb2.Event(wall_time=T0 + 2 + s, step=s, summary=scalar.scalar_pb("m/lr", 0.5)))
        w.close()
        w = EventFileWriter(str(logdir / f"run-{k}" / "validation"))
        for s in range(3):
            w.add_event(event_pb2.Event(wall_time=T0 + 2 + s, step=s, summary=scalar.scalar_pb("m/loss", 10 * k + s)))
        w.close()


def dashboard(logdir: Path) -> tuple[list[tuple[str, str]], dict[str, dict[str, float]]]:
    """What the HParams dashboard gets: the experiment's metrics ``(group, tag)`` and, per
    session group, its metric values by tag."""
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
    statuses = [api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING]
    request = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100, allowed_statuses=statuses)
    groups = list_session_groups.Handler(RequestContext(), context, "", request).run().session_groups
    metrics = [(m.name.group, m.name.tag) for m in experiment.metric_infos]
    return metrics, {g.name: {m.name.tag: m.value for m in g.metric_values} for g in groups}


def experiment_metrics(logdir: Path) -> list[list[tuple[str, str, str]]]:
    """Every experiment value's metrics ``(group, tag, display_name)`` in file order, parsed by
    the plugin's own ``metadata.parse_experiment_plugin_data``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import metadata

    found = []
    for path in sorted(logdir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for v in event.summary.value:
                if v.tag == metadata.EXPERIMENT_TAG:
                    experiment = metadata.parse_experiment_plugin_data(v.metadata.plugin_data.content)
                    found.append([(m.name.group, m.name.tag, m.display_name) for m in experiment.metric_infos])
    return found


@pytest.fixture
def logdir(tmp_path: Path) -> Path:
    write_experiment(tmp_path / "logs")
    return tmp_path / "logs"


def test_the_unrenamed_experiment_is_what_the_dashboard_reads(logdir: Path) -> None:
    metrics, groups = dashboard(logdir)
    assert metrics == [("validation", "m/loss"), ("", "m/acc"), ("", "m/lr")]
    assert groups == {
        "t0": {"m/loss": 2.0, "m/acc": 2.0, "m/lr": 0.5},
        "t1": {"m/loss": 12.0, "m/acc": 3.0, "m/lr": 0.5},
    }


@pytest.mark.parametrize("engine", ENGINES)
def test_renamed_metric_keeps_its_column(
    logdir: Path, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, engine)
    out = tmp_path / "out"
    result = runner.invoke(app, ["rename", str(logdir), "--rule", "^m/loss$=val/loss", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "the metric names of 1 hparams experiment(s) follow" in result.stdout
    metrics, groups = dashboard(out)
    assert metrics == [("validation", "val/loss"), ("", "m/acc"), ("", "m/lr")]
    assert groups == {
        "t0": {"val/loss": 2.0, "m/acc": 2.0, "m/lr": 0.5},
        "t1": {"val/loss": 12.0, "m/acc": 3.0, "m/lr": 0.5},
    }
    assert experiment_metrics(out) == [[("validation", "val/loss", "loss"), ("", "m/acc", ""), ("", "m/lr", "")]]


@pytest.mark.parametrize("engine", ENGINES)
def test_dropped_metric_leaves_the_experiment_and_in_place_too(
    logdir: Path, tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, engine)
    argv = ["rename", str(logdir), "--drop", "^m/lr$", "--rule", "^m/(acc)$=train/\\1", "--in-place"]
    argv += ["--backup-dir", str(tmp_path / "backup")]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    metrics, groups = dashboard(logdir)
    assert metrics == [("validation", "m/loss"), ("", "train/acc")]
    assert groups == {"t0": {"m/loss": 2.0, "train/acc": 2.0}, "t1": {"m/loss": 12.0, "train/acc": 3.0}}


@pytest.mark.parametrize("engine", ENGINES)
def test_every_experiment_value_is_edited_and_merged_metrics_listed_once(
    tmp_path: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV, engine)
    write_experiment(tmp_path / "logs", twice=True)
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["rename", str(tmp_path / "logs"), "--rule", "^m/loss2?$=m/val_loss", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    first = [("validation", "m/val_loss", "loss"), ("", "m/acc", ""), ("", "m/lr", "")]
    # The second experiment's m/loss2 (no group) lands on m/val_loss too: another group, kept.
    assert experiment_metrics(out) == [first, [*first, ("", "m/val_loss", "")]]
    # m/loss (group validation) and m/acc (group "") on one tag are two columns, kept;
    # m/acc and m/lr (both group "") on one tag are one column, listed once.
    result = runner.invoke(
        app, ["rename", str(tmp_path / "logs"), "--rule", "^m/(loss|acc)$=m/x", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 0, result.output
    assert experiment_metrics(tmp_path / "x")[0] == [("validation", "m/x", "loss"), ("", "m/x", ""), ("", "m/lr", "")]
    argv = [
        "rename",
        str(tmp_path / "logs"),
        "--rule",
        "^m/(acc|lr)$=m/y",
        "--allow-merge",
        "--out",
        str(tmp_path / "y"),
    ]
    result = runner.invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert experiment_metrics(tmp_path / "y")[0] == [("validation", "m/loss", "loss"), ("", "m/y", "")]


def test_dry_run_lists_the_experiment_metrics(logdir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["rename", str(logdir), "--rule", "^m/loss$=val/loss", "--drop", "^m/lr$", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert ". _hparams_/experiment: metric m/loss (group validation) -> val/loss hparams 1 0..0" in lines
    assert ". _hparams_/experiment: metric m/lr -> (dropped) hparams 1 0..0" in lines
    assert lines[-1] == (
        "dry run: 2 tag(s) renamed and 2 dropped (12 values) in 4 of 5 run(s) would change, "
        "and the metric names of 1 hparams experiment(s); nothing written"
    )


def test_experiment_untouched_by_the_rules_keeps_its_bytes(logdir: Path, tmp_path: Path) -> None:
    (experiment_file,) = logdir.glob("events.out.tfevents.*")
    result = runner.invoke(app, ["rename", str(logdir), "--rule", "^m/other$=x", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "hparams" not in result.stdout
    assert (tmp_path / "out" / experiment_file.name).read_bytes() == experiment_file.read_bytes()

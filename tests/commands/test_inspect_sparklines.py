"""``tbrewrite inspect``'s sparklines: each scalar tag's curve beside its steps, min, max and last value."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.events import file_version, simple, summary, write
from support.paths import FIXTURES
from tbrewrite.cli import app
from tbrewrite.commands import inspect as inspect_module
from tbrewrite.commands.export import read_scalars
from tbrewrite.commands.inspect import inspect_logdir, sparklines
from tbrewrite.sparkline import BLOCKS

runner = CliRunner()


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted") / "keras3_run"
    result = runner.invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(out)])
    assert result.exit_code == 0, result.output
    return out


def curve_rows(stdout: str) -> dict[str, list[str]]:
    """The rows of the curves table: tag -> [steps, curve, min, max, last]."""
    rows: dict[str, list[str]] = {}
    lines = stdout.splitlines()
    for k, line in enumerate(lines):
        if line.split("┃")[0].strip() == "scalar":
            for row in lines[k + 2 :]:
                cells = [c.strip() for c in row.split("│")]
                if len(cells) != 6:
                    break
                rows[cells[0]] = cells[1:]
    return rows


def test_every_scalar_tag_gets_its_curve_min_max_and_last(converted: Path) -> None:
    result = runner.invoke(app, ["inspect", str(converted)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    rows = curve_rows(result.stdout)
    table = read_scalars(converted)
    assert set(rows) == set(table.tag)
    for tag, (steps, curve, lo, hi, last) in rows.items():
        values = table[table.tag == tag]
        assert steps == f"{values.step.iloc[0]}..{values.step.iloc[-1]}"
        assert len(curve) == len(values) and set(curve) <= set(BLOCKS)  # a few points: one character each
        assert (lo, hi, last) == tuple(
            f"{x:.4g}" for x in (values.value.min(), values.value.max(), values.value.iloc[-1])
        )
    assert rows["train/loss"][1] == "█▂▁"  # the fixture's loss falls: 0.8387, 0.6, 0.5427
    assert rows["train/learning_rate"][1] == "█▄▁"


def test_readable_in_100_columns(converted: Path, tmp_path: Path) -> None:
    long_tag = "train/" + "a_very_long_metric_name/" * 4 + "loss"
    write(
        tmp_path / "events.out.tfevents.1.host",
        [file_version()] + [summary(1.7e9 + i, 10**9 + i, simple(long_tag, -1e-7 * i)) for i in range(3000)],
    )
    for path in (converted, tmp_path):
        result = runner.invoke(app, ["inspect", str(path)], env={"COLUMNS": "100"})
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 100
    assert "1000000000..1000002999 │ █▇▇▇▇▆▆▆▆▅▅▅▄▄▄▃▃▃▃▂▂▂▂▁ │ -0.0002999 │" in result.stdout


def test_a_spike_among_many_points_shows(tmp_path: Path) -> None:
    values = [1.0 + 0.001 * math.sin(i) for i in range(50_000)]
    values[33_333] = 40.0
    values[44_444] = math.nan
    write(
        tmp_path / "events.out.tfevents.1.host",
        [file_version()] + [summary(1.7e9 + i, i, simple("loss", v)) for i, v in enumerate(values)],
    )
    [run] = inspect_logdir(tmp_path).runs
    line = sparklines(run)["loss"]
    assert line.render().count("█") == 1 and line.count == 50_000 and line.nan == 1
    assert len(line.render()) == 24
    result = runner.invoke(app, ["inspect", str(tmp_path)], env={"COLUMNS": "100"})
    assert "█" in result.stdout and "1 nan" in result.stdout and "40" in result.stdout


def test_no_sparklines_reads_no_values(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with_curves = runner.invoke(app, ["inspect", str(converted)], env={"COLUMNS": "100"}).stdout

    def fail(*args, **kwargs):
        raise AssertionError("values read")

    monkeypatch.setattr(inspect_module, "iter_values", fail)
    result = runner.invoke(app, ["inspect", str(converted), "--no-sparklines"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert curve_rows(result.stdout) == {}
    # Everything else is as before: the curves table is the only addition.
    assert [line for line in with_curves.splitlines() if line not in result.stdout.splitlines()][1:]
    assert set(result.stdout.splitlines()) <= set(with_curves.splitlines())


def test_json_is_unchanged_and_reads_no_values(converted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("values read")

    monkeypatch.setattr(inspect_module, "iter_values", fail)
    plain = runner.invoke(app, ["inspect", str(converted), "--json"])
    assert plain.exit_code == 0, plain.output
    assert plain.stdout == runner.invoke(app, ["inspect", str(converted), "--json", "--no-sparklines"]).stdout
    assert json.loads(plain.stdout) == inspect_logdir(converted).to_dict()


def test_runs_without_scalars_get_no_curves_table(tmp_path: Path) -> None:
    write(tmp_path / "events.out.tfevents.1.host", [file_version()])
    result = runner.invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "curve" not in result.stdout

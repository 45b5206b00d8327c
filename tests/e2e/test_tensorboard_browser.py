"""The real TensorBoard in a real browser: a converted Keras run shows ``train`` and ``val`` sections.

``tensorboard --logdir OUT`` runs on 127.0.0.1; headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium) opens its Scalars, Time Series and Custom Scalars
dashboards, and the test reads what they drew: the sections, the cards in each, and the
line of every card, vertex by vertex (the Custom Scalars charts are ``convert --overlay``'s). Skips, with the reason, where Selenium, Chromium or its
driver is missing (``.ci/run`` installs them).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support.paths import FIXTURES
from support.tensorboard_server import TensorBoardServer
from tbrewrite.cli import app
from tbrewrite.commands.export import read_scalars

pytestmark = pytest.mark.slow

webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
BROWSER = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
if BROWSER is None or DRIVER is None:
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

# Every element under ``root``, through shadow roots (TensorBoard's Polymer dashboards live in them).
DEEP_ALL = """
function deepAll(root, selector, out) {
  out = out || [];
  if (root.shadowRoot) deepAll(root.shadowRoot, selector, out);
  root.querySelectorAll(selector).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deepAll(e.shadowRoot, selector, out); });
  return out;
}
"""

# Scalars dashboard: section name -> {card tag -> vertices of each drawn line}.
SCALARS_DRAWN = (
    DEEP_ALL
    + """
const drawn = {};
for (const pane of deepAll(document, 'tf-category-paginated-view')) {
  if (!pane.category || !pane.category.name) continue;
  const cards = drawn[pane.category.name] = {};
  for (const card of deepAll(pane, 'tf-scalar-card')) {
    cards[card.tag] = deepAll(card, 'vz-line-chart2')
      .flatMap(chart => deepAll(chart, 'path.line'))
      .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length);
  }
}
return drawn;
"""
)

# Time Series dashboard: group name -> cards, from each group's toolbar ("train5 cards"), and
# the scalar cards it has rendered (the visible ones): title, line charts, canvases drawn on.
TIME_SERIES_DRAWN = (
    DEEP_ALL
    + """
const groups = {};
for (const toolbar of deepAll(document, 'metrics-card-group-toolbar')) {
  const m = toolbar.textContent.replace(/\\s+/g, ' ').trim().match(/^(.*?)\\s*(\\d+) cards?$/);
  if (m) groups[m[1]] = parseInt(m[2]);
}
const cards = deepAll(document, 'scalar-card').map(card => [
  card.textContent.trim().split(/\\s/)[0].replace(/Alt$/, ''),
  deepAll(card, 'line-chart').length,
  deepAll(card, 'line-chart canvas').length,
]);
return {groups: groups, cards: cards};
"""
)


# Custom Scalars dashboard: category -> {chart title -> [its tag regexes, vertices of each drawn line]}.
CUSTOM_SCALARS_DRAWN = (
    DEEP_ALL
    + """
const drawn = {};
for (const pane of deepAll(document, 'tf-category-paginated-view')) {
  if (!pane.category || !pane.category.name) continue;
  const charts = drawn[pane.category.name] = {};
  for (const card of deepAll(pane, 'tf-custom-scalar-multi-line-chart-card')) {
    charts[card.title] = [
      card.tagRegexes,
      deepAll(card, 'vz-line-chart2')
        .flatMap(chart => deepAll(chart, 'path.line'))
        .map(p => ((p.getAttribute('d') || '').match(/[ML]/g) || []).length),
    ];
  }
}
return drawn;
"""
)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(app, ["convert", str(FIXTURES / "keras3_run"), str(out / "keras3_run"), "--overlay"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def poll(driver, script: str, done, timeout: float = 90.0):
    """Run ``script`` until ``done(result)`` holds; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = driver.execute_script(script)
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def expected(logdir: Path) -> dict[str, dict[str, int]]:
    """Section -> {tag -> points}, from export's table of the converted run."""
    table = read_scalars(logdir)
    sections: dict[str, dict[str, int]] = {}
    for tag, rows in table.groupby("tag"):
        sections.setdefault(tag.split("/")[0], {})[tag] = len(rows)
    return sections


def test_scalars_dashboard_shows_train_and_val_sections_with_drawn_curves(logdir: Path, browser) -> None:
    want = expected(logdir)
    assert sorted(want) == ["train", "val"]
    with TensorBoardServer(logdir) as tensorboard:
        tensorboard.wait_for_tags("keras3_run", {"train/loss", "val/loss"})
        # Without smoothing TensorBoard draws one line per curve, over the raw points' range;
        # smoothed, the y range fits the smoothed line and Plottable leaves raw points far
        # outside it out of the raw line's path.
        browser.get(f"http://127.0.0.1:{tensorboard.port}/#scalars&_smoothingWeight=0&_ignoreYOutliers=false")
        browser.refresh()  # the hash alone does not load the dashboard

        # Each card's one line, with a vertex per point.
        lines = {section: {tag: [n] for tag, n in tags.items()} for section, tags in want.items()}
        drawn = poll(browser, SCALARS_DRAWN, lambda drawn: all(drawn.get(s) == lines[s] for s in lines))
    assert {section: cards for section, cards in drawn.items() if section in want} == lines
    assert want["train"] == {
        "train/accuracy": 3,
        "train/batch_accuracy": 6,
        "train/batch_loss": 6,
        "train/learning_rate": 3,
        "train/loss": 3,
    }
    assert want["val"] == {
        "val/accuracy": 3,
        "val/accuracy_vs_iterations": 3,
        "val/loss": 3,
        "val/loss_vs_iterations": 3,
    }


def test_time_series_dashboard_shows_train_and_val_groups(logdir: Path, browser) -> None:
    want = expected(logdir)
    with TensorBoardServer(logdir) as tensorboard:
        tensorboard.wait_for_tags("keras3_run", {"train/loss", "val/loss"})
        browser.get(f"http://127.0.0.1:{tensorboard.port}/#timeseries")
        browser.refresh()
        shown = poll(browser, TIME_SERIES_DRAWN, lambda r: {"train", "val"} <= set(r["groups"]) and r["cards"])
    assert {group: n for group, n in shown["groups"].items() if group in want} == {
        section: len(tags) for section, tags in want.items()
    }
    tags = {tag for section in want.values() for tag in section}
    assert shown["cards"], "no scalar card rendered"
    for title, charts, canvases in shown["cards"]:
        assert title in tags and charts == 1 and canvases >= 1, (title, charts, canvases)


def test_custom_scalars_dashboard_overlays_train_and_val(logdir: Path, browser) -> None:
    """``convert --overlay``'s layout: one chart per metric holding its train and val curves."""
    charts = {
        "accuracy": [["^train/accuracy$", "^val/accuracy$"], [3, 3]],
        "loss": [["^train/loss$", "^val/loss$"], [3, 3]],
        "learning_rate": [["^train/learning_rate$"], [3]],
    }
    category = "train vs val ({split}/{metric})"
    with TensorBoardServer(logdir) as tensorboard:
        tensorboard.wait_for_tags("keras3_run", {"train/loss", "val/loss"})
        browser.get(f"http://127.0.0.1:{tensorboard.port}/#custom_scalars&_smoothingWeight=0")
        browser.refresh()
        drawn = poll(browser, CUSTOM_SCALARS_DRAWN, lambda drawn: drawn.get(category) == charts)
    assert drawn == {category: charts}

"""Regenerate the README's pictures from the fixture run: ``python docs/screenshots.py``.

``fixtures/keras3_run`` (a real Keras 3 training run) is converted into a temporary folder,
then drawn twice:

* ``docs/images/plot.svg``: ``tbrewrite plot converted/keras3_run -o plot.svg --tags
  '^(train|val)/(loss|accuracy|learning_rate)$'`` (loss and accuracy with train and val
  overlaid, the learning rate on its own panel);
* ``docs/images/inspect.svg``: what ``tbrewrite inspect converted/keras3_run`` prints in a
  100-column terminal, recorded by Rich (``Console(record=True)``, ``save_svg``);
* ``docs/images/tensorboard_before.png`` and ``tensorboard_after.png``: TensorBoard's Scalars
  dashboard (the real ``tensorboard`` on 127.0.0.1, in headless Chromium driven by Selenium)
  showing the fixture as Keras wrote it (a section per tag, ``train`` and ``validation``
  runs) and after ``convert`` (one run, a ``train`` and a ``val`` section). Made only where Chromium,
  chromedriver and Selenium are installed (``--no-tensorboard`` skips them); elsewhere the
  ones already there are kept, with what they were made from.

The first two are byte-stable: the plot carries no dates or version strings and its SVG ids
come from a fixed salt (:data:`tbrewrite.commands.plot.STYLE`); Rich's SVG is a function of
the text and the fixed theme. A browser's screenshot is not (fonts, anti-aliasing).
``docs/images/screenshots.json`` records, per picture, its SHA-256, the digest of the
fixture's files it was made from and the versions of what drew it.
``tests/test_screenshots.py`` checks that every picture is current: made from the fixture as
it is now, and, for the byte-stable ones with the recorded versions installed, the same bytes
this script makes.

Usage: ``python docs/screenshots.py [--out DIR] [--no-tensorboard]`` (default ``docs/images``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.terminal_theme import MONOKAI
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "keras3_run"
IMAGES = REPO / "docs" / "images"
PLOT_TAGS = "^(train|val)/(loss|accuracy|learning_rate)$"
WIDTH = 100
MANIFEST = "screenshots.json"
BYTE_STABLE = ("plot.svg", "inspect.svg")
TENSORBOARD = ("tensorboard_before.png", "tensorboard_after.png")
BROWSER_WINDOW = "1280,1640"
# Scalars dashboard: every card with its line drawn (elements in shadow roots, hence the walk).
CARDS_DRAWN = """
function deepAll(root, selector, out) {
  out = out || [];
  if (root.shadowRoot) deepAll(root.shadowRoot, selector, out);
  root.querySelectorAll(selector).forEach(e => out.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) deepAll(e.shadowRoot, selector, out); });
  return out;
}
const cards = deepAll(document, 'tf-scalar-card');
return cards.length > 0 && cards.every(c => deepAll(c, 'vz-line-chart2').some(v => deepAll(v, 'path.line').length));
"""


def fixture_digest(root: Path = FIXTURE) -> str:
    """SHA-256 over the fixture's files: each one's path relative to ``root``, then its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """The versions of the libraries the byte-stable pictures' bytes depend on."""
    return {"matplotlib": version("matplotlib"), "rich": version("rich")}


def browser() -> tuple[str, str] | None:
    """``(chromium, chromedriver)`` paths if they and Selenium are installed, else None."""
    try:
        version("selenium")
    except PackageNotFoundError:
        return None
    chromium = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def tensorboard_png(logdir: str, cwd: Path, out: Path, chromium: str, driver_path: str) -> str:
    """Screenshot TensorBoard's Scalars dashboard (smoothing off); return the browser's version.

    ``logdir`` is relative to ``cwd``, as the dashboard then shows it.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tensorboard = Path(sys.executable).with_name("tensorboard")
    server = subprocess.Popen(
        [str(tensorboard), "--logdir", logdir, "--host", "127.0.0.1", "--port", str(port), "--reload_interval=1"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={BROWSER_WINDOW}",
    ):
        options.add_argument(arg)
    driver: Any = None
    try:
        _wait(lambda: _scalar_tags(port), "tensorboard to load the run")
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        driver.get(f"http://127.0.0.1:{port}/#scalars&_smoothingWeight=0")
        driver.refresh()  # the hash alone does not load the dashboard
        _wait(lambda: driver.execute_script(CARDS_DRAWN), "the Scalars dashboard to draw its cards")
        time.sleep(1)  # the last animations
        driver.save_screenshot(str(out))
        return str(driver.capabilities.get("browserVersion", "unknown"))
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=20)


def _scalar_tags(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=5) as response:
            return bool(json.loads(response.read()))
    except OSError:
        return False


def _wait(ready: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.5)


def inspect_svg(run: Path, out: Path) -> None:
    """Record ``tbrewrite inspect run`` as the terminal shows it and save it as SVG."""
    import tbrewrite.cli._app as app_module
    from tbrewrite.cli import app
    from tbrewrite.cli import inspect as cli_inspect

    console = Console(record=True, width=WIDTH, force_terminal=True, color_system="truecolor", highlight=False)
    saved = cli_inspect.out, app_module.out
    cli_inspect.out = app_module.out = console
    try:
        result = CliRunner().invoke(app, ["inspect", str(run)])
    finally:
        cli_inspect.out, app_module.out = saved
    if result.exit_code != 0:
        raise SystemExit(f"inspect failed: {result.output}")
    console.save_svg(
        str(out), title="tbrewrite inspect converted/keras3_run", theme=MONOKAI, unique_id="tbrewrite-inspect"
    )


def make(out_dir: Path, *, tensorboard: bool = True) -> dict[str, Any]:
    """Write the pictures and their manifest into ``out_dir``; return the manifest.

    The TensorBoard screenshots are made when ``tensorboard`` is set and a browser is
    installed; otherwise those already in ``out_dir`` keep their manifest entries.
    """
    from tbrewrite.commands.plot import plot
    from tbrewrite.convert import convert

    out_dir.mkdir(parents=True, exist_ok=True)
    digest = fixture_digest()
    try:
        images: dict[str, Any] = json.loads((out_dir / MANIFEST).read_text())["images"]
    except (OSError, ValueError, KeyError):
        images = {}
    images = {name: entry for name, entry in images.items() if name in TENSORBOARD and (out_dir / name).is_file()}
    tools = browser() if tensorboard else None
    with tempfile.TemporaryDirectory() as temp:
        run = Path(temp) / "converted" / "keras3_run"
        convert(FIXTURE, run)
        shutil.copytree(FIXTURE, Path(temp) / "fixtures" / FIXTURE.name)
        plot(run, out_dir / "plot.svg", tags=PLOT_TAGS, force=True)
        inspect_svg(run, out_dir / "inspect.svg")
        for name in BYTE_STABLE:
            images[name] = {"fixture_sha256": digest, "versions": versions()}
        if tools is not None:
            for name, logdir in zip(TENSORBOARD, (f"fixtures/{FIXTURE.name}", "converted"), strict=True):
                chromium = tensorboard_png(logdir, Path(temp), out_dir / name, *tools)
                images[name] = {
                    "fixture_sha256": digest,
                    "versions": {"chromium": chromium, "tensorboard": version("tensorboard")},
                }
        elif tensorboard:
            print("no chromium, chromedriver or selenium: TensorBoard screenshots kept as they were", file=sys.stderr)
    for name, entry in images.items():
        entry["sha256"] = hashlib.sha256((out_dir / name).read_bytes()).hexdigest()
    manifest = {"fixture": "fixtures/keras3_run", "images": images}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Parse ``--out`` and make the pictures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the pictures (default: docs/images)")
    parser.add_argument("--no-tensorboard", action="store_true", help="do not remake the TensorBoard screenshots")
    args = parser.parse_args(argv)
    manifest = make(args.out, tensorboard=not args.no_tensorboard)
    for name in sorted(manifest["images"]):
        print(args.out / name)


if __name__ == "__main__":
    main()

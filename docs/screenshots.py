"""Regenerate the README's pictures from the fixture run: ``python docs/screenshots.py``.

``fixtures/keras3_run`` (a real Keras 3 training run) is converted into a temporary folder,
then drawn twice:

* ``docs/images/plot.svg``: ``tbrewrite plot converted/keras3_run -o plot.svg --tags
  '^(train|val)/(loss|accuracy|learning_rate)$'`` (loss and accuracy with train and val
  overlaid, the learning rate on its own panel);
* ``docs/images/inspect.svg``: what ``tbrewrite inspect converted/keras3_run`` prints in a
  100-column terminal, recorded by Rich (``Console(record=True)``, ``save_svg``).

Both are byte-stable: the plot carries no dates or version strings and its SVG ids come from
a fixed salt (:data:`tbrewrite.commands.plot.STYLE`); Rich's SVG is a function of the text
and the fixed theme. ``docs/images/screenshots.json`` records what they were made from: a
digest of the fixture's files, the matplotlib and Rich versions, and each picture's
SHA-256. ``tests/test_screenshots.py`` checks that the pictures are current: made from the
fixture as it is now, and (with the recorded versions installed) the same bytes this script
makes.

Usage: ``python docs/screenshots.py [--out DIR]`` (default ``docs/images``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.terminal_theme import MONOKAI
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "fixtures" / "keras3_run"
IMAGES = REPO / "docs" / "images"
PLOT_TAGS = "^(train|val)/(loss|accuracy|learning_rate)$"
WIDTH = 100
MANIFEST = "screenshots.json"


def fixture_digest(root: Path = FIXTURE) -> str:
    """SHA-256 over the fixture's files: each one's path relative to ``root``, then its bytes."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    """The versions of the libraries the pictures' bytes depend on."""
    return {"matplotlib": version("matplotlib"), "rich": version("rich")}


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


def make(out_dir: Path) -> dict[str, object]:
    """Write the pictures and their manifest into ``out_dir``; return the manifest."""
    from tbrewrite.commands.plot import plot
    from tbrewrite.convert import convert

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temp:
        run = Path(temp) / "converted" / "keras3_run"
        convert(FIXTURE, run)
        plot(run, out_dir / "plot.svg", tags=PLOT_TAGS, force=True)
        inspect_svg(run, out_dir / "inspect.svg")
    manifest: dict[str, object] = {
        "fixture": "fixtures/keras3_run",
        "fixture_sha256": fixture_digest(),
        "versions": versions(),
        "images": {
            name: hashlib.sha256((out_dir / name).read_bytes()).hexdigest() for name in ("plot.svg", "inspect.svg")
        },
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> None:
    """Parse ``--out`` and make the pictures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the pictures (default: docs/images)")
    args = parser.parse_args(argv)
    manifest = make(args.out)
    for name in manifest["images"]:  # type: ignore[attr-defined]
        print(args.out / name)


if __name__ == "__main__":
    main()

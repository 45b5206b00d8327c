"""The README's pictures exist, are shown near its top, and are current: made by
``docs/screenshots.py`` from the fixture run as it is now."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from support.paths import REPO

IMAGES = REPO / "docs" / "images"
BYTE_STABLE = ("plot.svg", "inspect.svg")
BROWSER_SHOTS = ("tensorboard_before.png", "tensorboard_after.png")
NAMES = BYTE_STABLE + BROWSER_SHOTS


def screenshots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("screenshots", REPO / "docs" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def images() -> dict:
    return json.loads((IMAGES / "screenshots.json").read_text())["images"]


def test_pictures_exist_and_are_the_ones_recorded() -> None:
    recorded = images()
    assert sorted(recorded) == sorted(NAMES)
    for name in NAMES:
        assert hashlib.sha256((IMAGES / name).read_bytes()).hexdigest() == recorded[name]["sha256"], name


def test_readme_shows_them_above_the_quick_start() -> None:
    top = (REPO / "README.md").read_text().split("\n## Quick start\n", 1)[0]
    for name in NAMES:
        assert f"docs/images/{name}" in top, name


def test_every_picture_was_made_from_the_current_fixture() -> None:
    script = screenshots()
    assert (script.BYTE_STABLE, script.TENSORBOARD) == (BYTE_STABLE, BROWSER_SHOTS)
    digest = script.fixture_digest()
    for name, entry in images().items():
        assert entry["fixture_sha256"] == digest, f"{name}: fixtures/keras3_run changed: run python docs/screenshots.py"


def test_the_script_makes_the_same_bytes(tmp_path: Path) -> None:
    script = screenshots()
    recorded = images()
    installed = script.versions()
    made = script.make(tmp_path, tensorboard=False)
    assert sorted(made["images"]) == sorted(BYTE_STABLE)
    # A picture's bytes depend on the library that draws it: compare where it is the same version.
    compared = [
        name
        for name, library in (("plot.svg", "matplotlib"), ("inspect.svg", "rich"))
        if recorded[name]["versions"][library] == installed[library]
    ]
    for name in compared:
        assert (tmp_path / name).read_bytes() == (IMAGES / name).read_bytes(), (
            f"docs/images/{name} is stale: run python docs/screenshots.py"
        )
    if not compared:
        pytest.skip(f"pictures drawn with other versions than the installed {installed}: bytes not compared")

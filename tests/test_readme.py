"""The README's quick start and examples run and do what it says (issue 12 item 16).

Every command is taken from README.md as written and run with this interpreter's
``tbrewrite``; TensorBoard's own loaders check what it would show.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.compat.proto import event_pb2

from support.paths import FIXTURES, REPO
from tbrewrite.events.writer import EventFileWriter

README = (REPO / "README.md").read_text()
TBREWRITE = [sys.executable, "-c", "from tbrewrite.cli import main; main()"]


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def tbrewrite(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one README command line ``[.venv/bin/]tbrewrite ...`` in ``cwd``."""
    argv = shlex.split(line)
    assert argv[0] in ("tbrewrite", ".venv/bin/tbrewrite"), line
    return subprocess.run([*TBREWRITE, *argv[1:]], cwd=cwd, capture_output=True, text=True, check=False)


def scalar_tags(logdir: Path) -> dict[str, set[str]]:
    """Run -> scalar tags (``simple_value`` or tensor) as TensorBoard's loaders see ``logdir``."""
    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    return {
        run: {tag for tag, m in metadata.items() if m.plugin_data.plugin_name == "scalars"}
        for run, metadata in mux.AllSummaryMetadata().items()
    }


def test_quick_start_is_two_command_lines_and_the_first_converts(tmp_path: Path) -> None:
    quick = section("Quick start")
    blocks = re.findall(r"```sh\n(.*?)```", quick, re.DOTALL)
    assert [len(b.strip().splitlines()) for b in blocks] == [1, 1]
    install, tests = (b.strip() for b in blocks)
    assert install.startswith("python3 -m venv .venv && .venv/bin/pip install . && ")
    assert tests == "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"
    shutil.copytree(FIXTURES / "keras3_run", tmp_path / "fixtures" / "keras3_run")
    result = tbrewrite(install.split(" && ")[-1], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("converted 1 run(s): ")
    # "Then `.venv/bin/tensorboard --logdir converted` shows one run with a train and a val section."
    assert "Then `.venv/bin/tensorboard --logdir converted`" in quick
    assert Path(sys.executable).with_name("tensorboard").is_file()  # the install puts it beside python
    shown = scalar_tags(tmp_path / "converted")
    assert list(shown) == ["keras3_run"]
    assert {tag.split("/")[0] for tag in shown["keras3_run"]} == {"train", "val"}


def test_rename_example_for_a_keras_tree_renames_each_split_to_its_own_section(tmp_path: Path) -> None:
    """Not ``validation/epoch_loss`` -> ``train/loss``: each split's rule applies to its own runs."""
    block = section("`tbrewrite rename LOGDIR`").split("```sh\n", 1)[1].split("```", 1)[0]
    example = block.split("# a Keras tree", 1)[1].strip().splitlines()[1:]
    assert len(example) == 2 and all(line.startswith("tbrewrite rename logs --runs ") for line in example)
    shutil.copytree(FIXTURES / "keras3_run", tmp_path / "logs" / "run1")
    before = scalar_tags(tmp_path / "logs")
    for line in example:
        result = tbrewrite(line, tmp_path)
        assert result.returncode == 0, result.stderr
    after = scalar_tags(tmp_path)  # the backups beside logs add no run
    assert sorted(after) == ["logs/run1/train", "logs/run1/validation"]
    expected = {
        run: {
            ("train/" if run == "run1/train" else "val/") + t[len("epoch_") :]
            if t.startswith("epoch_") and t != "epoch_learning_rate"
            else "train/learning_rate"
            if t == "epoch_learning_rate"
            else t
            for t in tags
        }
        for run, tags in before.items()
    }
    assert after["logs/run1/train"] == expected["run1/train"]
    assert after["logs/run1/validation"] == expected["run1/validation"]
    assert not any(t.startswith("train/") for t in after["logs/run1/validation"])
    assert {"train/loss", "train/learning_rate"} <= after["logs/run1/train"]
    assert "val/loss" in after["logs/run1/validation"]


def _write(path: Path, tags: dict[str, float]) -> None:
    path.parent.mkdir(parents=True)
    with EventFileWriter(path, wall_time=1_700_000_000.0) as w:
        for step in range(3):
            event = event_pb2.Event(wall_time=1_700_000_001.0 + step, step=step)
            for tag, value in tags.items():
                event.summary.value.add(tag=tag, simple_value=value)
            w.write_event(event)


def test_learning_rate_row_of_the_mapping_table_agrees_with_convert(tmp_path: Path) -> None:
    """``train/epoch_learning_rate`` -> ``train/learning_rate`` as the table's learning-rate row
    says; ``validation/epoch_learning_rate`` follows the ``validation/`` row: ``val/learning_rate``."""
    table = section("`tbrewrite convert SRC OUT`").split("\n\n|", 1)[1].split("\n\n", 1)[0]
    [row] = [r for r in table.splitlines() if "`epoch_learning_rate`" in r]
    _, source, _, output = (c.strip() for c in row.strip("|").split("|"))
    assert source == "flat, or `train/`" and output.startswith("`train/learning_rate`")
    assert "`validation/`" in output and "`val/learning_rate`" in output
    src = tmp_path / "logs"
    _write(
        src / "train" / "events.out.tfevents.1700000000.host.1.0.v2", {"epoch_loss": 1.0, "epoch_learning_rate": 0.5}
    )
    _write(
        src / "validation" / "events.out.tfevents.1700000000.host.1.1.v2",
        {"epoch_loss": 2.0, "epoch_learning_rate": 0.25},
    )
    result = tbrewrite(f"tbrewrite convert {src} {tmp_path / 'out'}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert scalar_tags(tmp_path / "out") == {
        ".": {"train/loss", "train/learning_rate", "val/loss", "val/learning_rate"}
    }

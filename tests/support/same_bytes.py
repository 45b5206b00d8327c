"""The cases pinned in ``tests/data/same_bytes.json``, and how one is run and hashed.

A case is one ``tbrewrite`` command line (``convert`` or ``rename``) over one input; its
result is the exit code and, for every file in the output tree, its path relative to the
output folder and its sha256. Nothing here imports ``tbrewrite``: the command is run as a
subprocess (``cli`` is the argv prefix), so the same code pins a baseline install
(``regen_same_bytes.py``) and checks the working tree (``tests/commands/test_same_bytes.py``).

Arguments hold placeholders replaced when run: ``<corpus>`` (the real corpus,
``<repo>/../shared/corpus``), ``<fixtures>`` (``<repo>/fixtures``), ``<gen>`` (the inputs
``eventgen.generate`` wrote), ``<rules>`` (rules files written from ``RULES_FILES``) and
``<out>`` (the case's output folder, new).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support import eventgen
from support.paths import CORPUS, CORPUS_MISSING

REPO = Path(__file__).resolve().parents[2]
FIXTURES_DIR = REPO / "fixtures"
DATA = REPO / "tests" / "data" / "same_bytes.json"
CORPUS_SKIP = CORPUS_MISSING

CORPUS_PROJECTS = (
    "2231-Project",
    "Callbacks-in-Keras",
    "OCTTextureDetector",
    "TensorBoard-Tutorial",
    "eyenet",
    "tensorboard-reducer",
)
CORPUS_RESTARTED = ("Callbacks-in-Keras", "eyenet", "tensorboard-reducer")
"""Corpus projects whose runs restart or repeat steps: also pinned with ``--restarts``."""
FIXTURES = ("keras3_run", "tf_keras_run", "tf1_flat_run")

CONVERT = {
    "default": [],
    "keep-last": ["--restarts", "keep-last"],
    "split": ["--restarts", "split"],
    "metric-split": ["--pattern", "{metric}/{split}"],
}
CONVERT_JOBS = ["--jobs", "1"]
"""Added to every convert case (it changes nothing for one run). bc1da52's parallel convert of
a tree races: worker processes each create missing output folders (``OutputSet.makedirs``:
exists check, then ``mkdir``), so two workers sharing a new parent (OUT itself, or e.g.
``OUT/tests/runs/lax``) can fail with ``error: OUT: File exists``, exit 1, nothing written
(about 1 run in 8 on ``corpus/tensorboard-reducer`` with 2 cores). ``convert-jobs2:gen/generic``
pins the parallel path where no new folder is shared."""
RENAME = {
    "epoch-drop-batch": ["--rule", r"^epoch_(.*)$=train/\1", "--drop", "^batch_"],
    "histograms": ["--rules", "<rules>/histograms.toml"],
}
MERGE = {
    # only for gen/collisions: loss_a/loss_b have disjoint steps, acc_a/acc_b overlap
    "merge-disjoint": ["--rule", "^loss_[ab]$=loss"],
    "merge-overlap": ["--rule", "^loss_[ab]$=loss", "--rule", "^acc_[ab]$=acc"],
    "merge-overlap-allowed": ["--rule", "^loss_[ab]$=loss", "--rule", "^acc_[ab]$=acc", "--allow-merge"],
}
RULES_FILES = {
    "histograms.toml": r"""# Keras weight histograms into one section; any other histogram and every image prefixed
[[rule]]
pattern = '^(?P<name>.*)/histogram$'
replace = 'weights/\g<name>'
scope = "histograms"

[[rule]]
pattern = '^'
replace = 'hist/'
scope = "histograms"

[[rule]]
pattern = '^'
replace = 'img/'
scope = ["images"]

[[rule]]
pattern = '^notes$'
drop = true
""",
}


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    out_exists: bool = False
    """Create ``<out>`` (empty) before running."""

    @property
    def corpus(self) -> bool:
        return any("<corpus>" in a for a in self.argv)


def _label(src: str) -> str:
    return src.replace("<", "").replace(">", "")  # "<corpus>/eyenet" -> "corpus/eyenet"


def _convert(variant: str, src: str) -> Case:
    return Case(f"convert-{variant}:{_label(src)}", ("convert", src, "<out>", *CONVERT[variant], *CONVERT_JOBS))


def _rename(variant: str, src: str, options: list[str]) -> Case:
    return Case(f"rename-{variant}:{_label(src)}", ("rename", src, "--out", "<out>", *options))


def cases() -> list[Case]:
    """Every pinned case, in a fixed order."""
    out: list[Case] = []
    for project in CORPUS_PROJECTS:
        src = f"<corpus>/{project}"
        out.append(_convert("default", src))
        if project in CORPUS_RESTARTED:
            out += [_convert("keep-last", src), _convert("split", src)]
        out += [_rename(v, src, o) for v, o in RENAME.items()]
    for src in [f"<fixtures>/{f}" for f in FIXTURES] + [f"<gen>/{g}" for g in eventgen.GENERATORS]:
        out += [_convert(v, src) for v in CONVERT]
        out += [_rename(v, src, o) for v, o in RENAME.items()]
    out += [_rename(v, "<gen>/collisions", o) for v, o in MERGE.items()]
    # the parallel convert path: 2 workers, each run's folder directly in an existing OUT
    out.append(Case("convert-jobs2:gen/generic", ("convert", "<gen>/generic", "<out>", "--jobs", "2"), out_exists=True))
    return out


def write_inputs(root: Path) -> dict[str, Path]:
    """Generate the synthetic inputs and rules files under ``root``; return the placeholders."""
    gen, rules = root / "gen", root / "rules"
    gen.mkdir(parents=True)
    rules.mkdir()
    eventgen.generate(gen)
    for name, text in RULES_FILES.items():
        (rules / name).write_text(text, encoding="utf-8", newline="\n")
    return {"<corpus>": CORPUS, "<fixtures>": FIXTURES_DIR, "<gen>": gen, "<rules>": rules}


def input_hashes(places: dict[str, Path]) -> dict[str, dict[str, str]]:
    """sha256 of every fixture and generated input file, by input (``fixtures/<name>``, ``gen/<name>``, ``rules``)."""
    found = {f"fixtures/{f}": tree_hashes(places["<fixtures>"] / f) for f in FIXTURES}
    found.update({f"gen/{g}": tree_hashes(places["<gen>"] / g) for g in eventgen.GENERATORS})
    found["rules"] = tree_hashes(places["<rules>"])
    return found


def tree_hashes(root: Path) -> dict[str, str]:
    """``{relative posix path: sha256}`` of every file under ``root`` ({} if it does not exist).

    A symlink is recorded as ``symlink:<target>`` and never followed.
    """
    found: dict[str, str] = {}
    if not root.exists():
        return found
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "symlink:" + os.readlink(path)
            elif name in files:
                found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return dict(sorted(found.items()))


def default_cli() -> list[str]:
    """The ``tbrewrite`` console script beside this interpreter, else its entry point."""
    script = Path(sys.executable).with_name("tbrewrite")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from tbrewrite.cli import main; main()"]


def expand(argv: tuple[str, ...], places: dict[str, Path], out: Path) -> list[str]:
    result = []
    for arg in argv:
        for key, path in {**places, "<out>": out}.items():
            arg = arg.replace(key, str(path))
        result.append(arg)
    return result


def run_case(
    case: Case, cli: list[str], places: dict[str, Path], workdir: Path
) -> tuple[dict, subprocess.CompletedProcess]:
    """Run ``case`` with output in ``workdir/out``; return its result entry and the process."""
    out = workdir / "out"
    workdir.mkdir(parents=True, exist_ok=True)
    if case.out_exists:
        out.mkdir()
    proc = subprocess.run(
        [*cli, *expand(case.argv, places, out)],
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    entry = {"argv": list(case.argv), "exit": proc.returncode, "files": tree_hashes(out)}
    if case.out_exists:
        entry["out_exists"] = True
    return entry, proc


def load() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def dump(data: dict) -> str:
    """The JSON file's text: sorted keys, one line per file hash, argv on one line."""
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
    # put each argv list on one line (json.dumps gives one element per line)
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == '"argv": [':
            j = i + 1
            items = []
            while lines[j].strip() not in ("]", "],"):
                items.append(lines[j].strip().rstrip(","))
                j += 1
            out.append(line + ", ".join(items) + lines[j].strip())
            i = j + 1
        else:
            out.append(line)
            i += 1
    return "\n".join(out) + "\n"

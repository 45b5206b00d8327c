"""``convert`` and ``rename`` write exactly the bytes release bc1da52 wrote.

Every case of ``support.same_bytes.cases()`` runs the ``tbrewrite`` command of this
environment in a subprocess and compares its exit code and the sha256 of every output file
with ``tests/data/same_bytes.json``, which a baseline install of bc1da52 produced
(``tests/data/README.md`` says how to regenerate it). Inputs: the real corpus (skipped if
absent), ``fixtures/``, and small logs ``support.eventgen`` writes byte-for-byte the same
every time (their hashes are pinned too, so a changed generator is reported as such).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support import same_bytes as sb

PINNED = sb.load()
CASES = sb.cases()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, dict[str, str]]]:
    places = sb.write_inputs(tmp_path_factory.mktemp("same_bytes") / "inputs")
    return places, sb.input_hashes(places)


def _inputs_of(case: sb.Case) -> list[str]:
    """The pinned inputs (``fixtures/<name>``, ``gen/<name>``, ``rules``) a case reads."""
    names = []
    for arg in case.argv:
        for prefix in ("<fixtures>/", "<gen>/"):
            if arg.startswith(prefix):
                names.append(prefix.strip("<>/") + "/" + arg[len(prefix) :])
        if arg.startswith("<rules>/"):
            names.append("rules")
    return names


def test_pinned_cases_are_the_cases() -> None:
    """Every case is pinned and every pin is a case (regenerate after changing the cases)."""
    assert sorted(c.id for c in CASES) == sorted(PINNED["cases"])


def test_generated_inputs_unchanged(inputs: tuple[dict[str, Path], dict[str, dict[str, str]]]) -> None:
    _, hashes = inputs
    assert hashes == PINNED["inputs"], (
        "the fixtures or the logs tests/support/eventgen.py generates are not the ones pinned; "
        "the same-bytes cases that read them cannot tell anything"
    )


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_same_bytes(case: sb.Case, inputs: tuple[dict[str, Path], dict[str, dict[str, str]]], tmp_path: Path) -> None:
    if case.corpus and not sb.CORPUS.is_dir():
        pytest.skip(sb.CORPUS_SKIP)
    places, hashes = inputs
    pinned = PINNED["cases"].get(case.id)
    assert pinned is not None, f"{case.id} is not in {sb.DATA}; regenerate it (tests/data/README.md)"
    assert list(case.argv) == pinned["argv"], f"{case.id}: the case changed since it was pinned; regenerate"
    for name in _inputs_of(case):
        assert hashes.get(name) == PINNED["inputs"].get(name), f"{case.id}: input {name} is not the pinned one"

    got, proc = sb.run_case(case, sb.default_cli(), places, tmp_path)

    problems = []
    if got["exit"] != pinned["exit"]:
        problems.append(f"exit code {got['exit']}, pinned {pinned['exit']}")
    want, have = pinned["files"], got["files"]
    problems += [f"missing: {p}" for p in want if p not in have]
    problems += [f"extra: {p}" for p in have if p not in want]
    problems += [f"different bytes: {p}" for p in want if p in have and have[p] != want[p]]
    if problems:
        argv = " ".join(sb.expand(case.argv, places, tmp_path / "out"))
        stderr = "\n".join(proc.stderr.strip().splitlines()[-15:])
        pytest.fail(
            f"{case.id}: tbrewrite {argv}\n  " + "\n  ".join(problems) + f"\nstderr (tail):\n{stderr}", pytrace=False
        )

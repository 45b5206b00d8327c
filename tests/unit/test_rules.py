"""The rule language of ``rename`` (:mod:`tbrewrite.rules`): matching, order, scopes, errors.

Pure functions on strings and small TOML files; what ``rename`` does with the rules on real
logs is in ``tests/commands/test_rename.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.rename_rules import DROP, RULES_TOML, expected_tag
from tbrewrite.errors import RuleError
from tbrewrite.rules import RuleSet, build_rules, load_rules_file, parse_drop_option, parse_rule_option


def test_rules_first_match_wins_with_re_sub_semantics() -> None:
    rules = build_rules([r"^epoch_(?P<m>.*)$=train/\g<m>", r"loss=LOSS", r"(?<=a)=b=c"], drops=["^keras$"])
    assert rules.apply("epoch_loss", "scalar") == "train/loss"
    assert rules.apply("val_loss_loss", "scalar") == "val_LOSS_LOSS"
    assert rules.apply("keras", "graph") is None
    assert rules.apply("ab", "scalar") == "ab=cb"
    assert rules.apply("other", "scalar") == "other"


def test_rule_scope_limits_kinds(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text("[[rule]]\npattern = '^w'\nreplace = 'x'\nscope = ['scalars', 'images']\n")
    rules = RuleSet(tuple(load_rules_file(path)))
    assert rules.apply("w1", "scalar") == "x1"
    assert rules.apply("w1", "image") == "x1"
    assert rules.apply("w1", "histogram") == "w1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", "--rule 'abc': expected REGEX=REPLACEMENT"),
        ("(abc=x", "--rule '(abc=x': invalid regex '(abc': missing ), unterminated subpattern at position 0"),
        (r"a=\2", r"--rule 'a=\2': invalid replacement '\2': invalid group reference 2 at position 1"),
        (r"(a)=\g<nope>", r"--rule '(a)=\g<nope>': invalid replacement '\g<nope>': unknown group name 'nope'"),
    ],
)
def test_bad_rule_options_name_the_rule(text: str, message: str) -> None:
    with pytest.raises(RuleError) as e:
        parse_rule_option(text)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[[rule]]\npattern = 'a'\nreplace = \n", "{p}:3:11: invalid TOML: invalid value"),
        (
            "[[rule]]\npattern = 'a'\nreplace = 'b'\n\n[[rule]]\npattern = '(a'\nreplace = 'b'\n",
            "{p}:5: rule 2: invalid regex '(a': missing ), unterminated subpattern at position 0",
        ),
        ("[[rule]]\npattern = 'a'\n", "{p}:1: rule 1: give exactly one of 'replace' or 'drop = true'"),
        (
            "[[rule]]\npattern = 'a'\ndrop = true\nscope = 'scalar'\n",
            "{p}:1: rule 1: unknown scope 'scalar'; expected one of scalars, histograms, images, audio, "
            "text, hparams, graphs, pr_curves, mesh, custom_scalars, tensors",
        ),
        ("[[rule]]\npatern = 'a'\n", "{p}:1: rule 1: unknown key 'patern'; expected drop, pattern, replace, scope"),
        ("[rules]\n", "{p}: unknown top-level key 'rules'; expected [[rule]] tables"),
    ],
)
def test_bad_rules_files_name_file_and_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(body)
    with pytest.raises(RuleError) as e:
        load_rules_file(path)
    assert str(e.value) == message.format(p=path)


@pytest.mark.parametrize(
    ("parse", "text", "message"),
    [
        (parse_rule_option, "=x", "--rule '=x': empty regex; it would match at every position of every tag"),
        (parse_drop_option, "", "--drop '': empty regex; it would match at every position of every tag"),
    ],
)
def test_empty_regex_refused(parse, text: str, message: str) -> None:
    with pytest.raises(RuleError) as e:
        parse(text)
    assert str(e.value) == message


def test_rules_file_without_rules_refused(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    for body in ("", "# nothing yet\n", "rule = []\n"):
        path.write_text(body)
        with pytest.raises(RuleError) as e:
            load_rules_file(path)
        assert str(e.value) == f"{path}: no rules; expected [[rule]] tables"


def test_rules_file_with_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_bytes(b"\xef\xbb\xbf" + RULES_TOML.encode())
    rules = RuleSet(tuple(load_rules_file(path)))
    assert rules.apply("epoch_loss", "scalar") == "epoch/loss"
    assert rules.rules[1].source == f"{path}:8: rule 2"


# Tags shaped like the corpus's: Keras 2 and 3 names, grouped ones, weights, and tags no rule touches.
ORACLE_TAGS = [
    "epoch_loss",
    "epoch_learning_rate",
    "batch_loss",
    "batch_epoch_x",
    "val_loss",
    "val_acc",
    "loss",
    "acc",
    "lax/loss",
    "strict/val_acc",
    "dense/kernel_0/histogram",
    "dense/kernel_0/histogram/x",
    "keras",
    "evaluation_loss_vs_iterations",
    "loss/extra",
    "xepoch_loss",
    "lr",
]


def test_rules_file_and_drop_agree_with_the_hand_written_oracle(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(RULES_TOML)
    rules = build_rules(rules_file=path, drops=[DROP])
    for tag in ORACLE_TAGS:
        assert rules.apply(tag, "scalar") == expected_tag(tag), tag
    # The epoch_ rule is scoped to scalars: an epoch_ histogram keeps its name.
    assert rules.apply("epoch_weights", "histogram") == "epoch_weights"
    assert rules.apply("epoch_weights", "scalar") == "epoch/weights"


def test_drops_come_first_then_rule_options_then_the_rules_file(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[[rule]]\npattern = '^a'\nreplace = 'file'\n")
    rules = build_rules([r"^a(.*)$=option\1"], rules_file=path, drops=["^ab$"])
    assert rules.apply("ab", "scalar") is None  # a drop wins over any rename
    assert rules.apply("ac", "scalar") == "optionc"  # --rule before the file's rules
    assert [r.source for r in rules.rules] == ["--drop '^ab$'", r"--rule '^a(.*)$=option\1'", f"{path}:1: rule 1"]
    only_file = build_rules(rules_file=path)
    assert only_file.apply("ac", "scalar") == "filec"
    assert not build_rules() and build_rules().apply("anything", "scalar") == "anything"


def test_renaming_to_an_empty_or_control_character_tag_is_checked_only_when_asked() -> None:
    rules = build_rules(["^x$=", "^y$=a\tb"])
    with pytest.raises(RuleError) as e:
        rules.apply("x", "scalar")
    assert str(e.value) == "--rule '^x$=': renames tag 'x' to the empty string"
    with pytest.raises(RuleError) as e:
        rules.apply("y", "scalar")
    assert str(e.value) == "--rule '^y$=a\\tb': renames tag 'y' to 'a\\tb', which holds a control character"
    assert rules.apply("x", "scalar", check=False) == ""
    assert rules.apply("y", "scalar", check=False) == "a\tb"
    # A tag that holds a control character already and is left unchanged is not refused.
    assert build_rules(["^z$=z"]).apply("z", "scalar") == "z"
    assert build_rules(["q=q"]).apply("\x01q", "scalar") == "\x01q"


def test_missing_rules_file_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as e:
        load_rules_file(tmp_path / "nope.toml")
    assert str(e.value) == f"{tmp_path / 'nope.toml'}: no such rules file"

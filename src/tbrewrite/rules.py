r"""Rename rules: ordered regex rules that rename or drop tags.

A rule set is an ordered list of rules. The first rule whose pattern matches a tag
(:func:`re.search`) decides: a *rename* rule rewrites the tag with :func:`re.sub`
semantics (every non-overlapping match is replaced; ``\1`` and ``\g<name>`` refer to
groups), a *drop* rule removes the tag's values. A tag no rule matches keeps its name.
A rule may be limited to some summary kinds (``scope``), as TensorBoard's dashboards
classify them (:func:`tbrewrite.events.reader.value_kind`).

Rules come from the command line (``--rule 'REGEX=REPLACEMENT'``, ``--drop REGEX``) or
from a TOML file::

    [[rule]]
    pattern = '^epoch_(.*)$'
    replace = 'train/\1'
    scope = "scalars"          # optional: one kind or a list; default every kind

    [[rule]]
    pattern = '_grad$'
    drop = true

Every error is a :class:`tbrewrite.errors.RuleError` whose message is one line naming
the rule (``--rule '...'``) or the file, line and column.
"""

from __future__ import annotations

import os
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tbrewrite.errors import RuleError
from tbrewrite.output.files import special_file
from tbrewrite.storage import local_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

SCOPES = {
    "scalars": "scalar",
    "histograms": "histogram",
    "images": "image",
    "audio": "audio",
    "text": "text",
    "hparams": "hparams",
    "graphs": "graph",
    "pr_curves": "pr_curve",
    "mesh": "mesh",
    "custom_scalars": "custom_scalars",
    "tensors": "tensor",
}
"""Scope names accepted in rules files -> the value kinds they select."""

_RULE_KEYS = {"pattern", "replace", "drop", "scope"}
_TOML_POSITION = re.compile(r"^(.*?)\s*\(at line (\d+), column (\d+)\)$")
_RULE_HEADER = re.compile(r"^\s*\[\[\s*rule\s*\]\]")


@dataclass(frozen=True)
class Rule:
    """One rename or drop rule.

    Attributes:
        pattern: re.Pattern. Matched against a tag with ``search``.
        replacement: str or None. The :func:`re.sub` template; None drops the tag.
        kinds: frozenset of str or None. Value kinds the rule applies to (``scalar``,
            ``histogram``, ...); None for every kind.
        source: str. Where the rule came from, for messages (``--rule 'a=b'``,
            ``rules.toml:3``).
    """

    pattern: re.Pattern[str]
    replacement: str | None
    kinds: frozenset[str] | None
    source: str

    def applies(self, tag: str, kind: str) -> bool:
        """Return True if this rule decides ``tag`` of value kind ``kind``."""
        return (self.kinds is None or kind in self.kinds) and self.pattern.search(tag) is not None


@dataclass(frozen=True)
class RuleSet:
    """An ordered list of rules; the first that applies to a tag decides.

    Args:
        rules: sequence of Rule, in priority order.
    """

    rules: tuple[Rule, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.rules)

    def apply(self, tag: str, kind: str, *, check: bool = True) -> str | None:
        r"""Return the new name of ``tag`` (itself if no rule applies), or None to drop it.

        Args:
            tag: str. The tag as stored.
            kind: str. Its value kind (see :func:`tbrewrite.events.reader.value_kind`).
            check: bool. Refuse a new name TensorBoard could not show as one tag.

        Raises:
            RuleError: with ``check``, the deciding rule renames ``tag`` to the empty
                string or to a name holding a control character (``\n``, ``\x00``...;
                Unicode category ``Cc``).
        """
        for rule in self.rules:
            if rule.applies(tag, kind):
                if rule.replacement is None:
                    return None
                new = rule.pattern.sub(rule.replacement, tag)
                if check and new != tag:
                    _check_new_tag(rule, tag, new)
                return new
        return tag


def _check_new_tag(rule: Rule, tag: str, new: str) -> None:
    if not new:
        raise RuleError(f"{rule.source}: renames tag {_q(tag)} to the empty string")
    if any(unicodedata.category(c) == "Cc" for c in new):
        raise RuleError(f"{rule.source}: renames tag {_q(tag)} to {_q(new)}, which holds a control character")


def compile_rule(
    pattern: str,
    replacement: str | None,
    *,
    kinds: frozenset[str] | None = None,
    source: str,
) -> Rule:
    """Compile one rule, checking the pattern and the replacement template up front.

    Args:
        pattern: str. A Python regular expression.
        replacement: str or None. A :func:`re.sub` template, or None for a drop rule.
        kinds: frozenset of value kinds, or None for all.
        source: str. How to name the rule in messages.

    Raises:
        RuleError: the pattern is empty (it would match at every position of every
            tag) or does not compile, or the template refers to a group the pattern
            lacks or holds a bad escape.
    """
    if not pattern:
        raise RuleError(f"{source}: empty regex; it would match at every position of every tag")
    try:
        compiled = re.compile(pattern)
    except re.error as e:
        raise RuleError(f"{source}: invalid regex {_q(pattern)}: {e}") from None
    if replacement is not None:
        _check_template(compiled, replacement, source)
    return Rule(compiled, replacement, kinds, source)


def _check_template(pattern: re.Pattern[str], replacement: str, source: str) -> None:
    """Validate ``replacement`` against ``pattern``'s groups without matching any tag.

    ``re.sub`` only parses its template at the first match; expanding it on a match of a
    stand-in pattern with the same numbered and named groups (all matching the empty
    string) parses it now, with the same errors.
    """
    names = {index: name for name, index in pattern.groupindex.items()}
    stand_in = "".join(f"(?P<{names[i]}>)" if i in names else "()" for i in range(1, pattern.groups + 1))
    match = re.match(stand_in, "")
    assert match is not None
    try:
        match.expand(replacement)
    except (re.error, IndexError) as e:
        raise RuleError(f"{source}: invalid replacement {_q(replacement)}: {e}") from None


def parse_rule_option(text: str) -> Rule:
    """Parse one ``--rule 'REGEX=REPLACEMENT'`` option.

    The split is at the first ``=`` whose left side compiles as a regex, so patterns
    holding ``=`` (``(?=...)``, ``(?<=...)``) work; the replacement may hold ``=`` too.

    Raises:
        RuleError: no ``=``, or no split yields a valid regex (the message gives the
            error for the split at the first ``=``).
    """
    source = f"--rule {_q(text)}"
    positions = [i for i, c in enumerate(text) if c == "="]
    if not positions:
        raise RuleError(f"{source}: expected REGEX=REPLACEMENT")
    for i in positions:
        try:
            re.compile(text[:i])
        except re.error:
            continue
        return compile_rule(text[:i], text[i + 1 :], source=source)
    first = positions[0]
    return compile_rule(text[:first], text[first + 1 :], source=source)


def parse_drop_option(pattern: str) -> Rule:
    """Parse one ``--drop REGEX`` option.

    Raises:
        RuleError: the pattern does not compile.
    """
    return compile_rule(pattern, None, source=f"--drop {_q(pattern)}")


def load_rules_file(path: str | os.PathLike[str]) -> list[Rule]:
    """Read a TOML rules file: an array of ``[[rule]]`` tables, in priority order.

    Each table has ``pattern`` (a regex), and either ``replace`` (a :func:`re.sub`
    template) or ``drop = true``, and optionally ``scope``: a kind name or a list of
    them (``scalars``, ``histograms``, ``images``, ``audio``, ``text``, ``hparams``,
    ``graphs``, ``pr_curves``, ``mesh``, ``custom_scalars``, ``tensors``).

    Args:
        path: str or PathLike. The rules file.

    Returns:
        list of Rule, in file order.

    Raises:
        RuleError: the file is unreadable, not valid TOML (``file:line:col: ...``), holds
            no rule, or a rule is malformed (``file:line: rule N: ...``, the line of its
            ``[[rule]]``).
    """
    path = local_path(path, "--rules")
    kind = special_file(path) if os.path.lexists(path) else None
    if kind is not None:  # reading a pipe or a device could block or never end
        raise RuleError(f"{path}: not a regular file ({kind})")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RuleError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RuleError(f"{path}: cannot read rules file: {getattr(e, 'strerror', None) or e}") from None
    try:
        document = tomllib.loads(text)
    except RecursionError:
        raise RuleError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    except tomllib.TOMLDecodeError as e:
        message = str(e)
        found = _TOML_POSITION.match(message)
        if found:
            what, line, column = found.groups()
            raise RuleError(f"{path}:{line}:{column}: invalid TOML: {_lower(what)}") from None
        raise RuleError(f"{path}: invalid TOML: {_lower(message)}") from None
    extra = sorted(set(document) - {"rule"})
    if extra:
        raise RuleError(f"{path}: unknown top-level key {extra[0]!r}; expected [[rule]] tables")
    tables = document.get("rule", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise RuleError(f"{path}: 'rule' must be an array of tables ([[rule]])")
    if not tables:
        raise RuleError(f"{path}: no rules; expected [[rule]] tables")
    headers = [n for n, line in enumerate(text.splitlines(), 1) if _RULE_HEADER.match(line)]
    rules = []
    for number, table in enumerate(tables, 1):
        where = f"{path}:{headers[number - 1]}" if len(headers) == len(tables) else str(path)
        rules.append(_rule_from_table(table, f"{where}: rule {number}"))
    return rules


def _rule_from_table(table: dict[str, object], source: str) -> Rule:
    unknown = sorted(set(table) - _RULE_KEYS)
    if unknown:
        raise RuleError(f"{source}: unknown key {unknown[0]!r}; expected {', '.join(sorted(_RULE_KEYS))}")
    pattern = table.get("pattern")
    if not isinstance(pattern, str):
        raise RuleError(f"{source}: 'pattern' (a string) is required")
    drop = table.get("drop", False)
    if not isinstance(drop, bool):
        raise RuleError(f"{source}: 'drop' must be true or false")
    replacement = table.get("replace")
    if replacement is not None and not isinstance(replacement, str):
        raise RuleError(f"{source}: 'replace' must be a string")
    if drop == (replacement is not None):
        raise RuleError(f"{source}: give exactly one of 'replace' or 'drop = true'")
    return compile_rule(pattern, replacement, kinds=_scope(table.get("scope"), source), source=source)


def _scope(scope: object, source: str) -> frozenset[str] | None:
    if scope is None:
        return None
    names = [scope] if isinstance(scope, str) else scope
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise RuleError(f"{source}: 'scope' must be a kind name or a non-empty list of them")
    for name in names:
        if name not in SCOPES:
            raise RuleError(f"{source}: unknown scope {name!r}; expected one of {', '.join(SCOPES)}")
    return frozenset(SCOPES[n] for n in names)


def _q(text: str) -> str:
    r"""Quote ``text`` as the user typed it (``repr`` would double every backslash).

    Control characters are escaped (``\n``), so a message stays on one line.
    """
    shown = "".join(c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) == "Cc" else c for c in text)
    return f"'{shown}'"


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]


def build_rules(
    rules: Iterable[str] = (),
    *,
    rules_file: str | os.PathLike[str] | None = None,
    drops: Sequence[str] = (),
) -> RuleSet:
    """Build the rule set of one command line.

    ``--drop`` patterns come first (a tag matching one is dropped whatever a rename
    rule says), then the ``--rule`` options in order, then the rules file's rules in
    file order.

    Args:
        rules: ``REGEX=REPLACEMENT`` strings.
        rules_file: optional path of a TOML rules file.
        drops: regexes of tags to drop.

    Raises:
        RuleError: any rule is invalid.
    """
    parsed = [parse_drop_option(d) for d in drops]
    parsed += [parse_rule_option(r) for r in rules]
    if rules_file is not None:
        parsed += load_rules_file(rules_file)
    return RuleSet(tuple(parsed))

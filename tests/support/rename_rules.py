"""The rules file and drop pattern the rename tests use, and what they must do written out by hand.

``expected_tag`` is the oracle: a second, independent statement of ``RULES_TOML`` plus
``--drop DROP``, so a bug in :mod:`tbrewrite.rules` cannot hide itself.
"""

from __future__ import annotations

RULES_TOML = r"""
# epoch scalars into one section
[[rule]]
pattern = '^epoch_(.*)$'
replace = 'epoch/\1'
scope = "scalars"

[[rule]]
pattern = '^(lax|strict)/(?P<name>.*)$'
replace = '\g<name>/\1'

[[rule]]
pattern = '^val_(.*)$'
replace = 'val/\1'

[[rule]]
pattern = '^(loss|acc)$'
replace = 'train/\1'

[[rule]]
pattern = 'kernel_0/histogram$'
drop = true
"""
DROP = "^batch_"


def expected_tag(tag: str) -> str | None:
    """RULES_TOML plus ``--drop ^batch_``, written out by hand."""
    if tag.startswith("batch_") or tag.endswith("kernel_0/histogram"):
        return None
    if tag.startswith("epoch_"):
        return "epoch/" + tag[len("epoch_") :]
    for group in ("lax", "strict"):
        if tag.startswith(group + "/"):
            return tag[len(group) + 1 :] + "/" + group
    if tag.startswith("val_"):
        return "val/" + tag[len("val_") :]
    if tag in ("loss", "acc"):
        return "train/" + tag
    return tag

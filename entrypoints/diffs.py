"""Changes as a person reads them: ``quantity: 2 → 3``, changed fields only.

One spelling for every entry point that shows a change to people: the demo's history, the CLI's
``history``, ``diff``, ``evaluate`` and approvals (``approvals show`` line by line, ``approvals list``
as a one-line summary). A value is shown as written for text and numbers-as-text, ``-`` for null,
compact JSON for anything else; control characters are escaped, so a value cannot move the cursor or
recolour the terminal.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

ARROW = "→"
NULL = "-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(value: Any) -> str:
    """One value on one line: text as is, null as ``-``, anything else as compact JSON; control characters
    escaped (``\\n``, ``\\x1b``)."""
    if value is None:
        return NULL
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def changed(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, first: Iterable[str] = ()
) -> dict[str, dict[str, Any]]:
    """``{field: {"before", "after"}}`` for the fields whose values differ (an absent field reads as null),
    the names in ``first`` first (e.g. the fields a command named), then the rest by name. A record's system
    columns (``_state``, ``_version``…) are not its fields: left out."""
    before, after = before or {}, after or {}
    names = [
        name
        for name in before.keys() | after.keys()
        if not name.startswith("_") and before.get(name) != after.get(name)
    ]
    order = {name: index for index, name in enumerate(first)}
    names.sort(key=lambda name: (order.get(name, len(order)), name))
    return {name: {"before": before.get(name), "after": after.get(name)} for name in names}


def change_text(name: str, change: Mapping[str, Any], *, created: bool = False) -> str:
    """``name: before → after`` (``name: value`` for a field a create set)."""
    if created:
        return f"{name}: {shown(change.get('after'))}"
    return f"{name}: {shown(change.get('before'))} {ARROW} {shown(change.get('after'))}"


def change_lines(
    changes: Mapping[str, Mapping[str, Any]], *, created: bool = False, skip: Iterable[str] = ()
) -> list[str]:
    """One ``change_text`` per changed field (in the order given), leaving out the names in ``skip``."""
    left_out = set(skip)
    return [
        change_text(name, change, created=created)
        for name, change in changes.items()
        if name not in left_out
    ]


def summary(changes: Mapping[str, Mapping[str, Any]], *, created: bool = False) -> str:
    """Every change on one line, ``quantity: 2 → 3, total: 9 → 12`` (a table cuts it to its width)."""
    return ", ".join(change_lines(changes, created=created))

"""Per-field differences, as an approver or an auditor reads them: the changed fields only, before and after.

An approval request's preview holds the record before and after the parked command (``before``/``after``,
and ``count``), or, for a bulk update, the number of matched records and a sample of them, each with the
changed fields before and after. A history entry holds ``changes`` (``{field: {"before", "after"}}``); once
the record was purged its values are gone, and what the entry still says (the changed field names, when it
keeps them, and ``redacted``) is all there is to show. Fields Writ keeps for itself (``_version`` …) are
never listed: they change with every write and say nothing about it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Change:
    name: str
    before: Any
    after: Any
    shown: bool = True
    """False when the values were erased (a purged record's history): only the field's name is known."""


@dataclass(frozen=True)
class Diff:
    """What a parked command would change: one record's fields, or a bulk's count and a sample."""

    changes: list[Change] = field(default_factory=list)
    count: int = 1
    sample: list[tuple[str, list[Change]]] = field(default_factory=list)
    erased: bool = False
    """The request's copy of the data was erased (a record it covers was purged)."""

    @property
    def bulk(self) -> bool:
        return bool(self.sample) or self.count != 1


def changed(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Change]:
    """The fields whose values differ between two states of a record, by name (a missing state or field reads
    as null: a create lists the fields it sets)."""
    old, new = before or {}, after or {}
    names = sorted(name for name in {*old, *new} if not name.startswith("_"))
    return [
        Change(name, old.get(name), new.get(name))
        for name in names
        if old.get(name) != new.get(name)
    ]


def of_preview(preview: Mapping[str, Any] | None, shredded: bool = False) -> Diff:
    """An approval request's preview as a diff (``shredded``: the views say its data was erased)."""
    if shredded or not isinstance(preview, Mapping):
        return Diff(erased=True)
    count = int(preview.get("count") or 1)
    if "sample" in preview:
        sample = [
            (str(item.get("id", "")), changed(item.get("before"), item.get("after")))
            for item in preview.get("sample") or []
            if isinstance(item, Mapping)
        ]
        return Diff(count=count, sample=sample)
    return Diff(changed(preview.get("before"), preview.get("after")), count=count)


def of_entry(entry: Mapping[str, Any]) -> tuple[list[Change], bool]:
    """A history entry's changes, and whether its values were erased (``redacted``)."""
    redacted = bool(entry.get("redacted"))
    changes = entry.get("changes") or {}
    if redacted:
        names = changes if isinstance(changes, Mapping) else entry.get("changed") or changes
        return [Change(str(name), None, None, shown=False) for name in sorted(names)], True
    return [
        Change(name, value.get("before"), value.get("after"))
        for name, value in sorted(changes.items())
        if isinstance(value, Mapping) and not str(name).startswith("_")
    ], False

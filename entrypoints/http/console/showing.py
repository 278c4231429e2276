"""How values read on a page: the templates' filters.

Values are shown as the API returns them (decimals as their exact text, JSON and lists compactly), null as
an em dash; times in UTC to the second; ids whole (a page is for reading and copying, not for guessing which
record a prefix meant). Every filter returns plain text: the templates escape it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

NULL = "—"


def value(item: Any) -> str:
    """A field's value as text (null: an em dash)."""
    if item is None:
        return NULL
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, dict | list):
        return orjson.dumps(item).decode()
    return str(item)


def when(text: Any) -> str:
    """An ISO time as ``2026-12-06 13:54:48 UTC`` (anything else as it is)."""
    moment = moment_of(text)
    return (
        value(text) if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    )


def moment_of(text: Any) -> datetime | None:
    """An ISO time (``Z`` or an offset) as an aware datetime; None if it is not one."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    if not isinstance(text, str):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def people(approvals: Any) -> list[str]:
    """Who approved: the views list ``{"approver", "at", "reason"}``, the command side plain names."""
    return [
        item.get("approver", "") if isinstance(item, dict) else str(item)
        for item in approvals or []
    ]


def words(items: Any) -> str:
    return ", ".join(value(item) for item in items or [])


FILTERS: dict[str, Callable[..., Any]] = {
    "value": value,
    "when": when,
    "people": people,
    "words": words,
}

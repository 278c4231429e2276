"""Custom validators the sales catalog (``tests.catalogs.SALES_CATALOG``) names."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def discount_within_total(record: dict[str, Any], principal: Any) -> list[tuple[str, str]]:
    total, discount = Decimal(record.get("total") or "0"), Decimal(record.get("discount") or "0")
    return [("discount", "the discount exceeds the total")] if discount > total else []


def weekend_needs_note(record: dict[str, Any], principal: Any) -> list[dict[str, str]]:
    if record.get("channel") == "weekend" and not record.get("note"):
        return [{"field": "note", "message": "a weekend order needs a note"}]
    return []


def explodes(record: dict[str, Any], principal: Any) -> list[str]:
    if record.get("channel") == "boom":
        int(record["title"])  # a validator's bug: Python's message quotes the title
    return []


def meddles(record: dict[str, Any], principal: Any) -> list[str]:
    """A validator that writes into the record it is shown: what is written must not change."""
    record["note"], record["total"] = "set by a validator", "0"
    return []

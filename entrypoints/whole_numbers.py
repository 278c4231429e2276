"""Whole numbers as a request writes them (a header, a query parameter, a cookie, a setting).

``int`` reads more than digits: spaces around, underscores between, and every script's digits (``"٣"``);
``str.isdigit`` admits "²", which ``int`` then refuses with a ``ValueError``. A whole number here is ASCII
digits alone, at most ``MAX_DIGITS`` of them (within a 64-bit column).
"""

from __future__ import annotations

MAX_DIGITS = 18


def whole_number(text: str | None) -> int | None:
    """``text`` as a whole number, or None when it is not one (or is None)."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        return None
    return int(text)

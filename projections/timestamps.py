"""One spelling of a moment for every read model's text columns: ISO-8601 in UTC with microseconds.

Text in that fixed-width form sorts and compares as time does, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


@lru_cache(maxsize=4_096)
def canonical_time(value: str | datetime) -> str:
    """Remembered: the events of one save share their time, and a catch-up spells thousands of them."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat(timespec="microseconds")

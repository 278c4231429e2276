"""One spelling of a moment for every read model's text columns: ISO-8601 in UTC with microseconds.

Text in that fixed-width form sorts and compares as time does, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime


def canonical_time(value: str | datetime) -> str:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).isoformat(timespec="microseconds")

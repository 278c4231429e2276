"""Where the relay keeps its place: one row per exchange in ``writ_relay_position``.

The table lives in the event store's database (the URL's schema on
PostgreSQL). ``position`` is the notification id of the last event the broker
confirmed (every event at or before it is on the bus); it only moves forward,
even if a stale relay saves late. ``published_at`` is when it last moved and
``holder`` the ``host:pid`` of the relay that holds the lease.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from infrastructure.bus.sql import Database

_CREATE = (
    "CREATE TABLE IF NOT EXISTS writ_relay_position ("
    "exchange TEXT PRIMARY KEY, position BIGINT NOT NULL, "
    "published_at TEXT, holder TEXT, updated_at TEXT)"
)


@dataclass(frozen=True)
class RelayPosition:
    exchange: str
    position: int
    published_at: str | None
    holder: str | None


class PositionTable:
    def __init__(self, database: Database, exchange: str) -> None:
        self.database = database
        self.exchange = exchange

    def ensure(self) -> None:
        seed = "INSERT INTO writ_relay_position (exchange, position) VALUES (?, 0) ON CONFLICT DO NOTHING"
        self.database.ensure(_CREATE, seed, params=[(), (self.exchange,)])

    def read(self) -> RelayPosition:
        with self.database.transaction() as tx:
            rows = tx.query(
                "SELECT position, published_at, holder FROM writ_relay_position WHERE exchange = ?",
                (self.exchange,),
            )
        position, published_at, holder = rows[0] if rows else (0, None, None)
        return RelayPosition(self.exchange, int(position), published_at, holder)

    def save(self, position: int) -> None:
        """Record that every event up to ``position`` is confirmed by the broker."""
        now = _now()
        with self.database.transaction() as tx:
            tx.execute(
                "UPDATE writ_relay_position SET position = ?, published_at = ?, updated_at = ? "
                "WHERE exchange = ? AND position < ?",
                (position, now, now, self.exchange, position),
            )

    def claim(self, holder: str) -> None:
        with self.database.transaction() as tx:
            tx.execute(
                "UPDATE writ_relay_position SET holder = ?, updated_at = ? WHERE exchange = ?",
                (holder, _now(), self.exchange),
            )


def _now() -> str:
    return datetime.now(UTC).isoformat()

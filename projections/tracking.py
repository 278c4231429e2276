"""The tracking table: where each projection's position lives, and how it moves.

``TrackingTable`` is mixed into ``ViewStore``: one row per projection name with
its position, when it last moved and which worker holds it. ``advance`` is the
fence that makes a batch apply exactly once: it moves the position only from the
value the worker expects, in the batch's own transaction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from psycopg import sql

from projections.errors import PositionMovedError
from projections.schema import TRACKING_TABLE

Cursor = Any


class TrackingTable(ABC):
    """Positions of the projections kept in one store."""

    _tracking_seen = False

    @abstractmethod
    def execute(self, cursor: Cursor, query: sql.Composable, params: Sequence[Any] = ()) -> Cursor: ...

    @abstractmethod
    def ident(self, name: str) -> sql.Composable:
        """A table identifier, schema-qualified where the database has schemas."""

    @abstractmethod
    def existing_columns(self, cursor: Cursor, table: str) -> set[str]:
        """Column names of a table; empty when it does not exist."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A write transaction on the worker's connection; commits on success."""

    @abstractmethod
    def reading(self) -> AbstractContextManager[Cursor]:
        """A cursor for queries (safe to use from several threads)."""


    def ensure_tracking(self, cursor: Cursor, name: str, *, reset: bool = False) -> None:
        table = self.ident(TRACKING_TABLE)
        if reset:
            self.forget(cursor, name)
        self.execute(cursor, sql.SQL(
            "INSERT INTO {} (name, position) VALUES (%s, 0) ON CONFLICT (name) DO NOTHING"
        ).format(table), (name,))

    def forget(self, cursor: Cursor, name: str) -> None:
        self.execute(cursor, sql.SQL("DELETE FROM {} WHERE name = %s").format(self.ident(TRACKING_TABLE)),
                     (name,))

    def position(self, cursor: Cursor, name: str, *, lock: bool = False) -> int:
        query = sql.SQL("SELECT position FROM {} WHERE name = %s").format(self.ident(TRACKING_TABLE))
        row = self.execute(cursor, query + self.row_lock if lock else query, (name,)).fetchone()
        return 0 if row is None else int(row[0])

    row_lock: sql.Composable = sql.SQL("")

    def has_tracking(self, cursor: Cursor) -> bool:
        """Whether a worker has created the tracking table (remembered once seen)."""
        if not self._tracking_seen:
            self._tracking_seen = bool(self.existing_columns(cursor, TRACKING_TABLE))
        return self._tracking_seen

    def reached(self, cursor: Cursor, name: str) -> int:
        """The tracked position for readers: 0 until a worker has created the tracking table."""
        return self.position(cursor, name) if self.has_tracking(cursor) else 0

    def advance(self, cursor: Cursor, name: str, expected: int, position: int) -> None:
        """Move ``name`` from ``expected`` to ``position``; raise if someone else moved it."""
        now = datetime.now(UTC).isoformat()
        self.execute(cursor, sql.SQL(
            "UPDATE {} SET position = %s, updated_at = %s WHERE name = %s AND position = %s"
        ).format(self.ident(TRACKING_TABLE)), (position, now, name, expected))
        if cursor.rowcount != 1:
            raise PositionMovedError(f"{name} is no longer at {expected}")

    def set_position(self, cursor: Cursor, name: str, position: int) -> None:
        self.execute(cursor, sql.SQL("UPDATE {} SET position = %s WHERE name = %s").format(
            self.ident(TRACKING_TABLE)), (position, name))

    def claim(self, name: str, worker: str) -> None:
        """Record which worker is active (shown by ``--status``)."""
        with self.transaction() as cursor:
            self.ensure_tracking(cursor, name)
            self.execute(cursor, sql.SQL("UPDATE {} SET worker = %s WHERE name = %s").format(
                self.ident(TRACKING_TABLE)), (worker, name))

    def tracking(self) -> list[tuple[str, int, str | None, str | None]]:
        with self.reading() as cursor:
            if not self.has_tracking(cursor):
                return []
            query = sql.SQL("SELECT name, position, updated_at, worker FROM {} ORDER BY name")
            return [tuple(r) for r in self.execute(cursor, query.format(self.ident(TRACKING_TABLE)))]

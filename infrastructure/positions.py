"""Named positions: where every log follower stands, one row per follower.

Projections and the relay both follow the notification log. Each keeps its
place in a ``writ_positions`` row in the database its work goes to (the views'
database for a projection, the event store's for the relay), so a batch's work
and its new position commit in one transaction. A row holds:

* ``position`` — the last notification id whose effects are committed;
* ``epoch`` — bumped each time a process takes the follower's lock; every
  write names the epoch it was claimed under, so a holder that lost its lock
  without noticing is fenced off (``FencedError``);
* ``holder``/``updated_at`` — who moves it and when it last moved;
* ``halted_at``/``halted_reason`` — an event the follower cannot handle stops
  it there, visible in ``--status``, until an operator sets it aside
  (``set_aside``, recorded in ``writ_set_aside`` with who and why) or the
  follower gets past it otherwise (the halt clears as the position passes it).

A follower also records the identity of the log it follows
(``infrastructure.log_identity``, in ``writ_followed_logs``): ``log_changed``
says when the log in the event store is not that one (or ends before the
follower's position), and ``restart`` puts the follower at the start of the
new one.

``advance`` moves a row only from the position its caller read (a fence in
itself: two writers cannot both apply one batch); ``advance_to`` only forward.
Earlier releases kept positions in ``writ_projection_tracking`` and
``writ_relay_position``; ``adopt`` carries such a row over once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from infrastructure.sql import SQL, P

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Tx

TABLE = "writ_positions"
SET_ASIDE_TABLE = "writ_set_aside"
FOLLOWED_TABLE = "writ_followed_logs"


class FencedError(Exception):
    """The follower's row moved on without us: another holder took over, or someone else applied
    the batch (internal: the worker reloads and carries on, or stands by)."""


@dataclass(frozen=True, slots=True)
class Position:
    name: str
    position: int
    epoch: int
    holder: str | None
    updated_at: str | None
    halted_at: int | None
    halted_reason: str | None


def now() -> str:
    return datetime.now(UTC).isoformat()


class Positions:
    """The ``writ_positions`` table of one database."""

    def __init__(self, backend: Backend) -> None:
        self.table = backend.table(TABLE)
        self.set_aside_table = backend.table(SET_ASIDE_TABLE)
        self.followed_table = backend.table(FOLLOWED_TABLE)
        self._backend = backend

    def create(self, tx: Tx) -> None:
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, position BIGINT NOT NULL DEFAULT 0, "
                "epoch BIGINT NOT NULL DEFAULT 0, holder TEXT, updated_at TEXT, halted_at BIGINT, halted_reason TEXT)"
            ).format(self.table)
        )
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (name TEXT NOT NULL, position BIGINT NOT NULL, reason TEXT NOT NULL, "
                "operator TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, position))"
            ).format(self.set_aside_table)
        )
        tx.execute(
            SQL(
                "CREATE TABLE IF NOT EXISTS {} (name TEXT PRIMARY KEY, identity TEXT NOT NULL)"
            ).format(self.followed_table)
        )

    def ensure(self, tx: Tx, name: str, *, start: int = 0) -> None:
        tx.execute(
            SQL(
                "INSERT INTO {} (name, position) VALUES ({}, {}) ON CONFLICT (name) DO NOTHING"
            ).format(self.table, P, P),
            (name, start),
        )

    def adopt(self, tx: Tx, name: str, legacy_table: str, key_column: str, key: str) -> None:
        """Carry a position over from an earlier release's table, once (when this row is still new)."""
        position = self.legacy(tx, legacy_table, key_column, key)
        if position is not None:
            tx.execute(
                SQL(
                    "UPDATE {} SET position = {} WHERE name = {} AND position = 0 AND epoch = 0"
                ).format(self.table, P, P),
                (position, name),
            )

    def legacy(self, tx: Tx, legacy_table: str, key_column: str, key: str) -> int | None:
        """The position an earlier release's table keeps for ``key``, if it has that table and row."""
        if not self._backend.has_table(tx, legacy_table):
            return None
        row = tx.one(
            SQL("SELECT position FROM {} WHERE {} = {}").format(
                self._backend.table(legacy_table), SQL(key_column), P
            ),
            (key,),
        )
        return None if row is None else int(row[0])

    def read(self, tx: Tx, name: str, *, lock: bool = False) -> Position:
        query = SQL(
            "SELECT name, position, epoch, holder, updated_at, halted_at, halted_reason "
            "FROM {} WHERE name = {}"
        ).format(self.table, P)
        if lock:
            query += self._backend.row_lock
        row = tx.one(query, (name,))
        return Position(name, 0, 0, None, None, None, None) if row is None else _position(row)

    def all(self, tx: Tx) -> list[Position]:
        rows = tx.query(
            SQL(
                "SELECT name, position, epoch, holder, updated_at, halted_at, halted_reason "
                "FROM {} ORDER BY name"
            ).format(self.table)
        )
        return [_position(row) for row in rows]

    def claim(self, tx: Tx, name: str, holder: str) -> int:
        """Record ``holder`` as the active follower and return its new epoch (fencing the last one)."""
        self.ensure(tx, name)
        tx.execute(
            SQL("UPDATE {} SET epoch = epoch + 1, holder = {} WHERE name = {}").format(
                self.table, P, P
            ),
            (holder, name),
        )
        return self.read(tx, name).epoch

    def advance(self, tx: Tx, name: str, epoch: int, expected: int, position: int) -> None:
        """Move from ``expected`` to ``position`` under ``epoch``; ``FencedError`` if the row moved on."""
        moved = tx.execute(
            SQL(
                "UPDATE {} SET position = {}, updated_at = {}, {} WHERE name = {} AND epoch = {} AND position = {}"
            ).format(self.table, P, P, _PASSED_HALT, P, P, P),
            (position, now(), position, position, name, epoch, expected),
        )
        if moved != 1:
            raise FencedError(f"{name} is no longer at {expected} under epoch {epoch}")

    def advance_to(self, tx: Tx, name: str, epoch: int, position: int) -> None:
        """Move forward to ``position`` (never back) under ``epoch``; ``FencedError`` if fenced off. The row is
        locked as it is read: a claim committed between the read and the update would otherwise go unseen."""
        current = self.read(tx, name, lock=True)
        if current.epoch != epoch:
            raise FencedError(f"{name} is held under epoch {current.epoch}, not {epoch}")
        tx.execute(
            SQL(
                "UPDATE {} SET position = {}, updated_at = {}, {} WHERE name = {} AND position < {}"
            ).format(self.table, P, P, _PASSED_HALT, P, P),
            (position, now(), position, position, name, position),
        )

    def reset(self, tx: Tx, name: str, position: int = 0) -> None:
        tx.execute(
            SQL(
                "UPDATE {} SET position = {}, updated_at = {}, halted_at = NULL, halted_reason = NULL "
                "WHERE name = {}"
            ).format(self.table, P, P, P),
            (position, now(), name),
        )

    def forget(self, tx: Tx, name: str) -> None:
        tx.execute(SQL("DELETE FROM {} WHERE name = {}").format(self.table, P), (name,))

    def halt(self, tx: Tx, name: str, position: int, reason: str) -> None:
        """Record that ``name`` stopped before ``position``, which it cannot handle."""
        tx.execute(
            SQL("UPDATE {} SET halted_at = {}, halted_reason = {} WHERE name = {}").format(
                self.table, P, P, P
            ),
            (position, reason[:2000], name),
        )

    def clear_halt(self, tx: Tx, name: str) -> None:
        tx.execute(
            SQL("UPDATE {} SET halted_at = NULL, halted_reason = NULL WHERE name = {}").format(
                self.table, P
            ),
            (name,),
        )

    def set_aside(self, tx: Tx, name: str, position: int, reason: str, operator: str) -> None:
        """An operator's decision to skip the event at ``position`` for ``name`` (kept, with who and why)."""
        tx.execute(
            SQL(
                "INSERT INTO {} (name, position, reason, operator, at) VALUES ({}, {}, {}, {}, {}) "
                "ON CONFLICT (name, position) DO NOTHING"
            ).format(self.set_aside_table, P, P, P, P, P),
            (name, position, reason, operator, now()),
        )
        self.clear_halt(tx, name)

    def followed_log(self, tx: Tx, name: str) -> str | None:
        """The identity of the log ``name`` follows; None before it has recorded one (or before the table)."""
        if not self._backend.existing_columns(tx, FOLLOWED_TABLE):
            return None
        row = tx.one(
            SQL("SELECT identity FROM {} WHERE name = {}").format(self.followed_table, P), (name,)
        )
        return None if row is None else str(row[0])

    def log_changed(self, tx: Tx, name: str, identity: str, head: int) -> str | None:
        """Why ``name`` does not follow the log ``identity`` (whose last position is ``head``), or None when it
        does (a follower that named no log yet, from before identities, adopts this one)."""
        followed, position = self.followed_log(tx, name), self.read(tx, name).position
        if followed is not None and followed != identity:
            return f"it followed log {followed}, and the event store holds log {identity}"
        if position > head:
            return f"it stands at position {position}, past the log's last position {head}"
        if followed is None:
            self.follow(tx, name, identity)
        return None

    def restart(self, tx: Tx, name: str, identity: str) -> None:
        """Put ``name`` at the start of the log ``identity``: position 0, no halt, none of the old log's
        set-asides (their positions named events of that log)."""
        self.reset(tx, name, 0)
        tx.execute(SQL("DELETE FROM {} WHERE name = {}").format(self.set_aside_table, P), (name,))
        self.follow(tx, name, identity)

    def follow(self, tx: Tx, name: str, identity: str) -> None:
        tx.execute(
            SQL(
                "INSERT INTO {} (name, identity) VALUES ({}, {}) ON CONFLICT (name) DO UPDATE SET "
                "identity = excluded.identity"
            ).format(self.followed_table, P, P),
            (name, identity),
        )

    def set_asides(self, tx: Tx, name: str) -> dict[int, tuple[str, str, str]]:
        rows = tx.query(
            SQL("SELECT position, reason, operator, at FROM {} WHERE name = {}").format(
                self.set_aside_table, P
            ),
            (name,),
        )
        return {int(position): (reason, operator, at) for position, reason, operator, at in rows}


_PASSED_HALT = SQL(
    "halted_reason = CASE WHEN halted_at <= {} THEN NULL ELSE halted_reason END, "
    "halted_at = CASE WHEN halted_at <= {} THEN NULL ELSE halted_at END"
).format(P, P)
"""A halt clears once the follower has moved past the event it halted at (it was set aside, or reads now)."""


def _position(row: tuple[Any, ...]) -> Position:
    name, position, epoch, holder, updated_at, halted_at, halted_reason = row
    return Position(
        name,
        int(position),
        int(epoch),
        holder,
        updated_at,
        None if halted_at is None else int(halted_at),
        halted_reason,
    )

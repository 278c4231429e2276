"""Erasures a purge could not finish at once: recorded as pending, reported, and finished later.

After a purge commits, the bytes it destroyed must leave the database files
(``infrastructure.shredding``): the key partitions and view tables it touched
are rewritten on PostgreSQL, the write-ahead log is truncated on SQLite. That
cannot always happen at once. On PostgreSQL, while a transaction older than
the purge is open, its snapshot may still see the old row versions, and
``VACUUM FULL`` copies them into the new files (a transaction holding a lock
on the table makes the rewrite wait, then give up). On SQLite, while a reader
holds the write-ahead log, the log cannot be truncated, and it holds copies
of the pages the purged rows were on.

Such an erasure is never reported done: it is recorded in ``writ_erasures``
(in the events' database: the tables, whether they are the views', since
when, why, and on PostgreSQL the transaction horizon it waits for), reported
by ``writ keys status`` and ``/healthz``, and finished once nothing older
than the purge is open, by whichever comes first: the next purge, the
projection worker (it looks every few seconds while it waits for events), or
``writ keys compact``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from domain.ids import new_id
from infrastructure.sql import SQL, Identifier, P

if TYPE_CHECKING:
    from infrastructure.database import Database
    from infrastructure.wakeup import Wakeup

log = logging.getLogger("writ.shredding")

TABLE = "writ_erasures"
COLUMNS = (
    "(id TEXT PRIMARY KEY, tables TEXT NOT NULL, in_views INTEGER NOT NULL, horizon BIGINT, since TEXT NOT NULL, "
    "reason TEXT NOT NULL)"
)
"""The pending erasures' table, made with the store (so a runtime role that may not make tables records them)."""
NOT_THE_OWNER = "this session's role may not rewrite"
"""How a backend's reason begins when the session may not rewrite the tables at all (it is not their owner):
no other pending erasure is tried by that session either (each try would cost a connection, every purge)."""


@dataclass(frozen=True)
class PendingErasure:
    id: str
    tables: list[str]
    views: bool
    """The tables are in the views' database (SQLite: the views file)."""
    horizon: int | None
    """PostgreSQL: the first transaction id after the purge; a snapshot older than it may still see the bytes."""
    since: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "tables": self.tables,
            "views": self.views,
            "reason": self.reason,
        }


class ErasingBackend(Protocol):
    """What erasing needs of the backend (``infrastructure.backend.Backend``, which keeps its erasures here: so
    typed, this module need not import it)."""

    def database(self, *, views: bool = False) -> Database: ...
    def table(self, name: str) -> Identifier: ...
    def table_creation(self) -> AbstractContextManager[None]: ...
    def has_table(self, tx: Any, table: str) -> bool: ...
    def existing_columns(self, tx: Any, table: str) -> set[str]: ...
    def erasure_horizon(self) -> int | None: ...
    def erase_now(
        self, tables: list[str], *, views: bool, horizon: int | None, retry: bool = False
    ) -> str | None: ...


class Erasures:
    """The pending erasures of one backend's database, and the rewrites that finish them."""

    def __init__(self, backend: ErasingBackend) -> None:
        self.backend = backend
        self.table = backend.table(TABLE)

    def erase(self, tables: list[str], *, views: bool) -> None:
        """Make what purges deleted from ``tables`` leave the files now, or record the erasure pending; then finish
        earlier ones whose horizon has passed. Never raises: the purge has committed."""
        try:
            self.finish()
            horizon = self.backend.erasure_horizon()
            reason = self.backend.erase_now(tables, views=views, horizon=horizon)
            if reason is not None:
                self._record(tables, views, horizon, reason)
        except Exception as exc:
            # logged: the purge stands, and the next purge or `writ keys compact` retries
            log.warning(
                "purged bytes may stay in %s until `writ keys compact` runs: %s",
                ", ".join(tables),
                exc,
            )

    def pending(self) -> list[PendingErasure]:
        database = self.backend.database()
        try:
            with database.reading() as tx:
                if not self.backend.existing_columns(tx, TABLE):
                    return []
                rows = tx.query(
                    SQL(
                        "SELECT id, tables, in_views, horizon, since, reason FROM {} ORDER BY since"
                    ).format(self.table)
                )
        finally:
            database.close()
        return [
            PendingErasure(
                row[0],
                orjson.loads(row[1]),
                bool(row[2]),
                None if row[3] is None else int(row[3]),
                row[4],
                row[5],
            )
            for row in rows
        ]

    def finish(self) -> list[PendingErasure]:
        """Rewrite what is pending where nothing older than its purge is open any more; what stays pending."""
        left: list[PendingErasure] = []
        pending = self.pending()
        for index, erasure in enumerate(pending):
            reason = self.backend.erase_now(
                erasure.tables, views=erasure.views, horizon=erasure.horizon, retry=True
            )
            if reason is not None and reason.startswith(NOT_THE_OWNER):
                left += pending[index:]
                break
            if reason is None:
                self._forget(erasure)
                log.info(
                    "pending erasure since %s finished: %s",
                    erasure.since,
                    ", ".join(erasure.tables),
                )
            else:
                left.append(erasure)
        return left

    def _record(self, tables: list[str], views: bool, horizon: int | None, reason: str) -> None:
        database = self.backend.database()
        try:
            with database.reading() as tx:
                made = self.backend.has_table(tx, TABLE)
            # made with the store; a store from before that makes it here (a runtime role could not)
            with (
                nullcontext() if made else self.backend.table_creation(),
                database.transaction() as tx,
            ):
                if not made:
                    tx.execute(SQL("CREATE TABLE IF NOT EXISTS {} " + COLUMNS).format(self.table))
                tx.execute(
                    SQL(
                        "INSERT INTO {} (id, tables, in_views, horizon, since, reason) "
                        "VALUES ({}, {}, {}, {}, {}, {})"
                    ).format(self.table, P, P, P, P, P, P),
                    (
                        new_id().hex,
                        orjson.dumps(tables).decode(),
                        int(views),
                        horizon,
                        datetime.now(UTC).isoformat(),
                        reason[:2000],
                    ),
                )
        finally:
            database.close()
        log.warning(
            "erasure pending (see `writ keys status`): purged bytes stay in %s for now: %s",
            ", ".join(tables) or "the write-ahead log",
            reason,
        )

    def _forget(self, erasure: PendingErasure) -> None:
        database = self.backend.database()
        try:
            with database.transaction() as tx:
                tx.execute(SQL("DELETE FROM {} WHERE id = {}").format(self.table, P), (erasure.id,))
        finally:
            database.close()


class IdleWait:
    """The worker's wait between batches, which also finishes the erasures purges left pending (an older
    transaction was open: ``infrastructure.erasures``), at most every ``every`` seconds: the projection worker
    is the one process a PostgreSQL deployment always runs."""

    def __init__(
        self, wakeup: Wakeup, backend: ErasingBackend, every: float, say: Callable[[str], None]
    ) -> None:
        self.wakeup, self.backend, self.every, self.say = wakeup, backend, every, say
        self.checked = 0.0
        self.left = 0

    def __call__(self, timeout: float) -> None:
        self.wakeup.wait(timeout)
        if time.monotonic() - self.checked < self.every:
            return
        self.checked = time.monotonic()
        try:
            left = Erasures(self.backend).finish()
        except Exception as exc:  # the next look tries again; projecting goes on
            self.say(f"pending erasures not finished yet: {exc}")
            return
        if left and len(left) != self.left:
            self.say(f"{len(left)} erasures still pending: {left[0].reason}")
        self.left = len(left)

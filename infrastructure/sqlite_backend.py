"""The embedded default: SQLite files, file locks, and a short poll instead of NOTIFY.

The events live in the URL's file; Writ's views (and their positions) in
``<events>-views.db`` beside it, so a projection's write transactions never
contend with the command side's lock and readers of the views never touch the
events file. Writ's own connections are WAL-mode and autocommit, with explicit
``BEGIN IMMEDIATE`` transactions (the write lock up front: no deadlock on
upgrade). The first connections to a fresh file are serialized by a file lock
beside it, because switching a file to WAL fails at once ("database is
locked") while another connection opens it.
"""

from __future__ import annotations

import fcntl
import re
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from infrastructure.backend import Backend
from infrastructure.config import SQLiteConfig
from infrastructure.database import Database, Tx
from infrastructure.locks import FileLock, WorkerLock
from infrastructure.shredding import truncate_wal
from infrastructure.sql import SQL, SQLITE, Composable, Identifier, P
from infrastructure.wakeup import PollingWakeup, Wakeup


def views_path(events_path: str) -> str:
    """``writ.db`` -> ``writ-views.db``: the views file beside the events file."""
    path = Path(events_path)
    return str(path.with_name(f"{path.stem}-views{path.suffix or '.db'}"))


@contextmanager
def sqlite_opening(path: str) -> Iterator[None]:
    """Hold ``<path>.start-lock`` while a connection opens the SQLite file (and may switch it to WAL,
    which does not wait for other connections: it fails with "database is locked")."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.start-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A WAL-mode, autocommit connection to a SQLite file Writ's own code uses (views, bus tables)."""
    with sqlite_opening(path):
        connection = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False, timeout=30
        )
        connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    # a deleted view row or key is zeroed, not only unlinked
    connection.execute("PRAGMA secure_delete=ON")
    return connection


class SQLiteDatabase(Database):
    begin_sql = "BEGIN IMMEDIATE"

    def __init__(self, path: str) -> None:
        super().__init__(SQLITE)
        self.path = path

    def connect(self) -> sqlite3.Connection:
        return connect_sqlite(self.path)


class SQLiteBackend(Backend):
    dialect = SQLITE
    embedded = True
    transient = (sqlite3.OperationalError,)

    def __init__(self, config: SQLiteConfig) -> None:
        super().__init__(config)
        self.path = config.path
        self.views_path = views_path(config.path)

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def master_key_beside(self) -> str | None:
        return self.path

    def uuid_param(self, value: UUID) -> str:
        return value.hex

    def tables_like(self, tx: Tx, prefix: str) -> list[str]:
        query = "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? ESCAPE '\\'"
        return [
            row[0]
            for row in tx.query(query, (prefix.replace("_", "\\_") + "%",))
            if row[0].startswith(prefix)
        ]

    def among_ids(self, column: str, ids: list[UUID]) -> tuple[Composable, list[Any]]:
        return (
            SQL("{} IN (SELECT value FROM json_each({}))").format(Identifier(column), P),
            [orjson.dumps([self.uuid_param(rid) for rid in ids]).decode()],
        )

    def erasure_horizon(self) -> None:
        """Nothing to wait for but the readers of the write-ahead log (``erase_now`` tries again)."""

    def erase_now(
        self, tables: list[str], *, views: bool, horizon: int | None, retry: bool = False
    ) -> str | None:
        """Deleted rows are zeroed as they go (``secure_delete``); what remains is the write-ahead log, truncated
        unless a reader still holds it."""
        path = self.views_path if views else self.path
        return None if truncate_wal(path) else f"a reader holds the write-ahead log of {path}"

    @contextmanager
    def schema_creation(self) -> Iterator[None]:
        with sqlite_opening(self.path):
            yield

    def table_creation(self) -> AbstractContextManager[None]:
        """Nothing to hold: Writ's transactions begin ``IMMEDIATE``, which serializes them on the file, DDL
        included (and taking ``schema_creation`` here would block a connection opened inside it)."""
        return nullcontext()

    def database(self, *, views: bool = False) -> SQLiteDatabase:
        return SQLiteDatabase(self.views_path if views else self.path)

    def table(self, name: str) -> Identifier:
        return Identifier(name)

    def existing_columns(self, tx: Tx, table: str) -> set[str]:
        return {row[0] for row in tx.query("SELECT name FROM pragma_table_info(?)", (table,))}

    def has_table(self, tx: Tx, table: str) -> bool:
        return bool(
            tx.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        )

    def is_missing_table(self, error: BaseException) -> bool:
        missing = ("no such table", "no such column")
        return isinstance(error, sqlite3.OperationalError) and str(error).startswith(missing)

    def worker_lock(self, name: str) -> WorkerLock:
        return FileLock(name, f"{self.path}.{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.lock")

    def wakeup(self, channel: str) -> Wakeup:
        return PollingWakeup()

    def notify(self, tx: Any, channel: str) -> None:
        """Waiters poll on SQLite: nothing to send."""

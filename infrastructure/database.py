"""Explicit transactions on Writ's own tables, on either database.

A ``Database`` holds a writing connection (used by one thread at a time, in
explicit transactions) and reads on a second connection (or a pool), so a
reader never waits behind a writer's batch. Each connection is only ever used
under its own lock, closing it included: ``close`` waits for the thread using
it to finish, so a part that closes a shared ``Database`` (a worker's, the
vault's) never pulls a connection from under another thread's statement (on
SQLite that was a segmentation fault), and the next use reconnects. ``Tx`` runs statements composed
with ``infrastructure.sql`` and rendered by the backend's dialect; a plain
string is read as a statement with ``?`` parameter marks (the paramstyle of a
subscriber's handler: ``tx.execute("INSERT INTO shipped (id) VALUES (?)",
(event.record_id,))`` runs on SQLite and PostgreSQL alike). The backend
supplies the connections (``infrastructure.sqlite_backend``,
``infrastructure.postgres_backend``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from uuid import UUID

from infrastructure.sql import SQL, Composable, Dialect

Params = Sequence[Any]
Statement = Composable | str


INSUFFICIENT_PRIVILEGE = "42501"
"""PostgreSQL's SQLSTATE for a privilege the session's role lacks (a table, a schema, a function)."""


def privilege_refused(error: BaseException) -> bool:
    """The database refused the session's role a privilege: a grant is missing (docs/operations.md lists what each
    role needs); the driver's error itself, or one it caused (the event store's library raises its own
    ``PersistenceError`` from it). Only PostgreSQL has roles; a SQLite file the process may not write fails as
    ``sqlite3.OperationalError``, which its backend counts as unavailable (``Backend.transient``)."""
    found: BaseException | None = error
    for _ in range(8):  # a chain of causes (``raise ... from``), not a loop
        if found is None:
            return False
        if getattr(found, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            return True
        found = found.__cause__
    return False


def column_uuid(value: Any) -> UUID:
    """A UUID column's value as either database returns it (PostgreSQL: a ``UUID``; SQLite: its text)."""
    return value if isinstance(value, UUID) else UUID(str(value))


class Tx:
    """One open transaction (or read): ``execute`` for writes, ``query`` for reads, ``savepoint`` to isolate."""

    def __init__(self, cursor: Any, dialect: Dialect) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self._savepoints = 0

    def render(self, statement: Statement) -> str:
        return (SQL.qmark(statement) if isinstance(statement, str) else statement).render(
            self.dialect
        )

    def execute(self, statement: Statement, params: Params = ()) -> int:
        self.cursor.execute(self.render(statement), tuple(params))
        return int(self.cursor.rowcount)

    def query(self, statement: Statement, params: Params = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(self.render(statement), tuple(params))
        return [tuple(row) for row in self.cursor.fetchall()]

    def one(self, statement: Statement, params: Params = ()) -> tuple[Any, ...] | None:
        rows = self.query(statement, params)
        return rows[0] if rows else None

    def executemany(self, statement: Statement, rows: Sequence[Params]) -> None:
        self.cursor.executemany(self.render(statement), rows)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only this block's work when it raises; the transaction goes on."""
        self._savepoints += 1
        name = f"writ_sp_{self._savepoints}"
        self.cursor.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.cursor.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.cursor.execute(f"RELEASE SAVEPOINT {name}")


class Database(ABC):
    """Writ's tables in one database: explicit write transactions and separate reads."""

    begin_sql = "BEGIN"

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._writer: Any = None
        self._reader: Any = None

    @abstractmethod
    def connect(self) -> Any:
        """A new DB-API connection in autocommit mode (transactions are explicit)."""

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit when the block ends, roll back when it raises."""
        with self._write_lock:
            if self._writer is None:
                self._writer = self.connect()
            cursor = self._writer.cursor()
            try:
                cursor.execute(self.begin_sql)
                yield Tx(cursor, self.dialect)
                cursor.execute("COMMIT")
            except BaseException:
                self._abandon(cursor)
                raise

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """Statements outside any write transaction, on the reading connection."""
        with self._read_lock:
            if self._reader is None:
                self._reader = self.connect()
            try:
                yield Tx(self._reader.cursor(), self.dialect)
            except BaseException:
                self._drop_reader_if_broken()
                raise

    def ensure(self, *statements: Statement, params: Sequence[Params] = ()) -> None:
        """Run idempotent DDL (and seed rows); retried once, since concurrent
        ``CREATE TABLE IF NOT EXISTS`` can still collide on PostgreSQL."""
        for attempt in (1, 2):
            try:
                with self.transaction() as tx:
                    for index, statement in enumerate(statements):
                        tx.execute(statement, params[index] if index < len(params) else ())
                return
            except Exception:
                if attempt == 2:
                    raise

    def _abandon(self, cursor: Any) -> None:
        try:
            cursor.execute("ROLLBACK")
        except Exception:  # the connection is gone: start afresh next time
            self._close_writer()

    def _drop_reader_if_broken(self) -> None:
        if self._reader is not None and getattr(self._reader, "closed", False):
            self._reader = None

    def _close_writer(self) -> None:
        connection, self._writer = self._writer, None
        if connection is not None:
            with suppress(Exception):
                connection.close()

    def close(self) -> None:
        """Close both connections once no thread is using them (a later use opens them again)."""
        with self._write_lock:
            self._close_writer()
        with self._read_lock:
            connection, self._reader = self._reader, None
        if connection is not None:
            with suppress(Exception):
                connection.close()

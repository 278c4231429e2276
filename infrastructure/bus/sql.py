"""The bus's own tables: one small SQL port with one narrow subclass per backend.

``Database`` runs explicit transactions on one connection (the relay's position
table, the subscriber's inbox and the handler's own work). SQL is written once,
with ``?`` placeholders; the PostgreSQL subclass translates them to ``%s``, so
a ``?`` must not appear inside a literal. Connections come from the same URL as
the event store (``writ_env``); on PostgreSQL the tables live in the URL's
schema (``search_path``). Each backend also supplies the relay's ``Lease``.
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import psycopg

from infrastructure.bus.lease import Lease, PostgresLease, SQLiteLease
from infrastructure.settings import connect_sqlite, postgres_conninfo, writ_env

Params = Sequence[Any]


class Tx:
    """One open transaction: ``execute`` for writes, ``query`` for reads, ``savepoint`` to isolate."""

    def __init__(self, cursor: Any, translate: Any) -> None:
        self._cursor = cursor
        self._translate = translate

    def execute(self, sql: str, params: Params = ()) -> int:
        self._cursor.execute(self._translate(sql), tuple(params))
        return int(self._cursor.rowcount)

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._translate(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo only this block's work when it raises; the transaction goes on."""
        self._cursor.execute("SAVEPOINT writ_bus")
        try:
            yield
        except BaseException:
            self._cursor.execute("ROLLBACK TO SAVEPOINT writ_bus")
            self._cursor.execute("RELEASE SAVEPOINT writ_bus")
            raise
        self._cursor.execute("RELEASE SAVEPOINT writ_bus")


class Database(ABC):
    """A single connection, used from one thread at a time, in explicit transactions."""

    begin_sql = "BEGIN"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None

    @abstractmethod
    def _connect(self) -> Any:
        """A new DB-API connection in autocommit mode (transactions are explicit)."""

    @abstractmethod
    def lease(self, name: str, channel: str) -> Lease:
        """The exclusive lease named ``name``, woken by inserts announced on ``channel``."""

    def _translate(self, sql: str) -> str:
        return sql

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        """Commit when the block ends, roll back when it raises."""
        with self._lock:
            if self._connection is None:
                self._connection = self._connect()
            cursor = self._connection.cursor()
            try:
                cursor.execute(self.begin_sql)
                yield Tx(cursor, self._translate)
                cursor.execute("COMMIT")
            except BaseException:
                self._abandon(cursor)
                raise

    def ensure(self, *statements: str, params: Sequence[Params] = ()) -> None:
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
            self.close()

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with suppress(Exception):
                connection.close()


class SQLiteDatabase(Database):
    begin_sql = "BEGIN IMMEDIATE"  # take the write lock up front: no deadlock on upgrade

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def _connect(self) -> sqlite3.Connection:
        return connect_sqlite(self.path)

    def lease(self, name: str, channel: str) -> Lease:
        return SQLiteLease(Path(f"{self.path}.{name}.lock"))


class PostgresDatabase(Database):
    def __init__(self, conninfo: dict[str, Any], schema: str) -> None:
        super().__init__()
        self.conninfo = conninfo
        self.schema = schema

    def _connect(self) -> psycopg.Connection[Any]:
        options = f"{self.conninfo.get('options', '')} -c search_path={self.schema}".strip()
        return psycopg.connect(**{**self.conninfo, "options": options}, autocommit=True)

    def _translate(self, sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    def lease(self, name: str, channel: str) -> Lease:
        return PostgresLease(self.conninfo, f"{self.schema}:{name}", channel)


def open_database(url: str | None = None) -> Database:
    """The bus's SQL port on the database a Writ URL names."""
    env = writ_env(url, create_tables=False)
    if "SQLITE_DBNAME" in env:
        return SQLiteDatabase(env["SQLITE_DBNAME"])
    return PostgresDatabase(postgres_conninfo(env), env["POSTGRES_SCHEMA"])

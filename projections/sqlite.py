"""The SQLite view store: a views file beside the events file, polled briefly.

Views and the tracking table live in ``<events>-views.db`` (see
``projections.schema``), in WAL mode, written in ``BEGIN IMMEDIATE``
transactions. SQLite has no column types to speak of, so values are stored in
forms that compare correctly as text: datetimes as fixed-width ISO in UTC,
decimals as their exact text (compared as ``CAST(... AS REAL)``), JSON as
orjson text. One active worker per views file is ensured by an OS file lock
(``flock``), released when the process dies. SQLite has no NOTIFY: the worker
and ``wait_position`` poll every few milliseconds.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from psycopg import sql

from infrastructure.settings import connect_sqlite
from projections.store import Codec, Cursor, ViewStore, nullable

POLL_SECONDS = 0.005

_TYPES = {"int": "INTEGER", "bool": "INTEGER"}


def _canonical_time(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).isoformat(timespec="microseconds")


def _zulu(value: str) -> str:
    return datetime.fromisoformat(value).isoformat().replace("+00:00", "Z")


_ENCODERS: dict[str, Codec] = {
    "bool": int, "decimal": str, "datetime": _canonical_time, "timestamp": _canonical_time,
    "uuid": lambda v: str(v if isinstance(v, UUID) else UUID(str(v))),
    "json": lambda v: orjson.dumps(v).decode(), "list": lambda v: orjson.dumps(v).decode(),
}
_DECODERS: dict[str, Codec] = {
    "bool": bool, "datetime": _zulu, "timestamp": lambda v: datetime.fromisoformat(v).isoformat(),
    "json": orjson.loads, "list": orjson.loads,
}


def views_path(events_path: str) -> str:
    """``writ.db`` -> ``writ-views.db``: the views file beside the events file."""
    path = Path(events_path)
    return str(path.with_name(f"{path.stem}-views{path.suffix or '.db'}"))


class SQLiteViewStore(ViewStore):
    """Views in a SQLite file next to the events file."""

    transient = (sqlite3.OperationalError,)

    def __init__(self, catalog: Any, events_path: str) -> None:
        super().__init__(catalog)
        self.path = views_path(events_path)
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._lock_fds: dict[str, int] = {}

    def _connect(self) -> sqlite3.Connection:
        conn = connect_sqlite(self.path)
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        if self._writer is None:
            self._writer = self._connect()
        cursor = self._writer.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield cursor
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        with self._read_lock:
            if self._reader is None:
                self._reader = self._connect()
            yield self._reader.cursor()

    def ident(self, name: str) -> sql.Composable:
        return sql.Identifier(name)

    def render(self, query: sql.Composable) -> Any:
        # Identifiers come from catalog names (letters, digits, "_"), so "%s" only marks parameters,
        # and a double quote only quotes an identifier: it becomes a backtick, which SQLite never
        # reads as a string (a "missing_column" in double quotes would silently be the text).
        return query.as_string(None).replace("%s", "?").replace('"', "`")

    def column_type(self, kind: str) -> str:
        return _TYPES.get(kind, "TEXT")

    def encoder(self, kind: str) -> Codec:
        return nullable(_ENCODERS.get(kind))

    def decoder(self, kind: str) -> Codec:
        return nullable(_DECODERS.get(kind))

    def comparable(self, column: sql.Composable, kind: str) -> sql.Composable:
        if kind == "decimal":
            return sql.SQL("CAST({} AS REAL)").format(column)
        return column

    def order_term(self, column: sql.Composable, descending: bool, *, nullable: bool) -> sql.Composable:
        # SQLite puts NULLs first ascending: say where they go (only where there can be any, so the
        # ``id`` order still reads the primary key as it is).
        if not nullable:
            return super().order_term(column, descending, nullable=nullable)
        return sql.SQL("{} DESC NULLS FIRST" if descending else "{} ASC NULLS LAST").format(column)

    def is_view_missing(self, error: BaseException) -> bool:
        missing = ("no such table", "no such column")
        return isinstance(error, sqlite3.OperationalError) and str(error).startswith(missing)

    def existing_columns(self, cursor: Cursor, table: str) -> set[str]:
        cursor.execute("SELECT name FROM pragma_table_info(?)", (table,))
        return {row[0] for row in cursor.fetchall()}

    def in_list(self, column: sql.Composable, mark: sql.Composable,
                values: Sequence[Any]) -> tuple[sql.Composable, list[Any]]:
        marks = sql.SQL(", ").join([mark] * len(values))
        return sql.SQL("{} IN ({})").format(column, marks), list(values)

    def contains_text(self, column: sql.Composable, text: str) -> tuple[sql.Composable, list[Any]]:
        return sql.SQL("instr({}, %s) > 0").format(column), [text]

    def contains_element(self, column: sql.Composable, element: Any) -> tuple[sql.Composable, list[Any]]:
        return sql.SQL("EXISTS (SELECT 1 FROM json_each({}) WHERE value = %s)").format(column), [element]

    def try_lock(self, name: str) -> bool:
        fd = self._lock_fds.get(name)
        if fd is None:
            fd = self._lock_fds[name] = os.open(f"{self.path}.{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release_lock(self, name: str) -> None:
        if name in self._lock_fds:
            fcntl.flock(self._lock_fds[name], fcntl.LOCK_UN)

    def start_listening(self) -> None:
        """SQLite has no NOTIFY: ``wait_for_events`` polls."""

    def announce(self, cursor: Cursor, name: str, position: int) -> None:
        """Readers poll the tracking table; nothing to send."""

    def wait_for_events(self, timeout: float) -> None:
        time.sleep(min(timeout, POLL_SECONDS * 2))

    def wait_position(self, name: str, position: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while True:
            with self.reading() as cursor:
                seen = self.reached(cursor, name)
            if seen >= position or time.monotonic() >= deadline:
                return seen
            time.sleep(POLL_SECONDS)

    def close(self) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                conn.close()
        self._writer = self._reader = None
        for fd in self._lock_fds.values():
            os.close(fd)
        self._lock_fds.clear()

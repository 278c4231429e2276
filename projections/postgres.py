"""The PostgreSQL view store: typed columns, advisory lock, LISTEN/NOTIFY.

Views live in the events' schema (see ``projections.schema``). The worker keeps
one session that holds the advisory lock and writes the batches, so losing that
session loses both at once; a second session LISTENs on the events channel
(the library NOTIFYs ``writ_events`` on every insert) to wake the worker without
polling. Each batch's transaction also ``pg_notify``s ``writ_projection`` with
the new position, delivered on commit, which is what ``wait_position`` (and so
read-your-writes) listens for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from time import monotonic
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool

from projections.store import Codec, Cursor, Layout, ViewStore, nullable

PROJECTED_CHANNEL = "writ_projection"

_TYPES = {
    "str": "TEXT", "int": "BIGINT", "decimal": "NUMERIC", "bool": "BOOLEAN", "datetime": "TIMESTAMPTZ",
    "timestamp": "TIMESTAMPTZ", "date": "DATE", "uuid": "UUID", "json": "JSONB", "list": "JSONB",
}


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _zulu(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_ENCODERS: dict[str, Codec] = {
    "decimal": lambda v: Decimal(str(v)), "datetime": datetime.fromisoformat,
    "timestamp": datetime.fromisoformat, "date": date.fromisoformat, "uuid": _uuid,
    "json": Jsonb, "list": Jsonb,
}
_DECODERS: dict[str, Codec] = {
    "decimal": str, "datetime": _zulu, "timestamp": lambda v: v.astimezone(UTC).isoformat(),
    "date": date.isoformat, "uuid": str,
}


def _configure(conn: psycopg.Connection[Any]) -> None:
    set_json_dumps(lambda obj: orjson.dumps(obj).decode(), context=conn)
    set_json_loads(orjson.loads, context=conn)
    conn.execute("SET TIME ZONE 'UTC'")


def _copy(cursor: Cursor, table: sql.Composable, columns: list[str], rows: list[list[Any]]) -> None:
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
        for row in rows:
            copy.write_row(row)


class PostgresViewStore(ViewStore):
    """Views in the events' PostgreSQL schema."""

    transient = (psycopg.OperationalError, psycopg.InterfaceError)
    row_lock = sql.SQL(" FOR UPDATE")

    def __init__(self, catalog: Any, conninfo: str, schema: str, events_table: str) -> None:
        super().__init__(catalog)
        self.conninfo, self.schema, self.events_table = conninfo, schema, events_table
        self._writer: psycopg.Connection[Any] | None = None
        self._listener: psycopg.Connection[Any] | None = None
        self._pool: ConnectionPool[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.conninfo, autocommit=True)
        _configure(conn)
        return conn

    @property
    def writer(self) -> psycopg.Connection[Any]:
        if self._writer is None or self._writer.closed:
            self._writer = self._connect()
        return self._writer

    @property
    def pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            self._pool = ConnectionPool(self.conninfo, min_size=1, max_size=8, open=True,
                                        kwargs={"autocommit": True}, configure=_configure)
        return self._pool

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self.writer
        with conn.transaction(), conn.cursor() as cursor:
            yield cursor

    @contextmanager
    def reading(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.cursor() as cursor:
            yield cursor

    def ident(self, name: str) -> sql.Composable:
        return sql.Identifier(self.schema, name)

    def render(self, query: sql.Composable) -> Any:
        return query

    def column_type(self, kind: str) -> str:
        return _TYPES[kind]

    def encoder(self, kind: str) -> Codec:
        return nullable(_ENCODERS.get(kind))

    def decoder(self, kind: str) -> Codec:
        return nullable(_DECODERS.get(kind))

    def row_encoder(self, kind: str) -> Codec | None:
        # Rows travel by COPY, whose text format PostgreSQL parses per column type: the JSON-native
        # strings (ISO times, exact decimals, uuids) go as they are; only JSON needs encoding.
        if kind in ("json", "list"):
            return nullable(lambda v: orjson.dumps(v).decode())
        return None

    def insert_rows(self, cursor: Cursor, layout: Layout, rows: list[list[Any]]) -> None:
        _copy(cursor, self.ident(layout.table), layout.names, rows)

    def stage_rows(self, cursor: Cursor, layout: Layout, rows: list[list[Any]]) -> sql.Composable:
        # COPY into a typed, session-private staging table: several times faster than executemany.
        stage = sql.Identifier(f"stage_{layout.table}")
        names = sql.SQL(", ").join(map(sql.Identifier, layout.names))
        cursor.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS "  # typed, no constraints
                               "SELECT {}, NULL::text AS _kept FROM {} WITH NO DATA").format(
            stage, names, self.ident(layout.table)))
        cursor.execute(sql.SQL("TRUNCATE {}").format(stage))
        _copy(cursor, stage, [*layout.names, "_kept"], rows)
        return stage

    def is_view_missing(self, error: BaseException) -> bool:
        return isinstance(error, psycopg.errors.UndefinedTable | psycopg.errors.UndefinedColumn)

    def existing_columns(self, cursor: Cursor, table: str) -> set[str]:
        cursor.execute("SELECT column_name FROM information_schema.columns "
                       "WHERE table_schema = %s AND table_name = %s", (self.schema, table))
        return {row[0] for row in cursor.fetchall()}

    def in_list(self, column: sql.Composable, mark: sql.Composable,
                values: Sequence[Any]) -> tuple[sql.Composable, list[Any]]:
        return sql.SQL("{} = ANY(%s)").format(column), [list(values)]  # one array parameter

    def contains_text(self, column: sql.Composable, text: str) -> tuple[sql.Composable, list[Any]]:
        return sql.SQL("strpos({}, %s) > 0").format(column), [text]

    def contains_element(self, column: sql.Composable, element: Any) -> tuple[sql.Composable, list[Any]]:
        return sql.SQL("{} @> %s").format(column), [Jsonb([element])]

    # -- one active worker, woken by NOTIFY -----------------------------------

    def try_lock(self, name: str) -> bool:
        row = self.writer.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                                  (f"writ-projection:{self.schema}:{name}",)).fetchone()
        return bool(row and row[0])

    def release_lock(self, name: str) -> None:
        if self._writer is not None and not self._writer.closed:
            self._writer.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))",
                                 (f"writ-projection:{self.schema}:{name}",))

    def start_listening(self) -> None:
        if self._listener is None or self._listener.closed:
            self._listener = self._connect()
            self._listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.events_table)))

    def wait_for_events(self, timeout: float) -> None:
        self.start_listening()
        assert self._listener is not None
        for _ in self._listener.notifies(timeout=timeout, stop_after=1):
            pass
        for _ in self._listener.notifies(timeout=0):
            pass  # drain the rest of the burst: one select covers them all

    def announce(self, cursor: Cursor, name: str, position: int) -> None:
        cursor.execute("SELECT pg_notify(%s, %s)", (PROJECTED_CHANNEL, f"{self.schema}\t{name}\t{position}"))

    def wait_position(self, name: str, position: int, timeout: float) -> int:
        deadline = monotonic() + timeout
        channel = sql.Identifier(PROJECTED_CHANNEL)
        with self.pool.connection() as conn:
            conn.execute(sql.SQL("LISTEN {}").format(channel))
            try:
                with conn.cursor() as cursor:
                    seen = self.reached(cursor, name)
                while seen < position and (remaining := deadline - monotonic()) > 0:
                    for notify in conn.notifies(timeout=remaining, stop_after=1):
                        seen = max(seen, self._announced(notify.payload, name))
            finally:
                conn.execute(sql.SQL("UNLISTEN {}").format(channel))
        return seen

    def _announced(self, payload: str, name: str) -> int:
        schema, _, rest = payload.partition("\t")
        announced, _, value = rest.partition("\t")
        return int(value) if schema == self.schema and announced == name else 0

    def close(self) -> None:
        for conn in (self._writer, self._listener):
            if conn is not None and not conn.closed:
                conn.close()
        self._writer = self._listener = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

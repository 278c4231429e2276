"""Production: PostgreSQL sessions with keepalives, advisory locks and LISTEN/NOTIFY.

Everything of Writ's lives in the URL's schema (events, views, positions, bus
tables). Writ's own sessions carry TCP keepalives on both ends (see
``infrastructure.config.KEEPALIVE``) and the schema as ``search_path``, so a
subscriber handler's unqualified tables land there too. The worker lock is a
session advisory lock held on a dedicated session; the wake-up LISTENs on a
dedicated session. Several processes may start at once on an empty schema:
``schema_creation`` serializes them with an advisory lock, because the library
creating its tables concurrently collides ("tuple concurrently updated"), and
``table_creation`` takes the same lock around Writ's own table changes (two
``CREATE TABLE IF NOT EXISTS`` of one table at once: ``UniqueViolation``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from typing import Any
from uuid import UUID

import psycopg
from psycopg import errors

from domain.chain import id_text
from infrastructure.backend import Backend
from infrastructure.config import PostgresConfig, postgres_conninfo
from infrastructure.database import Database, Tx
from infrastructure.erasures import NOT_THE_OWNER
from infrastructure.key_table import PostgresKeyTable
from infrastructure.locks import WorkerLock, lock_key
from infrastructure.sql import POSTGRES, SQL, Composable, Identifier, P
from infrastructure.wakeup import Wakeup

ATTEMPTS = 10
NOT_REWRITABLE = """
SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ? AND c.relname = ANY(?)
  AND NOT pg_has_role(current_user, c.relowner, 'USAGE')
  AND NOT pg_has_role(current_user, (SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE')
  AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
"""
"""The tables of a rewrite this session may not ``VACUUM FULL``: only a table's owner, the database's owner or a
superuser may (holding their privileges: ``USAGE``, which a ``NOINHERIT`` member lacks), and PostgreSQL skips any
other's with a warning, not an error. (PostgreSQL 17's ``MAINTAIN`` privilege is not counted: such a role is told
it may not, and the erasure waits for the owner; never the other way round.)"""
OLDER_SNAPSHOTS = """
WITH next AS (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xid),
held AS (
    SELECT 'session' AS kind, pid::text AS who, xact_start::text AS since, x FROM pg_stat_activity,
        LATERAL (VALUES (backend_xmin, datname IS NULL OR datname = current_database()), (backend_xid, true))
        AS v(x, counts)
    WHERE x IS NOT NULL AND counts AND pid <> pg_backend_pid()
    UNION ALL
    SELECT 'prepared transaction', gid, prepared::text, transaction FROM pg_prepared_xacts
    WHERE database = current_database()
    UNION ALL
    SELECT 'replication slot', slot_name::text, NULL, xmin FROM pg_replication_slots
    WHERE xmin IS NOT NULL AND (database = current_database() OR database IS NULL)
)
SELECT kind, who, since FROM held, next
WHERE (next.xid >> 32 << 32) + x::text::bigint
      - CASE WHEN (next.xid >> 32 << 32) + x::text::bigint > next.xid THEN 4294967296 ELSE 0 END < ?
"""
"""What holds a snapshot older than a horizon (a 64-bit transaction id): a snapshot in this database, or a
transaction id still running in any database (transaction ids are the cluster's: a rewrite's own snapshot starts
at the oldest running one, wherever it runs). Each 32-bit xid is widened with the epoch of the next transaction
id (an xid greater than the next one's low bits is of the epoch before)."""


class PostgresDatabase(Database):
    def __init__(self, conninfo: dict[str, Any]) -> None:
        super().__init__(POSTGRES)
        self.conninfo = conninfo

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.conninfo, autocommit=True)


class AdvisoryLock(WorkerLock):
    """A session advisory lock on a session of its own: it goes with the session."""

    def __init__(self, name: str, conninfo: dict[str, Any], scope: str) -> None:
        super().__init__(name)
        self.conninfo = conninfo
        self.key = lock_key(scope, name)
        self._conn: psycopg.Connection[Any] | None = None

    def __str__(self) -> str:
        return f"advisory lock {self.key} ({self.name})"

    def try_acquire(self) -> bool:
        if self.held():
            return True
        conn = psycopg.connect(
            **self.conninfo, autocommit=True, application_name=f"writ lock {self.name}"[:63]
        )
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        return True

    def held(self) -> bool:
        conn = self._conn
        if conn is None or conn.closed:
            return False
        try:
            conn.execute("SELECT 1")
        except psycopg.Error:
            self.release()
            return False
        return True

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with suppress(psycopg.Error):
                conn.close()  # ends the session, and the advisory lock with it


class ListeningWakeup(Wakeup):
    """LISTEN on a dedicated session; ``wait`` returns at the first notification (and drains the burst)."""

    def __init__(self, conninfo: dict[str, Any], channel: str) -> None:
        self.conninfo = conninfo
        self.channel = channel
        self._conn: psycopg.Connection[Any] | None = None

    def start(self) -> None:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(**self.conninfo, autocommit=True)
            self._conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)).render(POSTGRES))

    def wait(self, timeout: float) -> None:
        self.start()
        assert self._conn is not None
        try:
            for _ in self._conn.notifies(timeout=timeout, stop_after=1):
                pass
            for _ in self._conn.notifies(timeout=0):
                pass  # one look covers the whole burst
        except psycopg.OperationalError:
            self.close()  # the session is gone: the next wait listens afresh
            raise

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            with suppress(psycopg.Error):
                conn.close()


class PostgresBackend(Backend):
    dialect = POSTGRES
    row_lock = SQL(" FOR UPDATE")
    transient = (psycopg.OperationalError, psycopg.InterfaceError)

    def __init__(self, config: PostgresConfig) -> None:
        super().__init__(config)
        self.schema = config.schema
        self.conninfo = postgres_conninfo(self.env())
        options = f"{self.conninfo['options']} -c search_path={self.schema}".strip()
        self.session_conninfo = {**self.conninfo, "options": options}

    def describe(self) -> str:
        return (
            f"PostgreSQL {self.conninfo['host']}:{self.conninfo['port']}/{self.conninfo['dbname']} "
            f"schema {self.schema}"
        )

    @contextmanager
    def schema_creation(self) -> Iterator[None]:
        with psycopg.connect(**self.conninfo, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (lock_key(self.schema, "schema-creation"),))
            yield  # closing the session releases the lock

    def table_creation(self) -> AbstractContextManager[None]:
        """The schema-creation lock: one lock for every table made in the schema (the library's, and Writ's)."""
        return self.schema_creation()

    def database(self, *, views: bool = False) -> PostgresDatabase:
        return PostgresDatabase(self.session_conninfo)

    def uuid_param(self, value: UUID) -> UUID:
        return value

    def key_table(self) -> PostgresKeyTable:
        return PostgresKeyTable(self)

    def tables_like(self, tx: Tx, prefix: str) -> list[str]:
        rows = tx.query(
            SQL("SELECT table_name FROM information_schema.tables WHERE table_schema = {}").format(
                P
            ),
            (self.schema,),
        )
        return [row[0] for row in rows if row[0].startswith(prefix)]

    def among_ids(self, column: str, ids: list[UUID]) -> tuple[Composable, list[Any]]:
        """A semi-join on the unnested ids, not ``= ANY``: on the key table's 64 partitions, ``= ANY`` of
        10,000 ids probes every partition's index with the whole array (docs/performance.md, bulk); the join reads
        each once.
        The ids go as one array literal (psycopg's text dump of a list of UUIDs checks each for quoting)."""
        return (
            SQL("{} IN (SELECT unnest(CAST({} AS uuid[])))").format(Identifier(column), P),
            ["{" + ",".join(map(id_text, ids)) + "}"],
        )

    def erasure_horizon(self) -> int:
        """The next transaction id: the purge (committed) is older, so a snapshot whose xmin is older than this
        may still see what it deleted."""
        database = self.database()
        try:
            with database.reading() as tx:
                row = tx.one(SQL("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint"))
        finally:
            database.close()
        assert row is not None
        return int(row[0])

    def erase_now(
        self, tables: list[str], *, views: bool, horizon: int | None, retry: bool = False
    ) -> str | None:
        """``VACUUM FULL`` each table; done only when no snapshot older than ``horizon`` is left (before that, the
        rewrite copies the old row versions such a snapshot may still see). A first attempt rewrites anyway (it
        drops whatever older purges left); a ``retry`` waits until it can finish."""
        database = self.database(views=views)
        try:
            with database.reading() as tx:
                refused = tx.query(NOT_REWRITABLE, (self.schema, tables))
                if refused:
                    # PostgreSQL only warns, skipping the table: the bytes would stay while Writ said done
                    return (
                        f"{NOT_THE_OWNER} {', '.join(sorted(r[0] for r in refused))} (VACUUM FULL needs the "
                        "table's owner): run `writ keys compact` as the schema's owner"
                    )
                held = self._held_back(tx, horizon)
                if held is not None and retry:
                    return held
                tx.execute(SQL("SET lock_timeout = '10s'"))
                for table in tables:
                    tx.execute(SQL("VACUUM FULL {}").format(self.table(table)))
        except psycopg.Error as exc:
            return f"the rewrite (VACUUM FULL) failed: {exc}".strip()
        finally:
            database.close()
        return held

    def _held_back(self, tx: Tx, horizon: int | None) -> str | None:
        """Why the erasure must wait: the sessions, prepared transactions or replication slots holding a snapshot
        older than ``horizon`` (looked at a few times over a second, so a statement in flight is no
        reason); None when there are none."""
        if horizon is None:
            return None
        for attempt in range(ATTEMPTS):
            rows = tx.query(OLDER_SNAPSHOTS, (horizon,))
            if not rows:
                return None
            if attempt < ATTEMPTS - 1:
                time.sleep(0.1)
        holders = ", ".join(
            f"{kind} {who} (since {since or 'unknown'})" for kind, who, since in rows[:5]
        )
        return f"transactions older than the purge are open: {holders}"

    def table(self, name: str) -> Identifier:
        return Identifier(self.schema, name)

    def existing_columns(self, tx: Tx, table: str) -> set[str]:
        rows = tx.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? "
            "AND table_name = ?",
            (self.schema, table),
        )
        return {row[0] for row in rows}

    def has_table(self, tx: Tx, table: str) -> bool:
        # the catalog itself: information_schema shows only what the session holds a privilege on
        rows = tx.query(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = ? AND tablename = ?",
            (self.schema, table),
        )
        return bool(rows)

    def is_missing_table(self, error: BaseException) -> bool:
        return isinstance(error, errors.UndefinedTable | errors.UndefinedColumn)

    def worker_lock(self, name: str) -> WorkerLock:
        return AdvisoryLock(name, self.conninfo, self.schema)

    def wakeup(self, channel: str) -> Wakeup:
        return ListeningWakeup(self.conninfo, channel)

    def notify(self, tx: Tx, channel: str) -> None:
        tx.execute("SELECT pg_notify(?, '')", (channel,))

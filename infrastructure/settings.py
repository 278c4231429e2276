"""Configuration: one URL picks the database; everything else follows.

``WRIT_DATABASE_URL`` (or the ``database_url`` argument) is either
``sqlite:///path/to/file.db`` (the embedded default is ``sqlite:///writ.db``)
or ``postgresql://user:password@host:port/dbname?schema=name&pool_size=4``. It
maps onto the eventsourcing library's variables, so the application code is the
same on both databases.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from application.service import Clock, Writ
from domain.catalog import Catalog
from domain.errors import WritError

DEFAULT_DATABASE_URL = "sqlite:///writ.db"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

_COMMON = {
    "MAPPER_TOPIC": "infrastructure.persistence:OrjsonMapper",
    "TRANSCODER_TOPIC": "infrastructure.persistence:OrjsonTranscoder",
}


class ConfigurationError(WritError):
    code = "CONFIGURATION_INVALID"


def database_url() -> str:
    return os.environ.get("WRIT_DATABASE_URL") or DEFAULT_DATABASE_URL


def writ_env(url: str | None = None, *, create_tables: bool = True) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    url = url or database_url()
    parts = urlsplit(url)
    env = dict(_COMMON, CREATE_TABLE="y" if create_tables else "n")
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ConfigurationError(f"SQLite URL needs a file: {url!r} (e.g. sqlite:///writ.db)")
        name = path[1:]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            APPLICATION_RECORDER_TOPIC="infrastructure.persistence:WritSQLiteRecorder",
            SQLITE_DBNAME=name, SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            APPLICATION_RECORDER_TOPIC="infrastructure.postgres_recorder:WritPostgresRecorder",
            POSTGRES_DBNAME=unquote(parts.path.lstrip("/")) or "postgres",
            POSTGRES_HOST=parts.hostname or "127.0.0.1",
            POSTGRES_PORT=str(parts.port or 5432),
            POSTGRES_USER=unquote(parts.username or os.environ.get("USER", "postgres")),
            POSTGRES_PASSWORD=unquote(parts.password or ""),
            POSTGRES_SCHEMA=query.get("schema", ["public"])[0],
            POSTGRES_POOL_SIZE=query.get("pool_size", ["4"])[0],
            POSTGRES_MAX_OVERFLOW=query.get("max_overflow", ["8"])[0],
            POSTGRES_CONNECT_TIMEOUT=query.get("connect_timeout", ["5"])[0],
        )
        return env
    raise ConfigurationError(
        f"Unsupported database URL {url!r}: use sqlite:///file.db or postgresql://user@host/db"
    )


KEEPALIVE = {"idle": 5, "interval": 2, "count": 3}
"""TCP keepalive for the workers' sessions, set on both ends: when a worker's host or the network
vanishes, the server ends its session (and the advisory lock it holds, so a standby takes over)
within about idle + interval x count = 11 s, and the worker notices a vanished server as soon."""


def postgres_conninfo(env: dict[str, str]) -> dict[str, Any]:
    """psycopg connection arguments for a PostgreSQL ``writ_env`` (the workers' own sessions)."""
    server_side = " ".join(f"-c tcp_keepalives_{name}={value}" for name, value in KEEPALIVE.items())
    server_side = f"{os.environ.get('PGOPTIONS', '')} {server_side}".strip()  # an explicit option hides PGOPTIONS
    return {
        "dbname": env["POSTGRES_DBNAME"], "host": env["POSTGRES_HOST"], "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"], "password": env["POSTGRES_PASSWORD"] or None,
        "connect_timeout": int(env["POSTGRES_CONNECT_TIMEOUT"]),
        "keepalives": 1, **{f"keepalives_{name}": value for name, value in KEEPALIVE.items()},
        "options": server_side,
    }


@contextmanager
def schema_creation(env: dict[str, str]) -> Iterator[None]:
    """Serialize table creation between processes starting at once.

    The library creates its tables and types when an application or recorder is
    constructed; two PostgreSQL processes doing so at the same moment collide
    ("duplicate key ... pg_type", "tuple concurrently updated"). Holding an
    advisory lock per schema while constructing makes the second one find the
    tables made. On SQLite the first connection also switches the file to WAL,
    which fails at once ("database is locked", no busy wait) while another
    connection is opening it: a file lock beside the database serializes that.
    """
    if "SQLITE_DBNAME" in env:
        Path(env["SQLITE_DBNAME"]).parent.mkdir(parents=True, exist_ok=True)
        with sqlite_opening(env["SQLITE_DBNAME"]):
            yield
        return
    if env.get("CREATE_TABLE") != "y":
        yield
        return
    import psycopg  # only PostgreSQL needs it: keeps the embedded default's start-up light

    with psycopg.connect(**postgres_conninfo(env), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"writ-schema:{env['POSTGRES_SCHEMA']}",))
        yield  # closing the session releases the lock


@contextmanager
def sqlite_opening(path: str) -> Iterator[None]:
    """Hold ``<path>.start-lock`` while a connection opens the SQLite file (and may switch it to WAL,
    which does not wait for other connections: it fails with "database is locked")."""
    with open(f"{path}.start-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def connect_sqlite(path: str) -> sqlite3.Connection:
    """A WAL-mode, autocommit connection to a SQLite file Writ's own code uses (views, bus tables)."""
    with sqlite_opening(path):
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
    return connection


def open_writ(catalog: Catalog, url: str | None = None, *, clock: Clock | None = None,
              create_tables: bool = True) -> Writ:
    """A ready command service on the configured database."""
    env = writ_env(url, create_tables=create_tables)
    with schema_creation(env):
        return Writ(catalog, env=env, clock=clock)


def open_log(url: str | None = None) -> tuple[InfrastructureFactory[Any], ApplicationRecorder]:
    """Writ's notification log alone (for workers that follow it); close the factory when done."""
    env = writ_env(url)
    with schema_creation(env):
        factory = InfrastructureFactory.construct(Environment(Writ.name, env))
        return factory, factory.application_recorder()

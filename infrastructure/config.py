"""Configuration: one URL picks the database; everything else follows.

``WRIT_DATABASE_URL`` (or the ``database_url`` argument) is either
``sqlite:///path/to/file.db`` (the embedded default is ``sqlite:///writ.db``)
or ``postgresql://user:password@host:port/dbname?schema=name&pool_size=4&lock_timeout=30``.
``parse_database_url`` turns it into a ``SQLiteConfig`` or ``PostgresConfig``;
``infrastructure.backend_choice.open_backend`` builds the one backend object from
it, and only that object knows which database it is on. ``WRIT_AMQP_URL``
names the broker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from domain.errors import ConfigurationError

DEFAULT_DATABASE_URL = "sqlite:///writ.db"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

KEEPALIVE = {"idle": 5, "interval": 2, "count": 3}
"""TCP keepalive for Writ's own PostgreSQL sessions, set on both ends: when a worker's host or the network
vanishes, the server ends its session (and the advisory lock it holds, so a standby takes over)
within about idle + interval x count = 11 s, and the worker notices a vanished server as soon."""


@dataclass(frozen=True)
class SQLiteConfig:
    path: str


@dataclass(frozen=True)
class PostgresConfig:
    dbname: str
    host: str
    port: int
    user: str
    password: str
    schema: str
    pool_size: int
    max_overflow: int
    connect_timeout: int
    lock_timeout: int = 30
    """Seconds a save waits for a lock (the events table's, taken for commit order; a key table's while a purge
    is compacted) before it fails ``UNAVAILABLE``; 0 waits as long as it takes. A save holds the events table for
    its one statement, a bulk update for its whole save (about 35 ms a thousand records)."""


DatabaseConfig = SQLiteConfig | PostgresConfig


def database_url() -> str:
    return os.environ.get("WRIT_DATABASE_URL") or DEFAULT_DATABASE_URL


def amqp_url() -> str:
    return os.environ.get("WRIT_AMQP_URL") or DEFAULT_AMQP_URL


def parse_database_url(url: str | None = None) -> DatabaseConfig:
    """The database a URL names (``WRIT_DATABASE_URL``, or the embedded default, when omitted)."""
    url = url or database_url()
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if not path or path == "/":
            raise ConfigurationError(f"SQLite URL needs a file: {url!r} (e.g. sqlite:///writ.db)")
        return SQLiteConfig(path[1:])  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    if parts.scheme in ("postgresql", "postgres"):
        query = parse_qs(parts.query)
        try:
            config = PostgresConfig(
                dbname=unquote(parts.path.lstrip("/")) or "postgres",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or os.environ.get("USER", "postgres")),
                password=unquote(parts.password or ""),
                schema=query.get("schema", ["public"])[0],
                pool_size=int(query.get("pool_size", ["4"])[0]),
                max_overflow=int(query.get("max_overflow", ["8"])[0]),
                connect_timeout=int(query.get("connect_timeout", ["5"])[0]),
                lock_timeout=int(query.get("lock_timeout", ["30"])[0]),
            )
        except ValueError as exc:
            raise ConfigurationError(f"Invalid PostgreSQL URL {url!r}: {exc}") from None
        return _pooled(url, config)
    raise ConfigurationError(
        f"Unsupported database URL {url!r}: use sqlite:///file.db or postgresql://user@host/db"
    )


def _pooled(url: str, config: PostgresConfig) -> PostgresConfig:
    """``config``, unless its pool cannot hold two connections: a bulk update reads its candidates' histories on
    one (the next part's queries in flight while this part is checked) and may load a record whose history
    changed between its reads on another."""
    if (
        config.pool_size < 1
        or config.max_overflow < 0
        or config.pool_size + config.max_overflow < 2
    ):
        raise ConfigurationError(
            f"Invalid PostgreSQL URL {url!r}: pool_size={config.pool_size} and max_overflow={config.max_overflow} "
            "allow fewer than 2 connections; Writ needs pool_size >= 1 and pool_size + max_overflow >= 2"
        )
    if config.lock_timeout < 0:
        raise ConfigurationError(
            f"Invalid PostgreSQL URL {url!r}: lock_timeout={config.lock_timeout}; seconds, 0 or more (0: no limit)"
        )
    return config


def postgres_conninfo(env: dict[str, str]) -> dict[str, Any]:
    """psycopg connection arguments for a PostgreSQL ``writ_env`` (Writ's own sessions): keepalives on both
    ends, ``PGOPTIONS`` kept."""
    server_side = " ".join(f"-c tcp_keepalives_{name}={value}" for name, value in KEEPALIVE.items())
    # an explicit option hides PGOPTIONS
    server_side = f"{os.environ.get('PGOPTIONS', '')} {server_side}".strip()
    return {
        "dbname": env["POSTGRES_DBNAME"],
        "host": env["POSTGRES_HOST"],
        "port": int(env["POSTGRES_PORT"]),
        "user": env["POSTGRES_USER"],
        "password": env["POSTGRES_PASSWORD"] or None,
        "connect_timeout": int(env["POSTGRES_CONNECT_TIMEOUT"]),
        "keepalives": 1,
        **{f"keepalives_{name}": value for name, value in KEEPALIVE.items()},
        "options": server_side,
    }


_COMMON = {
    "MAPPER_TOPIC": "infrastructure.persistence:OrjsonMapper",
    "TRANSCODER_TOPIC": "infrastructure.persistence:OrjsonTranscoder",
}


def event_store_env(config: DatabaseConfig, *, create_tables: bool | None = None) -> dict[str, str]:
    """The eventsourcing environment for a database configuration. ``create_tables`` None leaves table creation
    to the process environment's ``CREATE_TABLE`` (on unless it says ``n``: a runtime role that may not create
    tables runs with ``CREATE_TABLE=n``)."""
    wanted = (
        os.environ.get("CREATE_TABLE", "y")
        if create_tables is None
        else ("y" if create_tables else "n")
    )
    # explicit: the log's reader takes no process environment
    env = dict(_COMMON, CREATE_TABLE=wanted)
    if isinstance(config, SQLiteConfig):
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            APPLICATION_RECORDER_TOPIC="infrastructure.sqlite_recorder:WritSQLiteRecorder",
            SQLITE_DBNAME=config.path,
            SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    env.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        APPLICATION_RECORDER_TOPIC="infrastructure.postgres_recorder:WritPostgresRecorder",
        POSTGRES_DBNAME=config.dbname,
        POSTGRES_HOST=config.host,
        POSTGRES_PORT=str(config.port),
        POSTGRES_USER=config.user,
        POSTGRES_PASSWORD=config.password,
        POSTGRES_SCHEMA=config.schema,
        POSTGRES_POOL_SIZE=str(config.pool_size),
        POSTGRES_MAX_OVERFLOW=str(config.max_overflow),
        POSTGRES_CONNECT_TIMEOUT=str(config.connect_timeout),
        POSTGRES_LOCK_TIMEOUT=str(config.lock_timeout),
    )
    return env


def writ_env(url: str | None = None, *, create_tables: bool | None = None) -> dict[str, str]:
    """The eventsourcing environment of a database URL (``WRIT_DATABASE_URL``, or the embedded default)."""
    return event_store_env(parse_database_url(url), create_tables=create_tables)

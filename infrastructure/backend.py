"""The backend: the one object that knows which database Writ runs on.

``infrastructure.backends.open_backend(url)`` builds it once from the URL
(``infrastructure.config``): a ``SQLiteBackend``
(``infrastructure.sqlite_backend``) or a ``PostgresBackend``
(``infrastructure.postgres_backend``, imported only then, so the embedded
default never loads psycopg). It owns everything that differs at the database
level:

* the event store's settings (the ``eventsourcing`` environment) and the
  serialized creation of its schema when several processes start at once;
* connections and explicit transactions (``database``), in Writ's own
  database or in the views' database (a separate file beside the events on
  SQLite, the same schema on PostgreSQL), with SQL rendered by its ``dialect``;
* the one single-active-worker lock (``worker_lock``), fenced by the epoch of
  the follower's row in the positions table (``infrastructure.positions``);
* the one wake-up (``wakeup``): LISTEN/NOTIFY on PostgreSQL, a short poll on
  SQLite, and ``notify`` to send one from inside a transaction.

Nothing above this module asks which database it is on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from infrastructure.config import DatabaseConfig, SQLiteConfig
from infrastructure.sql import SQL, Dialect, Identifier

if TYPE_CHECKING:
    from application.service import Clock, Writ
    from domain.catalog import Catalog
    from infrastructure.database import Database
    from infrastructure.locks import WorkerLock
    from infrastructure.wakeup import Wakeup

APP_NAME = "Writ"
"""The eventsourcing application name (``application.service.Writ.name``): one application for every aggregate."""

_COMMON = {
    "MAPPER_TOPIC": "infrastructure.persistence:OrjsonMapper",
    "TRANSCODER_TOPIC": "infrastructure.persistence:OrjsonTranscoder",
}


class Backend(ABC):
    """What differs between SQLite and PostgreSQL, behind one interface."""

    dialect: Dialect
    embedded: bool = False
    """The embedded default: no worker processes are expected, so readers of the views catch them up
    in-process first (``entrypoints.bootstrap``)."""
    row_lock: SQL = SQL("")
    """Appended to a SELECT that must lock the rows it reads until the transaction ends."""
    transient: tuple[type[BaseException], ...] = ()
    """Errors after which a worker reconnects and carries on (connection lost, database busy)."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config

    # -- the event store ------------------------------------------------------

    def env(self, *, create_tables: bool = True) -> dict[str, str]:
        """The eventsourcing environment of Writ's event store."""
        return event_store_env(self.config, create_tables=create_tables)

    @abstractmethod
    def schema_creation(self) -> AbstractContextManager[None]:
        """Held while an application or recorder is constructed (it creates the tables)."""

    def open_writ(self, catalog: Catalog, *, clock: Clock | None = None, create_tables: bool = True) -> Writ:
        """A ready command service."""
        from application.service import Writ

        with self.schema_creation():
            return Writ(catalog, env=self.env(create_tables=create_tables), clock=clock)

    # -- Writ's own tables ----------------------------------------------------

    @abstractmethod
    def database(self, *, views: bool = False) -> Database:
        """Explicit transactions on Writ's database, or on the views' database (``views``)."""

    @abstractmethod
    def table(self, name: str) -> Identifier:
        """A table of Writ's, qualified where the database has schemas."""

    @abstractmethod
    def existing_columns(self, tx: Any, table: str) -> set[str]:
        """Column names of one of Writ's tables; empty when it does not exist."""

    @abstractmethod
    def is_missing_table(self, error: BaseException) -> bool:
        """``error`` says a queried table or column does not exist."""

    # -- workers --------------------------------------------------------------

    @abstractmethod
    def worker_lock(self, name: str) -> WorkerLock:
        """The lock that makes one worker of ``name`` the active one (released when it dies)."""

    @abstractmethod
    def wakeup(self, channel: str) -> Wakeup:
        """Wakes a waiter when something is announced on ``channel`` (or polls, where nothing announces)."""

    @abstractmethod
    def notify(self, tx: Any, channel: str) -> None:
        """Announce on ``channel`` when ``tx`` commits."""

    def describe(self) -> str:
        return type(self).__name__


def event_store_env(config: DatabaseConfig, *, create_tables: bool = True) -> dict[str, str]:
    """The eventsourcing environment for a database configuration."""
    env = dict(_COMMON, CREATE_TABLE="y" if create_tables else "n")
    if isinstance(config, SQLiteConfig):
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            APPLICATION_RECORDER_TOPIC="infrastructure.persistence:WritSQLiteRecorder",
            SQLITE_DBNAME=config.path, SQLITE_LOCK_TIMEOUT="30",
        )
        return env
    env.update(
        PERSISTENCE_MODULE="eventsourcing.postgres",
        APPLICATION_RECORDER_TOPIC="infrastructure.postgres_recorder:WritPostgresRecorder",
        POSTGRES_DBNAME=config.dbname, POSTGRES_HOST=config.host, POSTGRES_PORT=str(config.port),
        POSTGRES_USER=config.user, POSTGRES_PASSWORD=config.password, POSTGRES_SCHEMA=config.schema,
        POSTGRES_POOL_SIZE=str(config.pool_size), POSTGRES_MAX_OVERFLOW=str(config.max_overflow),
        POSTGRES_CONNECT_TIMEOUT=str(config.connect_timeout),
    )
    return env

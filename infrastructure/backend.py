"""The backend: the one object that knows which database Writ runs on.

``infrastructure.backend_choice.open_backend(url)`` builds it once from the URL
(``infrastructure.config``): a ``SQLiteBackend``
(``infrastructure.sqlite_backend``) or a ``PostgresBackend``
(``infrastructure.postgres_backend``, imported only then, so the embedded
default never loads psycopg). It owns everything that differs at the database
level:

* the event store's settings (the ``eventsourcing`` environment) and the
  serialized creation of its schema, and of Writ's own tables, when several
  processes start at once;
* connections and explicit transactions (``database``), in Writ's own
  database or in the views' database (a separate file beside the events on
  SQLite, the same schema on PostgreSQL), with SQL rendered by its ``dialect``;
* the one single-active-worker lock (``worker_lock``), fenced by the epoch of
  the follower's row in the positions table (``infrastructure.positions``);
* the one wake-up (``wakeup``): LISTEN/NOTIFY on PostgreSQL, a short poll on
  SQLite, and ``notify`` to send one from inside a transaction;
* the key tables (``key_table``: ``infrastructure.key_table``, one narrow
  subclass per database), the vault over them (``infrastructure.vault``) that
  seals the event store's data, and the writer keys
  (``infrastructure.writer_keys``) that tag its saves, given to every mapper
  and recorder it opens (``seal``);
* making purged bytes leave the files (``compact``), or recording the erasure
  pending until it can (``infrastructure.erasures``).

Nothing above this module asks which database it is on.

Why ``seal`` sets attributes on the library's objects instead of handing the
vault to their constructors: ``eventsourcing`` builds the mapper and the
recorder itself, from the environment's strings (``APPLICATION_RECORDER_TOPIC``
names a class, which its factory calls with the datastore alone, and creates
the tables before returning it), both for the ``Store`` and for the
``EventLog``, which holds no ``Application``. Passing the vault in would mean
rebuilding the library's factory (its datastore from the environment, its
table creation) or a process-wide registry the recorder looks itself up in,
keyed by the environment: more code, and global state, for the same wiring.
So the backend that opens a store or a log seals its two parts at once, before
anything is saved or read, and a part without a vault refuses to seal or open
data (``infrastructure.persistence``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from uuid import UUID

from infrastructure.config import DatabaseConfig, event_store_env
from infrastructure.erasures import Erasures, PendingErasure
from infrastructure.key_table import KeyTable
from infrastructure.master_keys import load_master_keys
from infrastructure.sql import SQL, Composable, Dialect, Identifier
from infrastructure.vault import Vault
from infrastructure.writer_keys import WriterKeys, load_writer_keys

if TYPE_CHECKING:
    from application.store import Store
    from infrastructure.database import Database
    from infrastructure.locks import WorkerLock
    from infrastructure.wakeup import Wakeup

APP_NAME = "Writ"
"""The eventsourcing application name (``application.service.Writ.name``): one application for every aggregate."""


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
        self._vault: Vault | None = None
        self._vault_made = threading.Lock()
        self._writer_keys: WriterKeys | None = None

    # -- the event store ------------------------------------------------------

    def env(self, *, create_tables: bool | None = None) -> dict[str, str]:
        """The eventsourcing environment of Writ's event store."""
        return event_store_env(self.config, create_tables=create_tables)

    @abstractmethod
    def schema_creation(self) -> AbstractContextManager[None]:
        """Held while an application or recorder is constructed (it creates the tables)."""

    @abstractmethod
    def table_creation(self) -> AbstractContextManager[None]:
        """Held around a transaction that creates or changes Writ's own tables (positions, views): two processes
        running ``CREATE TABLE IF NOT EXISTS`` at once can collide (``UniqueViolation``) on PostgreSQL."""

    def open_store(self, *, create_tables: bool | None = None) -> Store:
        """Writ's event store on this database (``application.store``), its data sealed and its digests keyed by
        the vault (``vault()``, the core's keys)."""
        from application.store import Store

        with self.schema_creation():
            store = Store(env=self.env(create_tables=create_tables))
        self.seal(store.mapper, store.recorder)
        return store

    def vault(self) -> Vault:
        """This backend's vault (one per backend: the command side and the workers of a process share it)."""
        with self._vault_made:
            if self._vault is None:
                self._vault = Vault(
                    load_master_keys(beside=self.master_key_beside()), self.key_table()
                )
            return self._vault

    def reload_master_keys(self) -> None:
        """Read the configured master keys again (a halted worker retrying: its key file may have gained the key a
        rotation wrapped data keys with); ``ConfigurationError`` leaves the keys it had."""
        self.vault().masters = load_master_keys(beside=self.master_key_beside())

    def writer_keys(self) -> WriterKeys:
        """The keys that tag saves, read at the first save (the embedded default makes one beside its database)."""
        if self._writer_keys is None:
            self._writer_keys = load_writer_keys(beside=self.master_key_beside())
            assert self._writer_keys is not None  # made or configured, else ConfigurationError
        return self._writer_keys

    def close(self) -> None:
        """Close what the backend itself opened (the vault's connection; it reopens if asked again). Only the
        backend's owner calls this: parts that were handed a backend (a worker's log, the views) leave it open,
        since the command service of the same process may be using the vault."""
        if self._vault is not None:
            self._vault.close()

    def seal(self, *parts: Any) -> None:
        """Give a mapper or recorder of this backend's event store the vault (and a recorder the writer keys)."""
        vault = self.vault()
        for part in parts:
            part.vault = vault
            if hasattr(type(part), "writer_keys"):
                part.writer_keys = self.writer_keys

    def master_key_beside(self) -> str | None:
        """Where the embedded default keeps a master key it made (None: one must be configured)."""
        return None

    @abstractmethod
    def uuid_param(self, value: UUID) -> Any:
        """A UUID as this database's key columns take it."""

    @abstractmethod
    def among_ids(self, column: str, ids: list[UUID]) -> tuple[Composable, list[Any]]:
        """The UUID key ``column`` is one of ``ids``, as one condition with one parameter (however many)."""

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
    def has_table(self, tx: Any, table: str) -> bool:
        """Whether one of Writ's tables exists, whatever this session may do with it (a session that may not
        read it learns it is there, and reading it then fails as it should, rather than finding nothing)."""

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

    def key_table(self) -> KeyTable:
        """The key tables (``infrastructure.key_table``), on a connection of their own: close it when done."""
        return KeyTable(self)

    @abstractmethod
    def tables_like(self, tx: Any, prefix: str) -> list[str]:
        """Names of Writ's tables (in ``tx``'s database) that start with ``prefix``."""

    def compact(self, tables: list[str], *, views: bool) -> None:
        """Make rows deleted from ``tables`` (in the views' database: ``views``) leave the database files
        (``infrastructure.shredding``), or record the erasure pending (``infrastructure.erasures``); never raises:
        the delete has committed."""
        Erasures(self).erase(tables, views=views)

    def finish_erasures(self) -> list[PendingErasure]:
        """Finish the pending erasures nothing older than their purge holds back any more; those left pending."""
        return Erasures(self).finish()

    def pending_erasures(self) -> list[PendingErasure]:
        return Erasures(self).pending()

    @abstractmethod
    def erasure_horizon(self) -> int | None:
        """What an erasure started now waits for (PostgreSQL: the next transaction id); None where nothing."""

    @abstractmethod
    def erase_now(
        self, tables: list[str], *, views: bool, horizon: int | None, retry: bool = False
    ) -> str | None:
        """Make what was deleted from ``tables`` leave the files, if nothing older than ``horizon`` can still see
        it: None when done, else why not (the erasure stays pending; a ``retry`` of a pending one may skip the
        work until it can finish)."""

    def describe(self) -> str:
        return type(self).__name__

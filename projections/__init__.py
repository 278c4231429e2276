"""Read models fed from the notification log, and the runner that feeds them.

``open_worker`` gives the projection worker for a database URL, ``open_views``
the query API over the views it keeps. The URL picks the store (PostgreSQL or
SQLite) exactly as it picks the event store (``infrastructure.settings``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from psycopg.conninfo import make_conninfo

from domain.catalog import Catalog
from infrastructure.persistence import LogQueries
from infrastructure.settings import open_log, postgres_conninfo, writ_env
from projections.errors import ProjectionBusyError, ProjectionNotReadyError, ProjectionTimeoutError
from projections.postgres import PostgresViewStore
from projections.queries import Page, Views
from projections.runner import LogRecorder, ProjectionStatus, ProjectionWorker
from projections.sqlite import SQLiteViewStore
from projections.store import ViewStore

__all__ = [
    "Page", "ProjectionBusyError", "ProjectionNotReadyError", "ProjectionStatus", "ProjectionTimeoutError",
    "ProjectionWorker", "ViewStore", "Views",
    "open_store", "open_views", "open_worker",
]


def _postgres(catalog: Catalog, env: dict[str, str], events_table: str) -> ViewStore:
    conninfo = make_conninfo(**postgres_conninfo(env), application_name="writ-projection")
    return PostgresViewStore(catalog, conninfo, env["POSTGRES_SCHEMA"], events_table or "writ_events")


def _sqlite(catalog: Catalog, env: dict[str, str], events_table: str) -> ViewStore:
    return SQLiteViewStore(catalog, env["SQLITE_DBNAME"])


_STORES: dict[str, Callable[[Catalog, dict[str, str], str], ViewStore]] = {
    "eventsourcing.postgres": _postgres,
    "eventsourcing.sqlite": _sqlite,
}


def open_store(catalog: Catalog, url: str | None = None, *, events_table: str = "") -> ViewStore:
    """The view store for a database URL (``WRIT_DATABASE_URL`` when omitted)."""
    env = writ_env(url)
    return _STORES[env["PERSISTENCE_MODULE"]](catalog, env, events_table)


def open_views(catalog: Catalog, url: str | None = None) -> Views:
    """The query API over the current-rows views."""
    return Views(catalog, open_store(catalog, url))


def open_worker(catalog: Catalog, url: str | None = None, **options: Any) -> ProjectionWorker:
    """A projection worker reading the log of ``url`` (close it when done)."""
    factory, recorder = open_log(url)
    assert isinstance(recorder, LogQueries)
    store = open_store(catalog, url, events_table=getattr(recorder, "events_table_name", ""))
    return ProjectionWorker(catalog, cast(LogRecorder, recorder), store, on_close=factory.close, **options)

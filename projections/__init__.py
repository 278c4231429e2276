"""Read models fed from the notification log (current rows, decisions, approvals), and the runner that
feeds them.

``open_worker`` gives the projection worker for a database (URL or backend),
``open_views`` the query API over the views it keeps. The backend
(``infrastructure.backend``) says which database it is; ``projections.store``
picks the matching view dialect and row writer in one place. Importing this
package loads no database driver and not the command service.
"""

from __future__ import annotations

from typing import Any

from domain.catalog import Catalog
from infrastructure.backend import Backend
from infrastructure.backend_choice import open_backend
from infrastructure.log import open_log_of
from projections.errors import (
    ProjectionBusyError,
    ProjectionHaltedError,
    ProjectionLogChangedError,
    ProjectionNotReadyError,
    ProjectionTimeoutError,
)
from projections.queries import Page, Views
from projections.runner import ProjectionStatus, ProjectionWorker
from projections.store import ViewStore

__all__ = [
    "Page",
    "ProjectionBusyError",
    "ProjectionHaltedError",
    "ProjectionLogChangedError",
    "ProjectionNotReadyError",
    "ProjectionStatus",
    "ProjectionTimeoutError",
    "ProjectionWorker",
    "ViewStore",
    "Views",
    "open_store",
    "open_views",
    "open_worker",
]

Where = str | Backend | None
"""A database URL (``WRIT_DATABASE_URL`` when None) or a backend already built from one."""


def backend_of(where: Where) -> Backend:
    return where if isinstance(where, Backend) else open_backend(where)


def open_store(catalog: Catalog, where: Where = None) -> ViewStore:
    """The view store of a database."""
    return ViewStore(catalog, backend_of(where))


def open_views(catalog: Catalog, where: Where = None) -> Views:
    """The query API over the current-rows views (closing it closes a backend it built from a URL, not one it
    was given: that one's owner may still be using it)."""
    return Views(catalog, open_store(catalog, where), owns_backend=not isinstance(where, Backend))


def open_worker(catalog: Catalog, where: Where = None, **options: Any) -> ProjectionWorker:
    """A projection worker reading the log of a database (close it when done; as with ``open_views``, that
    closes the backend only when the worker built it)."""
    backend = backend_of(where)
    log = open_log_of(backend, owns_backend=not isinstance(where, Backend))
    return ProjectionWorker(catalog, log, ViewStore(catalog, backend), **options)

"""Builds the backend of a database URL: the one place that maps a URL onto a backend class.

The PostgreSQL backend is imported only when a PostgreSQL URL asks for it, so
the embedded default never loads psycopg.
"""

from __future__ import annotations

from infrastructure.backend import Backend
from infrastructure.config import SQLiteConfig, parse_database_url
from infrastructure.sqlite_backend import SQLiteBackend


def open_backend(url: str | None = None) -> Backend:
    """The backend of a database URL (``WRIT_DATABASE_URL``, or the embedded default, when omitted)."""
    config = parse_database_url(url)
    if isinstance(config, SQLiteConfig):
        return SQLiteBackend(config)
    from infrastructure.postgres_backend import PostgresBackend

    return PostgresBackend(config)

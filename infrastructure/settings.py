"""Where earlier releases documented Writ's entry points: kept as thin aliases.

``open_writ`` (the command service on a database URL), ``open_log`` (the
notification log), ``writ_env`` (the eventsourcing environment of a URL) and
the configuration names now live in ``infrastructure.config``,
``infrastructure.backend`` and ``infrastructure.backends``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infrastructure.backend import event_store_env
from infrastructure.backends import open_backend
from infrastructure.config import (
    DEFAULT_AMQP_URL,
    DEFAULT_DATABASE_URL,
    KEEPALIVE,
    ConfigurationError,
    amqp_url,
    database_url,
    parse_database_url,
    postgres_conninfo,
)
from infrastructure.log import EventLog, open_log_of

if TYPE_CHECKING:
    from application.service import Clock, Writ
    from domain.catalog import Catalog

__all__ = [
    "DEFAULT_AMQP_URL", "DEFAULT_DATABASE_URL", "KEEPALIVE", "ConfigurationError", "amqp_url", "database_url",
    "open_log", "open_writ", "postgres_conninfo", "writ_env",
]


def writ_env(url: str | None = None, *, create_tables: bool = True) -> dict[str, str]:
    """The eventsourcing environment for a database URL."""
    return event_store_env(parse_database_url(url), create_tables=create_tables)


def open_writ(catalog: Catalog, url: str | None = None, *, clock: Clock | None = None,
              create_tables: bool = True) -> Writ:
    """A ready command service on the configured database."""
    return open_backend(url).open_writ(catalog, clock=clock, create_tables=create_tables)


def open_log(url: str | None = None) -> EventLog:
    """Writ's notification log alone, for workers that follow it (close it when done)."""
    return open_log_of(open_backend(url), owns_backend=True)

"""The log's identity: a random id drawn once per event store, and kept with the events.

A follower records the identity of the log it follows beside its position
(``infrastructure.positions``). A log made afresh (the SQLite file deleted and
created again, the events' tables dropped and made again) has another
identity, so a follower left from the old log sees that it is not following
this one: the projection starts its views again from the new log's first event
(``projections.runner``) and readers refuse views of another log
(``PROJECTION_LOG_CHANGED``) until then, instead of serving records the log no
longer has. The identity lives in the events' own database (the SQLite file,
the PostgreSQL schema), so it goes wherever the events go: a copy of the file
or a restored dump of the schema keeps it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from infrastructure.sql import SQL

if TYPE_CHECKING:
    from infrastructure.backend import Backend

TABLE = "writ_log_identity"

SQLITE_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (one INTEGER PRIMARY KEY CHECK (one = 1), identity TEXT NOT NULL, "
    "created_at TEXT NOT NULL)",
]
"""Made with the event store's tables; the identity is drawn just after (the recorders' ``create_table``), only
when there is none: on SQLite a write among the create statements, which every process runs at start, would
contend with the writers (a deferred transaction that read first cannot take the write lock: "database is
locked")."""
SQLITE_DRAW = (
    f"INSERT OR IGNORE INTO {TABLE} (one, identity, created_at) "  # noqa: S608 - fixed table name
    "VALUES (1, lower(hex(randomblob(16))), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))"
)

POSTGRES_TABLES = (
    "CREATE TABLE IF NOT EXISTS {table} (one integer PRIMARY KEY CHECK (one = 1), identity text NOT NULL, "
    "created_at timestamptz NOT NULL DEFAULT now())",
)
"""The same on PostgreSQL (``{table}``: the table, composed in as an identifier)."""
POSTGRES_DRAW = (
    "INSERT INTO {table} (one, identity) VALUES (1, replace(gen_random_uuid()::text, '-', '')) "
    "ON CONFLICT DO NOTHING"
)

SELECT = f"SELECT identity FROM {TABLE}"  # noqa: S608 - fixed table name


def stored_identity(backend: Backend) -> str | None:
    """The identity of the log in ``backend``'s event store, read on a connection of its own (for readers that
    hold no event log); None before the event store's tables exist."""
    database = backend.database()
    try:
        with database.reading() as tx:
            if not backend.existing_columns(tx, TABLE):
                return None
            row = tx.one(SQL("SELECT identity FROM {}").format(backend.table(TABLE)))
    finally:
        database.close()
    return None if row is None else str(row[0])

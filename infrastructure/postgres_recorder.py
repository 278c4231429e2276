"""Writ's PostgreSQL application recorder (see ``infrastructure.persistence`` for what it adds).

Its own module: importing it loads psycopg and the library's PostgreSQL module,
which a SQLite deployment (the embedded default, every CLI call) should not pay for.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import InterfaceError, OperationalError
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from infrastructure.persistence import LogQueries, PositionLookup


class WritPostgresRecorder(PostgresApplicationRecorder, PositionLookup, LogQueries):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]:
        """The library's query and result, fetched as binary tuples.

        The library fetches dict rows in text format, which sends each ``state`` as hex (twice its
        size) and builds a dict per row; the workers read the log in batches of thousands, where that
        was about half the cost of reading. Same statement, same ``Notification``s.
        """
        conditions: list[SQL] = []
        params: list[Any] = []
        if start is not None:
            conditions.append(SQL("notification_id >= %s" if inclusive_of_start else "notification_id > %s"))
            params.append(start)
        if stop is not None:
            conditions.append(SQL("notification_id <= %s"))
            params.append(stop)
        if topics:
            conditions.append(SQL("topic = ANY(%s)"))
            params.append(list(topics))
        where = SQL(" WHERE ") + SQL(" AND ").join(conditions) if conditions else SQL("")
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table}"
            "{where} ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name), where=where)
        params.append(limit)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row, binary=True) as cursor:
            cursor.execute(statement, params, prepare=True)
            return [Notification(id=notification_id, originator_id=originator_id, originator_version=version,
                                 topic=topic, state=state)
                    for notification_id, originator_id, version, topic, state in cursor.fetchall()]

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        statement = SQL(
            "SELECT notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (originator_id, version), prepare=True)
            row = cursor.fetchone()
        return None if row is None else int(row["notification_id"])

    def purged_among(self, record_ids: Collection[UUID]) -> set[UUID]:
        if not record_ids:
            return set()
        statement = SQL(
            "SELECT DISTINCT originator_id FROM {schema}.{table} "
            "WHERE topic = %s AND originator_id = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (self.PURGED_TOPIC, list(record_ids)), prepare=True)
            return {UUID(str(row["originator_id"])) for row in cursor.fetchall()}

    def count_after(self, position: int, topics: Sequence[str]) -> int:
        statement = SQL(
            "SELECT COUNT(*) AS n FROM {schema}.{table} WHERE notification_id > %s AND topic = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (position, list(topics)))
            row = cursor.fetchone()
        return 0 if row is None else int(row["n"])

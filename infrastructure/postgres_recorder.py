"""Writ's PostgreSQL application recorder (see ``infrastructure.persistence`` for what it adds).

A save is one autocommit statement calling ``<table>_insert``, a plpgsql
function created with the tables (under the schema-creation lock): it sets the
lock timeout, takes the events table's EXCLUSIVE lock (so notification order
is commit order), NOTIFYs the table's channel and inserts, returning the
notification ids. One round trip instead of the library's pipeline of about
fourteen, and no pipeline mode: psycopg's pipelined ``Pipeline.sync()`` can
leave part of a large INSERT unsent and wait for a reply forever while holding
that lock (seen from about 6 MB; the threshold depends on the socket's send
buffer). A save of more than ``PART`` events calls the function once per part
of ``PART``, in one transaction: the first call takes the lock, and while the
database inserts a part (in a helper thread), this process encodes the next
(``application.encoding``); each part is chained as a save of its own. Its own
module: importing it loads psycopg, which a SQLite deployment never needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import cached_property
from typing import Any, NamedTuple
from uuid import UUID

import psycopg.errors
from eventsourcing.persistence import DatabaseError as ESDatabaseError
from eventsourcing.persistence import DataError as ESDataError
from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import InterfaceError as ESInterfaceError
from eventsourcing.persistence import InternalError as ESInternalError
from eventsourcing.persistence import Notification, PersistenceError, StoredEvent
from eventsourcing.persistence import NotSupportedError as ESNotSupportedError
from eventsourcing.persistence import OperationalError as ESOperationalError
from eventsourcing.persistence import ProgrammingError as ESProgrammingError
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.utils import retry
from psycopg import Connection, Cursor, Pipeline
from psycopg.pq import Format
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from application.ports import Part, RecordRows
from domain.errors import ConfigurationError, ServiceUnavailableError
from infrastructure.append_only import only_granted, postgres_guards
from infrastructure.checkpoints import COLUMNS as CHECKPOINT_COLUMNS
from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.erasures import COLUMNS as ERASURE_COLUMNS
from infrastructure.erasures import TABLE as ERASURES
from infrastructure.key_table import (
    POSTGRES_KEY_PARAMETERS,
    REWRAP_FUNCTION,
    REWRAP_PARAMETERS,
    KeyChanges,
    after_commit,
    key_changes,
    postgres_key_arguments,
    postgres_key_changes,
    postgres_rewrap_function,
    postgres_tables,
)
from infrastructure.log_chain import CHAIN, MANIFEST, POSTGRES_SAVE, POSTGRES_TABLES, SAVES_CONFLICT
from infrastructure.log_identity import POSTGRES_DRAW as DRAW_IDENTITY
from infrastructure.log_identity import POSTGRES_TABLES as IDENTITY_TABLES
from infrastructure.log_identity import TABLE as IDENTITY
from infrastructure.persistence import (
    FIRST,
    LAST_VERSION,
    SINCE,
    SNAPSHOT,
    WITHHELD,
    Histories,
    LogQueries,
    PositionLookup,
    TaggedSaves,
    first_claims,
    named_by,
    record_rows,
    stored_event,
)
from infrastructure.pg_arrays import BIGINTS, BYTEAS, INTS, TEXTS, UUIDS
from infrastructure.pg_call import PreparedCall, bigints
from infrastructure.sql import POSTGRES
from infrastructure.vault import Vault
from infrastructure.writer_keys import SaveTag

logger = logging.getLogger(__name__)

PART = 1000
"""Events per call of the insert function: a bigger save is inserted part by part in one transaction."""


PARAMETERS: tuple[tuple[str, str, Format], ...] = (
    ("p_ids", "uuid[]", Format.BINARY),
    ("p_versions", "bigint[]", Format.BINARY),
    ("p_topics", "text[]", Format.BINARY),
    ("p_states", "bytea[]", Format.BINARY),
    ("p_lock_timeout", "text", Format.TEXT),
    *((name, kind, Format.BINARY) for name, kind in POSTGRES_KEY_PARAMETERS),
    ("p_mac", "bytea", Format.BINARY),
    ("p_writer_key", "text", Format.TEXT),
    ("p_groups", "int[]", Format.BINARY),
)
"""The insert function's parameters, (name, SQL type, wire format) each, in order: its signature and the
save's call are both made from this (``_insert_part`` sends the values in this order)."""

PREVIOUS_SIGNATURES = (
    "({events}[], text)",
    "({events}[], text, uuid[], bytea[], text[], uuid[], uuid[], uuid[])",
    "(uuid[], bigint[], text[], bytea[], text, uuid[], bytea[], text[], uuid[], uuid[], uuid[])",
    "(uuid[], bigint[], text[], bytea[], text, uuid[], bytea[], text[], uuid[], uuid[], uuid[], int[])",
)
"""The insert function's parameters in earlier releases (``{events}``: the library's composite type of a stored
event): each dropped at the upgrade, so no caller can reach an old function (the later two destroyed whichever
keys they were told to, and wrote saves without a tag; the first two took the events as composite values), and
the name names one function (``GRANT EXECUTE ON FUNCTION <schema>.writ_events_insert``, as docs/operations.md
grants it, needs that). A type no longer there is skipped (``IF EXISTS``)."""


def create_insert_function_sql(*, schema: str, table: str, function: str, channel: str) -> Composed:
    """The save as one statement: SET LOCAL lock_timeout, LOCK TABLE ... IN EXCLUSIVE MODE (commit order =
    notification order), NOTIFY, the save's key changes (``infrastructure.key_table``), the INSERT, its
    manifest rows and chain row with the save's tag (``infrastructure.log_chain``), returning the notification
    ids. ``SECURITY DEFINER`` with a fixed ``search_path``: it runs as the tables' owner, so a runtime role
    needs no UPDATE on the key table (``infrastructure.append_only``). Created by ``create_table`` only, i.e.
    under the schema-creation advisory lock (concurrent CREATE OR REPLACE FUNCTION: "tuple concurrently
    updated"). Must not contain the text "CREATE TYPE" (the library runs those apart)."""
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{function}({parameters}) "
        "RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $writ$\n"
        "DECLARE\n"
        "    v_purged uuid[];\n"
        "    v_conflicts text;\n"
        "    v_positions bigint[];\n"
        "    v_last bigint;\n"
        "    v_first bigint;\n"
        "    v_count bigint;\n"
        "    v_digest bytea;\n"
        "    v_previous bytea;\n"
        "BEGIN\n"
        "    PERFORM set_config('lock_timeout', p_lock_timeout, true);\n"
        "    PERFORM set_config('work_mem', '64MB', true);\n"
        "    LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;\n"
        "    NOTIFY {channel};\n"
        "{key_changes}" + POSTGRES_SAVE + "END;\n"
        "$writ$"
    ).format(
        schema=Identifier(schema),
        function=Identifier(function),
        table=Identifier(table),
        channel=Identifier(channel),
        parameters=SQL(", ".join(f"{name} {kind}" for name, kind, _ in PARAMETERS)),
        key_changes=SQL(postgres_key_changes(schema)),
        manifest=Identifier(schema, MANIFEST),
        chain=Identifier(schema, CHAIN),
    )


class WritPostgresRecorder(
    PostgresApplicationRecorder, PositionLookup, LogQueries, Histories, TaggedSaves
):
    """The library's recorder, but a save is one autocommit statement calling a plpgsql function (a big one,
    one such statement per part in one transaction): no pipeline mode (psycopg's pipelined Pipeline.sync()
    can leave part of a big INSERT unsent and wait for a reply forever, holding the table's EXCLUSIVE lock),
    one round trip, and the save's data keys inserted or destroyed in the same statement. (A bulk update's
    reads are pipelined: ``read_histories`` says why they cannot stall so.)"""

    vault: Vault | None = None

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.kept = KeptConnection(datastore)
        self._lock_timeout = f"{self.datastore.lock_timeout}s".encode()
        self.insert_function_name = f"{self.events_table_name}_insert"
        self.check_identifier_length(self.insert_function_name)
        self.sql_create_statements.extend(
            Composed([SQL(statement)]) for statement in postgres_tables(self.datastore.schema)
        )
        self.sql_create_statements.extend(
            SQL(statement).format(
                manifest=Identifier(self.datastore.schema, MANIFEST),
                chain=Identifier(self.datastore.schema, CHAIN),
            )
            for statement in POSTGRES_TABLES
        )
        self.sql_create_statements.extend(
            SQL(statement).format(table=Identifier(self.datastore.schema, IDENTITY))
            for statement in IDENTITY_TABLES
        )
        self.sql_create_statements.extend(
            SQL("CREATE TABLE IF NOT EXISTS {} " + columns).format(
                Identifier(self.datastore.schema, table)
            )
            for table, columns in ((CHECKPOINTS, CHECKPOINT_COLUMNS), (ERASURES, ERASURE_COLUMNS))
        )
        snapshots = PostgresAggregateRecorder(
            datastore, events_table_name=self.snapshots_table_name
        )
        self.sql_create_statements.extend(  # the library's own DDL, so the guards below find the table
            statement
            for statement in snapshots.sql_create_statements
            if "CREATE TYPE" not in statement.as_string()
        )
        self.sql_create_statements.extend(
            Composed([SQL(statement)])
            for statement in postgres_guards(
                self.datastore.schema,
                self.events_table_name,
                self.snapshots_table_name,
                self.insert_function_name,
            )
        )
        self.sql_create_statements.extend(
            Composed([SQL(statement)])
            for statement in (
                postgres_rewrap_function(self.datastore.schema),
                only_granted(
                    self.datastore.schema,
                    REWRAP_FUNCTION,
                    [kind for _, kind in REWRAP_PARAMETERS],
                ),
            )
        )
        self.sql_create_statements.extend(
            SQL("DROP FUNCTION IF EXISTS {schema}.{function}" + signature).format(
                schema=Identifier(self.datastore.schema),
                function=Identifier(self.insert_function_name),
                events=Identifier(self.datastore.schema, self.stored_event_type_name),
            )
            for signature in PREVIOUS_SIGNATURES
        )
        self.sql_create_statements.extend(
            (
                create_insert_function_sql(
                    schema=self.datastore.schema,
                    table=self.events_table_name,
                    function=self.insert_function_name,
                    channel=self.channel_name,
                ),
                Composed(
                    [
                        SQL(
                            only_granted(
                                self.datastore.schema,
                                self.insert_function_name,
                                [kind for _, kind, _ in PARAMETERS],
                            )
                        )
                    ]
                ),
            )
        )
        self._insert_call = PreparedCall(
            "writ_insert",  # on the kept connection, which only this recorder uses
            SQL("SELECT notification_id FROM {schema}.{function}({arguments}) AS notification_id")
            .format(
                schema=Identifier(self.datastore.schema),
                function=Identifier(self.insert_function_name),
                arguments=SQL(
                    ", ".join(f"${n}::{kind}" for n, (_, kind, _) in enumerate(PARAMETERS, 1))
                ),
            )
            .as_bytes(None),
            [(kind, form) for _, kind, form in PARAMETERS],
        )

    @retry((ESInterfaceError, ESOperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One call of the insert function; a save of more than ``PART`` events, one call per part in one
        transaction, each part read (and so, from an ``application.encoding.MadeOnRead`` save, encoded) while a
        helper thread has the database insert the part before."""
        if not stored_events:
            return None
        if kwargs.get("tracking") is not None:
            raise NotImplementedError("Writ's event store records no tracking with its events")
        if len(stored_events) <= PART:
            (positions,) = self.insert_groups([stored_events])
            if positions is None:
                raise ESIntegrityError("the save's events conflict with stored events")
            return positions
        done: list[tuple[Sequence[StoredEvent], KeyChanges]] = []
        positions = []
        with (
            self.kept.connection() as conn,
            conn.transaction(),
            ThreadPoolExecutor(1, thread_name_prefix="writ-insert") as inserter,
        ):
            inserting: Future[list[int]] | None = None
            for start in range(0, len(stored_events), PART):
                part = stored_events[start : start + PART]
                done.append((part, key_changes(self.vault, part)))
                if inserting is not None:
                    positions += inserting.result()
                inserting = inserter.submit(
                    self._insert_part, conn, *done[-1], self.save_tag(part), [0] * len(part)
                )
            assert inserting is not None
            positions += inserting.result()
        self._committed(done)
        return positions

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        """Several saves (each a command's) in ONE call of the insert function: one transaction, one lock hold,
        one flush. A group with an event stored already, or one an earlier group holds, is left out (``None``
        in its place: an optimistic-concurrency conflict for that group alone): the function reports every
        such group and rolls back, and the others are sent again at once, still in one call."""
        placed: list[list[int] | None] = [None] * len(groups)
        live = first_claims(groups)
        while live:
            events = [event for index in live for event in groups[index]]
            tags = [tag for tag, index in enumerate(live) for _ in groups[index]]
            # made before the call: the lock is held through one round trip only
            changes, tag = key_changes(self.vault, events), self.save_tag(events)
            try:
                with self.kept.connection() as conn:
                    positions = self._insert_part(conn, events, changes, tag, tags)
            except ESIntegrityError as error:
                conflicted = conflicting_tags(error)
                if not conflicted:
                    raise
                live = [index for tag, index in enumerate(live) if tag not in conflicted]
                continue
            self._committed([(events, changes)])
            start = 0
            for index in live:
                placed[index] = positions[start : start + len(groups[index])]
                start += len(groups[index])
            return placed
        return placed

    def close(self) -> None:
        """Close the connection kept for saves (the application closes the pool)."""
        self.kept.close()

    def _committed(self, done: list[tuple[Sequence[StoredEvent], KeyChanges]]) -> None:
        """After the commit: the vault learns which keys are stored and which are gone; purged keys' partitions
        are rewritten."""
        for events, changes in done:
            after_commit(self.vault, events, changes)
        destroyed = [record for _, changes in done for record in changes.destroyed]
        # the partitions that held them rewritten (``VACUUM FULL``)
        if destroyed and self.vault is not None:
            self.vault.keys.erase(destroyed)

    def _insert_part(
        self,
        conn: Connection[Any],
        stored_events: Sequence[StoredEvent],
        changes: KeyChanges,
        tag: SaveTag,
        tags: list[int],
    ) -> list[int]:
        # packed by Writ (infrastructure.pg_arrays), sent as they are (infrastructure.pg_call)
        params = (
            UUIDS([e.originator_id for e in stored_events]).data,
            BIGINTS([e.originator_version for e in stored_events]).data,
            TEXTS([e.topic for e in stored_events]).data,
            BYTEAS([e.state for e in stored_events]).data,
            self._lock_timeout,
            *[packed.data for packed in postgres_key_arguments(changes.pending)],
            tag.mac,
            tag.key_id.encode(),
            INTS(tags).data,
        )
        try:
            return bigints(self._insert_call.run(conn, params, prepared=self.kept.holds(conn)))
        except psycopg.errors.LockNotAvailable as error:
            # not a failure of this save's rows, nor one another attempt at once would mend: every save of its
            # batch (or every part of its bulk) would wait as long again
            raise ServiceUnavailableError(
                f"The save waited longer than its lock_timeout ({self._lock_timeout.decode()}) for a lock another "
                f"session holds in schema {self.datastore.schema!r} (the events table's, or a key table's while a "
                f"purge is compacted); nothing was written: retry, and look for that session in pg_locks. "
                f"{str(error).splitlines()[0]}"
            ) from error
        except psycopg.errors.InsufficientPrivilege as error:
            # a role that may read but not write (or was never granted the insert function): nothing written; no
            # name of the store's to a caller of the API (PostgreSQL's own log has the statement and the error)
            not_granted = (error.diag.message_primary or "").startswith(
                "permission denied for function"
            )
            raise ServiceUnavailableError(
                "This service's database role may not save: it needs EXECUTE on the event store's insert "
                "function (docs/operations.md, PostgreSQL roles); nothing was written"
                if not_granted
                else "The database refused the save a privilege; nothing was written (PostgreSQL's log says which)"
            ) from None
        except psycopg.errors.UndefinedFunction:
            raise ConfigurationError(
                f"The event store in schema {self.datastore.schema!r} predates this version of Writ: open it "
                "once with table creation on (the default; CREATE_TABLE=y) to upgrade it"
            ) from None

    @retry((ESInterfaceError, ESOperationalError), max_attempts=10, wait=0.2)
    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's query and result, fetched as binary tuples.

        The library fetches dict rows in text format, which sends each ``state`` as hex (twice its
        size) and builds a dict per row; the workers read the log in batches of thousands, where that
        was about half the cost of reading. Same statement, same ``Notification``s.
        """
        conditions: list[SQL] = []
        params: list[Any] = []
        if start is not None:
            conditions.append(
                SQL("notification_id >= %s" if inclusive_of_start else "notification_id > %s")
            )
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
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            where=where,
        )
        params.append(limit)
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(statement, params, prepare=True)
            return [
                Notification(
                    id=notification_id,
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=state,
                )
                for notification_id, originator_id, version, topic, state in cursor.fetchall()
            ]

    def select_rows(
        self, after: int, until: int | None, limit: int
    ) -> list[tuple[int, UUID, int, str, bytes]]:
        statement = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            # no upper bound in SQL: a range makes the planner sort all of it on a freshly filled table first
            cursor.execute(statement, (after, limit), prepare=True)
            rows = cursor.fetchall()
        return rows if until is None else [row for row in rows if row[0] <= until]

    def states_before(
        self, after: int, until: int, topics: Sequence[str]
    ) -> list[tuple[Any, int, bytes]]:
        statement = SQL(
            "SELECT DISTINCT ON (e.originator_id) e.originator_id, e.originator_version, e.state FROM {schema}.{table} "
            "AS e WHERE e.notification_id <= %s AND e.topic = ANY(%s) AND e.originator_id IN (SELECT r.originator_id "
            "FROM {schema}.{table} AS r WHERE r.notification_id > %s AND r.notification_id <= %s) "
            "ORDER BY e.originator_id, e.notification_id DESC"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            conn.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            # one process: the cores are the verify workers' (parallel: 2x CPU)
            cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            cursor.execute(statement, (after, list(topics), after, until))
            return cursor.fetchall()

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        statement = SQL(
            "SELECT notification_id FROM {schema}.{table} "
            "WHERE originator_id = %s AND originator_version = %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (originator_id, version), prepare=True)
            row = cursor.fetchone()
        return None if row is None else int(row["notification_id"])

    def first_ids(self, low: UUID, high: UUID, topic: str, limit: int) -> list[UUID]:
        statement = SQL(
            "SELECT originator_id FROM {schema}.{table} WHERE originator_id BETWEEN %s AND %s "
            "AND originator_version = 1 AND topic = %s ORDER BY originator_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (low, high, topic, limit))
            return [UUID(str(row["originator_id"])) for row in cursor.fetchall()]

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

    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """Each part's keys, latest snapshots and events since: three queries sent together (pipeline mode),
        the next part's sent as soon as this part's rows are in and before it is handed over, so the server
        finds them while the caller checks this part. The save's stall (see the class) cannot happen here:
        rows are only awaited after a flush of everything sent, and each part's Sync goes out alone, once
        its rows are in."""
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline:
            waiting: _SentPart | None = None
            for part in parts:
                ready = None if waiting is None else self._received(waiting, pipeline)
                waiting = self._sent(conn, list(part))
                if ready is not None:
                    yield ready
            if waiting is not None:
                yield self._received(waiting, pipeline)

    def read_record(
        self,
        record_id: UUID,
        version: int | None = None,
        *,
        tenant: str | None = None,
        model: str | None = None,
    ) -> RecordRows:
        params = {
            "id": record_id,
            "version": LAST_VERSION if version is None else version,
            "named": named_by(tenant, model),
        }
        with (
            self.datastore.get_connection() as conn,
            conn.cursor(row_factory=tuple_row, binary=True) as cursor,
        ):
            cursor.execute(self._record_statement, params, prepare=True)
            rows = cursor.fetchall()
        return record_rows(((row[0], stored_event(*row[1:])) for row in rows), tenant, model)

    @cached_property
    def _record_statement(self) -> bytes:
        return (
            SQL(RECORD_READ)
            .format(
                events=Identifier(self.datastore.schema, self.events_table_name),
                snapshots=Identifier(self.datastore.schema, self.snapshots_table_name),
                first=SQL(str(FIRST)),
                snapshot=SQL(str(SNAPSHOT)),
                since=SQL(str(SINCE)),
                withheld=SQL(str(WITHHELD)),
            )
            .as_bytes(None)
        )

    def _sent(self, conn: Connection[Any], ids: list[UUID]) -> _SentPart:
        keys = (
            []
            if self.vault is None
            else [
                _sending(conn, statement.render(POSTGRES).encode(), params)
                for statement, params in self.vault.key_queries(ids)
            ]
        )
        packed = UUIDS(ids)  # packed once for both queries (infrastructure.pg_arrays)
        return _SentPart(
            ids,
            keys,
            _sending(conn, self._latest_snapshots, (packed,)),
            _sending(conn, self._events_since, (packed,)),
        )

    def _received(self, sent: _SentPart, pipeline: Pipeline) -> Part:
        if self.vault is not None:  # the part's keys re-read before anything of theirs is opened
            self.vault.refresh(sent.ids, [row for cursor in sent.keys for row in _rows(cursor)])
        part = (
            [stored_event(*row) for row in _rows(sent.snapshots)],
            [stored_event(*row) for row in _rows(sent.events)],
        )
        pipeline.sync()  # ends the part's implicit transaction
        return part

    @property
    def _latest_snapshots(self) -> Composed:
        return SQL(
            "SELECT DISTINCT ON (originator_id) originator_id, originator_version, topic, state FROM {schema}.{table} "
            "WHERE originator_id = ANY(%b) ORDER BY originator_id, originator_version DESC"
        ).format(
            schema=Identifier(self.datastore.schema), table=Identifier(self.snapshots_table_name)
        )

    @property
    def _events_since(self) -> Composed:
        return SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(%b::uuid[]) AS w(id) "
            "JOIN {schema}.{table} AS e ON e.originator_id = w.id AND e.originator_version >= COALESCE("
            "(SELECT max(s.originator_version) FROM {schema}.{snapshots} AS s WHERE s.originator_id = w.id), 1) "
            "ORDER BY e.originator_id, e.originator_version"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            snapshots=Identifier(self.snapshots_table_name),
        )

    def create_table(self) -> None:
        super().create_table()
        self.log_identity()  # drawn with the tables (read first: no write at every start)

    def log_identity(self) -> str:
        table = Identifier(self.datastore.schema, IDENTITY)
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(SQL("SELECT identity FROM {}").format(table))
            row = cursor.fetchone()
            if row is None:  # the first to ask draws it (a race: one wins)
                cursor.execute(SQL(DRAW_IDENTITY).format(table=table))
                cursor.execute(SQL("SELECT identity FROM {}").format(table))
                row = cursor.fetchone()
        assert row is not None
        return str(row[0])

    def last_position(self, topics: Sequence[str]) -> int:
        statement = SQL(
            "SELECT notification_id FROM {schema}.{table} WHERE topic = ANY(%s) ORDER BY notification_id DESC LIMIT 1"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(statement, (list(topics),))
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def count_after(self, position: int, topics: Sequence[str]) -> int:
        statement = SQL(
            "SELECT COUNT(*) AS n FROM {schema}.{table} WHERE notification_id > %s AND topic = ANY(%s)"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (position, list(topics)))
            row = cursor.fetchone()
        return 0 if row is None else int(row["n"])


RECORD_READ = (
    "WITH first AS (SELECT originator_id, originator_version, topic, state FROM {events} "
    "WHERE originator_id = %(id)s AND originator_version = 1), "
    "named AS (SELECT 1 FROM first WHERE %(named)s::bytea IS NULL OR position(%(named)s::bytea IN state) > 0), "
    "s AS (SELECT originator_id, originator_version, topic, state FROM {snapshots} "
    "WHERE EXISTS (SELECT 1 FROM named) AND originator_id = %(id)s AND originator_version <= %(version)s::bigint "
    "ORDER BY originator_version DESC LIMIT 1) "
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM named) THEN {first} ELSE {withheld} END, "
    "originator_id, originator_version, topic, state FROM first "
    "UNION ALL SELECT {snapshot}, originator_id, originator_version, topic, state FROM s "
    "UNION ALL SELECT {since}, originator_id, originator_version, topic, state FROM {events} "
    "WHERE EXISTS (SELECT 1 FROM named) AND originator_id = %(id)s AND originator_version > 1 "
    "AND originator_version <= %(version)s::bigint "
    "AND originator_version >= COALESCE((SELECT originator_version FROM s), 1) ORDER BY 1, 3"
)
"""``read_record``: the first event; unless it does not name what was asked for, the latest snapshot at or before
the version and the events since (``Histories.read_record``)."""


class KeptConnection:
    """One connection that a process's saves take one after the other (group commit stores one batch at a time),
    made as the pool makes its own (autocommit, the same settings): a save waits for no pool checkout, about a
    tenth of a lone create's CPU. While a save holds it (a bulk's parts on another thread), the next save takes
    one from the pool; a connection that broke is made again for the next save. One connection per process
    beyond the pool's."""

    def __init__(self, datastore: PostgresDatastore) -> None:
        self._datastore = datastore
        self._lock = threading.Lock()
        self._conn: Connection[Any] | None = None

    @contextmanager
    def connection(self) -> Iterator[Connection[Any]]:
        if not self._lock.acquire(blocking=False):
            with self._datastore.get_connection() as pooled:
                yield pooled
            return
        try:
            if self._conn is None or self._conn.closed or self._conn.broken:
                self._conn = self._datastore.pool._connect()
                # psycopg prepares nothing here, so it never deallocates the save's own prepared call
                self._conn.prepare_threshold = None
            try:
                yield self._conn
            except psycopg.Error as error:
                raise next(mine for theirs, mine in _LIBRARY_ERRORS if isinstance(error, theirs))(
                    str(error)
                ) from error
        finally:
            self._lock.release()

    def holds(self, conn: Connection[Any]) -> bool:
        """Whether ``conn`` is the kept connection (not one of the pool's)."""
        return conn is self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


_LIBRARY_ERRORS: tuple[tuple[type[psycopg.Error], type[Exception]], ...] = (
    (psycopg.InterfaceError, ESInterfaceError),
    (psycopg.OperationalError, ESOperationalError),
    (psycopg.DataError, ESDataError),
    (psycopg.IntegrityError, ESIntegrityError),
    (psycopg.InternalError, ESInternalError),
    (psycopg.ProgrammingError, ESProgrammingError),
    (psycopg.NotSupportedError, ESNotSupportedError),
    (psycopg.DatabaseError, ESDatabaseError),
    (psycopg.Error, PersistenceError),
)
"""Driver errors as ``PostgresDatastore.get_connection`` maps them (the first that matches)."""


def conflicting_tags(error: ESIntegrityError) -> set[int]:
    """The groups the insert function reported conflicting (empty: another integrity error)."""
    cause = error.__cause__
    if not isinstance(cause, psycopg.Error) or cause.diag.sqlstate != SAVES_CONFLICT:
        return set()
    return {int(tag) for tag in (cause.diag.message_detail or "").split(",") if tag}


class _SentPart(NamedTuple):
    ids: list[UUID]
    keys: list[Cursor[tuple[Any, ...]]]
    snapshots: Cursor[tuple[Any, ...]]
    events: Cursor[tuple[Any, ...]]


def _sending(
    conn: Connection[Any], statement: bytes | Composed, params: Sequence[Any]
) -> Cursor[tuple[Any, ...]]:
    """A cursor whose statement is sent (in pipeline mode: its rows are read later)."""
    cursor = conn.cursor(row_factory=tuple_row, binary=True)
    cursor.execute(statement, params)
    return cursor


def _rows(cursor: Cursor[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    with cursor:
        return cursor.fetchall()

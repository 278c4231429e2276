"""Writ's SQLite application recorder: the library's, with the queries and the save path Writ adds.

What it adds, and the parts it shares with the PostgreSQL recorder (``infrastructure.postgres_recorder``),
is described in ``infrastructure.persistence``; only the SQL is SQLite's here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from application.ports import Part, RecordRows
from infrastructure.checkpoints import COLUMNS as CHECKPOINT_COLUMNS
from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.database import column_uuid
from infrastructure.erasures import COLUMNS as ERASURE_COLUMNS
from infrastructure.erasures import TABLE as ERASURES
from infrastructure.key_table import SQLITE_TABLES, after_commit, key_changes, sqlite_apply
from infrastructure.log_chain import SQLITE_TABLES as LOG_CHAIN_TABLES
from infrastructure.log_chain import sqlite_record, sqlite_upgrade
from infrastructure.log_identity import SELECT as IDENTITY
from infrastructure.log_identity import SQLITE_DRAW as DRAW_IDENTITY
from infrastructure.log_identity import SQLITE_TABLES as IDENTITY_TABLES
from infrastructure.persistence import (
    LAST_VERSION,
    Histories,
    LogQueries,
    PositionLookup,
    TaggedSaves,
    first_claims,
    named_by,
    names_another,
    stored_event,
)
from infrastructure.shredding import truncate_wal

if TYPE_CHECKING:
    from eventsourcing.sqlite import SQLiteCursor

    from infrastructure.vault import Vault


class WritSQLiteRecorder(
    SQLiteApplicationRecorder, PositionLookup, LogQueries, Histories, TaggedSaves
):
    vault: Vault | None = None

    def select_rows(
        self, after: int, until: int | None, limit: int
    ) -> list[tuple[int, UUID, int, str, bytes]]:
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "  # noqa: S608
            "WHERE rowid > ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, limit))
            return [
                (row[0], UUID(row[1]), row[2], row[3], bytes(row[4]))
                for row in cursor.fetchall()
                if until is None or row[0] <= until
            ]

    def states_before(
        self, after: int, until: int, topics: Sequence[str]
    ) -> list[tuple[Any, int, bytes]]:
        events = self.events_table_name
        statement = (
            f"SELECT originator_id, originator_version, state FROM {events} AS e WHERE rowid = "  # noqa: S608
            f"(SELECT MAX(m.rowid) FROM {events} AS m WHERE m.originator_id = e.originator_id AND m.rowid <= ? AND "
            f"m.topic IN (SELECT value FROM json_each(?))) AND originator_id IN (SELECT originator_id FROM {events} "
            "WHERE rowid > ? AND rowid <= ?)"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, orjson.dumps(list(topics)).decode(), after, until))
            return [(UUID(row[0]), row[1], bytes(row[2])) for row in cursor.fetchall()]

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *SQLITE_TABLES,
            *LOG_CHAIN_TABLES,
            *IDENTITY_TABLES,
            f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} {CHECKPOINT_COLUMNS}",
            f"CREATE TABLE IF NOT EXISTS {ERASURES} {ERASURE_COLUMNS}",
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        sqlite_upgrade(c)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """One save (``insert_groups`` of one group); a conflict with a stored event is an ``IntegrityError``."""
        if kwargs.get("tracking") is not None:
            raise NotImplementedError("Writ's event store records no tracking with its events")
        if not stored_events:
            return None
        (positions,) = self.insert_groups([stored_events])
        if positions is None:
            raise IntegrityError("the save's events conflict with stored events")
        return positions

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        """Several saves (each a command's) in one transaction, with their key changes, manifest rows and one
        log-chain link tagged under the writer key: one commit (one fsync) for all of them. Each group is
        inserted under a savepoint: one whose event is stored already (or held by an earlier group) is rolled
        back alone, ``None`` in its place. After a purge the write-ahead log is truncated (it holds copies of the
        pages the destroyed key was on)."""
        placed: list[list[int] | None] = [None] * len(groups)
        with self.datastore.transaction(commit=True) as cursor:
            for index in first_claims(groups):
                cursor.execute("SAVEPOINT writ_save")
                try:
                    placed[index] = list(self._insert_events(cursor, groups[index]) or ())
                except sqlite3.IntegrityError:
                    cursor.execute("ROLLBACK TO writ_save")
                cursor.execute("RELEASE writ_save")
            stored = [
                (positions, groups[index])
                for index, positions in enumerate(placed)
                if positions is not None
            ]
            inserted = [event for _, group in stored for event in group]
            changes = key_changes(self.vault, inserted)
            sqlite_apply(cursor, changes)
            if inserted:  # one tagged link of the log chain for the whole batch
                tag = self.save_tag(inserted)
                sqlite_record(
                    cursor,
                    [
                        (position, column_uuid(e.originator_id), e.originator_version, hashed)
                        for position, e, hashed in zip(
                            [p for ps, _ in stored for p in ps], inserted, tag.hashes, strict=True
                        )
                    ],
                    tag,
                )
        after_commit(self.vault, inserted, changes)
        if changes.destroyed:
            # truncated through the backend: pending while a reader holds it
            if self.vault is not None:
                self.vault.keys.erase(changes.destroyed)
            else:
                truncate_wal(self.datastore.pool.db_name)
        return placed

    def create_table(self) -> None:
        super().create_table()
        self.log_identity()  # drawn with the tables (read first: no write at every start)

    def log_identity(self) -> str:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(IDENTITY)
            row = cursor.fetchone()
        if row is not None:
            return str(row[0])
        # the first to ask draws it (a race: one wins)
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(DRAW_IDENTITY)
        return self.log_identity()

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        statement = (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608 - fixed table name
            "WHERE originator_id = ? AND originator_version = ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (originator_id.hex, version))
            row = cursor.fetchone()
        return None if row is None else int(row[0])

    def purged_among(self, record_ids: Collection[UUID]) -> set[UUID]:
        if not record_ids:
            return set()
        statement = (
            f"SELECT DISTINCT originator_id FROM {self.events_table_name} "  # noqa: S608 - fixed table name
            "WHERE topic = ? AND originator_id IN (SELECT value FROM json_each(?))"
        )
        ids = orjson.dumps([record_id.hex for record_id in record_ids])
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (self.PURGED_TOPIC, ids.decode()))
            return {UUID(row[0]) for row in cursor.fetchall()}

    def first_ids(self, low: UUID, high: UUID, topic: str, limit: int) -> list[UUID]:
        statement = (
            f"SELECT originator_id FROM {self.events_table_name} "  # noqa: S608 - fixed table name
            "WHERE originator_id BETWEEN ? AND ? AND originator_version = 1 AND topic = ? "
            "ORDER BY originator_id LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (low.hex, high.hex, topic, limit))
            return [UUID(row[0]) for row in cursor.fetchall()]

    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """One part after the other: its keys, its latest snapshots, then its events since (a query each)."""
        snapshots = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.snapshots_table_name} AS s "  # noqa: S608
            "WHERE originator_id IN (SELECT value FROM json_each(?)) AND originator_version = "
            f"(SELECT MAX(originator_version) FROM {self.snapshots_table_name} AS m "
            "WHERE m.originator_id = s.originator_id)"
        )
        since = (
            f"SELECT originator_id, originator_version, topic, state FROM {self.events_table_name} AS e "  # noqa: S608
            "WHERE originator_id IN (SELECT value FROM json_each(?)) AND originator_version >= COALESCE("
            f"(SELECT MAX(originator_version) FROM {self.snapshots_table_name} AS m "
            "WHERE m.originator_id = e.originator_id), 1) ORDER BY originator_id, originator_version"
        )
        for part in parts:
            # the part's keys in one query, before anything of theirs is opened
            if self.vault is not None:
                self.vault.prefetch(part)
            ids = orjson.dumps([record_id.hex for record_id in part]).decode()
            yield self._stored(snapshots, (ids,)), self._stored(since, (ids,))

    def read_record(
        self,
        record_id: UUID,
        version: int | None = None,
        *,
        tenant: str | None = None,
        model: str | None = None,
    ) -> RecordRows:
        """Three statements in one transaction (one view of the tables): in process, a statement costs no round
        trip, and three plain ones cost less than one that does all (measured: docs/performance.md)."""
        named, last = named_by(tenant, model), LAST_VERSION if version is None else version
        events, snapshots = self.events_table_name, self.snapshots_table_name
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                f"SELECT topic, state FROM {events} "  # noqa: S608 - fixed table name
                "WHERE originator_id = ? AND originator_version = 1",
                (record_id.hex,),
            )
            row = cursor.fetchone()
            if row is None:
                return RecordRows(None, None, [], withheld=False)
            first = stored_event(record_id, 1, row[0], row[1])
            if named is not None and named not in row[1]:
                another = names_another(first, tenant, model)
                return RecordRows(first, None, [], withheld=True, another=another)
            cursor.execute(
                f"SELECT originator_version, topic, state FROM {snapshots} "  # noqa: S608 - fixed table name
                "WHERE originator_id = ? AND originator_version <= ? "
                "ORDER BY originator_version DESC LIMIT 1",
                (record_id.hex, last),
            )
            row = cursor.fetchone()
            snapshot = None if row is None else stored_event(record_id, *row)
            cursor.execute(
                f"SELECT originator_version, topic, state FROM {events} "  # noqa: S608 - fixed table name
                "WHERE originator_id = ? AND originator_version BETWEEN ? AND ? ORDER BY originator_version",
                (
                    record_id.hex,
                    2 if snapshot is None else max(2, snapshot.originator_version),
                    last,
                ),
            )
            since = [stored_event(record_id, *row) for row in cursor.fetchall()]
        return RecordRows(first, snapshot, since, withheld=False)

    def _stored(self, statement: str, params: tuple[Any, ...]) -> list[StoredEvent]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return [
                StoredEvent(
                    originator_id=UUID(row[0]),
                    originator_version=row[1],
                    topic=row[2],
                    state=row[3],
                )
                for row in cursor.fetchall()
            ]

    def last_position(self, topics: Sequence[str]) -> int:
        statement = (
            f"SELECT rowid FROM {self.events_table_name} "  # noqa: S608 - fixed table name
            "WHERE topic IN (SELECT value FROM json_each(?)) ORDER BY rowid DESC LIMIT 1"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (orjson.dumps(list(topics)).decode(),))
            row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def count_after(self, position: int, topics: Sequence[str]) -> int:
        statement = (
            f"SELECT COUNT(*) FROM {self.events_table_name} "  # noqa: S608 - fixed table name
            "WHERE rowid > ? AND topic IN (SELECT value FROM json_each(?))"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (position, orjson.dumps(list(topics)).decode()))
            return int(cursor.fetchone()[0])

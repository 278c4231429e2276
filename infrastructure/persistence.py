"""Event storage plumbing: orjson mapping and Writ's recorders.

``OrjsonMapper`` stores an event's attributes as one orjson document (events
hold JSON-native values, and the timestamp round-trips as ISO-8601).
The recorders extend the library's SQLite and PostgreSQL application recorders
with the queries Writ adds. ``PositionLookup``: the notification position of a
stored event, so an idempotent replay can report the position of the original
write. ``LogQueries``, for the workers that follow the log: which records of a
batch have been purged since (the relay must never publish their data again),
how many notifications of some topics lie past a position (a worker's lag), and
which aggregates an id prefix may name (the CLI takes prefixes like git).
Only the SQL differs per backend; the PostgreSQL recorder lives in
``infrastructure.postgres_recorder``, so the embedded default never imports the
PostgreSQL driver.
"""

from __future__ import annotations

import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic

from application.ports import Part
from domain.errors import ChainBrokenError
from domain.record import Record
from infrastructure.checkpoints import COLUMNS as CHECKPOINT_COLUMNS
from infrastructure.checkpoints import TABLE as CHECKPOINTS
from infrastructure.documents import kept_json
from infrastructure.key_table import SQLITE_TABLES, after_commit, key_changes, sqlite_apply
from infrastructure.log_chain import SQLITE_TABLES as LOG_CHAIN_TABLES
from infrastructure.log_chain import sqlite_record, sqlite_upgrade
from infrastructure.log_identity import SELECT as IDENTITY
from infrastructure.log_identity import SQLITE_DRAW as DRAW_IDENTITY
from infrastructure.log_identity import SQLITE_TABLES as IDENTITY_TABLES
from infrastructure.sealing import (
    COVERS,
    EMPTY,
    OPEN,
    SEALED,
    SHREDDED,
    STATUS,
    SealBroken,
    is_sealed,
    peek,
    seal,
    transform,
    unseal,
)
from infrastructure.shredding import truncate_wal
from infrastructure.vault import TABLE as KEYS

if TYPE_CHECKING:
    from collections.abc import Callable

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from eventsourcing.sqlite import SQLiteCursor

    from infrastructure.vault import Vault
    from infrastructure.writer_keys import SaveTag, WriterKeys


class OrjsonTranscoder(Transcoder):
    def encode(self, obj: Any) -> bytes:
        return kept_json(obj)  # each stored event is kept until its save

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)

    def register(self, transcoding: Transcoding) -> None:
        raise NotImplementedError("OrjsonTranscoder encodes JSON-native values only")


class OrjsonMapper(Mapper[UUID]):
    """Events as orjson documents, their data sealed with the originator's key (``infrastructure.sealing``)."""

    vault: Vault | None = None
    """Set by the backend that opens the store; sealing without one is refused."""

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        topic = get_topic(type(domain_event))
        if topic in SEALED:
            self._seal(state, topic, originator_id)
        stored = self.transcoder.encode(state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic,
                           state=stored)

    def decode_state(self, stored: bytes) -> dict[str, Any]:
        """An event's stored attributes as a JSON-native dict (the timestamp stays ISO text), still sealed
        (cipher and compressor honoured)."""
        if self.cipher:
            stored = self.cipher.decrypt(stored)
        if self.compressor:
            stored = self.compressor.decompress(stored)
        state: dict[str, Any] = self.transcoder.decode(stored)
        return state

    def opened_state(self, stored: bytes, topic: str, originator_id: UUID, version: int,
                     keys: Mapping[int, AESGCM] | None = None) -> dict[str, Any]:
        """``decode_state`` with the seals opened (or the values shredded, when the key is gone): what log
        followers fold. ``keys``: the live keys of the batch being read (``Vault.opening_keys``), else the
        vault's."""
        state = self.decode_state(stored)
        if topic in SEALED:
            self._open(state, topic, originator_id, version, keys)
        return state

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        originator_id = stored_event.originator_id
        originator_id = originator_id if isinstance(originator_id, UUID) else UUID(originator_id)
        state = self.opened_state(stored_event.state, stored_event.topic, originator_id,
                                  stored_event.originator_version)
        state["timestamp"] = datetime.fromisoformat(state["timestamp"])
        state["originator_id"] = originator_id
        state["originator_version"] = stored_event.originator_version
        event = object.__new__(resolve_topic(stored_event.topic))
        object.__setattr__(event, "__dict__", state)
        return event  # type: ignore[no-any-return]

    def _seal(self, state: dict[str, Any], topic: str, owner: UUID) -> None:
        if self.vault is None:
            raise RuntimeError("this event store seals data: open it through its backend (it wires the vault)")
        covers = [UUID(str(record)) for record in state.get(COVERS) or ()]
        cipher = self.vault.writing_cipher(owner, covers)
        transform(state, SEALED[topic], lambda path, value: seal(cipher, owner, path, value))

    def _open(self, state: dict[str, Any], topic: str, owner: UUID, version: int,
              keys: Mapping[int, AESGCM] | None = None) -> None:
        paths = SEALED[topic]
        if not any(map(is_sealed, peek(state, paths))):
            return  # written before sealing
        if self.vault is None:
            raise RuntimeError("this event store seals data: open it through its backend (it wires the vault)")
        cipher = self.vault.cipher(owner) if keys is None else keys.get(owner.int)
        if cipher is None:
            transform(state, paths, lambda path, value: EMPTY[path] if is_sealed(value) else value)
            state[STATUS] = SHREDDED
            return
        try:
            transform(state, paths, lambda path, value: unseal(cipher, owner, path, value) if is_sealed(value)
                      else value)
        except SealBroken as broken:
            raise ChainBrokenError(f"{owner}: history broken at version {version} ({broken})",
                                   record_id=str(owner), version=version) from None
        state[STATUS] = OPEN


class PositionLookup(ABC):
    @abstractmethod
    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """Notification id of one stored event, or None when there is none."""


class LogQueries(ABC):
    PURGED_TOPIC = Record.Purged.TOPIC

    @abstractmethod
    def purged_among(self, record_ids: Collection[UUID]) -> set[UUID]:
        """The ids among ``record_ids`` that have a ``Purged`` event, at any position."""

    @abstractmethod
    def first_ids(self, low: UUID, high: UUID, topic: str, limit: int) -> list[UUID]:
        """The ids from ``low`` to ``high`` (inclusive), in order, at most ``limit``, of the aggregates whose first
        event has ``topic``: what an id prefix may name (the CLI accepts one). A range on the events' key."""

    @abstractmethod
    def count_after(self, position: int, topics: Sequence[str]) -> int:
        """How many notifications with one of ``topics`` lie past ``position`` (a worker's lag)."""

    @abstractmethod
    def last_position(self, topics: Sequence[str]) -> int:
        """The position of the newest notification with one of ``topics`` (0 when there is none)."""

    @abstractmethod
    def log_identity(self) -> str:
        """The identity drawn when the log's tables were made (``infrastructure.log_identity``)."""

    @abstractmethod
    def select_rows(self, after: int, until: int | None, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
        """Raw log rows ``(position, originator id, version, topic, state)`` after ``after`` (up to ``until``),
        in position order, as plain tuples: what ``writ verify`` reads, every event once."""

    @abstractmethod
    def states_before(self, after: int, until: int, topics: Sequence[str]) -> list[tuple[Any, int, bytes]]:
        """For each originator with an event after position ``after`` up to ``until``: ``(originator id, version,
        state)`` of its last event with one of ``topics`` at or before ``after`` (by position; none when it has
        none): where a range of ``writ verify``'s walk picks its records up."""

    @abstractmethod
    def key_table(self) -> Iterator[list[tuple[Any, bytes | None, str]]]:
        """Every key row, ``(id, wrapped key or None when destroyed, master key id)``, a batch at a time
        (``writ verify``)."""


KEY_BATCH = 10_000
"""Key rows read per batch by ``writ verify``."""


class TaggedSaves:
    """A recorder whose saves carry their tag under the writer key (``infrastructure.writer_keys``)."""

    writer_keys: Callable[[], WriterKeys] | None = None
    """Set by the backend that opens the store (read at the first save: a process that never saves needs no
    writer key); saving without it is refused."""

    def save_tag(self, stored_events: Sequence[StoredEvent]) -> SaveTag:
        if self.writer_keys is None:
            raise RuntimeError("this event store tags its saves: open it through its backend (it wires the keys)")
        return self.writer_keys().tag(stored_events)


class Histories(ABC):
    """Many records' histories a part at a time (a bulk update loads thousands of records at once): see
    ``application.ports.HistoryReader``."""

    @property
    def snapshots_table_name(self) -> str:
        events: str = self.events_table_name  # type: ignore[attr-defined]
        return events.removesuffix("_events") + "_snapshots"

    @abstractmethod
    def read_histories(self, parts: Iterable[Sequence[UUID]]) -> Iterator[Part]:
        """For each part: its latest snapshots, and its events from each one's version on (from 1 without)."""


class WritSQLiteRecorder(SQLiteApplicationRecorder, PositionLookup, LogQueries, Histories, TaggedSaves):
    vault: Vault | None = None

    def select_rows(self, after: int, until: int | None, limit: int) -> list[tuple[int, UUID, int, str, bytes]]:
        statement = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "  # noqa: S608
                     "WHERE rowid > ? ORDER BY rowid LIMIT ?")
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (after, limit))
            return [(row[0], UUID(row[1]), row[2], row[3], bytes(row[4])) for row in cursor.fetchall()
                    if until is None or row[0] <= until]

    def states_before(self, after: int, until: int, topics: Sequence[str]) -> list[tuple[Any, int, bytes]]:
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

    def key_table(self) -> Iterator[list[tuple[Any, bytes | None, str]]]:
        after = ""
        while True:
            with self.datastore.transaction(commit=False) as cursor:
                cursor.execute(f"SELECT id, wrapped, master_key FROM {KEYS} WHERE id > ? ORDER BY id LIMIT ?",  # noqa: S608
                               (after, KEY_BATCH))
                rows = [(UUID(row[0]), row[1], row[2]) for row in cursor.fetchall()]
            yield rows
            if len(rows) < KEY_BATCH:
                return
            after = rows[-1][0].hex

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *SQLITE_TABLES, *LOG_CHAIN_TABLES, *IDENTITY_TABLES,
                f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} {CHECKPOINT_COLUMNS}"]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        sqlite_upgrade(c)

    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
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
            stored = [(positions, groups[index]) for index, positions in enumerate(placed) if positions is not None]
            inserted = [event for _, group in stored for event in group]
            changes = key_changes(self.vault, inserted)
            sqlite_apply(cursor, changes)
            if inserted:  # one tagged link of the log chain for the whole batch
                tag = self.save_tag(inserted)
                sqlite_record(cursor, [(position, _uuid(e.originator_id), e.originator_version, hashed)
                                       for position, e, hashed in zip([p for ps, _ in stored for p in ps], inserted,
                                                                      tag.hashes, strict=True)], tag)
        after_commit(self.vault, inserted, changes)
        if changes.destroyed:
            if self.vault is not None:  # truncated through the backend: pending while a reader holds it
                self.vault.backend.compact([], views=False)
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
        with self.datastore.transaction(commit=True) as cursor:  # the first to ask draws it (a race: one wins)
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
            if self.vault is not None:  # the part's keys in one query, before anything of theirs is opened
                self.vault.prefetch(part)
            ids = orjson.dumps([record_id.hex for record_id in part]).decode()
            yield self._stored(snapshots, (ids,)), self._stored(since, (ids,))

    def _stored(self, statement: str, params: tuple[Any, ...]) -> list[StoredEvent]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return [StoredEvent(originator_id=UUID(row[0]), originator_version=row[1], topic=row[2], state=row[3])
                    for row in cursor.fetchall()]

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


def first_claims(groups: Sequence[Sequence[StoredEvent]]) -> list[int]:
    """The indexes of the groups (saves) whose events no earlier kept group also writes: of two saves that
    decided on the same version of an aggregate, only the first can be stored."""
    claimed: set[tuple[str, int]] = set()
    kept = []
    for index, group in enumerate(groups):
        keys = {(str(event.originator_id), event.originator_version) for event in group}
        if claimed.isdisjoint(keys):
            claimed |= keys
            kept.append(index)
    return kept


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)

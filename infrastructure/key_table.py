"""The key tables: every statement that reads or changes them, on either database.

``writ_keys`` holds one row per data-carrying aggregate: its data key wrapped
by a master key (``master_key`` names which), ``created_at``, and after a
purge ``destroyed_at`` with ``wrapped`` NULL. ``writ_key_links`` says which
records an aggregate's data covers (an approval request's commands): purging
one of them destroys that key too. A save's changes follow from its events
(``key_changes``): a key made for an originator is inserted with it, and a
``Purged`` event destroys the record's key and every key linked to it, in the
events' transaction: on SQLite ``sqlite_apply`` (``secure_delete``: the bytes
are zeroed in the page), on PostgreSQL ``postgres_key_changes``, run inside
the insert function, which destroys only the keys of the tombstones that very
call inserts. ``KeyTable.erase`` then makes the old bytes leave the files
(``infrastructure.shredding``).

``KeyTable``, built by the backend (``Backend.key_table``), runs the rest on a
connection of its own: the vault's reads (live keys, whether a key was
destroyed) and its one insert (the index key), rotation and the counts of
``writ keys``, and ``writ verify``'s reads. The SQL is written once; what
differs is a narrow subclass per database: how a rotation re-wraps keys (on
PostgreSQL only through ``writ_keys_rewrap``, see
``infrastructure.append_only``), and which tables hold the keys.

On PostgreSQL ``writ_keys`` is hash-partitioned by id into ``PARTITIONS``
tables, so the rewrite that makes a destroyed key's bytes leave the files
(``VACUUM FULL``, after the purge commits) copies a sixty-fourth of the keys,
not all of them. Its guard (``postgres_key_guards``) lets a live key change
only through the insert function's purge or the rotation's function.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.record import Record
from infrastructure.database import column_uuid
from infrastructure.sql import SQL, SQLITE, Composable, Identifier, P

if TYPE_CHECKING:
    from collections.abc import Iterable

    from infrastructure.database import Database, Tx

logger = logging.getLogger(__name__)

TABLE = "writ_keys"
LINKS = "writ_key_links"
PARTITIONS = 64
REWRAP_FUNCTION = "writ_keys_rewrap"
REWRAP_PARAMETERS = (
    ("p_ids", "uuid[]"),
    ("p_wrapped", "bytea[]"),
    ("p_masters", "text[]"),
    ("p_old_masters", "text[]"),
)
"""The rotation's function's parameters (name, SQL type), in order."""
CHUNK = 20_000
"""Owners per statement of live keys."""
BATCH = 10_000
"""Key rows read per batch by ``writ verify``."""

Rows = list[tuple[Any, ...]]
Queries = list[tuple[Composable, list[Any]]]


@dataclass(frozen=True)
class PendingKeys:
    """What the recorder inserts with the events: new keys and links."""

    rows: list[tuple[UUID, bytes, str]] = field(default_factory=list)
    links: list[tuple[UUID, UUID]] = field(default_factory=list)
    """(record id, key owner): purging the record destroys the owner's key too."""


@dataclass(frozen=True)
class KeyChanges:
    pending: PendingKeys
    destroyed: list[UUID]

    @property
    def empty(self) -> bool:
        return not (self.pending.rows or self.pending.links or self.destroyed)


class KeyBackend(Protocol):
    """What the key table needs of the backend (``infrastructure.backend.Backend``, which builds it: so typed,
    this module need not import it)."""

    def database(self, *, views: bool = False) -> Database: ...
    def table(self, name: str) -> Identifier: ...
    def uuid_param(self, value: UUID) -> Any: ...
    def among_ids(self, column: str, ids: list[UUID]) -> tuple[Composable, list[Any]]: ...
    def compact(self, tables: list[str], *, views: bool) -> None: ...


class KeyTable:
    """The key tables of one backend's database, on a connection of the table's own (opened at first use;
    ``close`` closes it, the next use reopens it)."""

    def __init__(self, backend: KeyBackend) -> None:
        self.backend = backend
        self.keys, self.links = backend.table(TABLE), backend.table(LINKS)
        self._database = backend.database()

    # -- the vault's --------------------------------------------------------------------

    def live_key_queries(self, owners: Sequence[UUID]) -> Queries:
        """The statements (with their parameters) that read these owners' live keys ``(id, wrapped, master key
        id)``: for a recorder that sends them along with its own queries."""
        queries: Queries = []
        for start in range(0, len(owners), CHUNK):
            condition, params = self.backend.among_ids("id", list(owners[start : start + CHUNK]))
            queries.append(
                (
                    SQL(
                        "SELECT id, wrapped, master_key FROM {} WHERE wrapped IS NOT NULL AND {}"
                    ).format(self.keys, condition),
                    params,
                )
            )
        return queries

    def rows(self, queries: Queries) -> Rows:
        """The rows of ``live_key_queries``' statements."""
        with self._database.reading() as tx:
            return [row for statement, params in queries for row in tx.query(statement, params)]

    def destroyed_among(self, owners: Sequence[UUID]) -> set[UUID]:
        """The owners among these whose key was destroyed."""
        found: set[UUID] = set()
        with self._database.reading() as tx:
            for start in range(0, len(owners), CHUNK):
                condition, params = self.backend.among_ids(
                    "id", list(owners[start : start + CHUNK])
                )
                statement = SQL("SELECT id FROM {} WHERE wrapped IS NULL AND {}").format(
                    self.keys, condition
                )
                found.update(column_uuid(row[0]) for row in tx.query(statement, params))
        return found

    def insert_absent(self, owner: UUID, wrapped: bytes, master_id: str) -> None:
        """Insert a key unless its owner has one (the index key: racing processes keep the first)."""
        with self._database.transaction() as tx:
            tx.execute(
                SQL(
                    "INSERT INTO {} (id, wrapped, master_key) VALUES ({}, {}, {}) ON CONFLICT DO NOTHING"
                ).format(self.keys, P, P, P),
                [self.backend.uuid_param(owner), wrapped, master_id],
            )

    # -- after a purge ------------------------------------------------------------------

    def erase(self, destroyed: list[UUID]) -> None:
        """Make the old bytes of the keys a purge destroyed (committed) leave the files, through the backend
        (pending while something older holds them: ``infrastructure.erasures``)."""
        try:
            tables = self.holding(destroyed)
        except Exception as exc:  # the purge has committed: `writ keys compact` finishes it
            logger.warning(
                "purged keys' old bytes stay in the files until `writ keys compact` runs: %s", exc
            )
            return
        self.backend.compact(tables, views=False)

    def holding(self, destroyed: list[UUID]) -> list[str]:
        """The tables to rewrite for these destroyed keys (none: the database's own files suffice)."""
        return []

    def tables(self) -> list[str]:
        """Every table the keys live in (what ``writ keys compact`` rewrites)."""
        return [TABLE]

    # -- operating ----------------------------------------------------------------------

    def counts(self) -> Rows:
        """``(master key id, destroyed, count)`` rows."""
        with self._database.reading() as tx:
            return tx.query(
                SQL("SELECT master_key, wrapped IS NULL, COUNT(*) FROM {} GROUP BY 1, 2").format(
                    self.keys
                )
            )

    def rotate(self, current: str, limit: int, rewrapped: Rewrapping) -> int:
        """One transaction of a rotation: up to ``limit`` live keys not wrapped by ``current`` re-wrapped
        (``rewrapped(owner, wrapped, master key id)`` gives the new wrapped bytes and master key id), each only
        if no one changed it since; how many were read."""
        with self._database.transaction() as tx:
            rows = tx.query(
                SQL(
                    "SELECT id, wrapped, master_key FROM {} WHERE wrapped IS NOT NULL AND "
                    "master_key <> {} LIMIT {}"
                ).format(self.keys, P, P),
                [current, limit],
            )
            changes = []
            for raw_id, wrapped, old in rows:
                owner = column_uuid(raw_id)
                changes.append((owner, *rewrapped(owner, bytes(wrapped), str(old)), str(old)))
            if changes:
                self.rewrap(tx, changes)
        return len(rows)

    def rewrap(self, tx: Tx, rows: list[tuple[UUID, bytes, str, str]]) -> None:
        """``(id, wrapped, master key id, the master key id it was read with)`` each, changed only if still
        wrapped by that one. No guard on SQLite (whoever can write the file can change anything in it)."""
        tx.executemany(
            SQL(
                "UPDATE {} SET wrapped = {}, master_key = {} WHERE id = {} AND master_key = {} AND "
                "wrapped IS NOT NULL"
            ).format(self.keys, P, P, P, P),
            [
                (wrapped, master, self.backend.uuid_param(owner), old)
                for owner, wrapped, master, old in rows
            ],
        )

    # -- writ verify --------------------------------------------------------------------

    def every_key(self) -> Iterator[Rows]:
        """Every key row, ``(id, wrapped key or None when destroyed, master key id)``, a batch at a time in id
        order."""
        after: Any = None
        while True:
            with self._database.reading() as tx:
                if after is None:
                    rows = tx.query(
                        SQL("SELECT id, wrapped, master_key FROM {} ORDER BY id LIMIT {}").format(
                            self.keys, P
                        ),
                        [BATCH],
                    )
                else:
                    rows = tx.query(
                        SQL(
                            "SELECT id, wrapped, master_key FROM {} WHERE id > {} ORDER BY id LIMIT {}"
                        ).format(self.keys, P, P),
                        [after, BATCH],
                    )
            yield rows
            if len(rows) < BATCH:
                return
            after = rows[-1][0]

    def links_to(self, keys: list[UUID]) -> Rows:
        """``(key id, record id)`` of the records these keys' data covers."""
        condition, params = self.backend.among_ids("key_id", keys)
        with self._database.reading() as tx:
            return tx.query(
                SQL("SELECT key_id, record_id FROM {} WHERE {}").format(self.links, condition),
                params,
            )

    def close(self) -> None:
        self._database.close()


class Rewrapping(Protocol):
    def __call__(self, owner: UUID, wrapped: bytes, master_id: str, /) -> tuple[bytes, str]: ...


class PostgresKeyTable(KeyTable):
    """Partitioned keys, changed by a rotation only through its function."""

    def holding(self, destroyed: list[UUID]) -> list[str]:
        keys, key_params = self.backend.among_ids("id", destroyed)
        records, record_params = self.backend.among_ids("record_id", destroyed)
        with self._database.reading() as tx:
            rows = tx.query(
                SQL(
                    "SELECT DISTINCT c.relname FROM {} AS k JOIN pg_class AS c ON c.oid = k.tableoid "
                    "WHERE k.{} OR k.id IN (SELECT key_id FROM {} WHERE {})"
                ).format(self.keys, keys, self.links, records),
                [*key_params, *record_params],
            )
        return [str(row[0]) for row in rows]

    def tables(self) -> list[str]:
        return [f"{TABLE}_p{n}" for n in range(PARTITIONS)]

    def rewrap(self, tx: Tx, rows: list[tuple[UUID, bytes, str, str]]) -> None:
        """Through the rewrap function: the key table's guard lets no other statement change a key."""
        ids, wrapped, masters, old = (list(column) for column in zip(*rows, strict=True))
        tx.execute(
            SQL(
                "SELECT {}(CAST({} AS uuid[]), CAST({} AS bytea[]), CAST({} AS text[]), CAST({} AS text[]))"
            ).format(self.backend.table(REWRAP_FUNCTION), P, P, P, P),
            (ids, wrapped, masters, old),
        )


# -- a save's key changes, in the events' transaction --------------------------------------


class SavedKeys(Protocol):
    """What a save asks of the vault (``infrastructure.vault.Vault``; so typed, this module need not import it)."""

    def pending(self, owners: Iterable[UUID]) -> PendingKeys: ...
    def committed(self, owners: Iterable[UUID]) -> None: ...
    def forget(self, owners: Iterable[UUID]) -> None: ...


def key_changes(vault: SavedKeys | None, stored_events: Sequence[StoredEvent]) -> KeyChanges:
    """The key rows to insert and the records whose keys to destroy, with these events."""
    owners = [column_uuid(e.originator_id) for e in stored_events]
    destroyed = [
        column_uuid(e.originator_id) for e in stored_events if e.topic == Record.Purged.TOPIC
    ]
    return KeyChanges(vault.pending(owners) if vault is not None else PendingKeys(), destroyed)


def after_commit(
    vault: SavedKeys | None, stored_events: Sequence[StoredEvent], changes: KeyChanges
) -> None:
    if vault is None:
        return
    vault.committed(column_uuid(e.originator_id) for e in stored_events)
    if changes.destroyed:
        vault.forget(changes.destroyed)


SQLITE_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, wrapped BLOB, master_key TEXT NOT NULL, "
    "created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), destroyed_at TEXT)",
    f"CREATE TABLE IF NOT EXISTS {LINKS} (record_id TEXT NOT NULL, key_id TEXT NOT NULL, "
    "PRIMARY KEY (record_id, key_id))",
]
_SQLITE_INSERT = (
    SQL("INSERT OR IGNORE INTO {} (id, wrapped, master_key) VALUES ({}, {}, {})")
    .format(Identifier(TABLE), P, P, P)
    .render(SQLITE)
)
_SQLITE_LINK = (
    SQL("INSERT OR IGNORE INTO {} (record_id, key_id) VALUES ({}, {})")
    .format(Identifier(LINKS), P, P)
    .render(SQLITE)
)
_SQLITE_DESTROY = (
    SQL(
        "UPDATE {keys} SET wrapped = NULL, destroyed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE wrapped IS NOT "
        "NULL AND (id = {p} OR id IN (SELECT key_id FROM {links} WHERE record_id = {p}))"
    )
    .format(keys=Identifier(TABLE), links=Identifier(LINKS), p=P)
    .render(SQLITE)
)


def sqlite_apply(cursor: object, changes: KeyChanges) -> None:
    """A save's key changes on SQLite, in the events' transaction (``secure_delete``: the destroyed key's
    bytes are zeroed in the page, not only unlinked)."""
    execute = cursor.execute  # type: ignore[attr-defined]
    for owner, wrapped, master in changes.pending.rows:
        execute(_SQLITE_INSERT, (owner.hex, wrapped, master))
    for record, owner in changes.pending.links:
        execute(_SQLITE_LINK, (record.hex, owner.hex))
    if changes.destroyed:
        execute("PRAGMA secure_delete = ON")
        for record in changes.destroyed:
            execute(_SQLITE_DESTROY, (record.hex, record.hex))


POSTGRES_KEY_PARAMETERS = (
    ("p_key_ids", "uuid[]"),
    ("p_key_wrapped", "bytea[]"),
    ("p_key_masters", "text[]"),
    ("p_link_records", "uuid[]"),
    ("p_link_keys", "uuid[]"),
)
"""The insert function's parameters for a save's new keys and links, (name, SQL type) each, in order (their
values: ``postgres_key_arguments``, each sent in binary)."""


def postgres_key_arguments(pending: PendingKeys) -> list[Any]:
    """The values of ``POSTGRES_KEY_PARAMETERS`` for a save, as arrays packed for the insert function's call
    (``infrastructure.pg_arrays``)."""
    # the driver: only where a PostgreSQL save is made
    from infrastructure.pg_arrays import BYTEAS, TEXTS, UUIDS

    return [
        UUIDS([row[0] for row in pending.rows]),
        BYTEAS([row[1] for row in pending.rows]),
        TEXTS([row[2] for row in pending.rows]),
        UUIDS([link[0] for link in pending.links]),
        UUIDS([link[1] for link in pending.links]),
    ]


def postgres_key_changes(schema: str) -> str:
    """The plpgsql that applies a save's key changes inside the insert function (it declares ``v_purged
    uuid[]``). The keys destroyed are those of the records whose ``Purged`` tombstone this very call inserts,
    never a list the caller sends: destroying a key leaves a tombstone in the log, which ``writ verify`` checks
    like any event."""
    keys, links = _quoted(schema, TABLE), _quoted(schema, LINKS)
    return (
        f"    INSERT INTO {keys} (id, wrapped, master_key)\n"  # noqa: S608 - quoted names, a fixed topic
        "        SELECT k.id, k.wrapped, k.master FROM unnest(p_key_ids, p_key_wrapped, p_key_masters)\n"
        "        AS k(id, wrapped, master) ON CONFLICT (id) DO NOTHING;\n"
        f"    INSERT INTO {links} (record_id, key_id) SELECT l.record_id, l.key_id\n"
        "        FROM unnest(p_link_records, p_link_keys) AS l(record_id, key_id) ON CONFLICT DO NOTHING;\n"
        "    v_purged := ARRAY(SELECT DISTINCT e.id FROM unnest(p_ids, p_topics) AS e(id, topic)\n"
        f"        WHERE e.topic = '{Record.Purged.TOPIC}');\n"
        "    IF cardinality(v_purged) > 0 THEN\n"
        f"        UPDATE {keys} SET wrapped = NULL, destroyed_at = now() WHERE wrapped IS NOT NULL AND\n"
        f"            (id = ANY(v_purged) OR id IN (SELECT key_id FROM {links} WHERE record_id = ANY(v_purged)));\n"
        "    END IF;\n"
    )


# -- PostgreSQL DDL (plain text, every name quoted) -----------------------------------------


def postgres_tables(schema: str) -> list[str]:
    """The key tables and their partitions."""
    keys, links = _quoted(schema, TABLE), _quoted(schema, LINKS)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {keys} (id uuid NOT NULL, wrapped bytea, master_key text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now(), destroyed_at timestamptz, PRIMARY KEY (id)) "
        "PARTITION BY HASH (id)",
        f"CREATE TABLE IF NOT EXISTS {links} (record_id uuid NOT NULL, key_id uuid NOT NULL, "
        "PRIMARY KEY (record_id, key_id))",
    ]
    statements += [
        f"CREATE TABLE IF NOT EXISTS {_quoted(schema, f'{TABLE}_p{n}')} PARTITION OF {keys} "
        f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {n})"
        for n in range(PARTITIONS)
    ]
    return statements


def postgres_rewrap_function(schema: str) -> str:
    """The rotation's one way to change live keys: re-wrap the rows given, each only if its master key is still
    the one the caller read (``SECURITY DEFINER``: see ``infrastructure.append_only``)."""
    keys = _quoted(schema, TABLE)
    parameters = ", ".join(f"{name} {kind}" for name, kind in REWRAP_PARAMETERS)
    return (
        f"CREATE OR REPLACE FUNCTION {_quoted(schema, REWRAP_FUNCTION)}({parameters}) "  # noqa: S608
        "RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS $writ$\n"
        "DECLARE\n"
        "    v_count bigint;\n"
        "BEGIN\n"
        f"    UPDATE {keys} AS k SET wrapped = r.wrapped, master_key = r.master\n"
        "        FROM unnest(p_ids, p_wrapped, p_masters, p_old_masters) AS r(id, wrapped, master, old)\n"
        "        WHERE k.id = r.id AND k.master_key = r.old AND k.wrapped IS NOT NULL;\n"
        "    GET DIAGNOSTICS v_count = ROW_COUNT;\n"
        "    RETURN v_count;\n"
        "END;\n$writ$"
    )


def postgres_key_guards(schema: str, insert_function: str) -> list[str]:
    """The key table's guard (``infrastructure.append_only`` says why): a live key changes only by a purge in
    ``insert_function`` or a re-wrap in the rotation's function, as the statement the session itself ran; no
    row is ever deleted."""
    guard = _quoted(schema, "writ_keys_guard")
    called = (
        "EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = "
        "TG_TABLE_SCHEMA AND p.proname = '{name}' AND starts_with(v_caller, 'PL/pgSQL function ' || "
        "p.oid::regprocedure::text || ' line '))"
    )
    keys = _quoted(schema, TABLE)
    return [
        f"CREATE OR REPLACE FUNCTION {guard}() RETURNS trigger LANGUAGE plpgsql "
        "SET search_path = pg_catalog, pg_temp AS $writ$\n"
        "DECLARE\n"
        "    v_stack text;\n"
        "    v_caller text;\n"
        "BEGIN\n"
        "    GET DIAGNOSTICS v_stack = PG_CONTEXT;\n"
        "    v_caller := substring(v_stack from '[^\\n]*$');  -- the outermost frame: what the session ran\n"
        "    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND OLD.wrapped IS NOT NULL AND NEW.created_at = OLD.created_at\n"
        "        AND ((NEW.wrapped IS NULL AND NEW.destroyed_at IS NOT NULL AND NEW.master_key = OLD.master_key\n"
        f"              AND {called.format(name=insert_function)})\n"
        "          OR (NEW.wrapped IS NOT NULL AND NEW.destroyed_at IS NULL\n"
        f"              AND {called.format(name=REWRAP_FUNCTION)})) THEN\n"
        "        RETURN NEW;\n"
        "    END IF;\n"
        "    RAISE EXCEPTION 'writ: % on %.% refused: data keys change only through purge and rotation', TG_OP,\n"
        "        TG_TABLE_SCHEMA, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';\n"
        "END;\n$writ$",
        f"CREATE OR REPLACE TRIGGER writ_append_only BEFORE DELETE OR TRUNCATE ON {keys} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {guard}()",
        f"CREATE OR REPLACE TRIGGER writ_keys_guard BEFORE UPDATE ON {keys} FOR EACH ROW EXECUTE FUNCTION {guard}()",
    ]


def _quoted(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)

"""The key tables as the recorders write them, in the transaction that inserts the events.

``writ_keys`` holds one row per data-carrying aggregate: its data key wrapped
by a master key (``master_key`` names which), ``created_at``, and after a
purge ``destroyed_at`` with ``wrapped`` NULL. ``writ_key_links`` says which
records an aggregate's data covers (an approval request's commands): purging
one of them destroys that key too. A save's changes follow from its events: a
key made for an originator is inserted with it, and a ``Purged`` event
destroys the record's key and every key linked to it.

On PostgreSQL ``writ_keys`` is hash-partitioned by id into ``PARTITIONS``
tables, so the rewrite that makes a destroyed key's bytes leave the files
(``VACUUM FULL``, after the purge commits) copies a sixty-fourth of the keys,
not all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.record import Record
from infrastructure.vault import LINKS, TABLE, PendingKeys, Vault

PARTITIONS = 64


@dataclass(frozen=True)
class KeyChanges:
    pending: PendingKeys
    destroyed: list[UUID]

    @property
    def empty(self) -> bool:
        return not (self.pending.rows or self.pending.links or self.destroyed)


def key_changes(vault: Vault | None, stored_events: Sequence[StoredEvent]) -> KeyChanges:
    """The key rows to insert and the records whose keys to destroy, with these events."""
    owners = [_uuid(e.originator_id) for e in stored_events]
    destroyed = [_uuid(e.originator_id) for e in stored_events if e.topic == Record.Purged.TOPIC]
    return KeyChanges(vault.pending(owners) if vault is not None else PendingKeys(), destroyed)


def after_commit(vault: Vault | None, stored_events: Sequence[StoredEvent], changes: KeyChanges) -> None:
    if vault is None:
        return
    vault.committed(_uuid(e.originator_id) for e in stored_events)
    if changes.destroyed:
        vault.forget(changes.destroyed)


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)


def _quoted(*names: str) -> str:
    return ".".join('"' + name.replace('"', '""') + '"' for name in names)


def postgres_tables(schema: str) -> list[str]:
    """DDL for the key tables on PostgreSQL (plain text, every name quoted)."""
    keys, links = _quoted(schema, TABLE), _quoted(schema, LINKS)
    statements = [
        f"CREATE TABLE IF NOT EXISTS {keys} (id uuid NOT NULL, wrapped bytea, master_key text NOT NULL, "
        "created_at timestamptz NOT NULL DEFAULT now(), destroyed_at timestamptz, PRIMARY KEY (id)) "
        "PARTITION BY HASH (id)",
        f"CREATE TABLE IF NOT EXISTS {links} (record_id uuid NOT NULL, key_id uuid NOT NULL, "
        "PRIMARY KEY (record_id, key_id))",
    ]
    statements += [f"CREATE TABLE IF NOT EXISTS {_quoted(schema, f'{TABLE}_p{n}')} PARTITION OF {keys} "
                   f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {n})" for n in range(PARTITIONS)]
    return statements


POSTGRES_KEY_CHANGES = (
    "    INSERT INTO {keys} (id, wrapped, master_key)\n"  # noqa: S608 - a fixed topic; names composed later
    "        SELECT k.id, k.wrapped, k.master FROM unnest(p_key_ids, p_key_wrapped, p_key_masters)\n"
    "        AS k(id, wrapped, master) ON CONFLICT (id) DO NOTHING;\n"
    "    INSERT INTO {links} (record_id, key_id) SELECT l.record_id, l.key_id\n"
    "        FROM unnest(p_link_records, p_link_keys) AS l(record_id, key_id) ON CONFLICT DO NOTHING;\n"
    "    v_purged := ARRAY(SELECT DISTINCT e.id FROM unnest(p_ids, p_topics) AS e(id, topic)\n"
    f"        WHERE e.topic = '{Record.Purged.TOPIC}');\n"
    "    IF cardinality(v_purged) > 0 THEN\n"
    "        UPDATE {keys} SET wrapped = NULL, destroyed_at = now() WHERE wrapped IS NOT NULL AND\n"
    "            (id = ANY(v_purged) OR id IN (SELECT key_id FROM {links} WHERE record_id = ANY(v_purged)));\n"
    "    END IF;\n"
)
"""The plpgsql that applies a save's key changes inside the insert function (``{keys}``, ``{links}``: the
tables, composed in as identifiers; declares ``v_purged uuid[]``). The keys destroyed are those of the records
whose ``Purged`` tombstone this very call inserts, never a list the caller sends: destroying a key leaves a
tombstone in the log, which ``writ verify`` checks like any event."""

REWRAP_FUNCTION = "writ_keys_rewrap"


def postgres_rewrap_function(schema: str) -> str:
    """DDL of the rotation's one way to change live keys: re-wrap the rows given, each only if its master key is
    still the one the caller read (``SECURITY DEFINER``: see ``infrastructure.append_only``)."""
    keys = _quoted(schema, TABLE)
    return (
        f"CREATE OR REPLACE FUNCTION {_quoted(schema, REWRAP_FUNCTION)}(p_ids uuid[], p_wrapped bytea[], "  # noqa: S608
        "p_masters text[], p_old_masters text[]) RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER "
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


def postgres_partitions_of(schema: str) -> str:
    """The names of the partitions holding the keys a purge destroyed (to rewrite them)."""
    return (f"SELECT DISTINCT c.relname FROM {_quoted(schema, TABLE)} AS k JOIN pg_class AS c ON c.oid = k.tableoid "  # noqa: S608
            f"WHERE k.id = ANY(%s) OR k.id IN (SELECT key_id FROM {_quoted(schema, LINKS)} WHERE record_id = ANY(%s))")


SQLITE_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, wrapped BLOB, master_key TEXT NOT NULL, "
    "created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')), destroyed_at TEXT)",
    f"CREATE TABLE IF NOT EXISTS {LINKS} (record_id TEXT NOT NULL, key_id TEXT NOT NULL, "
    "PRIMARY KEY (record_id, key_id))",
]


def sqlite_apply(cursor: object, changes: KeyChanges) -> None:
    """A save's key changes on SQLite, in the events' transaction (``secure_delete``: the destroyed key's
    bytes are zeroed in the page, not only unlinked)."""
    execute = cursor.execute  # type: ignore[attr-defined]
    for owner, wrapped, master in changes.pending.rows:
        execute(f"INSERT OR IGNORE INTO {TABLE} (id, wrapped, master_key) VALUES (?, ?, ?)",  # noqa: S608
                (owner.hex, wrapped, master))
    for record, owner in changes.pending.links:
        execute(f"INSERT OR IGNORE INTO {LINKS} (record_id, key_id) VALUES (?, ?)", (record.hex, owner.hex))  # noqa: S608
    if changes.destroyed:
        execute("PRAGMA secure_delete = ON")
        for record in changes.destroyed:
            execute(
                f"UPDATE {TABLE} SET wrapped = NULL, destroyed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "  # noqa: S608
                f"WHERE wrapped IS NOT NULL AND (id = ? OR id IN (SELECT key_id FROM {LINKS} WHERE record_id = ?))",
                (record.hex, record.hex))

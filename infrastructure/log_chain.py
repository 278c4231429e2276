"""The chain over the whole log: what lets ``writ verify`` see an event or a record that is gone.

Each record's own hash chain (``domain.chain``) shows an event changed, moved
or missing in the middle, but not a record's last event deleted, nor a whole
record. So every save also writes, in its transaction:

* ``writ_log_manifest``: one row per event, ``(position, originator_id,
  version, event_hash)``, where ``event_hash`` is the SHA-256 of the event's
  stored bytes: what was there, to name what went missing;
* ``writ_log_chain``: one row per save, ``(last, first, count, chain, mac,
  writer_key)``, where ``chain = SHA-256(previous chain || save digest)``, the
  save digest is the SHA-256 of the concatenated ``position (8 bytes) ||
  originator id (16) || version (8) || event_hash (32)`` of its events in
  position order, and ``mac`` is the save's tag under the writer key
  ``writer_key`` names (``infrastructure.writer_keys``; NULL for saves made
  before writer keys existed).

PostgreSQL computes both inside the insert function (under the table lock
that orders saves); SQLite in the recorder's transaction, with ``save_rows``
below. ``writ verify`` recomputes them from the events themselves, and a signed
checkpoint (``infrastructure.checkpoints``) of the chain at a position lets an
auditor prove later that nothing before it was rewritten, even by someone who
recomputed every table.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from infrastructure.writer_keys import SaveTag

MANIFEST = "writ_log_manifest"
CHAIN = "writ_log_chain"
GENESIS = bytes(32)
SAVES_CONFLICT = "23W09"
"""The SQLSTATE of a save whose events are stored already: class 23, so drivers report an integrity error."""


def event_hash(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


def save_digest(entries: Sequence[tuple[int, UUID, int, bytes]]) -> bytes:
    """The digest of one save's events: (position, originator id, version, event hash), in position order."""
    return hashlib.sha256(
        b"".join(
            position.to_bytes(8, "big", signed=True)
            + originator.bytes
            + version.to_bytes(8, "big", signed=True)
            + hashed
            for position, originator, version, hashed in entries
        )
    ).digest()


def next_chain(previous: bytes, digest: bytes) -> bytes:
    return hashlib.sha256(previous + digest).digest()


POSTGRES_TABLES = (
    "CREATE TABLE IF NOT EXISTS {manifest} (position bigint PRIMARY KEY, originator_id uuid NOT NULL, "
    "originator_version bigint NOT NULL, event_hash bytea NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {chain} (last bigint PRIMARY KEY, first bigint NOT NULL, count bigint NOT NULL, "
    "chain bytea NOT NULL, mac bytea, writer_key text)",
    "ALTER TABLE {chain} ADD COLUMN IF NOT EXISTS mac bytea, ADD COLUMN IF NOT EXISTS writer_key text",
)
"""DDL on PostgreSQL (``{manifest}``, ``{chain}``: the tables, composed in as identifiers)."""

POSTGRES_SAVE = (
    (
        "    WITH inserted AS (\n"
        "        INSERT INTO {schema}.{table} AS t (originator_id, originator_version, topic, state)\n"
        "        SELECT e.originator_id, e.originator_version, e.topic, e.state\n"
        "        FROM unnest(p_ids, p_versions, p_topics, p_states)\n"
        "            AS e(originator_id, originator_version, topic, state)\n"
        "        ON CONFLICT (originator_id, originator_version) DO NOTHING\n"
        "        RETURNING t.notification_id, t.originator_id, t.originator_version, sha256(t.state) AS event_hash\n"
        "    ), listed AS (\n"
        "        INSERT INTO {manifest} (position, originator_id, originator_version, event_hash)\n"
        "        SELECT notification_id, originator_id, originator_version, event_hash FROM inserted\n"
        "        RETURNING position, originator_id, originator_version, event_hash\n"
        "    )\n"
        "    SELECT array_agg(position ORDER BY position), max(position), min(position), count(*),\n"
        "        sha256(string_agg(int8send(position) || uuid_send(originator_id) || int8send(originator_version)\n"
        "            || event_hash, ''::bytea ORDER BY position))\n"
        "        INTO v_positions, v_last, v_first, v_count, v_digest FROM listed;\n"
        "    IF v_count < cardinality(p_ids) THEN\n"
        "        SELECT string_agg(DISTINCT e.g::text, ',') INTO v_conflicts\n"
        "        FROM unnest(p_groups, p_ids, p_versions) AS e(g, id, version)\n"
        "        WHERE EXISTS (SELECT FROM {schema}.{table} AS s\n"
        "            WHERE s.originator_id = e.id AND s.originator_version = e.version\n"
        "            AND s.notification_id <> ALL(coalesce(v_positions, '{{}}'::bigint[])));\n"
        "        RAISE EXCEPTION 'writ: saves conflict with stored events'\n"
        "            USING ERRCODE = '{conflict}', DETAIL = coalesce(v_conflicts, '');\n"
        "    END IF;\n"
        "    SELECT chain INTO v_previous FROM {chain} ORDER BY last DESC LIMIT 1;\n"
        "    INSERT INTO {chain} (last, first, count, chain, mac, writer_key)\n"
        "        VALUES (v_last, v_first, v_count, sha256(coalesce(v_previous, '\\x{genesis}'::bytea) || v_digest),\n"
        "            p_mac, p_writer_key);\n"
        "    RETURN QUERY SELECT unnest(v_positions);\n"
    )
    .replace("{genesis}", GENESIS.hex())
    .replace("{conflict}", SAVES_CONFLICT)
)
"""The plpgsql that inserts a save's events, lists them in the manifest and chains the save, in one pass over
the inserted rows (their states hashed as they are inserted, not carried along), returning the positions in
the order of the events (``p_ids``, ``p_versions``, ``p_topics``, ``p_states``: one array per column; ``p_mac``
and ``p_writer_key``: the save's tag and its key's id);
declares ``v_positions bigint[]``, ``v_last``, ``v_first``, ``v_count bigint``, ``v_digest``, ``v_previous
bytea``, ``v_conflicts text``. Events stored already (an optimistic-concurrency conflict) are not inserted: the
function then raises ``SAVES_CONFLICT`` (an integrity error) whose detail lists the ``p_groups`` of every
conflicting event (comma-separated; empty when only the save itself holds an event twice), and the whole
statement rolls back."""

SQLITE_TABLES = [
    f"CREATE TABLE IF NOT EXISTS {MANIFEST} (position INTEGER PRIMARY KEY, originator_id TEXT NOT NULL, "
    "originator_version INTEGER NOT NULL, event_hash BLOB NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {CHAIN} (last INTEGER PRIMARY KEY, first INTEGER NOT NULL, count INTEGER NOT NULL, "
    "chain BLOB NOT NULL, mac BLOB, writer_key TEXT)",
]


def sqlite_upgrade(cursor: object) -> None:
    """Add the tag columns to a chain table made before writer keys (SQLite has no ADD COLUMN IF NOT EXISTS)."""
    execute = cursor.execute  # type: ignore[attr-defined]
    execute(f"SELECT name FROM pragma_table_info('{CHAIN}')")  # noqa: S608 - a fixed name
    columns = {row[0] for row in cursor.fetchall()}  # type: ignore[attr-defined]
    for column, kind in (("mac", "BLOB"), ("writer_key", "TEXT")):
        if column not in columns:
            execute(f"ALTER TABLE {CHAIN} ADD COLUMN {column} {kind}")


def sqlite_record(
    cursor: object, entries: Sequence[tuple[int, UUID, int, bytes]], tag: SaveTag
) -> None:
    """Record one save in the manifest and the chain, with its tag, in the events' transaction (SQLite)."""
    if not entries:
        return
    execute = cursor.execute  # type: ignore[attr-defined]
    ordered = sorted(entries)
    execute_many = cursor.executemany  # type: ignore[attr-defined]
    # one call, every row
    execute_many(
        f"INSERT INTO {MANIFEST} (position, originator_id, originator_version, event_hash) "  # noqa: S608
        "VALUES (?, ?, ?, ?)",
        [
            (position, originator.hex, version, hashed)
            for position, originator, version, hashed in ordered
        ],
    )
    execute(f"SELECT chain FROM {CHAIN} ORDER BY last DESC LIMIT 1")  # noqa: S608
    previous = cursor.fetchone()  # type: ignore[attr-defined]
    chain = next_chain(bytes(previous[0]) if previous else GENESIS, save_digest(ordered))
    execute(
        f"INSERT INTO {CHAIN} (last, first, count, chain, mac, writer_key) VALUES (?, ?, ?, ?, ?, ?)",  # noqa: S608
        (ordered[-1][0], ordered[0][0], len(ordered), chain, tag.mac, tag.key_id),
    )

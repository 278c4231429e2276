"""An insider at Writ's tables, with as much power as each attacker of the README's table holds.

``Insider`` works on the raw tables: on PostgreSQL as a superuser with the append-only triggers switched off
for its session (``replica``), or (``insert_only``) as a real role holding only SELECT and INSERT; on SQLite by
writing the file. It knows the formats as the README documents them, and computes them here, apart from
Writ's code: the manifest's event hash, the log chain, and a save's tag (HMAC-SHA256 under the writer key of
``writ.save/1\\n`` and each event's id, version and SHA-256, sorted). What needs a key it is given: the master
key (through a vault) to seal and digest, the writer key to tag.
"""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg

from tests.conftest import PG_URL

GENESIS = bytes(32)


def event_hash(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


def save_digest(rows: list[tuple[int, UUID, int, bytes]]) -> bytes:
    """The documented digest of a save: position, id, version, SHA-256 of the stored bytes, in position order."""
    return hashlib.sha256(
        b"".join(
            p.to_bytes(8, "big") + o.bytes + v.to_bytes(8, "big") + h for p, o, v, h in sorted(rows)
        )
    ).digest()


def tag(writer_key: bytes, rows: list[tuple[int, UUID, int, bytes]]) -> bytes:
    """The documented tag of a save."""
    entries = sorted(o.bytes + v.to_bytes(8, "big") + h for _, o, v, h in rows)
    return hmac.new(writer_key, b"writ.save/1\n" + b"".join(entries), hashlib.sha256).digest()


class Insider:
    def __init__(self, database_url: str) -> None:
        self.sqlite = database_url.startswith("sqlite")
        self.path = database_url.removeprefix("sqlite:///")
        self.schema = database_url.partition("?schema=")[2]
        self.role: str | None = None

    # -- connections ----------------------------------------------------------------

    @contextmanager
    def connection(self, *, insert_only: bool = False, triggers: bool = False) -> Iterator[Any]:
        """SQLite: the file. PostgreSQL: a superuser past the append-only triggers (``triggers``: with them on),
        or the insert-only role."""
        if self.sqlite:
            with sqlite3.connect(self.path) as conn:
                yield conn
            return
        if insert_only:
            with psycopg.connect(PG_URL, user=self.insert_only_role(), autocommit=True) as conn:
                yield conn
            return
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            if not triggers:
                conn.execute("SET session_replication_role = replica")
            yield conn

    def insert_only_role(self) -> str:
        """A role holding SELECT and INSERT on the schema's tables (and the sequences their ids come from)."""
        if self.role is None:
            self.role = f"writ_ins_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'CREATE ROLE "{self.role}" LOGIN')
                conn.execute(f'GRANT USAGE ON SCHEMA "{self.schema}" TO "{self.role}"')
                conn.execute(
                    f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "{self.schema}" TO "{self.role}"'
                )
                conn.execute(
                    f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA "{self.schema}" TO "{self.role}"'
                )
        return self.role

    def close(self) -> None:
        if self.role is not None:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP OWNED BY "{self.role}"')
                conn.execute(f'DROP ROLE "{self.role}"')

    # -- names ----------------------------------------------------------------------

    def table(self, name: str) -> str:
        if self.sqlite:
            return {"events": "stored_events", "snapshots": "stored_snapshots"}.get(name, name)
        return f'"{self.schema}".' + {"events": "writ_events", "snapshots": "writ_snapshots"}.get(
            name, name
        )

    def key(self, record_id: str | UUID) -> Any:
        return UUID(str(record_id)).hex if self.sqlite else UUID(str(record_id))

    @property
    def mark(self) -> str:
        return "?" if self.sqlite else "%s"

    @property
    def position(self) -> str:
        return "rowid" if self.sqlite else "notification_id"

    # -- reading and writing rows ----------------------------------------------------

    def state(self, record_id: str, version: int, table: str = "events") -> bytes:
        m = self.mark
        with self.connection() as conn:
            (state,) = conn.execute(
                f"SELECT state FROM {self.table(table)} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (self.key(record_id), version),
            ).fetchone()
        return bytes(state)

    def event(self, record_id: str, version: int) -> tuple[int, str, bytes]:
        """(position, topic, state) of one event."""
        m = self.mark
        with self.connection() as conn:
            row = conn.execute(
                f"SELECT {self.position}, topic, state FROM {self.table('events')} WHERE "
                f"originator_id = {m} AND originator_version = {m}",
                (self.key(record_id), version),
            ).fetchone()
        return int(row[0]), row[1], bytes(row[2])

    def set_state(self, record_id: str, version: int, state: bytes, table: str = "events") -> None:
        m = self.mark
        with self.connection() as conn:
            conn.execute(
                f"UPDATE {self.table(table)} SET state = {m} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (state, self.key(record_id), version),
            )

    def execute(self, statement: str, params: tuple[Any, ...] = (), **how: bool) -> None:
        with self.connection(**how) as conn:
            conn.execute(statement.replace("?", self.mark), params)

    def append_save(
        self,
        events: list[tuple[str, int, str, bytes]],
        *,
        insert_only: bool = False,
        mac: bytes | None = None,
        writer_key_id: str | None = None,
    ) -> int:
        """Insert events ``(record id, version, topic, state)`` at the end of the log, list them in the manifest
        and extend the chain with a save row (tag as given): what a role that can insert does. Their first
        position."""
        m = self.mark
        rows: list[tuple[int, UUID, int, bytes]] = []
        with self.connection(insert_only=insert_only) as conn:
            for record_id, version, topic, state in events:
                suffix = "" if self.sqlite else f" RETURNING {self.position}"
                cursor = conn.execute(
                    f"INSERT INTO {self.table('events')} (originator_id, originator_version, "
                    f"topic, state) VALUES ({m}, {m}, {m}, {m}){suffix}",
                    (self.key(record_id), version, topic, state),
                )
                position = cursor.lastrowid if self.sqlite else cursor.fetchone()[0]
                rows.append((int(position), UUID(record_id), version, event_hash(state)))
            for position, originator, version, hashed in rows:
                conn.execute(
                    f"INSERT INTO {self.table('writ_log_manifest')} (position, originator_id, "
                    f"originator_version, event_hash) VALUES ({m}, {m}, {m}, {m})",
                    (position, self.key(originator), version, hashed),
                )
            (previous,) = conn.execute(
                f"SELECT chain FROM {self.table('writ_log_chain')} ORDER BY last DESC LIMIT 1"
            ).fetchone()
            chain = hashlib.sha256(bytes(previous) + save_digest(rows)).digest()
            conn.execute(
                f"INSERT INTO {self.table('writ_log_chain')} (last, first, count, chain, mac, writer_key) "
                f"VALUES ({m}, {m}, {m}, {m}, {m}, {m})",
                (rows[-1][0], rows[0][0], len(rows), chain, mac, writer_key_id),
            )
        return rows[0][0]

    def save_before_last(self) -> tuple[int, bytes]:
        """The last position and stored chain of the save before the last."""
        with self.connection() as conn:
            last, chain = conn.execute(
                f"SELECT last, chain FROM {self.table('writ_log_chain')} ORDER BY last DESC "
                "LIMIT 1 OFFSET 1"
            ).fetchone()
        return int(last), bytes(chain)

    def last_tag(self) -> tuple[bytes, str]:
        with self.connection() as conn:
            mac, key = conn.execute(
                f"SELECT mac, writer_key FROM {self.table('writ_log_chain')} ORDER BY last DESC "
                "LIMIT 1"
            ).fetchone()
        return bytes(mac), key

    def recompute_log_tables(self, writer_key: bytes | None = None) -> None:
        """Make the manifest and chain (and, given the writer key, the tags) agree with the events as they now
        are, and drop the checkpoints kept in the database: a thorough insider. A save left with no event goes."""
        m = self.mark
        with self.connection() as conn:
            conn.execute(f"DELETE FROM {self.table('writ_checkpoints')}")
            saves = conn.execute(
                f"SELECT last, first FROM {self.table('writ_log_chain')} ORDER BY last"
            ).fetchall()
            conn.execute(f"DELETE FROM {self.table('writ_log_manifest')}")
            previous = GENESIS
            for last, first in saves:
                found = conn.execute(
                    f"SELECT {self.position}, originator_id, originator_version, state FROM "
                    f"{self.table('events')} WHERE {self.position} BETWEEN {m} AND {m} ORDER BY "
                    f"{self.position}",
                    (first, last),
                ).fetchall()
                rows = [
                    (int(p), UUID(str(o)), int(v), event_hash(bytes(s))) for p, o, v, s in found
                ]
                if not rows:
                    conn.execute(
                        f"DELETE FROM {self.table('writ_log_chain')} WHERE last = {m}", (last,)
                    )
                    continue
                for position, originator, version, hashed in rows:
                    conn.execute(
                        f"INSERT INTO {self.table('writ_log_manifest')} (position, originator_id, "
                        f"originator_version, event_hash) VALUES ({m}, {m}, {m}, {m})",
                        (position, self.key(originator), version, hashed),
                    )
                previous = hashlib.sha256(previous + save_digest(rows)).digest()
                conn.execute(
                    f"UPDATE {self.table('writ_log_chain')} SET chain = {m} WHERE last = {m}",
                    (previous, last),
                )
                if writer_key is not None:
                    conn.execute(
                        f"UPDATE {self.table('writ_log_chain')} SET mac = {m} WHERE last = {m}",
                        (tag(writer_key, rows), last),
                    )

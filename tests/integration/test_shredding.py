"""Purge erases, on both databases: after it, a record's data is in no table, no database file and no API answer,
and neither is its data key; the tombstone stays.

A record's fields hold a unique marker; it is written with an idempotency key, patched, changed through an
approval, snapshotted and projected, then purged. Every table is then read raw (SQLite: every file beside the
database, write-ahead logs included; PostgreSQL: ``COPY ... TO STDOUT`` of every table of the schema, and the
schema's data files after ``CHECKPOINT``): the marker appears nowhere, nor do the data key's bytes, bare or
wrapped.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import Runtime
from infrastructure.master_keys import load_master_keys
from infrastructure.sql import SQL, P
from tests.catalogs import principal
from tests.support import wait_until

CATALOG = """
[models.Person]
required = ["name"]
[models.Person.fields]
name = { type = "str", index = true }
email = { type = "str", nullable = true, index = true }
score = { type = "int", default = 0 }
[models.Person.policy]
create = "allow"
update = [{ action = "require_approval", when = { field = "after.score", op = "gt", value = 100 } }, "allow"]
force_delete = "allow"
[models.Person.grants]
create = ["clerk"]
update = ["clerk"]
force_delete = ["dpo"]
approve = ["manager"]
"""
SNAPSHOT_INTERVAL = 20
"""As documented ("Records snapshot every 20 events"), not read from the code under test."""
CLERK, MANAGER, DPO = (
    principal("carol"),
    principal("maria", "acme", "manager"),
    principal("dora", "acme", "dpo"),
)


def data_key(runtime: Runtime, record_id: UUID) -> tuple[bytes, bytes]:
    """The record's data key as stored (wrapped) and bare (unwrapped with the configured master key)."""
    backend = runtime.backend
    database = backend.database()
    try:
        with database.reading() as tx:
            ((wrapped, master_id),) = tx.query(
                SQL("SELECT wrapped, master_key FROM {} WHERE id = {}").format(
                    backend.table("writ_keys"), P
                ),
                [backend.uuid_param(record_id)],
            )
    finally:
        database.close()
    wrapped = bytes(wrapped)
    return wrapped, load_master_keys(beside=None).unwrap(record_id, wrapped, master_id)


def sqlite_bytes(database_url: str) -> Iterator[tuple[str, bytes]]:
    folder = Path(database_url.removeprefix("sqlite:///")).parent
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.endswith("lock"):
            yield path.name, path.read_bytes()


def postgres_bytes(database_url: str) -> Iterator[tuple[str, bytes]]:
    base, _, schema = database_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        ]
        for table in tables:
            every_row = f'COPY (SELECT * FROM "{schema}"."{table}") TO STDOUT (FORMAT binary)'
            with conn.cursor() as cursor, cursor.copy(every_row) as copy:
                yield f"COPY {table}", b"".join(bytes(chunk) for chunk in copy)
        conn.execute("CHECKPOINT")
        (data_dir,) = conn.execute("SELECT current_setting('data_directory')").fetchone()  # type: ignore[misc]
        files = [
            row[0]
            for row in conn.execute(
                "SELECT pg_relation_filepath(c.oid) FROM pg_class c WHERE c.relnamespace = %s::regnamespace "
                "OR c.oid IN (SELECT reltoastrelid FROM pg_class WHERE relnamespace = %s::regnamespace) "
                "OR c.oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class t ON t.reltoastrelid = i.indrelid "
                "WHERE t.relnamespace = %s::regnamespace)",
                (f'"{schema}"', f'"{schema}"', f'"{schema}"'),
            )
            if row[0] is not None
        ]
    for relative in files:
        for path in sorted(Path(data_dir).glob(f"{relative}*")):
            yield str(path), path.read_bytes()


@pytest.fixture
def insecure_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every new SQLite connection starts with ``secure_delete`` off, as on builds compiled without it (this
    machine's SQLite has it on by default, which would hide Writ forgetting to turn it on)."""
    connect = sqlite3.connect

    def connect_insecurely(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)
        connection.execute("PRAGMA secure_delete = OFF")
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_insecurely)


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as opened:
        yield opened


@pytest.mark.usefixtures("insecure_default")
def test_a_purged_record_leaves_nothing_readable_but_its_tombstone(
    runtime: Runtime, database_url: str
) -> None:
    writ, marker = runtime.writ, f"MARKER-{uuid.uuid4().hex}"
    first = {"name": f"{marker}-name", "email": f"{marker}@example.org"}
    created = writ.create(CLERK, "Person", first, idempotency_key="signup-1")
    record_id = UUID(created.id)
    writ.patch(CLERK, "Person", created.id, {"email": f"{marker}-2@example.org"})
    parked = writ.patch(CLERK, "Person", created.id, {"score": 500, "name": f"{marker}-approved"})
    assert writ.approve(MANAGER, str(parked.approval_id)).status == "executed"
    for score in range(1, 100):  # past the snapshot at version 100
        writ.patch(CLERK, "Person", created.id, {"score": score})
    runtime.catch_up()
    assert runtime.views.get(CLERK, "Person", created.id)["email"] == f"{marker}-2@example.org"
    wrapped, bare = data_key(runtime, record_id)
    # the approval request's key is linked to the record: destroyed with it, and rewritten out of its own
    # partition on PostgreSQL (not always the record's)
    request_keys = data_key(runtime, UUID(str(parked.approval_id)))
    found_before = [
        name for name, content in _all_bytes(database_url) if marker.encode() in content
    ]
    assert found_before, "the views hold the marker before the purge (the scan can see it)"

    writ.purge(DPO.for_purpose("erasure request #7"), "Person", created.id)
    runtime.catch_up()

    with pytest.raises(WritError) as caught:
        writ.get(CLERK, "Person", created.id)
    assert caught.value.code == "NOT_FOUND"
    history = writ.history(CLERK, "Person", created.id)
    assert (history[-1].event, history[-1].actor, history[-1].purpose) == (
        "Purged",
        "dora",
        "erasure request #7",
    )
    assert all(entry.after == {} and entry.changes == {} for entry in history)
    retried = writ.create(CLERK, "Person", first, idempotency_key="signup-1")
    assert (retried.replayed, retried.data, retried.state) == (True, None, "purged")
    request = runtime.views.approval(MANAGER, str(parked.approval_id))
    assert request["shredded"] and request["preview"] == {} and request["command"] == {}
    with pytest.raises(WritError):
        runtime.views.get(CLERK, "Person", created.id)

    wait_until(
        lambda: runtime.backend.finish_erasures() == [],
        60,  # see test_erasure_pending
        "transactions older than the purge (other tests') to end",
        every=0.5,
    )
    for name, content in _all_bytes(database_url):
        assert marker.encode() not in content, f"the purged data is still in {name}"
        assert bare not in content and wrapped not in content, (
            f"the destroyed key is still in {name}"
        )
        assert not any(key in content for key in request_keys), (
            f"the destroyed key of the approval request is still in {name}"
        )


def _all_bytes(database_url: str) -> Iterator[tuple[str, bytes]]:
    return (
        sqlite_bytes(database_url)
        if database_url.startswith("sqlite")
        else postgres_bytes(database_url)
    )


def windows(key: bytes, width: int = 16) -> list[bytes]:
    return [key[start : start + width] for start in range(len(key) - width + 1)]


@pytest.mark.usefixtures("insecure_default")
def test_no_sixteen_bytes_of_a_destroyed_key_are_left_in_sqlite(tmp_path: Path) -> None:
    """Purges of neighbouring key rows among live ones: no run of 16 bytes of any destroyed key, wrapped or bare,
    is left in any SQLite file, because ``secure_delete`` zeroes a row's old bytes as the key update rewrites it.
    (One lone purge would not show its absence: SQLite puts the shorter new row at the end of the space the old
    one freed, over the key. Neighbours' freed spaces merge, and the new rows no longer cover every key.)
    SQLite only: on PostgreSQL the bytes go with the partition's rewrite, which the test above covers."""
    database_url = f"sqlite:///{tmp_path}/keys.db"
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as runtime:
        writ = runtime.writ
        made = [writ.create(CLERK, "Person", {"name": f"person {n}"}) for n in range(12)]
        keys = {record.id: data_key(runtime, UUID(record.id)) for record in made}
        first = windows(keys[made[0].id][0])[0]
        assert any(first in content for _, content in sqlite_bytes(database_url)), (
            "the scan sees a live key"
        )
        purged = [*made[2:7], *made[9:11][::-1]]  # neighbours in the page, in both orders
        for record in purged:
            writ.purge(DPO.for_purpose("erasure request"), "Person", record.id)
    left = [
        (name, record.id)
        for name, content in sqlite_bytes(database_url)
        for record in purged
        for key in keys[record.id]
        for window in windows(key)
        if window in content
    ]
    assert left == [], "bytes of destroyed keys are still in the files"
    kept = windows(keys[made[7].id][0])[0]
    assert any(kept in content for _, content in sqlite_bytes(database_url)), (
        "a live key is still readable"
    )


def test_a_purge_in_another_process_shreds_what_this_one_serves(database_url: str) -> None:
    """Two writers on one store (``writ serve --workers``, an MCP server beside the API): the one that did not
    purge still holds the record's key in its cache, so what it reads of the record after another's purge must
    not open from there: an approval request's preview and command, an audit export's data, a failure's reason
    in the history."""
    catalog = Catalog.from_toml(
        CATALOG.replace('approve = ["manager"]', 'approve = ["manager"]\naudit = ["auditor"]'),
        source="test",
    )
    auditor, marker = principal("ann", "acme", "auditor"), f"MARKER-{uuid.uuid4().hex}"
    with Runtime(catalog, database_url) as mine, Runtime(catalog, database_url) as other:
        made = mine.writ.create(CLERK, "Person", {"name": marker, "email": f"{marker}@example.org"})
        parked = mine.writ.patch(CLERK, "Person", made.id, {"score": 987, "name": f"{marker}-2"})
        with (
            pytest.raises(ValueError),
            mine.writ.compound(CLERK, "Person", {"name": marker}) as job,
        ):
            failed = job.parent
            raise ValueError(f"bad email {marker}@example.org")
        assert marker in str(mine.writ.approval(MANAGER, parked.approval_id)), "cached here"
        for purged in (made.id, failed.id):
            other.writ.purge(DPO.for_purpose("erasure"), "Person", purged)
        # each read before the next: an export reads every key of the log again
        history = mine.writ.history(CLERK, "Person", failed.id)
        assert [entry.event for entry in history][:2] == ["Created", "Failed"], history
        assert marker not in str(history), history
        approval = mine.writ.approval(MANAGER, parked.approval_id)
        assert marker not in str(approval), approval
        exported = list(
            mine.writ.export(auditor, since="2000-01-01T00:00:00Z", until="2100-01-01T00:00:00Z")
        )
        assert exported and marker not in str(exported), exported


def test_a_purge_shreds_what_this_process_had_read(runtime: Runtime) -> None:
    """The purging process itself held the record's key and its approval request's key (linked to the record,
    destroyed with it, though the purge cannot name it) in its cache: neither opens anything afterwards."""
    writ, marker = runtime.writ, f"MARKER-{uuid.uuid4().hex}"
    made = writ.create(CLERK, "Person", {"name": marker, "email": f"{marker}@example.org"})
    parked = writ.patch(CLERK, "Person", made.id, {"score": 987, "name": f"{marker}-2"})
    assert marker in str(writ.approval(MANAGER, parked.approval_id)), "cached here"
    assert marker in str(writ.history(CLERK, "Person", made.id)), "cached here"
    writ.purge(DPO.for_purpose("erasure"), "Person", made.id)
    approval = writ.approval(MANAGER, parked.approval_id)
    assert marker not in str(approval), approval
    history = writ.history(CLERK, "Person", made.id)
    assert marker not in str(history), history


def test_a_purge_on_a_snapshot_version_succeeds_and_snapshots_nothing(runtime: Runtime) -> None:
    """The ``Purged`` tombstone lands on a multiple of the snapshot interval ("Records snapshot every 20
    events"): the purge is reported done (its key is destroyed, so nothing can be sealed for a snapshot), and
    no snapshot is taken at the tombstone's version."""
    writ = runtime.writ
    made = writ.create(CLERK, "Person", {"name": "SNAPSHOT-THEN-PURGE"})
    for score in range(1, SNAPSHOT_INTERVAL - 1):
        writ.patch(CLERK, "Person", made.id, {"score": score})
    writ.purge(DPO.for_purpose("erasure"), "Person", made.id)
    history = writ.history(CLERK, "Person", made.id)
    assert (history[-1].event, history[-1].version) == ("Purged", SNAPSHOT_INTERVAL)
    snapshots = writ._core.store.snapshots
    assert snapshots is not None
    versions = [snapshot.originator_version for snapshot in snapshots.get(UUID(made.id))]
    assert SNAPSHOT_INTERVAL not in versions, versions

"""A purge's erasure that cannot finish at once is reported pending, and finished once it can: on both databases.

While a transaction older than the purge is open (PostgreSQL: a REPEATABLE READ snapshot; SQLite: a reader
holding the write-ahead log), the old bytes cannot leave the files: ``VACUUM FULL`` copies the row versions
that snapshot may still see, and SQLite cannot checkpoint past the reader. Before, the purge said nothing and
the destroyed key and the view row's plaintext stayed in the files. Now the erasure is pending in ``writ keys
status`` and ``/healthz`` (separate processes: a real ``writ serve``), and once the old transaction ends the
projection worker (a real ``writ project``) finishes it: a scan of the database files then finds neither the
key's bytes nor the plaintext. The file scans are ``test_shredding``'s.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import orjson
import psycopg
import pytest

from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime
from infrastructure.backend_choice import open_backend
from infrastructure.erasures import NOT_THE_OWNER, Erasures
from infrastructure.sqlite_backend import views_path
from tests.conftest import PG_URL
from tests.http_support import headers, start
from tests.integration.test_shredding import CATALOG, CLERK, DPO, _all_bytes, data_key
from tests.pg_roles import pg_role
from tests.support import CliProcess, wait_until, writ_command


@pytest.fixture
def own_database_url(database_url: str) -> Iterator[str]:
    """On PostgreSQL a database of the test's own, not a schema of the shared one: a transaction open in another
    schema of the same database holds a purge's erasure back as much as one in ours (the horizon is the
    database's), so tests running meanwhile would make it pending."""
    if database_url.startswith("sqlite"):
        yield database_url
        return
    name = f"erasure_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(PG_URL)._replace(path=f"/{name}", query="schema=public"))
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@contextmanager
def older_transaction(database_url: str) -> Iterator[None]:
    """A transaction that began before the purge and stays open: a REPEATABLE READ snapshot on PostgreSQL, a read
    transaction on each SQLite file."""
    with ExitStack() as stack:
        if database_url.startswith("sqlite"):
            events = database_url.removeprefix("sqlite:///")
            for path in (events, views_path(events)):
                connection = stack.enter_context(
                    closing(sqlite3.connect(path, isolation_level=None))
                )
                connection.execute("BEGIN")
                connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                stack.callback(connection.execute, "COMMIT")
        else:
            connection = stack.enter_context(
                psycopg.connect(database_url.partition("?")[0], autocommit=True)
            )
            connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            connection.execute("SELECT 1")
            stack.callback(connection.execute, "COMMIT")
        yield


def key_status(database_url: str) -> dict[str, Any]:
    done = writ_command("keys", "status", "--json", env={"WRIT_DATABASE_URL": database_url})
    return dict(orjson.loads(done.stdout))


def left_behind(database_url: str, marker: str, key: tuple[bytes, bytes]) -> list[str]:
    """The files (and tables) still holding the plaintext or the key's bytes, bare or wrapped."""
    return [
        name
        for name, content in _all_bytes(database_url)
        if marker.encode() in content or key[0] in content or key[1] in content
    ]


def test_an_erasure_waits_for_a_transaction_older_than_the_purge_and_is_finished_after_it(
    own_database_url: str, tmp_path: Path
) -> None:
    database_url = own_database_url
    catalog_path = tmp_path / "people.toml"
    catalog_path.write_text(CATALOG)
    marker = f"MARKER-{uuid.uuid4().hex}"
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as runtime:
        created = runtime.writ.create(
            CLERK, "Person", {"name": f"{marker}-name", "email": f"{marker}@example.org"}
        )
        runtime.catch_up()
        key = data_key(runtime, UUID(created.id))
        with older_transaction(database_url):
            runtime.writ.purge(DPO.for_purpose("erasure request #9"), "Person", created.id)
            runtime.catch_up()
            assert left_behind(database_url, marker, key), (
                "the old transaction keeps the bytes in the files"
            )
            pending = key_status(database_url)["pending_erasures"]
            assert any("writ_view_person" in erasure["tables"] for erasure in pending), pending
            assert any(not erasure["views"] for erasure in pending), (
                "the key's erasure is pending too"
            )
            assert all(erasure["reason"] for erasure in pending)
            for server in start(database_url, catalog_path):
                health = server.client.get("/healthz", headers=headers()).json()
                assert health["erasures"]["pending"] == len(pending)

    worker = CliProcess(
        "project", "--catalog", str(catalog_path), env={"WRIT_DATABASE_URL": database_url}
    )
    try:
        wait_until(
            lambda: key_status(database_url)["pending_erasures"] == [],
            60,
            "the projection worker to finish the pending erasures",
            every=0.5,
        )
    finally:
        worker.stop()
    assert left_behind(database_url, marker, key) == []


def test_on_the_embedded_default_a_purge_with_no_reader_open_leaves_nothing_pending(
    tmp_path: Path,
) -> None:
    """SQLite's usual case: ``secure_delete`` zeroes the rows as they are deleted and the purge truncates the
    write-ahead log at once, so nothing is pending. (PostgreSQL's is the test above: any transaction running
    when the purge commits, in any database of the server, may hold its erasure back for a moment.)"""
    database_url = f"sqlite:///{tmp_path}/writ.db"
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as runtime:
        created = runtime.writ.create(CLERK, "Person", {"name": "NOTHING-PENDING"})
        runtime.catch_up()
        key = data_key(runtime, UUID(created.id))
        runtime.writ.purge(DPO.for_purpose("erasure request #10"), "Person", created.id)
        runtime.catch_up()
    assert key_status(database_url)["pending_erasures"] == []
    assert left_behind(database_url, "NOTHING-PENDING", key) == []


def test_the_next_purge_finishes_an_erasure_left_pending_once_nothing_older_holds_it(
    own_database_url: str,
) -> None:
    """No projection worker and no `writ keys compact`: the purge after the older transaction ended finishes
    the erasure an earlier purge left pending, and the earlier key's bytes are gone. (What is asked of a later
    purge's own erasure is nothing. A write transaction of another database running across both purges holds
    the earlier erasure back too, as any transaction id does: then the purge after that one finishes it.)"""
    database_url, marker = own_database_url, f"MARKER-{uuid.uuid4().hex}"
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as runtime:
        first = runtime.writ.create(CLERK, "Person", {"name": marker})
        second = runtime.writ.create(CLERK, "Person", {"name": "SECOND"})
        key = data_key(runtime, UUID(first.id))
        with older_transaction(database_url):
            runtime.writ.purge(DPO.for_purpose("erasure request #11"), "Person", first.id)
            held = {erasure.id for erasure in runtime.backend.pending_erasures()}
            assert held, "the older transaction holds the erasure"
        purging = iter([second.id])

        def a_purge_finishes_it() -> bool:
            record = next(purging, None) or runtime.writ.create(CLERK, "Person", {"name": "N"}).id
            runtime.writ.purge(DPO.for_purpose("erasure request #12"), "Person", record)
            return not [e for e in runtime.backend.pending_erasures() if e.id in held]

        wait_until(a_purge_finishes_it, 30, "a purge to finish what nothing older holds any more")
    assert left_behind(database_url, marker, key) == []


def test_an_erasure_of_the_views_waits_for_a_reader_of_the_views_file_not_of_the_events_file(
    tmp_path: Path,
) -> None:
    """The embedded default keeps the views in a file of their own, with a write-ahead log of its own: a
    purge's erasure of view rows is finished by truncating that log. Once the events file is free, a reader
    still holding the views file keeps that erasure pending (and the plaintext in the views' log); when it
    ends, the erasure finishes and the plaintext is gone."""
    database_url, marker = f"sqlite:///{tmp_path}/writ.db", f"MARKER-{uuid.uuid4().hex}"
    events = database_url.removeprefix("sqlite:///")
    with Runtime(Catalog.from_toml(CATALOG, source="test"), database_url) as runtime:
        created = runtime.writ.create(CLERK, "Person", {"name": marker})
        runtime.catch_up()
        with closing(sqlite3.connect(views_path(events), isolation_level=None)) as reader:
            with older_transaction(database_url):
                reader.execute("BEGIN")
                reader.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                runtime.writ.purge(DPO.for_purpose("erasure request #13"), "Person", created.id)
                runtime.catch_up()
            left = runtime.backend.finish_erasures()
            assert [erasure.tables for erasure in left if erasure.views] == [
                ["writ_view_person"]
            ], left
            assert left == [erasure for erasure in left if erasure.views], "the events file is free"
            only_marker = (marker.encode(), marker.encode())
            assert left_behind(database_url, marker, only_marker), "the views' log holds the row"
            reader.execute("COMMIT")
        assert runtime.backend.finish_erasures() == []
    assert left_behind(database_url, marker, only_marker) == []


@pytest.mark.postgres
def test_only_a_role_holding_the_owner_s_privileges_rewrites_and_any_other_is_told_so(
    pg_schema: str,
) -> None:
    """PostgreSQL skips ``VACUUM FULL`` of a table the session may not vacuum with a warning, not an error: the
    rewrite must ask first, or it reports the erasure done while the bytes stay. A non-superuser owner rewrites
    (the file is new afterwards); a member of it that does not inherit its privileges (``NOINHERIT``), and a role
    merely granted the table, are told they may not, and nothing is rewritten."""
    with ExitStack() as roles:
        owner, owner_url = roles.enter_context(
            pg_role(pg_schema, "GRANT USAGE, CREATE ON SCHEMA writ TO writ_runtime")
        )
        with psycopg.connect(PG_URL, user=owner, autocommit=True) as conn:
            conn.execute(f'CREATE TABLE "{pg_schema}".kept (v text)')
            conn.execute(f"INSERT INTO \"{pg_schema}\".kept VALUES ('x')")
        member = f'ALTER ROLE writ_runtime NOINHERIT; GRANT "{owner}" TO writ_runtime'
        _, member_url = roles.enter_context(pg_role(pg_schema, member))
        granted = "GRANT USAGE ON SCHEMA writ TO writ_runtime; GRANT ALL ON ALL TABLES IN SCHEMA writ TO writ_runtime"
        _, granted_url = roles.enter_context(pg_role(pg_schema, granted))

        def file_of() -> int:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                row = conn.execute(
                    f"SELECT pg_relation_filenode('\"{pg_schema}\".kept')"
                ).fetchone()
            assert row is not None
            return int(row[0])

        for url in (member_url, granted_url):
            backend = open_backend(url)
            try:
                before = file_of()
                reason = backend.erase_now(["kept"], views=False, horizon=None)
                assert reason is not None and reason.startswith(NOT_THE_OWNER), reason
                assert file_of() == before, "nothing was rewritten"
            finally:
                backend.close()
        backend = open_backend(owner_url)
        try:
            before = file_of()
            assert backend.erase_now(["kept"], views=False, horizon=None) is None
            assert file_of() != before, "the owner's rewrite made a new file"
        finally:
            backend.close()


def test_a_session_that_may_not_rewrite_tries_one_pending_erasure_not_each(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each purge first finishes what is pending; a session told it may not rewrite at all stops at the first,
    so a runtime role's purges do not slow down with every erasure waiting for the owner."""
    backend = open_backend(database_url)
    try:
        erasures = Erasures(backend)
        for reason in ("first", "second", "third"):
            erasures._record(["writ_keys_p0"], False, None, reason)
        asked: list[list[str]] = []

        def refused(tables: list[str], **_: Any) -> str:
            asked.append(tables)
            return f"{NOT_THE_OWNER} writ_keys_p0 (as the test's role)"

        monkeypatch.setattr(backend, "erase_now", refused)
        left = erasures.finish()
        assert [e.reason for e in left] == ["first", "second", "third"] and len(asked) == 1
    finally:
        backend.close()

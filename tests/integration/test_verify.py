"""``writ verify`` against a store tampered with through raw SQL, on both databases, in its own process.

Each tampering is reported with the record and its first bad version, and the exit status is 1; an untouched
store (purges included) verifies clean. A consistent rewrite, events and the log's own tables recomputed to
match, is caught by a checkpoint an auditor kept; a forged checkpoint is caught by its signature.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.chain import link
from entrypoints.bootstrap import open_writ
from infrastructure.log_chain import GENESIS, event_hash, next_chain, save_digest
from tests.catalogs import principal
from tests.conftest import PG_URL
from tests.pg_roles import READ_ONLY, pg_role
from tests.support import writ_command

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
SIGNING = {"WRIT_SIGNING_KEY": base64.b64encode(b"s" * 32).decode()}


class Tamperer:
    """Raw SQL on Writ's tables, as someone with write access to the database (on PostgreSQL, with the
    append-only triggers switched off for the session, as a superuser can)."""

    def __init__(self, database_url: str) -> None:
        self.sqlite = database_url.startswith("sqlite")
        self.path = database_url.removeprefix("sqlite:///")
        self.schema = database_url.partition("?schema=")[2]
        self.events = "stored_events" if self.sqlite else f'"{self.schema}".writ_events'
        self.position = "rowid" if self.sqlite else "notification_id"

    @contextmanager
    def connection(self) -> Iterator[Any]:
        if self.sqlite:
            with sqlite3.connect(self.path) as conn:
                yield conn
        else:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute("SET session_replication_role = replica")
                yield conn

    def table(self, name: str) -> str:
        return name if self.sqlite else f'"{self.schema}".{name}'

    def key(self, record_id: str) -> Any:
        return UUID(record_id).hex if self.sqlite else UUID(record_id)

    def mark(self) -> str:
        return "?" if self.sqlite else "%s"

    def state(self, record_id: str, version: int) -> bytes:
        m = self.mark()
        with self.connection() as conn:
            (state,) = conn.execute(
                f"SELECT state FROM {self.events} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (self.key(record_id), version),
            ).fetchone()
        return bytes(state)

    def set_state(self, record_id: str, version: int, state: bytes) -> None:
        m = self.mark()
        with self.connection() as conn:
            conn.execute(
                f"UPDATE {self.events} SET state = {m} WHERE originator_id = {m} AND originator_version = {m}",
                (state, self.key(record_id), version),
            )

    def delete(self, record_id: str, version: int | None = None) -> None:
        m = self.mark()
        only = f" AND originator_version = {m}" if version is not None else ""
        with self.connection() as conn:
            conn.execute(
                f"DELETE FROM {self.events} WHERE originator_id = {m}{only}",
                (self.key(record_id), *(() if version is None else (version,))),
            )

    def append_copy(self, record_id: str, version: int, as_version: int) -> None:
        """A copy of one of the record's events inserted as a later version, at the end of the log."""
        m = self.mark()
        with self.connection() as conn:
            conn.execute(
                f"INSERT INTO {self.events} (originator_id, originator_version, topic, state) SELECT "
                f"originator_id, {m}, topic, state FROM {self.events} WHERE originator_id = {m} AND "
                f"originator_version = {m}",
                (as_version, self.key(record_id), version),
            )

    def recompute_log_tables(self) -> None:
        """Rewrite the manifest and chain from the events as they now are: a thorough insider."""
        with self.connection() as conn:
            saves = conn.execute(
                f"SELECT last, first FROM {self.table('writ_log_chain')} ORDER BY last"
            ).fetchall()
            previous = GENESIS
            for last, first in saves:
                rows = conn.execute(
                    f"SELECT {self.position}, originator_id, originator_version, state FROM "
                    f"{self.events} WHERE {self.position} BETWEEN {self.mark()} AND {self.mark()} "
                    f"ORDER BY {self.position}",
                    (first, last),
                ).fetchall()
                entries = [
                    (int(p), UUID(str(o)), int(v), event_hash(bytes(s))) for p, o, v, s in rows
                ]
                for position, _, _, hashed in entries:
                    conn.execute(
                        f"UPDATE {self.table('writ_log_manifest')} SET event_hash = {self.mark()} "
                        f"WHERE position = {self.mark()}",
                        (hashed, position),
                    )
                previous = next_chain(previous, save_digest(entries))
                conn.execute(
                    f"UPDATE {self.table('writ_log_chain')} SET chain = {self.mark()} WHERE last = "
                    f"{self.mark()}",
                    (previous, last),
                )


def verify(database_url: str, *extra: str) -> dict[str, Any]:
    done = writ_command(
        "verify",
        "--json",
        "--database",
        database_url,
        *extra,
        check=False,
        env={"WRIT_DATABASE_URL": database_url, **SIGNING},
    )
    assert done.returncode in (0, 1), done.stderr
    report = orjson.loads(done.stdout)
    assert (done.returncode == 0) == report["ok"]
    return report


def first_bad(report: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """Each record's first finding as the report states it: (kind, version)."""
    return {record: (f["kind"], f["version"]) for record, f in report["first_per_record"].items()}


def history(writ: Writ) -> tuple[str, str]:
    """Two orders with three events each, a purged one, a refusal (a decision), and a bulk save."""
    first = writ.create(CLERK, "Order", {"sku": "V-1", "total": "10"}).id
    second = writ.create(CLERK, "Order", {"sku": "V-2", "total": "20"}).id
    for record_id in (first, second):
        writ.patch(CLERK, "Order", record_id, {"quantity": 2})
        writ.patch(CLERK, "Order", record_id, {"note": "three"})
    gone = writ.create(CLERK, "Order", {"sku": "V-3", "total": "30"}).id
    writ.purge(MANAGER, "Order", gone)
    with pytest.raises(Exception):  # noqa: B017 - any refusal: it is recorded as a decision
        writ.purge(CLERK, "Order", first)
    writ.create_many(CLERK, "Order", [{"sku": f"B-{n}", "total": "1"} for n in range(30)])
    return first, second


def test_an_untouched_store_verifies_clean_purges_included(writ: Writ, database_url: str) -> None:
    history(writ)
    report = verify(database_url)
    assert (
        report["ok"]
        and report["findings"] == []
        and report["records"] == 33
        and report["unattested"] == 0
    )


def test_a_purge_that_destroyed_an_approval_requests_key_verifies_clean(
    writ: Writ, database_url: str
) -> None:
    """The request's own key goes with the purge of the record it covers: destroyed with a tombstone, though
    not its own."""
    order = writ.create(CLERK, "Order", {"sku": "V-A", "total": "10"}).id
    parked = writ.patch(CLERK, "Order", order, {"total": "50000"}).approval_id
    assert parked is not None
    writ.purge(MANAGER, "Order", order)
    report = verify(database_url)
    assert (report["ok"], report["findings"]) == (True, []), report["findings"]


TAMPERINGS: dict[str, Callable[[Tamperer, str, str], dict[str, tuple[str, int]]]] = {
    "one byte changed": lambda t, a, b: (
        t.set_state(
            a,
            2,
            t.state(a, 2).replace(b'"quantity"', b'"quantitz"', 1)
            if b'"quantity"' in t.state(a, 2)
            else t.state(a, 2)[:-2] + b"X" + t.state(a, 2)[-1:],
        ),
        {a: ("altered", 2)},
    )[1],
    "middle event deleted": lambda t, a, b: (t.delete(a, 2), {a: ("removed", 2)})[1],
    "two bodies swapped": lambda t, a, b: (_swap(t, a), {a: ("altered", 2)})[1],
    "last event deleted": lambda t, a, b: (t.delete(b, 3), {b: ("removed", 3)})[1],
    "whole record deleted": lambda t, a, b: (t.delete(b), {b: ("removed", 1)})[1],
    "event appended at the end": lambda t, a, b: (t.append_copy(a, 3, 4), {a: ("inserted", 4)})[1],
}


def _swap(tamperer: Tamperer, record_id: str) -> None:
    two, three = tamperer.state(record_id, 2), tamperer.state(record_id, 3)
    tamperer.set_state(record_id, 2, three)
    tamperer.set_state(record_id, 3, two)


@pytest.mark.parametrize("tampering", list(TAMPERINGS))
def test_each_tampering_is_named_with_its_record_and_first_bad_version(
    writ: Writ, database_url: str, tampering: str
) -> None:
    first, second = history(writ)
    expected = TAMPERINGS[tampering](Tamperer(database_url), first, second)
    report = verify(database_url)
    assert not report["ok"]
    assert first_bad(report) == expected, report["findings"]


def relink(tamperer: Tamperer, record_id: str, versions: range) -> None:
    """Recompute the record's own chain from ``versions.start`` on, as someone who knows the scheme would."""
    previous = orjson.loads(tamperer.state(record_id, versions.start - 1))["hash"]
    for version in versions:
        state = orjson.loads(tamperer.state(record_id, version))
        state["hash"] = previous = link(
            previous,
            record_id=UUID(record_id),
            version=version,
            kind="Patched",
            timestamp=datetime.fromisoformat(state["timestamp"]),
            meta=state["meta"],
            body_digest=state["body_digest"],
            state_digest=state["state_digest"],
        )
        tamperer.set_state(record_id, version, orjson.dumps(state))


@pytest.mark.parametrize(
    "insider", ["edits the event and the log tables", "also relinks the record's chain"]
)
def test_a_rewrite_that_matches_the_log_tables_is_caught_by_a_kept_checkpoint(
    writ: Writ, database_url: str, tmp_path: Path, insider: str
) -> None:
    first, _ = history(writ)
    writ_command(
        "checkpoint", "--database", database_url, env={"WRIT_DATABASE_URL": database_url, **SIGNING}
    )
    kept = tmp_path / "kept.jsonl"
    kept.write_text(
        writ_command(
            "checkpoint",
            "export",
            "--database",
            database_url,
            env={"WRIT_DATABASE_URL": database_url, **SIGNING},
        ).stdout
    )
    assert verify(database_url, "--checkpoints", str(kept))["ok"]

    tamperer = Tamperer(database_url)
    state = orjson.loads(tamperer.state(first, 2))
    state["meta"]["actor"] = "mallory"
    tamperer.set_state(first, 2, orjson.dumps(state))
    if insider == "also relinks the record's chain":
        relink(tamperer, first, range(2, 4))
    tamperer.recompute_log_tables()
    report = verify(database_url, "--checkpoints", str(kept))
    rewritten = [f for f in report["findings"] if f["kind"] == "checkpoint"]
    assert rewritten and all("rewritten since its checkpoint" in f["message"] for f in rewritten)
    others = {
        (f["kind"], f["record_id"], f["version"])
        for f in report["findings"]
        if f["kind"] != "checkpoint"
    }
    relinked = insider == "also relinks the record's chain"
    assert others == (
        {("unauthenticated", first, 2), ("unauthenticated", first, 3)}
        if relinked
        else {("unauthenticated", first, 2), ("broken_link", first, 2)}
    ), "the saves' tags tell too"


@pytest.mark.parametrize(
    ("column", "forged"), [("chain", "00" * 32), ("signed_at", "2001-01-01T00:00:00+00:00")]
)
def test_a_forged_checkpoint_is_refused(
    writ: Writ, database_url: str, tmp_path: Path, column: str, forged: str
) -> None:
    """Its chain, or when it says it was signed: the signature covers both."""
    history(writ)
    writ_command(
        "checkpoint", "--database", database_url, env={"WRIT_DATABASE_URL": database_url, **SIGNING}
    )
    tamperer = Tamperer(database_url)
    with tamperer.connection() as conn:
        conn.execute(
            f"UPDATE {tamperer.table('writ_checkpoints')} SET {column} = {tamperer.mark()}",
            (forged,),
        )
    report = verify(database_url)
    assert [f["kind"] for f in report["findings"]] == ["checkpoint"]
    assert "is not signed by a known key" in report["findings"][0]["message"]


def test_saves_made_before_writer_keys_are_counted_not_failed(
    writ: Writ, database_url: str
) -> None:
    """An upgraded store: its earlier saves carry no tag (unauthenticated, before writer keys), the later ones
    do; nothing is broken. An untagged save after the first tagged one is a finding (the tamper matrix)."""
    history(writ)
    tamperer = Tamperer(database_url)
    with tamperer.connection() as conn:
        conn.execute(f"UPDATE {tamperer.table('writ_log_chain')} SET mac = NULL, writer_key = NULL")
    writ.create(CLERK, "Order", {"sku": "V-9", "total": "9"})
    report = verify(database_url)
    assert report["ok"] and (report["untagged"], report["authenticated"]) == (
        report["saves"] - 1,
        1,
    )


def test_a_save_tagged_with_a_writer_key_not_configured_here_is_a_finding(
    writ: Writ, database_url: str
) -> None:
    """A tag proves nothing when no configured key has its id: a save claiming a made-up key (or one retired
    from this configuration) is not authenticated, and each of its events is named as such."""
    first, _ = history(writ)
    tamperer = Tamperer(database_url)
    with tamperer.connection() as conn:
        conn.execute(
            f"UPDATE {tamperer.table('writ_log_chain')} SET writer_key = {tamperer.mark()} "
            f"WHERE first = (SELECT min(first) FROM {tamperer.table('writ_log_chain')})",
            ("made-up",),
        )
    report = verify(database_url)
    assert not report["ok"] and report["authenticated"] == report["saves"] - 1, report
    named = [f for f in report["findings"] if f["kind"] == "unauthenticated"]
    assert [(f["record_id"], f["version"]) for f in named] == [(first, 1)], report["findings"]
    assert "writer key made-up, which is not configured here" in named[0]["message"]


@pytest.mark.postgres
def test_a_role_that_may_only_read_verifies(pg_schema: str, catalog: Catalog) -> None:
    """An auditor's session may hold SELECT alone: verify writes nothing (it ran ``CREATE TABLE IF NOT EXISTS`` on
    the checkpoints' table, which PostgreSQL refuses a role without CREATE on the schema even when the table is
    there), before the first checkpoint and after it."""
    database_url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"
    with open_writ(catalog, database_url) as writ:
        history(writ)
    with pg_role(pg_schema, READ_ONLY) as (role, reader_url):
        assert verify(reader_url)["ok"]
        writ_command(
            "checkpoint",
            "--database",
            database_url,
            env={"WRIT_DATABASE_URL": database_url, **SIGNING},
        )
        report = verify(reader_url)
        assert report["ok"] and report["checkpoints"] == 1, report
        # checkpoints it may not read stop the verification, never read as none to check
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'REVOKE SELECT ON "{pg_schema}".writ_checkpoints FROM "{role}"')
        done = writ_command("verify", "--json", "--database", reader_url, check=False, env=SIGNING)
        assert done.returncode == 2, done
        assert "VERIFY_INCOMPLETE" in done.stderr and "writ_checkpoints" in done.stderr, done.stderr


def test_a_store_never_written_to_verifies_clean(database_url: str) -> None:
    """Its tables are made first (verify opens the log without making them only when they are there)."""
    report = verify(database_url)
    assert report["ok"] and (report["events"], report["saves"], report["records"]) == (0, 0, 0)


def test_a_store_from_before_writer_keys_gets_its_columns_then_verifies(
    writ: Writ, database_url: str
) -> None:
    """The chain table as a version before writer keys made it (no tag columns): verify makes the store's tables
    as this version has them before reading, and counts every save as untagged."""
    history(writ)
    tamperer = Tamperer(database_url)
    with tamperer.connection() as conn:
        conn.execute(f"ALTER TABLE {tamperer.table('writ_log_chain')} DROP COLUMN mac")
        conn.execute(f"ALTER TABLE {tamperer.table('writ_log_chain')} DROP COLUMN writer_key")
    report = verify(database_url)
    assert report["ok"] and report["saves"] > 0 and report["untagged"] == report["saves"], report

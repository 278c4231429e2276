"""Views belong to one log: when the event store is made afresh under them, they never serve the old one.

The operator deletes ``writ.db`` and keeps ``writ-views.db`` (PostgreSQL: drops the event store's tables and
keeps the views', which live in the same schema). A new record then makes a new log, with a new identity.
Before, ``writ list`` showed the old records and not the new one, and ``--status`` put the views at position
7 of a log whose head was 3. Now a worker that meets the views of another log drops them and projects the new
log from its first event (on the embedded default every ``writ list`` catches up first, so it does so at
once), and until a worker has, readers refuse with ``PROJECTION_LOG_CHANGED``. Every step is a separate
``writ`` process.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import orjson
import psycopg

from tests.catalogs import SHOP_CATALOG
from tests.conftest import PG_URL
from tests.support import writ_command

FOLLOWERS = (
    "writ_view_",
    "writ_decisions",
    "writ_approvals",
    "writ_positions",
    "writ_set_aside",
    "writ_followed_logs",
)
"""The tables of the views and of the followers' positions: what the operator kept."""


def writ(
    database_url: str, catalog: Path, *arguments: str, check: bool = True
) -> tuple[str, str, int]:
    done = writ_command(
        *arguments,
        "--catalog",
        str(catalog),
        check=check,
        env={
            "WRIT_DATABASE_URL": database_url,
            "WRIT_USER": "carol",
            "WRIT_TENANT": "acme",
            "WRIT_ROLES": "clerk",
            "WRIT_PURPOSE": "views test",
        },
    )
    return done.stdout, done.stderr, done.returncode


def create(database_url: str, catalog: Path, *skus: str) -> None:
    for sku in skus:
        writ(
            database_url,
            catalog,
            "create",
            "Order",
            orjson.dumps({"sku": sku, "total": "1"}).decode(),
        )


def listed(database_url: str, catalog: Path) -> set[str]:
    out, _, _ = writ(database_url, catalog, "list", "Order", "--json")
    return {row["sku"] for row in orjson.loads(out)["rows"]}


def drop_the_event_store(database_url: str, keep: tuple[str, ...] = FOLLOWERS) -> None:
    """Everything of the log goes; the views and the followers' positions (tables named ``keep...``) stay."""
    if database_url.startswith("sqlite"):
        events = Path(database_url.removeprefix("sqlite:///"))
        for path in (events, Path(f"{events}-wal"), Path(f"{events}-shm")):
            path.unlink(missing_ok=True)
        return
    schema = database_url.partition("?schema=")[2]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            )
        ]
        for table in tables:
            if not table.startswith(keep):
                conn.execute(f'DROP TABLE IF EXISTS "{schema}"."{table}" CASCADE')


def test_views_of_a_log_made_afresh_are_projected_again_from_the_new_log(
    database_url: str, tmp_path: Path
) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    create(database_url, catalog, "OLD-1", "OLD-2")
    writ(database_url, catalog, "project", "--once")
    assert listed(database_url, catalog) == {"OLD-1", "OLD-2"}

    drop_the_event_store(database_url)
    # past the views' position: only the identity tells
    create(database_url, catalog, "NEW-1", "NEW-2", "NEW-3")
    if database_url.startswith("sqlite"):
        _, said, _ = writ(database_url, catalog, "list", "Order")
        assert "the views are not this log's (it followed log" in said, (
            "the catch-up says what it did"
        )
    else:  # no worker has run since: the views are the old log's, and readers say so
        _, said, status = writ(database_url, catalog, "list", "Order", check=False)
        assert status == 2 and said.startswith(
            "error: PROJECTION_LOG_CHANGED: The views were projected from log"
        )
        _, said, _ = writ(database_url, catalog, "project", "--once")
        assert "the views are not this log's (it followed log" in said

    assert listed(database_url, catalog) == {"NEW-1", "NEW-2", "NEW-3"}
    assert_current(database_url, catalog)
    create(database_url, catalog, "NEW-4")
    writ(database_url, catalog, "project", "--once")
    assert listed(database_url, catalog) == {"NEW-1", "NEW-2", "NEW-3", "NEW-4"}, (
        "the views follow the new log"
    )


def assert_current(database_url: str, catalog: Path) -> None:
    out, _, _ = writ(database_url, catalog, "project", "--status", "--json")
    status = orjson.loads(out.splitlines()[0])
    assert status["position"] == status["head"] and status["events_behind"] == 0, status


def test_views_past_the_end_of_a_restored_older_copy_of_the_log_are_projected_again(
    tmp_path: Path,
) -> None:
    """The same log (same identity) restored from an older copy: the views hold records it no longer has, and
    stand past its last position. (SQLite: a copy of the file; the same check runs on PostgreSQL.)"""
    catalog, url = tmp_path / "writ.toml", f"sqlite:///{tmp_path}/writ.db"
    catalog.write_text(SHOP_CATALOG)
    create(url, catalog, "KEPT-1")
    # the write-ahead log merged in: one file to copy
    with closing(sqlite3.connect(tmp_path / "writ.db")) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = (tmp_path / "writ.db").read_bytes()
    create(url, catalog, "LOST-1", "LOST-2")
    assert listed(url, catalog) == {"KEPT-1", "LOST-1", "LOST-2"}

    drop_the_event_store(url)
    (tmp_path / "writ.db").write_bytes(copy)
    _, said, _ = writ(url, catalog, "list", "Order")
    assert "it stands at position 3, past the log's last position 1" in said
    assert listed(url, catalog) == {"KEPT-1"}
    assert_current(url, catalog)

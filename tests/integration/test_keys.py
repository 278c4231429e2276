"""Master keys as an operator meets them: the embedded default's own key, a missing or wrong key, rotation."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from uuid import UUID

import orjson
import psycopg
import pytest

from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime
from infrastructure import key_admin
from infrastructure.key_table import KeyTable
from infrastructure.master_keys import key_id, new_master_key, parse_keys
from tests.catalogs import SHOP_CATALOG
from tests.conftest import PG_URL
from tests.integration.test_shredding import CATALOG, CLERK, DPO
from tests.support import writ_command

WHO = ["--user", "carol", "--tenant", "acme", "--role", "clerk", "--purpose", "keys test"]


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "writ.toml"
    path.write_text(SHOP_CATALOG)
    return path


def create(database_url: str, catalog_path: Path, sku: str, *, key: str, check: bool = True) -> str:
    done = writ_command(
        "create",
        "Order",
        orjson.dumps({"sku": sku, "total": "1"}).decode(),
        "--json",
        "--catalog",
        str(catalog_path),
        *WHO,
        check=check,
        env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": key},
    )
    return done.stdout if check else done.stderr


def read(
    database_url: str, catalog_path: Path, record_id: str, *, key: str, check: bool = True
) -> str:
    done = writ_command(
        "get",
        "Order",
        record_id,
        "--json",
        "--catalog",
        str(catalog_path),
        *WHO,
        check=check,
        env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": key},
    )
    return done.stdout if check else done.stderr


def test_the_embedded_default_makes_its_master_key_once_and_says_so(
    tmp_path: Path, catalog_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/shop.db"
    first = writ_command(
        "create",
        "Order",
        '{"sku": "K-1", "total": "1"}',
        "--catalog",
        str(catalog_path),
        *WHO,
        env={"WRIT_DATABASE_URL": url, "WRIT_MASTER_KEY": ""},
    )
    assert "created master key" in first.stderr and "shop.db.master-key" in first.stderr
    key_file = tmp_path / "shop.db.master-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    record_id = orjson.loads(create(url, catalog_path, "K-2", key=""))["id"]
    again = writ_command(
        "get",
        "Order",
        record_id,
        "--json",
        "--catalog",
        str(catalog_path),
        *WHO,
        env={"WRIT_DATABASE_URL": url, "WRIT_MASTER_KEY": ""},
    )
    assert orjson.loads(again.stdout)["sku"] == "K-2" and "created master key" not in again.stderr


@pytest.mark.postgres
def test_postgresql_needs_a_configured_master_key(pg_schema: str, catalog_path: Path) -> None:
    said = create(f"{PG_URL}?schema={pg_schema}", catalog_path, "K-1", key="", check=False)
    assert said.strip().startswith("error: CONFIGURATION_INVALID: PostgreSQL needs a master key")


@pytest.mark.parametrize(
    "key, why",
    [
        ("not base64!", "is not base64"),
        ("c2hvcnQ=", "has 5 bytes"),
        (
            "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB",
            "has 48 bytes",
        ),  # too long is refused as clearly as too short
    ],
)
def test_a_malformed_master_key_is_one_clear_line(
    tmp_path: Path, catalog_path: Path, key: str, why: str
) -> None:
    said = create(f"sqlite:///{tmp_path}/shop.db", catalog_path, "K-1", key=key, check=False)
    assert (
        said.strip().startswith("error: CONFIGURATION_INVALID: WRIT_MASTER_KEY: master key 1")
        and why in said
    )


def test_data_under_another_master_key_is_refused_naming_it(
    database_url: str, catalog_path: Path
) -> None:
    first, other = new_master_key(), new_master_key()
    record_id = orjson.loads(create(database_url, catalog_path, "K-1", key=first))["id"]
    said = read(database_url, catalog_path, record_id, key=other, check=False)
    assert said.strip().startswith(
        "error: CONFIGURATION_INVALID: A data key is wrapped by master key"
    )


def events_digest(database_url: str) -> str:
    """A hash of every stored event, byte for byte."""
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            rows = conn.execute(
                "SELECT originator_id, originator_version, state FROM stored_events ORDER BY rowid"
            ).fetchall()
    else:
        schema = database_url.partition("?schema=")[2]
        with psycopg.connect(PG_URL) as conn:
            rows = conn.execute(
                f'SELECT originator_id::text, originator_version, state FROM "{schema}".writ_events '
                "ORDER BY notification_id"
            ).fetchall()
    return hashlib.sha256(repr([(str(a), b, bytes(c)) for a, b, c in rows]).encode()).hexdigest()


def test_rotation_rewraps_every_key_and_leaves_the_events_alone(
    database_url: str, catalog_path: Path
) -> None:
    old, new = new_master_key(), new_master_key()
    ids = [
        orjson.loads(create(database_url, catalog_path, f"R-{n}", key=old))["id"] for n in range(3)
    ]
    before = events_digest(database_url)
    both = f"{new},{old}"
    status = writ_command(
        "keys", "status", "--json", env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": both}
    )
    assert orjson.loads(status.stdout)["to_rotate"] == 3
    rotated = writ_command(
        "keys", "rotate", env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": both}
    )
    assert "re-wrapped 3 data keys" in rotated.stdout
    assert events_digest(database_url) == before, (
        "rotation re-wraps keys; it never touches an event"
    )
    for record_id in ids:
        assert orjson.loads(read(database_url, catalog_path, record_id, key=new))["id"] == record_id
    said = read(database_url, catalog_path, ids[0], key=old, check=False)
    assert "wrapped by master key" in said, "the old key alone opens nothing any more"
    after = orjson.loads(
        writ_command(
            "keys",
            "status",
            "--json",
            env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": new},
        ).stdout
    )
    assert (after["to_rotate"], sum(after["live"].values())) == (0, 3)
    assert os.environ["WRIT_MASTER_KEY"] not in (old, new)


def files_of(schema: str) -> dict[str, int]:
    """Each key and view table's file node: a rewrite gives a table a new one."""
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            "SELECT relname, relfilenode FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r' AND (relname LIKE 'writ\\_keys%%' OR "
            "relname LIKE 'writ\\_view\\_%%')",
            (schema,),
        ).fetchall()
    return dict(rows)


@pytest.mark.postgres
def test_compact_rewrites_every_key_and_view_table(pg_schema: str, catalog_path: Path) -> None:
    url, key = f"{PG_URL}?schema={pg_schema}", new_master_key()
    create(url, catalog_path, "C-1", key=key)
    writ_command(
        "project",
        "--once",
        "--catalog",
        str(catalog_path),
        env={"WRIT_DATABASE_URL": url, "WRIT_MASTER_KEY": key},
    )
    before = files_of(pg_schema)
    assert (
        "writ_view_order" in before and sum(name.startswith("writ_keys") for name in before) >= 64
    )
    done = writ_command("keys", "compact", env={"WRIT_DATABASE_URL": url, "WRIT_MASTER_KEY": key})
    after = files_of(pg_schema)
    assert done.stdout.strip() == f"rewrote {len(before)} tables"
    unchanged = [name for name in before if after[name] == before[name]]
    assert unchanged == [], "every table holding keys or views is rewritten into a new file"


def test_rotation_goes_batch_after_batch_and_status_counts_live_keys_apart_from_destroyed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with batches of two keys: every key is re-wrapped, not the first batch only; a purged record's
    key is counted destroyed, never live (its row keeps the id of the master key that wrapped it)."""
    old, new = new_master_key(), new_master_key()
    catalog = Catalog.from_toml(CATALOG, source="test")
    monkeypatch.setenv("WRIT_MASTER_KEY", old)
    with Runtime(catalog, database_url) as runtime:
        made = [runtime.writ.create(CLERK, "Person", {"name": f"P-{n}"}) for n in range(5)]
        runtime.writ.purge(DPO.for_purpose("erasure"), "Person", made[0].id)
    monkeypatch.setenv("WRIT_MASTER_KEY", f"{new},{old}")
    monkeypatch.setattr(key_admin, "BATCH", 2)
    old_id, new_id = (key_id(parse_keys(key, "test")[0]) for key in (old, new))
    with Runtime(catalog, database_url) as runtime:
        before = key_admin.status(runtime.backend)
        assert (before.live.get(old_id), before.destroyed, before.to_rotate) == (4, 1, 4), before
        assert key_admin.rotate(runtime.backend) == 4
        after = key_admin.status(runtime.backend)
        assert (after.live, after.destroyed, after.to_rotate) == ({new_id: 4}, 1, 0), after
    monkeypatch.setenv("WRIT_MASTER_KEY", new)
    with Runtime(catalog, database_url) as runtime:
        for n, record in enumerate(made[1:], start=1):
            assert runtime.writ.get(CLERK, "Person", record.id)["name"] == f"P-{n}"


@pytest.mark.postgres
def test_a_purge_committed_while_a_rotation_batch_is_in_flight_stays_destroyed(
    pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rotation reads a batch of live keys, re-wraps them, then writes them back: a purge that commits in
    between destroys a key the batch read, and the batch's write must pass over it (no key comes back), while
    the rotation completes. PostgreSQL only: on SQLite the rotation's transaction holds the write lock from its
    first statement (``BEGIN IMMEDIATE``), so no purge can commit in between."""
    url, old, new = f"{PG_URL}?schema={pg_schema}", new_master_key(), new_master_key()
    catalog = Catalog.from_toml(CATALOG, source="test")
    monkeypatch.setenv("WRIT_MASTER_KEY", old)
    with Runtime(catalog, url) as runtime:
        purged, kept = (runtime.writ.create(CLERK, "Person", {"name": n}) for n in ("A", "B"))
    monkeypatch.setenv("WRIT_MASTER_KEY", f"{new},{old}")
    with Runtime(catalog, url) as rotating, Runtime(catalog, url) as purging:
        masters = rotating.backend.vault().masters
        # the purge's partition rewrite would wait on the rotation's open transaction: not what is tested here
        monkeypatch.setattr(KeyTable, "erase", lambda self, destroyed: None)

        def rewrapped(owner: UUID, wrapped: bytes, master: str) -> tuple[bytes, str]:
            if owner == UUID(purged.id):
                purging.writ.purge(DPO.for_purpose("erasure"), "Person", purged.id)
            return masters.wrap(owner, masters.unwrap(owner, wrapped, master))

        keys = rotating.backend.key_table()
        try:
            assert keys.rotate(masters.current_id, key_admin.BATCH, rewrapped) == 2
        finally:
            keys.close()
        assert purging.backend.vault().keys.destroyed_among([UUID(purged.id)]) == {UUID(purged.id)}
        status = key_admin.status(rotating.backend)
        assert (status.live, status.destroyed) == ({masters.current_id: 1}, 1), status
        assert rotating.writ.get(CLERK, "Person", kept.id)["name"] == "B"

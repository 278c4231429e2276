"""``CREATE_TABLE=n`` (a runtime role that may not create tables) is honoured by everything that opens the
store: the command service and the log the workers follow. Checked on both databases by what tables exist."""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from infrastructure.log import open_log
from tests.catalogs import SHOP_CATALOG
from tests.conftest import PG_URL


def tables(database_url: str) -> set[str]:
    if database_url.startswith("sqlite"):
        with sqlite3.connect(urlsplit(database_url).path) as conn:
            return {
                row[0]
                for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            }
    schema = parse_qs(urlsplit(database_url).query)["schema"][0]
    with psycopg.connect(PG_URL.split("?", maxsplit=1)[0]) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", [schema]
        )
        return {row[0] for row in rows}


def test_the_log_and_the_service_make_no_table_when_told_not_to(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = "stored_events" if database_url.startswith("sqlite") else "writ_events"
    monkeypatch.setenv("CREATE_TABLE", "n")
    log = open_log(database_url)
    log.close()
    assert events not in tables(database_url), "the log a worker follows made the tables"
    writ = open_writ(Catalog.from_toml(SHOP_CATALOG), database_url)
    writ.close()
    assert events not in tables(database_url), "the service made the tables"
    monkeypatch.delenv("CREATE_TABLE")
    open_log(database_url).close()
    assert events in tables(database_url), "by default the log makes them"


def test_every_insert_function_from_before_tagged_saves_is_dropped_at_the_upgrade(
    pg_schema: str,
) -> None:
    """An older insert function took the keys to destroy from its caller and wrote saves untagged: a store
    made by such a version must not keep it callable beside the new one (both of its signatures)."""
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"
    catalog = Catalog.from_toml(SHOP_CATALOG)
    open_writ(catalog, url).close()
    old = [
        "uuid[], bigint[], text[], bytea[], text, uuid[], bytea[], text[], uuid[], uuid[], uuid[]"
    ]
    old.append(old[0] + ", int[]")
    with psycopg.connect(PG_URL.split("?", maxsplit=1)[0], autocommit=True) as conn:
        for signature in old:
            conn.execute(
                f'CREATE FUNCTION "{pg_schema}".writ_events_insert({signature}) '
                "RETURNS void LANGUAGE sql AS 'SELECT'"
            )
    open_writ(catalog, url).close()
    with psycopg.connect(PG_URL.split("?", maxsplit=1)[0]) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = 'writ_events_insert'",
            [pg_schema],
        ).fetchone() or (0,)
    assert count == 1, "only this version's insert function is left"

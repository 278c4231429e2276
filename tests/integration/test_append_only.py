"""PostgreSQL refuses to change history through SQL: the event store's tables only grow, and data keys change
only through purge and rotation (which still work)."""

from __future__ import annotations

import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from tests.catalogs import SHOP_CATALOG, principal
from tests.conftest import PG_URL

pytestmark = pytest.mark.postgres
CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
HISTORY = {"writ_events": "state", "writ_snapshots": "state", "writ_log_manifest": "event_hash",
           "writ_log_chain": "chain", "writ_checkpoints": "chain"}


@pytest.fixture
def store(pg_schema: str) -> str:
    return f"{PG_URL}?schema={pg_schema}"


def refused(schema: str, statement: str) -> str:
    with psycopg.connect(PG_URL, autocommit=True) as conn, pytest.raises(psycopg.Error) as caught:
        conn.execute(statement.replace("$S", f'"{schema}"'))
    return str(caught.value)


def test_history_tables_refuse_update_delete_and_truncate(store: str, pg_schema: str) -> None:
    writ: Writ = open_writ(Catalog.from_toml(SHOP_CATALOG), store)
    try:
        record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "1"}).id
        writ.purge(MANAGER, "Order", record)  # a purge still destroys its key (through the guard)
    finally:
        writ.close()
    for table, column in HISTORY.items():
        for statement in (f"UPDATE $S.{table} SET {column} = {column}", f"DELETE FROM $S.{table}",
                          f"TRUNCATE $S.{table}"):
            said = refused(pg_schema, statement)
            assert "refused: the table is append-only" in said, (statement, said)
    for statement in ("UPDATE $S.writ_keys SET wrapped = NULL", "DELETE FROM $S.writ_keys",
                      "TRUNCATE $S.writ_keys"):
        assert "data keys change only through purge and rotation" in refused(pg_schema, statement), statement
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(f'SELECT count(*) FILTER (WHERE wrapped IS NULL) FROM "{pg_schema}".writ_keys').fetchone()
    assert rows == (1,), "the purge's own change went through"

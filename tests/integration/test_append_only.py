"""PostgreSQL refuses to change history through SQL: the event store's tables only grow, and data keys change
only through purge and rotation (which still work)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import ServiceUnavailableError
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from tests.catalogs import SHOP_CATALOG, principal
from tests.conftest import PG_URL
from tests.pg_roles import READ_ONLY, pg_role, runtime_grants

pytestmark = pytest.mark.postgres
CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
HISTORY = {
    "writ_events": "state",
    "writ_snapshots": "state",
    "writ_log_manifest": "event_hash",
    "writ_log_chain": "chain",
    "writ_checkpoints": "chain",
}


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
        for statement in (
            f"UPDATE $S.{table} SET {column} = {column}",
            f"DELETE FROM $S.{table}",
            f"TRUNCATE $S.{table}",
        ):
            said = refused(pg_schema, statement)
            assert "refused: the table is append-only" in said, (statement, said)
    for statement in (
        "UPDATE $S.writ_keys SET wrapped = NULL",
        "DELETE FROM $S.writ_keys",
        "TRUNCATE $S.writ_keys",
    ):
        assert "data keys change only through purge and rotation" in refused(
            pg_schema, statement
        ), statement
    with psycopg.connect(PG_URL) as conn:
        rows = conn.execute(
            f'SELECT count(*) FILTER (WHERE wrapped IS NULL) FROM "{pg_schema}".writ_keys'
        ).fetchone()
    assert rows == (1,), "the purge's own change went through"


def test_a_runtime_role_with_no_update_on_the_key_table_still_purges_and_cannot_change_a_key(
    store: str, pg_schema: str
) -> None:
    """docs/operations.md's deployment option: the schema made by its owner; Writ run as a role holding SELECT and
    INSERT on the tables and EXECUTE on the insert function, and nothing else. A purge destroys its key through the
    insert function (SECURITY DEFINER), and its erasure (the key table's files rewritten, which only the table's
    owner may do) is recorded pending for the owner to finish, not claimed done; a key changed by that role's own
    statement is refused, variable or not."""
    open_writ(Catalog.from_toml(SHOP_CATALOG), store).close()  # the owner makes the schema
    with pg_role(pg_schema, runtime_grants()) as (role, runtime):
        writ: Writ = open_writ(Catalog.from_toml(SHOP_CATALOG), runtime, create_tables=False)
        try:
            record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "1"}).id
            writ.purge(MANAGER, "Order", record)
        finally:
            writ.close()
        # the key's old bytes stay in the key table's files until its owner rewrites them: pending, not done
        owner = open_backend(store)
        try:
            (pending,) = owner.pending_erasures()
            assert "may not rewrite" in pending.reason and pending.tables, pending
            assert owner.finish_erasures() == [], "the owner finishes it"
        finally:
            owner.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            destroyed = conn.execute(
                f'SELECT wrapped IS NULL FROM "{pg_schema}".writ_keys WHERE id = %s',
                (uuid.UUID(record),),
            ).fetchone()
        assert destroyed == (True,), "the purge destroyed the key, through the insert function"
        with (
            psycopg.connect(PG_URL, user=role, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
            conn.transaction(),
        ):
            conn.execute("SET LOCAL writ.key_change = 'purge'")
            conn.execute(f'UPDATE "{pg_schema}".writ_keys SET wrapped = NULL')


def test_no_statement_of_the_session_changes_a_key_however_it_is_dressed(
    store: str, pg_schema: str
) -> None:
    """As the tables' owner with the triggers on: a variable, a DO block, a function of one's own are all refused;
    only Writ's insert and rewrap functions, called by the session itself, change a key."""
    writ: Writ = open_writ(Catalog.from_toml(SHOP_CATALOG), store)
    try:
        record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "1"}).id
    finally:
        writ.close()
    update = f"UPDATE \"{pg_schema}\".writ_keys SET wrapped = NULL, destroyed_at = now() WHERE id = '{record}'"
    rotate = (
        f'UPDATE "{pg_schema}".writ_keys SET wrapped = (SELECT wrapped FROM "{pg_schema}".writ_keys WHERE id '
        f"<> '{record}' LIMIT 1) WHERE id = '{record}'"
    )
    for statement in (
        f"SELECT set_config('writ.key_change', 'purge', false); {update}",
        f"SELECT set_config('writ.key_change', 'rotate', false); {rotate}",
        f"DO $$ BEGIN {update}; END $$",
        f"CREATE FUNCTION pg_temp.writ_events_insert() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
        f"{update}; END $$; SELECT pg_temp.writ_events_insert()",
    ):
        said = refused(pg_schema, statement)
        assert "data keys change only through purge and rotation" in said, statement


def executes(schema: str, role: str) -> dict[str, bool]:
    """Whether ``role`` may execute each ``SECURITY DEFINER`` function in ``schema``, from the catalog."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT p.proname, has_function_privilege(%s, p.oid, 'EXECUTE') FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s AND p.prosecdef",
            (role, schema),
        ).fetchall()
    return dict(rows)


def test_no_role_executes_writ_s_functions_unless_granted_them(store: str, pg_schema: str) -> None:
    """PostgreSQL lets PUBLIC execute every function it makes, and Writ's insert and rewrap functions run as the
    tables' owner: left so, a role granted SELECT alone (an auditor's) saves, purges and re-wraps keys through
    them. Writ takes them from PUBLIC at each start that makes tables, a store made before included (its next
    start, which also drops an earlier release's overload of the insert function: the docs' grant names the
    function without its arguments): the auditor's role executes neither, and its create fails and writes
    nothing; the runtime role executes the insert function alone."""
    catalog = Catalog.from_toml(SHOP_CATALOG)
    open_writ(catalog, store).close()
    # as a store made before: PostgreSQL's default grant, and the first release's signature left behind
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for function in ("writ_events_insert", "writ_keys_rewrap"):
            conn.execute(f'GRANT EXECUTE ON FUNCTION "{pg_schema}".{function} TO PUBLIC')
        conn.execute(
            f'CREATE FUNCTION "{pg_schema}".writ_events_insert(p_events "{pg_schema}".stored_event_uuid[], '
            "p_lock_timeout text) RETURNS SETOF bigint LANGUAGE sql AS 'SELECT 1::bigint'"
        )
    assert executes(pg_schema, "pg_monitor") == {
        "writ_events_insert": True,
        "writ_keys_rewrap": True,
    }
    open_writ(catalog, store).close()  # the owner's next start
    with psycopg.connect(PG_URL) as conn:
        overloads = conn.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = %s AND p.proname = 'writ_events_insert'",
            (pg_schema,),
        ).fetchone()
    assert overloads == (1,), "the earlier overload is gone"
    with (
        pg_role(pg_schema, READ_ONLY) as (reader, reader_url),
        pg_role(pg_schema, runtime_grants()) as (runtime, _),
    ):
        assert executes(pg_schema, reader) == {
            "writ_events_insert": False,
            "writ_keys_rewrap": False,
        }
        assert executes(pg_schema, runtime) == {
            "writ_events_insert": True,
            "writ_keys_rewrap": False,
        }
        with (
            psycopg.connect(PG_URL, user=reader, autocommit=True) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            conn.execute(f"SELECT \"{pg_schema}\".writ_keys_rewrap('{{}}', '{{}}', '{{}}', '{{}}')")
        writ: Writ = open_writ(catalog, reader_url, create_tables=False)
        try:
            with pytest.raises(ServiceUnavailableError) as raised:
                writ.create(CLERK, "Order", {"sku": "R-1", "total": "1"})
        finally:
            writ.close()
        assert raised.value.code == "UNAVAILABLE"
        assert "needs EXECUTE on the event store's insert function" in raised.value.message
    with psycopg.connect(PG_URL) as conn:
        stored = conn.execute(f'SELECT count(*) FROM "{pg_schema}".writ_events').fetchone()
    assert stored == (0,), "nothing written"

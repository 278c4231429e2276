"""The save's call through libpq (``infrastructure.pg_call``): the same rows prepared or unnamed, psycopg's own
exception for an error, and a statement deallocated behind its back prepared again at the next call."""

from __future__ import annotations

import threading
import time

import pytest
from eventsourcing.persistence import IntegrityError as ESIntegrityError
from eventsourcing.persistence import StoredEvent
from psycopg import errors
from psycopg.pq import Format

from domain.catalog import Catalog
from domain.ids import new_id
from domain.record import Record
from entrypoints.bootstrap import open_writ
from infrastructure.pg_arrays import BIGINTS
from infrastructure.pg_call import PreparedCall, bigints
from tests.catalogs import principal
from tests.conftest import PG_URL, _pg_connect

pytestmark = pytest.mark.postgres

CALL = PreparedCall(
    "writ_test_call",
    b"SELECT v * $2::bigint FROM unnest($1::bigint[]) AS v",
    [("bigint[]", Format.BINARY), ("text", Format.TEXT)],
)


def test_a_call_gives_the_same_rows_prepared_or_not() -> None:
    with _pg_connect() as conn:
        for prepared in (False, True, True):
            result = CALL.run(conn, [BIGINTS([1, -2, 2**40]).data, b"3"], prepared=prepared)
            assert bigints(result) == [3, -6, 3 * 2**40]
            # a pool's connection (not prepared) is left without it: psycopg deallocates what it finds there
            assert conn.execute(
                "SELECT count(*) FROM pg_prepared_statements WHERE name = 'writ_test_call'"
            ).fetchone() == (int(prepared),)
        assert conn.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE name = 'writ_test_call'"
        ).fetchone() == (1,)  # prepared once


def test_an_error_is_psycopg_s_own_and_leaves_the_connection_usable() -> None:
    with _pg_connect() as conn:
        for prepared in (False, True):
            with pytest.raises(errors.InvalidTextRepresentation) as raised:
                CALL.run(conn, [BIGINTS([1]).data, b"three"], prepared=prepared)
            assert raised.value.diag.sqlstate == "22P02"
            assert bigints(CALL.run(conn, [BIGINTS([1]).data, b"2"], prepared=prepared)) == [2]


def test_a_statement_deallocated_elsewhere_is_prepared_again() -> None:
    """A statement deallocated behind the call's back (psycopg deallocates every statement of a connection after
    a ROLLBACK once it has prepared one of its own) is prepared and sent again by that same call; inside a
    transaction, which the error has aborted, the call fails, and the next one prepares it again."""
    with _pg_connect() as conn:
        assert bigints(CALL.run(conn, [BIGINTS([5]).data, b"1"], prepared=True)) == [5]
        conn.execute("DEALLOCATE ALL")
        assert bigints(CALL.run(conn, [BIGINTS([5]).data, b"2"], prepared=True)) == [10]
        conn.execute("DEALLOCATE ALL")
        with pytest.raises(errors.InvalidSqlStatementName), conn.transaction():
            CALL.run(conn, [BIGINTS([5]).data, b"1"], prepared=True)
        assert bigints(CALL.run(conn, [BIGINTS([5]).data, b"3"], prepared=True)) == [15]


def test_a_statement_prepared_by_a_call_whose_end_was_lost_is_used() -> None:
    """The server holds the statement but the call never learnt it (a prepare interrupted after the server took
    it): the next call takes the server's "already exists" as prepared, and every call after it works."""
    with _pg_connect() as conn:
        conn.execute(
            "PREPARE writ_test_call (bigint[], text) AS SELECT v * $2::bigint FROM unnest($1::bigint[]) AS v"
        )
        for factor in (b"2", b"3"):
            assert bigints(CALL.run(conn, [BIGINTS([7]).data, factor], prepared=True)) == [
                7 * int(factor)
            ]


def test_a_statement_the_server_holds_already_fails_no_transaction() -> None:
    """Inside a transaction a call not yet prepared is sent unnamed: preparing there, where the server holds the
    statement already, would fail ("already exists") and abort the caller's transaction."""
    with _pg_connect() as conn:
        conn.execute(
            "PREPARE writ_test_call (bigint[], text) AS SELECT v * $2::bigint FROM unnest($1::bigint[]) AS v"
        )
        with conn.transaction():
            assert bigints(CALL.run(conn, [BIGINTS([4]).data, b"2"], prepared=True)) == [8]
            assert conn.execute("SELECT 1").fetchone() == (1,), "the transaction goes on"
        assert bigints(CALL.run(conn, [BIGINTS([4]).data, b"5"], prepared=True)) == [20]


def test_the_recorder_s_kept_connection_saves_through_its_prepared_call(
    catalog: Catalog, pg_schema: str
) -> None:
    """Saves on the recorder's kept connection use the named statement (prepared once there), and one
    deallocated behind its back is prepared again by the next save."""
    separator = "&" if "?" in PG_URL else "?"
    writ = open_writ(catalog, f"{PG_URL}{separator}schema={pg_schema}")
    try:
        who = principal("carol", "acme", "clerk")
        writ.create(who, "Order", {"sku": "K-1", "total": "1"})
        kept = writ._core.store.recorder.kept
        with kept.connection() as conn:
            held = "SELECT count(*) FROM pg_prepared_statements WHERE name = 'writ_insert'"
            assert conn.execute(held).fetchone() == {"count": 1}
            conn.execute("DEALLOCATE ALL")
        record = writ.create(who, "Order", {"sku": "K-2", "total": "2"})
        assert writ.get(who, "Order", record.id)["sku"] == "K-2"
        with kept.connection() as conn:
            assert conn.execute(held).fetchone() == {"count": 1}, "prepared again"
    finally:
        writ.close()


def test_an_integrity_error_naming_no_conflicting_save_is_raised(
    catalog: Catalog, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch insert leaves out the saves the insert function names as conflicting; an integrity error that
    names none (a constraint of the store's own) fails the call, never reads as every save conflicting."""
    separator = "&" if "?" in PG_URL else "?"
    writ = open_writ(catalog, f"{PG_URL}{separator}schema={pg_schema}")
    try:
        recorder = writ._core.store.recorder

        def refused(*_: object) -> list[int]:
            raise ESIntegrityError("a constraint of the store")

        monkeypatch.setattr(recorder, "_insert_part", refused)
        event = StoredEvent(originator_id=new_id(), originator_version=1, topic="t", state=b"{}")
        with pytest.raises(ESIntegrityError, match="a constraint of the store"):
            recorder.insert_groups([[event]])
    finally:
        writ.close()


def test_a_save_behind_a_table_held_past_its_lock_timeout_fails_unavailable(
    catalog: Catalog, pg_schema: str
) -> None:
    """Another session holds the events table (an operator's LOCK TABLE, a stuck transaction): saves wait for
    it ``lock_timeout`` seconds (the URL's), then fail ``UNAVAILABLE`` with nothing written, each caller of a
    batch alike; once it is let go, saves go through."""
    separator = "&" if "?" in PG_URL else "?"
    writ = open_writ(catalog, f"{PG_URL}{separator}schema={pg_schema}&lock_timeout=1")
    who = principal("carol", "acme", "clerk")
    try:
        writ.create(who, "Order", {"sku": "L-0", "total": "1"})
        outcomes: list[object] = []

        def create(n: int) -> None:
            try:
                outcomes.append(writ.create(who, "Order", {"sku": f"L-{n}", "total": "1"}))
            except Exception as error:
                outcomes.append(error)

        with _pg_connect() as holder, holder.transaction():
            holder.execute(f'LOCK TABLE "{pg_schema}".writ_events IN EXCLUSIVE MODE')
            threads = [threading.Thread(target=create, args=(n,)) for n in range(1, 4)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            for thread in threads:
                thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(thread.is_alive() for thread in threads), (
            "a save waited past its lock timeout"
        )
        assert [getattr(o, "code", o) for o in outcomes] == ["UNAVAILABLE"] * 3
        assert "lock_timeout (1s)" in str(outcomes[0]) and "lock timeout" in str(outcomes[0])
        writ.create(who, "Order", {"sku": "L-4", "total": "1"})
        created = writ._core.store.recorder.select_notifications(
            1, 100, topics=[Record.Created.TOPIC]
        )
        assert len(created) == 2, "a save that failed UNAVAILABLE wrote its record"
    finally:
        writ.close()

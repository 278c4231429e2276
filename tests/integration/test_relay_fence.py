"""The relay's position is fenced by epoch, on both databases: a relay that lost its lease to another (and
has not noticed yet) cannot move the position, however far ahead it thinks it is."""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from application.service import Writ
from domain.catalog import Catalog
from entrypoints.bootstrap import open_writ
from infrastructure.bus.relay import Relay
from infrastructure.positions import TABLE, FencedError
from tests.catalogs import principal
from tests.conftest import AMQP_URL, PG_URL
from tests.support import wait_until


def test_a_relay_that_lost_its_lease_cannot_move_the_position(
    writ: Writ, database_url: str
) -> None:
    # positions within the log
    writ.create_many(principal(), "Tally", [{"a": n} for n in range(20)])
    exchange = f"fence.{uuid.uuid4().hex[:8]}"
    stale, current = (
        Relay(database_url, AMQP_URL, exchange),
        Relay(database_url, AMQP_URL, exchange),
    )
    try:
        stale.ensure()
        stale.epoch = stale._claim()
        stale.save(3)
        current.epoch = current._claim()  # took over (the stale one's lock went with its session)
        with pytest.raises(FencedError):
            stale.save(10)
        assert current.status()["position"] == 3
        current.save(7)
        with pytest.raises(FencedError):
            stale.save(20)
        assert current.status()["position"] == 7 and current.epoch == stale.epoch + 1
        current.save(5)
        assert current.status()["position"] == 7, "a save never moves the position back"
    finally:
        stale.close()
        current.close()


def claimed(database_url: str) -> Relay:
    """A relay (never connected to the broker) that has taken the position, over a log of a few events."""
    relay = Relay(database_url, AMQP_URL, f"fence.{uuid.uuid4().hex[:8]}")
    relay.ensure()
    relay.epoch = relay._claim()
    return relay


def test_a_relay_at_the_log_s_last_event_keeps_its_position_when_it_takes_the_lease_again(
    writ: Writ, database_url: str
) -> None:
    writ.create_many(principal(), "Tally", [{"a": n} for n in range(5)])
    last = writ._core.store.recorder.max_notification_id()
    relay = claimed(database_url)
    try:
        relay.save(last)
        relay.epoch = relay._claim()  # restarted, caught up: nothing to publish again
        assert relay.status()["position"] == last
    finally:
        relay.close()


def test_a_relay_starting_again_on_a_new_log_forgets_the_old_log_s_set_asides(
    writ: Writ, database_url: str
) -> None:
    """A set-aside names a position of the log it was made in: kept, it would skip the new log's event there."""
    writ.create_many(principal(), "Tally", [{"a": n} for n in range(5)])
    relay = claimed(database_url)
    try:
        relay.save(2)
        relay.set_aside(3, "too big", "olga")
        with relay.database.transaction() as tx:
            relay.positions.follow(tx, relay.name, "a log dropped since")
        relay.epoch = relay._claim()
        assert (relay.status()["position"], relay._set_asides()) == (0, set())
    finally:
        relay.close()


def test_a_relay_whose_lease_is_taken_while_it_saves_is_fenced(
    catalog: Catalog, pg_schema: str
) -> None:
    """PostgreSQL only (SQLite's writers take turns for whole transactions). Another relay's claim, not yet
    committed when the save reads the epoch, commits before the save writes: the save must see it, not move
    the position under the new holder (the position row is locked as the epoch is read)."""
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"
    writ, stale = open_writ(catalog, url), Relay(url, AMQP_URL, f"fence.{uuid.uuid4().hex[:8]}")
    outcome: list[str] = []

    def save() -> None:
        try:
            stale.save(10)
            outcome.append("moved")
        except FencedError:
            outcome.append("fenced")

    def save_waits_on_a_lock() -> bool:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s"
            row = conn.execute(query, (f"%{pg_schema}%{TABLE}%",)).fetchone()
        return row is not None and row[0] > 0

    try:
        writ.create_many(principal(), "Tally", [{"a": n} for n in range(20)])
        stale.ensure()
        stale.epoch = stale._claim()
        with psycopg.connect(
            PG_URL
        ) as rival:  # a claim in flight: its row locked, its epoch not committed
            rival.execute(
                f'UPDATE "{pg_schema}".{TABLE} SET epoch = epoch + 1 WHERE name = %s', (stale.name,)
            )
            saver = threading.Thread(target=save)
            saver.start()
            wait_until(save_waits_on_a_lock, 30, "the save to wait on the rival's row", every=0.05)
            rival.commit()
            saver.join(30)
        assert outcome == ["fenced"]
        assert stale.status()["position"] == 0
    finally:
        stale.close()
        writ.close()

"""The relay's position is fenced by epoch, on both databases: a relay that lost its lease to another (and
has not noticed yet) cannot move the position, however far ahead it thinks it is."""

from __future__ import annotations

import uuid

import pytest

from application.service import Writ
from infrastructure.bus.relay import Relay
from infrastructure.positions import FencedError
from tests.catalogs import principal
from tests.conftest import AMQP_URL


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


def test_a_relay_at_the_log_s_last_event_keeps_its_position_when_it_takes_the_lease_again(
    writ: Writ, database_url: str
) -> None:
    writ.create_many(principal(), "Tally", [{"a": n} for n in range(5)])
    last = writ._core.store.recorder.max_notification_id()
    relay = Relay(database_url, AMQP_URL, f"fence.{uuid.uuid4().hex[:8]}")
    try:
        relay.ensure()
        relay.epoch = relay._claim()
        relay.save(last)
        relay.epoch = relay._claim()  # restarted, caught up: nothing to publish again
        assert relay.status()["position"] == last
    finally:
        relay.close()

"""A relay whose event store was made afresh under its position publishes the new log from its first event.

On PostgreSQL the relay's position lives in the events' schema, beside the views: an operator who drops the
event store's tables and keeps the rest leaves it at a position of the old log. Before, it waited for the new
log to pass that position and never published the new log's first events. (On SQLite the position lives in
the events file and goes with it; the test runs there too.) A real ``writ relay`` and RabbitMQ.
"""

from __future__ import annotations

import pytest

from application.service import Writ
from entrypoints.bootstrap import open_writ
from tests.e2e.test_views_follow_their_log import FOLLOWERS, drop_the_event_store
from tests.integration.conftest import bus_written_ids
from tests.integration.test_relay import write_orders

pytestmark = pytest.mark.rabbitmq


def test_a_relay_left_at_a_position_of_another_log_publishes_the_new_log_from_its_start(
    writ: Writ, database_url: str, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer()
    write_orders(writ, 3, prefix="OLD")
    relay = bus_relay()
    old = bus_written_ids(writ)
    assert consumer.wait_for(3) == old
    relay.stop()

    drop_the_event_store(database_url, keep=(*FOLLOWERS, "bus_consumed", "writ_inbox"))
    fresh = open_writ(writ.catalog, database_url)
    try:
        write_orders(fresh, 2, prefix="NEW")  # positions 1 and 2: behind the relay's 3
        new = bus_written_ids(fresh)
        relay = bus_relay()
        relay.wait_for_line("publishing from position")
        assert consumer.wait_for(5) == old + new
    finally:
        fresh.close()
    if not database_url.startswith("sqlite"):
        assert relay.said("the relay's position is not this log's (it followed log")

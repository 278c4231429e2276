"""The Subscriber: duplicates have no effect, a poison message is dead-lettered, the rest flows on."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from infrastructure.bus.database import open_database
from tests.integration.conftest import bus_written_ids
from tests.integration.test_relay import MANAGER, write_orders
from tests.support import wait_until

pytestmark = pytest.mark.rabbitmq


def test_a_full_replay_has_no_effect_on_a_subscriber(
    writ, database_url, bus_exchange, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer()
    write_orders(writ, 300)
    written = bus_written_ids(writ)
    relay = bus_relay()
    consumer.wait_for(len(written))
    relay.stop()

    database = open_database(database_url)
    with database.transaction() as tx:  # rewind: the relay republishes everything
        tx.execute(
            "UPDATE writ_positions SET position = 0 WHERE name = ?", (f"relay:{bus_exchange}",)
        )
    database.close()
    write_orders(writ, 1, prefix="LAST")
    written = bus_written_ids(writ)
    bus_relay()

    assert consumer.wait_for(len(written)) == written
    assert all(count == 1 for count in consumer.attempts.values())


def test_poison_message_is_dead_lettered_after_n_attempts_while_others_continue(
    writ, amqp_url, bus_exchange, bus_consumer, bus_relay
) -> None:
    write_orders(writ, 40)
    written = bus_written_ids(writ)
    poison = written[7]
    consumer = bus_consumer(max_attempts=3, poison=frozenset({poison}))
    bus_relay()

    consumed = consumer.wait_for(len(written) - 1)
    assert consumed == [event_id for event_id in written if event_id != poison]
    dead_queue = consumer.subscriber.dead_letter_queue
    wait_until(lambda: _queue_depth(amqp_url, dead_queue) == 1, 15, "the poison message in the DLQ")
    assert consumer.attempts[poison] == 3
    assert _get_message_id(amqp_url, dead_queue) == poison


def test_a_subscriber_gets_the_events_of_each_of_its_patterns_and_no_other(
    writ, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer(patterns=("acme.Order.Deleted", "acme.Order.Purged"))
    deleted, purged = (
        writ.create(MANAGER, "Order", {"sku": sku, "total": "1"}).id for sku in ("D-1", "P-1")
    )
    writ.delete(MANAGER, "Order", deleted)
    writ.purge(MANAGER, "Order", purged)
    bus_relay()
    assert consumer.wait_for(2) == [f"{deleted}:2", f"{purged}:2"], "the purge is published last"


def _queue_depth(amqp_url: str, name: str) -> int:
    async def depth() -> int:
        async with await aio_pika.connect(amqp_url, timeout=5) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            return int(queue.declaration_result.message_count or 0)

    return asyncio.run(depth())


def _get_message_id(amqp_url: str, name: str) -> str | None:
    async def get() -> str | None:
        async with await aio_pika.connect(amqp_url, timeout=5) as connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(name, passive=True)
            message = await queue.get(no_ack=True)
            return message.message_id

    return asyncio.run(get())

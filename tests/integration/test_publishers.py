"""Both ways of publishing against the real broker, and the guard on the fast path's aiormq internals.

The fast path (``infrastructure.bus.fast_publish``) relies on aiormq internals: these tests fail if the
pinned aiormq stops resolving confirmations the way it relies on, and show the public-API fallback does
the same job and is what the relay picks when the internals are not the checked ones.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from typing import Any

import aio_pika
import pytest
from pamqp.commands import Basic

from infrastructure.bus import fast_publish
from infrastructure.bus.fast_publish import PipelinedPublisher, fast_path_available
from infrastructure.bus.publish import Outgoing, PublicPublisher, Publisher
from infrastructure.bus.relay import Relay

pytestmark = pytest.mark.rabbitmq


def outgoing(count: int) -> list[Outgoing]:
    return [
        Outgoing(
            position,
            f'{{"n": {position}}}'.encode(),
            f"acme.Thing.E{position % 3}",
            Basic.Properties(
                message_id=f"m{position}", delivery_mode=2, content_type="application/json"
            ),
        )
        for position in range(1, count + 1)
    ]


async def publish_and_collect(
    amqp_url: str, exchange_name: str, make: Any, count: int
) -> tuple[int, list[str]]:
    connection = await aio_pika.connect(amqp_url, timeout=5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, "#")
        publisher: Publisher = await make(channel, exchange)
        seen: list[int] = []
        await publisher.publish_many(outgoing(count), seen.append)
        await publisher.drain()
        received: list[str] = []
        async with queue.iterator() as messages:
            async for message in messages:
                await message.ack()
                received.append(str(message.message_id))
                if len(received) == count:
                    break
        await exchange.delete()
        return publisher.confirmed, received


async def fast(channel: Any, exchange: Any) -> Publisher:
    underlay = await channel.get_underlay_channel()
    assert fast_path_available(underlay) is None, fast_path_available(underlay)
    return PipelinedPublisher(underlay, exchange.name, 64, 0)


async def public(channel: Any, exchange: Any) -> Publisher:
    return PublicPublisher(channel, exchange, 64, 0)


@pytest.mark.parametrize("make", [fast, public], ids=["fast", "public"])
def test_a_publisher_confirms_every_message_and_keeps_their_order(
    amqp_url: str, bus_exchange: str, make: Any
) -> None:
    confirmed, received = asyncio.run(publish_and_collect(amqp_url, bus_exchange, make, 500))
    assert confirmed == 500
    assert received == [f"m{position}" for position in range(1, 501)]


def test_the_fast_path_is_only_taken_with_the_aiormq_it_was_checked_against(
    amqp_url: str, bus_exchange: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert importlib.metadata.version("aiormq") == fast_publish.SUPPORTED_AIORMQ, (
        "re-check fast_publish"
    )
    relay = Relay(database_url, amqp_url, bus_exchange)

    async def picked() -> type[Publisher]:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        async with connection:
            publisher = await relay._publisher(connection, 8, 0)
            return type(publisher)

    try:
        assert asyncio.run(picked()) is PipelinedPublisher
        monkeypatch.setattr(fast_publish.importlib.metadata, "version", lambda _: "0.0.1")
        assert asyncio.run(picked()) is PublicPublisher
    finally:
        relay.close()

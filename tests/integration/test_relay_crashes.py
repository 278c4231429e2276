"""The relay survives its own SIGKILL, a broker restart and a broker that refuses messages: nothing lost, order kept,
duplicates deduped, the position saved only over what the broker confirmed."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import aio_pika
import pytest

from infrastructure.backend_choice import open_backend
from infrastructure.positions import TABLE as POSITIONS
from infrastructure.positions import Positions
from tests.conftest import AMQP_URL, service_unavailable
from tests.integration.conftest import bus_written_ids
from tests.integration.test_relay import write_orders
from tests.support import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def confirmed_position(database_url: str, exchange: str) -> int:
    """The relay's saved position; 0 until the relay has made its table. Read only: this made the table before,
    and on PostgreSQL two sessions making one table at once collide, so a relay starting meanwhile failed."""
    backend = open_backend(database_url)
    database = backend.database()
    try:
        with database.reading() as tx:
            if not backend.has_table(tx, POSITIONS):
                return 0
            return Positions(backend).read(tx, f"relay:{exchange}").position
    finally:
        database.close()


def test_relay_sigkilled_at_three_random_points_loses_nothing(
    writ, database_url, bus_exchange, bus_consumer, bus_relay
) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    consumer = bus_consumer()
    relay = bus_relay()
    for round_ in range(3):
        start = writ._core.store.recorder.max_notification_id() or 0
        write_orders(writ, 1200, prefix=f"K{round_}")
        target = start + rng.randint(1, 1100)
        wait_until(
            lambda t=target: confirmed_position(database_url, bus_exchange) >= t,
            30,
            lambda t=target, r=relay: (
                f"the relay to confirm position {t} (seed {seed}; the relay's exit status "
                f"{r.process.poll()}, its last lines: {r.lines[-5:]})"
            ),
        )
        relay.kill()
        relay = bus_relay()
    write_orders(writ, 200, prefix="Z")

    written = bus_written_ids(writ)
    assert consumer.wait_for(len(written), timeout=60) == written, f"seed {seed}"


def rabbitmqctl(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", *command], check=True, capture_output=True, text=True, timeout=60
    )


def broker_accepts_connections() -> bool:
    async def connect() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(connect())
    except Exception:
        return False
    return True


@contextmanager
def broker_control() -> Iterator[Callable[[str], object]]:
    """``rabbitmqctl stop_app``/``start_app`` for this test, probed first; whatever happens inside, the
    broker is started again and accepts connections before the test ends."""
    try:
        rabbitmqctl("status")
    except (OSError, subprocess.SubprocessError) as exc:
        service_unavailable("rabbitmqctl (to stop and start the local broker)", exc)
    try:
        yield rabbitmqctl
    finally:
        rabbitmqctl("start_app")
        wait_until(broker_accepts_connections, 60, "the broker to accept connections again")


def test_broker_down_at_start_and_restarted_mid_run(
    writ, database_url, bus_exchange, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer()
    write_orders(writ, 600)
    with broker_control() as broker:
        broker("stop_app")
        relay = bus_relay()
        relay.wait_for_line("broker unreachable")
        broker("start_app")
        relay.wait_for_line("publishing from position")
        start = writ._core.store.recorder.max_notification_id() or 0
        write_orders(writ, 2500, prefix="R")
        wait_until(
            lambda: confirmed_position(database_url, bus_exchange) > start,
            30,
            "publishing to resume",
        )
        broker("stop_app")
        write_orders(writ, 200, prefix="S")
    relay.wait_for_line("broker connection lost")

    written = bus_written_ids(writ)
    assert consumer.wait_for(len(written), timeout=90) == written


async def _declare_small_queue(amqp_url: str, exchange: str, queue: str, most: int) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=5)
    async with connection:
        channel = await connection.channel()
        bound = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        declared = await channel.declare_queue(
            queue, arguments={"x-max-length": most, "x-overflow": "reject-publish"}
        )
        await declared.bind(bound, "#")


async def _take_all(amqp_url: str, queue: str) -> list[str]:
    connection = await aio_pika.connect(amqp_url, timeout=5)
    async with connection:
        channel = await connection.channel()
        taken, held = [], await channel.get_queue(queue, ensure=False)
        while (message := await held.get(fail=False)) is not None:
            await message.ack()
            taken.append(str(message.message_id))
        await channel.queue_delete(queue)
        return taken


@pytest.mark.parametrize("publisher", ["fast", "public"])
def test_the_position_is_saved_only_over_confirmed_messages(
    writ, database_url, amqp_url, bus_exchange, bus_relay, publisher
) -> None:
    """A queue that takes 5 messages and refuses the rest (``x-overflow: reject-publish``: the broker nacks
    them) while 40 are in flight: the saved position stops at the fifth, the last the broker confirmed."""
    queue = f"{bus_exchange}.small"
    asyncio.run(_declare_small_queue(amqp_url, bus_exchange, queue, 5))
    write_orders(writ, 40, prefix="N")
    written = bus_written_ids(writ)
    positions = [n.id for n in writ._core.store.recorder.select_notifications(0, 100)]
    relay = bus_relay("--publisher", publisher)
    wait_until(
        lambda: (
            relay.said("resuming from the last confirmed position")
            or confirmed_position(database_url, bus_exchange) > positions[4]
        ),
        30,
        "the relay to meet the refusal (or save a position past it)",
        every=0.2,
    )
    assert confirmed_position(database_url, bus_exchange) == positions[4], "\n".join(relay.lines)
    relay.stop()
    assert asyncio.run(_take_all(amqp_url, queue)) == written[:5]

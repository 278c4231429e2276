"""Broker fixtures: a reachable RabbitMQ, a fresh exchange, relay processes and a test consumer.

Fixture names start with ``amqp_``/``bus_``. The consumer is a real ``Subscriber``
running in a background thread; its handler writes each event into
``bus_consumed`` in the same transaction as the inbox row, so the table holds
exactly what the subscriber processed, in order. Relays run as ``writ relay``
subprocesses (so tests can SIGKILL them).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from application.service import Writ
from infrastructure.bus.contract import IntegrationEvent, event_id, is_published
from infrastructure.bus.database import Tx, open_database
from infrastructure.bus.subscriber import Subscriber
from tests.catalogs import SHOP_CATALOG
from tests.conftest import AMQP_URL, service_unavailable
from tests.support import CliProcess, wait_until


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    """The shared test catalog as a file, for ``writ`` processes."""
    path = tmp_path / "writ.toml"
    path.write_text(SHOP_CATALOG)
    return path


@pytest.fixture
def amqp_url() -> str:
    async def probe() -> None:
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        service_unavailable("RabbitMQ", exc)
    return AMQP_URL


@pytest.fixture
def bus_exchange(amqp_url: str) -> Iterator[str]:
    name = f"test.{uuid.uuid4().hex[:10]}"
    yield name

    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(name)

    asyncio.run(delete())


def bus_written_ids(writ: Writ) -> list[str]:
    """Every published event id in the log, in log order."""
    ids: list[str] = []
    after = 0
    while batch := writ._core.store.recorder.select_notifications(
        after, 5000, inclusive_of_start=False
    ):
        ids += [
            event_id(n.originator_id, n.originator_version) for n in batch if is_published(n.topic)
        ]
        after = batch[-1].id
    return ids


class BusConsumer:
    """A ``Subscriber`` in a background thread, recording what it handled in ``bus_consumed``."""

    def __init__(
        self,
        database_url: str,
        amqp_url: str,
        exchange: str,
        *,
        max_attempts: int = 5,
        poison: frozenset[str] = frozenset(),
        patterns: tuple[str, ...] = ("#",),
    ) -> None:
        self.database = open_database(database_url)
        self.reader = open_database(database_url)
        self.poison = poison
        self.attempts: Counter[str] = Counter()
        self.events: dict[str, IntegrationEvent] = {}
        self._seq = itertools.count()
        self.subscriber = Subscriber(
            f"{exchange}.consumer",
            self.database,
            self._handle,
            amqp_url=amqp_url,
            exchange=exchange,
            max_attempts=max_attempts,
            patterns=patterns,
        )
        with self.database.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS bus_consumed "
                "(seq BIGINT PRIMARY KEY, event_id TEXT NOT NULL, position BIGINT NOT NULL)"
            )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _handle(self, event: IntegrationEvent, tx: Tx) -> None:
        self.attempts[event.event_id] += 1
        if event.event_id in self.poison:
            raise RuntimeError(f"poison {event.event_id}")
        tx.execute(
            "INSERT INTO bus_consumed (seq, event_id, position) VALUES (?, ?, ?)",
            (next(self._seq), event.event_id, event.position),
        )
        self.events[event.event_id] = event

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        waiter = asyncio.ensure_future(ready.wait())
        waiter.add_done_callback(lambda _: self._ready.set())
        await self.subscriber.run(self._stop, ready)
        waiter.cancel()

    def start(self) -> BusConsumer:
        self._thread.start()
        wait_until(self._ready.is_set, 15, "the subscriber to bind its queue")
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
        self.database.close()
        self.reader.close()

    def consumed(self) -> list[str]:
        with self.reader.transaction() as tx:
            return [row[0] for row in tx.query("SELECT event_id FROM bus_consumed ORDER BY seq")]

    def wait_for(self, count: int, timeout: float = 60) -> list[str]:
        wait_until(lambda: len(self.consumed()) >= count, timeout, f"{count} consumed events")
        return self.consumed()


def relay_process(database_url: str, amqp_url: str, exchange: str, *options: str) -> CliProcess:
    """``writ relay`` for one exchange, as a subprocess."""
    return CliProcess(
        "relay",
        "--database",
        database_url,
        "--exchange",
        exchange,
        *options,
        env={"WRIT_AMQP_URL": amqp_url},
    )


@pytest.fixture
def bus_consumer(
    database_url: str, amqp_url: str, bus_exchange: str
) -> Iterator[Callable[..., BusConsumer]]:
    consumers: list[BusConsumer] = []

    def start(**options: Any) -> BusConsumer:
        consumer = BusConsumer(database_url, amqp_url, bus_exchange, **options)
        consumers.append(consumer)
        return consumer.start()

    yield start
    for consumer in consumers:
        consumer.stop()
    _delete_queues(amqp_url, [f"{bus_exchange}.consumer", f"{bus_exchange}.consumer.dead"])


@pytest.fixture
def bus_relay(
    database_url: str, amqp_url: str, bus_exchange: str
) -> Iterator[Callable[..., CliProcess]]:
    processes: list[CliProcess] = []

    def start(*options: str) -> CliProcess:
        process = relay_process(database_url, amqp_url, bus_exchange, *options)
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.stop()


class BusTap:
    """A raw consumer of every message on the exchange (an exclusive queue bound with ``#``): the AMQP
    properties and routing key as the broker delivered them, not as a Subscriber decodes them."""

    def __init__(self, amqp_url: str, exchange: str) -> None:
        self.amqp_url, self.exchange = amqp_url, exchange
        self.messages: list[aio_pika.abc.AbstractIncomingMessage] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        connection = await aio_pika.connect(self.amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel()
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(exclusive=True)
            await queue.bind(exchange, "#")

            async def keep(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                await message.ack()
                self.messages.append(message)

            await queue.consume(keep)
            self._ready.set()
            await self._stop.wait()

    def start(self) -> BusTap:
        self._thread.start()
        wait_until(self._ready.is_set, 15, "the tap to bind its queue")
        return self

    def wait_for(
        self, count: int, timeout: float = 60
    ) -> list[aio_pika.abc.AbstractIncomingMessage]:
        wait_until(lambda: len(self.messages) >= count, timeout, f"{count} tapped messages")
        return list(self.messages)

    def stop(self) -> None:
        if self._loop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)


@pytest.fixture
def bus_tap(amqp_url: str, bus_exchange: str) -> Iterator[BusTap]:
    tap = BusTap(amqp_url, bus_exchange).start()
    yield tap
    tap.stop()


def _delete_queues(amqp_url: str, names: list[str]) -> None:
    async def delete() -> None:
        connection = await aio_pika.connect(amqp_url, timeout=5)
        async with connection:
            channel = await connection.channel()
            for name in names:
                await channel.queue_delete(name)

    asyncio.run(delete())

"""``Subscriber``: consume Writ's integration events, each at most once in effect.

A subscriber owns one durable quorum queue named after it, bound to the
exchange with routing patterns (``tenant.model.EventType``, e.g. ``acme.Order.*``).
It consumes with manual acks and a prefetch window, and hands the buffered
messages to the handler in small batches, in delivery order, inside ONE
database transaction: for each message it first records ``message_id`` in the
inbox table ``writ_inbox`` (subscriber, message_id) and calls the handler only
when that row is new, each message under its own savepoint. The messages are
acked after the commit, so a redelivered duplicate finds its inbox row and is
acked without effect. A handler error rolls back only that message's savepoint
and nacks it with requeue; the queue's ``x-delivery-limit`` dead-letters it to
``<name>.dead`` after ``max_attempts`` deliveries, while the others continue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from infrastructure.bus.contract import DEFAULT_EXCHANGE, IntegrationEvent
from infrastructure.bus.outbox import BROKER_ERRORS, Backoff, wait_or_stop
from infrastructure.database import Database, Tx

log = logging.getLogger("writ.subscriber")

Handler = Callable[[IntegrationEvent, Tx], None]

_CREATE_INBOX = (
    "CREATE TABLE IF NOT EXISTS writ_inbox (subscriber TEXT NOT NULL, message_id TEXT NOT NULL, "
    "received_at TEXT NOT NULL, PRIMARY KEY (subscriber, message_id))"
)
_CLAIM = "INSERT INTO writ_inbox (subscriber, message_id, received_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"


class Subscriber:
    """Runs ``handler(event, tx)`` once per distinct message, in the handler's own transaction ``tx``."""

    def __init__(
        self,
        name: str,
        database: Database,
        handler: Handler,
        *,
        amqp_url: str,
        exchange: str = DEFAULT_EXCHANGE,
        patterns: Sequence[str] = ("#",),
        prefetch: int = 256,
        batch_size: int = 64,
        max_attempts: int = 5,
    ) -> None:
        self.name = name
        self.database = database
        self.handler = handler
        self.amqp_url = amqp_url
        self.exchange = exchange
        self.patterns = tuple(patterns)
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.dead_letter_queue = f"{name}.dead"
        self._buffer: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set; ``ready`` is set once the queue is bound and consumed."""
        await asyncio.to_thread(self._create_inbox)
        connection = await self._connect(stop)
        if connection is None:
            return
        try:
            queue = await self._declare(connection)
            await queue.consume(self._buffer.put)
            if ready is not None:
                ready.set()
            await self._work(stop)
        finally:
            await connection.close()

    async def declare(self) -> None:
        """Declare and bind the queues without consuming (so no event is missed before ``run``)."""
        connection = await aio_pika.connect(self.amqp_url, timeout=5)
        async with connection:
            await self._declare(connection)

    async def _connect(self, stop: asyncio.Event) -> AbstractRobustConnection | None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                return await aio_pika.connect_robust(self.amqp_url, timeout=5, reconnect_interval=1)
            except BROKER_ERRORS as exc:
                delay = backoff.next()
                log.warning("%s: broker unreachable (%s); retrying in %.1fs", self.name, exc, delay)
                await wait_or_stop(stop, delay)
        return None

    async def _declare(self, connection: aio_pika.abc.AbstractConnection) -> AbstractQueue:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        await channel.declare_queue(self.dead_letter_queue, durable=True)
        queue = await channel.declare_queue(
            self.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": self.max_attempts - 1,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.dead_letter_queue,
            },
        )
        for pattern in self.patterns:
            await queue.bind(exchange, pattern)
        return queue

    async def _work(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self._next_batch(stop)
            if batch:
                outcomes = await self._process(batch, stop)
                await _settle(batch, outcomes)

    async def _next_batch(self, stop: asyncio.Event) -> list[AbstractIncomingMessage]:
        if self._buffer.empty():
            getter = asyncio.ensure_future(self._buffer.get())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait((getter, stopper), return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not getter.done():
                getter.cancel()
                return []
            batch = [getter.result()]
        else:
            batch = []
        while len(batch) < self.batch_size and not self._buffer.empty():
            batch.append(self._buffer.get_nowait())
        return batch

    async def _process(
        self, batch: list[AbstractIncomingMessage], stop: asyncio.Event
    ) -> list[bool]:
        backoff = Backoff()
        while True:
            try:
                return await asyncio.to_thread(self._handle, batch)
            except Exception as exc:
                # the database itself failed: retry the batch, do not burn attempts
                if stop.is_set():
                    raise
                delay = backoff.next()
                log.warning(
                    "%s: database error (%s); retrying the batch in %.1fs", self.name, exc, delay
                )
                await wait_or_stop(stop, delay)

    def _handle(self, batch: list[AbstractIncomingMessage]) -> list[bool]:
        now = datetime.now(UTC).isoformat()
        outcomes = []
        with self.database.transaction() as tx:
            for message in batch:
                outcomes.append(self._handle_one(tx, message, now))
        return outcomes

    def _handle_one(self, tx: Tx, message: AbstractIncomingMessage, now: str) -> bool:
        try:
            with tx.savepoint():
                if not message.message_id:
                    raise ValueError("message without message_id")
                if tx.execute(_CLAIM, (self.name, message.message_id, now)) == 1:
                    self.handler(IntegrationEvent.from_json(message.body), tx)
        except Exception as exc:
            log.warning(
                "%s: handler failed on %s (%s: %s)",
                self.name,
                message.message_id,
                type(exc).__name__,
                exc,
            )
            return False
        return True

    def _create_inbox(self) -> None:
        self.database.ensure(_CREATE_INBOX)


async def _settle(batch: list[AbstractIncomingMessage], outcomes: list[bool]) -> None:
    for message, handled in zip(batch, outcomes, strict=True):
        try:
            if handled:
                await message.ack()
            else:
                await message.nack(requeue=True)
        except BROKER_ERRORS as exc:
            # the channel is gone: the broker redelivers, the inbox dedupes
            log.info("could not settle %s (%s); it will be redelivered", message.message_id, exc)

"""The relay: the notification log, in order, onto a durable RabbitMQ topic exchange.

Design (see also ``schema``, ``window``, ``positions``, ``lease``):

* Reads the log with ``select_notifications`` in batches (in a worker thread,
  the next batch prefetched while the current one is published), turns each
  record event and decision into an ``IntegrationEvent`` and publishes it
  persistent, ``message_id`` = event id, routing key ``tenant.model.EventType``,
  with publisher confirms pipelined over a window.
* Saves its position (``writ_relay_position``, one row per exchange) only after
  the broker confirmed every event up to it. Any failure — broker down at start,
  broker restart, SIGKILL — restarts from the saved position: nothing is lost,
  duplicates come only from the unconfirmed tail, and consumers dedupe on
  ``message_id``.
* One active relay per exchange: it holds a ``Lease`` (PostgreSQL advisory
  lock, SQLite file lock); others stand by and take over when it dies.
* Events of a record that has been purged — at any later position — go out with
  their data stripped (``redacted``), so a replay never republishes purged data;
  the ``Purged`` tombstone itself is published.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import AbstractConnection
from aiormq.exceptions import AMQPError, ChannelInvalidStateError
from eventsourcing.persistence import Notification
from pamqp.commands import Basic
from yarl import URL

from domain.decision import Decision
from domain.record import EVENT_TOPICS
from infrastructure.bus.lease import LeaseLostError, process_label, wait_or_stop
from infrastructure.bus.positions import PositionTable, RelayPosition
from infrastructure.bus.schema import (
    DATA_EVENTS,
    RECORD_PREFIX,
    SCHEMA,
    IntegrationEvent,
    from_stored,
    is_published,
)
from infrastructure.bus.sql import open_database
from infrastructure.bus.window import ConfirmWindow, PositionSaver
from infrastructure.persistence import LogQueries
from infrastructure.settings import open_log

log = logging.getLogger("writ.relay")

DEFAULT_EXCHANGE = "writ.events"
PUBLISHED_TOPICS = (*EVENT_TOPICS, Decision.Created.TOPIC)
PERSISTENT = 2  # AMQP delivery mode: the broker writes the message to disk
BROKER_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class Outgoing:
    position: int
    body: bytes
    routing_key: str
    properties: Basic.Properties


@dataclass(frozen=True)
class Batch:
    items: list[Outgoing]
    last: int
    count: int


class EventLog:
    """Writ's notification log, read-only, with the relay's two extra queries."""

    def __init__(self, url: str | None) -> None:
        self.factory, recorder = open_log(url)
        assert isinstance(recorder, LogQueries)
        self.recorder: Any = recorder
        self.channel: str = getattr(recorder, "channel_name", "writ_events")

    def read(self, after: int, limit: int) -> Batch:
        notifications = self.recorder.select_notifications(after, limit, inclusive_of_start=False)
        published = [(n, orjson.loads(n.state)) for n in notifications if is_published(n.topic)]
        purged = self.recorder.purged_among(
            {n.originator_id for n, _ in published if n.topic.removeprefix(RECORD_PREFIX) in DATA_EVENTS}
        )
        items = [_outgoing(n, state, n.originator_id in purged) for n, state in published]
        last = notifications[-1].id if notifications else after
        return Batch(items, last, len(notifications))

    def behind(self, position: int) -> int:
        return int(self.recorder.count_after(position, PUBLISHED_TOPICS))

    def close(self) -> None:
        self.factory.close()


def properties(event: IntegrationEvent) -> Basic.Properties:
    """AMQP properties: persistent JSON, ``message_id`` = event id, correlation/causation headers."""
    headers: dict[str, Any] = {"writ-schema": SCHEMA, "writ-position": event.position}
    if event.correlation_id is not None:
        headers["correlation_id"] = event.correlation_id
    if event.causation_id is not None:
        headers["causation_id"] = event.causation_id
    return Basic.Properties(
        message_id=event.event_id, content_type="application/json", delivery_mode=PERSISTENT,
        headers=headers, message_type=event.event_type, correlation_id=event.correlation_id,
        timestamp=datetime.fromisoformat(event.occurred_at), app_id="writ",
    )


def _outgoing(notification: Notification, state: dict[str, Any], redact: bool) -> Outgoing:
    event = from_stored(notification.id, notification.originator_id, notification.originator_version,
                        notification.topic, state, redact=redact)
    return Outgoing(notification.id, event.to_json(), event.routing_key, properties(event))


class BatchReader:
    """Reads batches in a worker thread, prefetching the next one while a full one is published."""

    def __init__(self, read: Callable[[int], Batch], after: int, limit: int) -> None:
        self._read = read
        self._limit = limit
        self._after = after
        self._next: asyncio.Future[Batch] | None = None

    async def next(self) -> Batch:
        future, self._next = self._next, None
        batch = await (future or self._spawn(self._after))
        self._after = batch.last
        if batch.count >= self._limit:
            self._next = self._spawn(batch.last)
        return batch

    def _spawn(self, after: int) -> asyncio.Future[Batch]:
        return asyncio.ensure_future(asyncio.to_thread(self._read, after))

    async def close(self) -> None:
        if self._next is not None:
            await asyncio.gather(self._next, return_exceptions=True)


class Backoff:
    def __init__(self, first: float = 0.5, ceiling: float = 5.0) -> None:
        self.first, self.ceiling, self.delay = first, ceiling, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class Relay:
    """Publishes the notification log to ``exchange``; run with ``await relay.run(stop)``."""

    def __init__(self, database_url: str | None, amqp_url: str, exchange: str = DEFAULT_EXCHANGE, *,
                 window: int = 256, batch_size: int = 1000) -> None:
        self.amqp_url = amqp_url
        self.exchange_name = exchange
        self.window = window
        self.batch_size = batch_size
        self.log = EventLog(database_url)
        self.database = open_database(database_url)
        self.positions = PositionTable(self.database, exchange)
        self.lease = self.database.lease(f"relay-{exchange}", self.log.channel)
        self.backoff = Backoff()

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the lease and publish until ``stop`` is set."""
        try:
            await asyncio.to_thread(self.positions.ensure)
            while await self._acquire(stop):
                try:
                    await asyncio.to_thread(self.positions.claim, process_label())
                    await self._serve(stop)
                except LeaseLostError as exc:
                    log.warning("lease lost (%s); standing by", exc)
                finally:
                    await self.lease.release()
        finally:
            self.close()

    def status(self) -> dict[str, Any]:
        self.positions.ensure()
        current: RelayPosition = self.positions.read()
        return {"exchange": self.exchange_name, "position": current.position,
                "behind": self.log.behind(current.position), "published_at": current.published_at,
                "holder": current.holder}

    def close(self) -> None:
        self.log.close()
        self.database.close()

    async def _acquire(self, stop: asyncio.Event) -> bool:
        while not stop.is_set():
            try:
                return await self.lease.acquire(stop)
            except Exception as exc:  # the database is unreachable: keep trying
                delay = self.backoff.next()
                log.warning("cannot take the relay lease (%s); retrying in %.1fs", exc, delay)
                await wait_or_stop(stop, delay)
        return False

    async def _serve(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                connection = await aio_pika.connect(self.amqp_url, timeout=5)
            except BROKER_ERRORS as exc:
                delay = backoff.next()
                log.warning("broker unreachable at %s (%s); retrying in %.1fs", _safe(self.amqp_url),
                            exc or type(exc).__name__, delay)
                await wait_or_stop(stop, delay)
                continue
            backoff.reset()
            log.info("connected to %s, exchange %r", _safe(self.amqp_url), self.exchange_name)
            try:
                await self._session(connection, stop)
            except BROKER_ERRORS as exc:
                log.warning("broker connection lost (%s); resuming from the last confirmed position",
                            exc or type(exc).__name__)
                await wait_or_stop(stop, backoff.next())
            finally:
                await _close_quietly(connection)

    async def _session(self, connection: AbstractConnection, stop: asyncio.Event) -> None:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)
        start = (await asyncio.to_thread(self.positions.read)).position
        log.info("publishing from position %d", start)
        underlay = await channel.get_underlay_channel()
        assert isinstance(underlay, aiormq.Channel)
        window = ConfirmWindow(underlay, exchange.name, self.window, start)
        saver = PositionSaver(self.positions, start)
        reader = BatchReader(lambda after: self.log.read(after, self.batch_size), start, self.batch_size)
        try:
            await self._pump(window, saver, reader, stop)
            await window.drain()
        finally:
            await window.abandon()
            await reader.close()
            await saver.flush(window.confirmed)

    async def _pump(self, window: ConfirmWindow, saver: PositionSaver, reader: BatchReader,
                    stop: asyncio.Event) -> None:
        checked = asyncio.get_running_loop().time()
        while not stop.is_set():
            batch = await reader.next()
            await _publish_all(window, saver, batch.items)
            if batch.count:
                window.skip_to(batch.last)
            else:
                await window.drain()
                saver.offer(window.confirmed)
                await self.lease.wait_for_events(0.5)
            if asyncio.get_running_loop().time() - checked > 1.0:
                await self.lease.check()
                checked = asyncio.get_running_loop().time()


async def _publish_all(window: ConfirmWindow, saver: PositionSaver, items: Sequence[Outgoing]) -> None:
    await window.publish_many(items, saver.offer)


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await connection.close()
    except Exception as exc:  # already broken: nothing left to close
        log.debug("closing a broken broker connection: %s", exc)


def _safe(url: str) -> str:
    return str(URL(url).with_password("***")) if URL(url).password else url

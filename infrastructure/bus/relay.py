"""The relay: the notification log, in order, onto a durable RabbitMQ topic exchange.

Design (see also ``contract``, ``publish``, ``fast_publish``, ``outbox``):

* Reads the log in batches (in a worker thread, the next batch prefetched
  while the current one is published), turns each record event and decision
  into an ``IntegrationEvent`` and publishes it persistent, ``message_id`` =
  event id, routing key ``tenant.model.EventType``, with publisher confirms
  pipelined over a window.
* Saves its position (the ``relay:<exchange>`` row of ``writ_positions``, in
  the event store's database) only after the broker confirmed every event up
  to it. Any failure (broker down, broker restart, SIGKILL) restarts from the
  saved position: nothing is lost, duplicates come only from the unconfirmed
  tail, and consumers dedupe on ``message_id``.
* One active relay per exchange: it holds the backend's worker lock; others
  stand by and take over when it dies. A position left from another log (the
  event store made afresh under it, ``infrastructure.log_identity``) starts
  again at the new log's first event. Its saves are fenced by the epoch it
  claimed, so a relay that lost its lock cannot move the position.
* An event the broker will not take (larger than ``max_message_bytes``, or one
  that alone closes the channel while the next one goes through), or one the
  relay cannot read (its data key wrapped by a master key this process lacks,
  after a rotation), halts the relay at its position with the reason (``writ
  relay --status``); it keeps its lease and resumes when an operator sets the
  event aside (``writ relay --set-aside``) or when the event reads after all
  (the master keys are read again every second while halted); nothing after
  it is lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from yarl import URL

from domain.errors import ConfigurationError
from infrastructure.backend import Backend
from infrastructure.backend_choice import open_backend
from infrastructure.bus.contract import DEFAULT_EXCHANGE
from infrastructure.bus.fast_publish import PipelinedPublisher, fast_path_available
from infrastructure.bus.outbox import (
    BROKER_ERRORS,
    CHANNEL_ERRORS,
    Backoff,
    Batch,
    BatchReader,
    RelayLog,
    wait_or_stop,
)
from infrastructure.bus.publish import PublicPublisher, Publisher
from infrastructure.locks import holder_label
from infrastructure.log import open_log_of
from infrastructure.positions import TABLE as POSITIONS
from infrastructure.positions import FencedError, Position, Positions

log = logging.getLogger("writ.relay")

DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""RabbitMQ 4's default ``max_message_size`` (3.x allowed 128 MiB)."""


class LeaseLostError(Exception):
    """The relay's lock went away: stop publishing and stand by."""


class UnpublishableEventError(Exception):
    """One event the broker will not take (internal: the relay halts at it)."""

    def __init__(self, position: int, reason: str, *, unreadable: bool = False) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position, self.reason, self.unreadable = position, reason, unreadable


class Relay:
    """Publishes the notification log to ``exchange``; run with ``await relay.run(stop)``."""

    def __init__(
        self,
        database_url: str | Backend | None,
        amqp_url: str,
        exchange: str = DEFAULT_EXCHANGE,
        *,
        window: int = 256,
        batch_size: int = 1000,
        publisher: str = "fast",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        self.backend = (
            database_url if isinstance(database_url, Backend) else open_backend(database_url)
        )
        self._owns_backend = not isinstance(database_url, Backend)
        self.amqp_url, self.exchange_name = amqp_url, exchange
        self.window, self.batch_size, self.publisher = window, batch_size, publisher
        self.name = f"relay:{exchange}"
        self.log = RelayLog(open_log_of(self.backend), max_message_bytes)
        self.database = self.backend.database()
        self.positions = Positions(self.backend)
        self.lock = self.backend.worker_lock(self.name)
        self.epoch = 0
        self.halt_check_interval = 1.0
        self._current: Publisher
        self._legacy = ("writ_relay_position", "exchange", exchange)
        """Where an earlier release kept this relay's position: table, key column, key."""

    async def run(self, stop: asyncio.Event) -> None:
        """Hold the lock and publish until ``stop`` is set."""
        wakeup = self.log.log.wakeup()
        try:
            await asyncio.to_thread(self.ensure)
            while await self._acquire(stop):
                try:
                    await self._serve(stop, wakeup)
                except (LeaseLostError, FencedError) as exc:
                    log.warning("lease lost (%s); standing by", exc)
                finally:
                    await asyncio.to_thread(self.lock.release)
        finally:
            await asyncio.to_thread(wakeup.close)
            self.close()

    def ensure(self) -> None:
        with self.backend.table_creation(), self.database.transaction() as tx:
            self.positions.create(tx)
            self.positions.ensure(tx, self.name)
            self.positions.adopt(tx, self.name, *self._legacy)

    def status(self) -> dict[str, Any]:
        """Where the relay stands, read without writing (an operator's or auditor's role that may only read asks
        too): before a relay of this release has run, the position an earlier release kept (the relay carries it
        over when it starts), else 0, and no holder."""
        with self.database.reading() as tx:
            kept = self.backend.has_table(tx, POSITIONS)
            current = self.positions.read(tx, self.name) if kept else None
            if current is None or (current.position, current.epoch) == (0, 0):
                earlier = self.positions.legacy(tx, *self._legacy) or 0
                current = Position(self.name, earlier, 0, None, None, None, None)
        return {
            "exchange": self.exchange_name,
            "position": current.position,
            "behind": self.log.behind(current.position),
            "published_at": current.updated_at,
            "holder": current.holder,
            "halted_at": current.halted_at,
            "halted_reason": current.halted_reason,
        }

    def set_aside(self, position: int, reason: str, operator: str) -> None:
        """An operator skips the event at ``position`` (recorded with who and why); the relay resumes."""
        self.ensure()
        with self.database.transaction() as tx:
            self.positions.set_aside(tx, self.name, position, reason, operator)

    def close(self) -> None:
        self.log.close()
        self.database.close()
        if self._owns_backend:
            self.backend.close()

    # -- holding the lock -----------------------------------------------------

    async def _acquire(self, stop: asyncio.Event) -> bool:
        backoff, announced = Backoff(), False
        while not stop.is_set():
            try:
                if await asyncio.to_thread(self.lock.try_acquire):
                    self.epoch = await asyncio.to_thread(self._claim)
                    log.info("lease acquired: %s (epoch %d)", self.lock, self.epoch)
                    return True
            except self.backend.transient as exc:  # the database is unreachable: keep trying
                delay = backoff.next()
                log.warning("cannot take the relay lease (%s); retrying in %.1fs", exc, delay)
                await wait_or_stop(stop, delay)
                continue
            if not announced:
                log.info("standby: another relay holds %s; waiting to take over", self.lock)
                announced = True
            await wait_or_stop(stop, 0.5)
        return False

    def _claim(self) -> int:
        """Take the position (fencing earlier holders); one left from another log (the event store made afresh
        under it) starts again at the new log's first event: none of its events was published."""
        identity, head = self.log.log.identity(), self.log.log.head()
        with self.database.transaction() as tx:
            changed = self.positions.log_changed(tx, self.name, identity, head)
            if changed is not None:
                log.warning(
                    "the relay's position is not this log's (%s): publishing it from its first event",
                    changed,
                )
                self.positions.restart(tx, self.name, identity)
            return self.positions.claim(tx, self.name, holder_label())

    async def _check_lease(self) -> None:
        if not await asyncio.to_thread(self.lock.held):
            raise LeaseLostError(str(self.lock))

    # -- publishing -----------------------------------------------------------

    async def _serve(self, stop: asyncio.Event, wakeup: Any) -> None:
        backoff = Backoff()
        failed_at: int | None = (
            None  # where the last session failed: failing there again means probing
        )
        while not stop.is_set():
            try:
                connection = await aio_pika.connect(self.amqp_url, timeout=5)
            except BROKER_ERRORS as exc:
                delay = backoff.next()
                log.warning(
                    "broker unreachable at %s (%s); retrying in %.1fs",
                    _safe(self.amqp_url),
                    exc or type(exc).__name__,
                    delay,
                )
                await wait_or_stop(stop, delay)
                continue
            backoff.reset()
            log.info("connected to %s, exchange %r", _safe(self.amqp_url), self.exchange_name)
            position = (await asyncio.to_thread(self._read)).position
            try:
                await self._session(connection, stop, wakeup, careful=failed_at == position)
                failed_at = None
            except UnpublishableEventError as poison:
                await self._halt(poison, stop)
            except BROKER_ERRORS as exc:
                failed_at = (await asyncio.to_thread(self._read)).position
                log.warning(
                    "broker connection lost (%s); resuming from the last confirmed position %d",
                    exc or type(exc).__name__,
                    failed_at,
                )
                await wait_or_stop(stop, backoff.next())
            finally:
                await _close_quietly(connection)

    async def _session(
        self, connection: AbstractConnection, stop: asyncio.Event, wakeup: Any, *, careful: bool
    ) -> None:
        """Publish from the saved position until ``stop`` (or, ``careful``, until caught up, one at a time)."""
        start = (await asyncio.to_thread(self._read)).position
        self.log.set_aside = frozenset(await asyncio.to_thread(self._set_asides))
        log.info(
            "publishing from position %d%s",
            start,
            "; one at a time, probing a failure" if careful else "",
        )
        self._current = await self._publisher(connection, 1 if careful else self.window, start)
        saver = PositionSaver(self, start)
        reader = BatchReader(
            lambda after: self.log.read(after, self.batch_size), start, self.batch_size
        )
        try:
            await self._pump(connection, saver, reader, stop, wakeup, careful=careful)
            await self._current.drain()
        finally:
            await self._current.abandon()
            await reader.close()
            await saver.flush(self._current.confirmed)

    async def _publisher(self, connection: AbstractConnection, size: int, start: int) -> Publisher:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        if self.publisher == "fast":
            underlay = await channel.get_underlay_channel()
            why_not = fast_path_available(underlay)
            if why_not is None and isinstance(underlay, aiormq.Channel):
                return PipelinedPublisher(underlay, exchange.name, size, start)
            log.warning("fast publishing unavailable (%s); using aio-pika's public API", why_not)
        return PublicPublisher(channel, exchange, size, start)

    async def _pump(
        self,
        connection: AbstractConnection,
        saver: PositionSaver,
        reader: BatchReader,
        stop: asyncio.Event,
        wakeup: Any,
        *,
        careful: bool,
    ) -> None:
        checked = asyncio.get_running_loop().time()
        while not stop.is_set():
            batch = await reader.next()
            if careful:
                await self._probe(connection, saver, batch)
            else:
                await self._current.publish_many(batch.items, saver.offer)
            if batch.poison is not None:
                await self._current.drain()
                saver.offer(self._current.confirmed)
                raise UnpublishableEventError(
                    batch.poison.position, batch.poison.reason, unreadable=batch.poison.unreadable
                )
            if batch.count:
                self._current.skip_to(batch.last)
            else:
                await self._current.drain()
                saver.offer(self._current.confirmed)
                if careful:
                    return  # caught up past the failure: full speed again
                await asyncio.to_thread(wakeup.wait, 0.5)
            if asyncio.get_running_loop().time() - checked > 1.0:
                await self._check_lease()
                checked = asyncio.get_running_loop().time()

    async def _probe(
        self, connection: AbstractConnection, saver: PositionSaver, batch: Batch
    ) -> None:
        """Publish one at a time; a message that closes the channel twice, on fresh channels, is poison."""
        for item in batch.items:
            for attempt in (1, 2):
                try:
                    await self._current.publish_many([item], saver.offer)
                    await self._current.drain()
                    break
                except CHANNEL_ERRORS as exc:
                    if attempt == 2:
                        raise UnpublishableEventError(
                            item.position, f"the broker refused it: {exc!r}"
                        ) from exc
                    log.warning(
                        "position %d failed alone (%r); trying it once more", item.position, exc
                    )
                    confirmed = self._current.confirmed
                    await self._current.abandon()
                    self._current = await self._publisher(connection, 1, confirmed)

    async def _halt(self, poison: UnpublishableEventError, stop: asyncio.Event) -> None:
        """Stay at the event (holding the lease, the halt in ``--status``) until an operator sets it aside or, when it
        could not be read, it reads after all (its master key added to WRIT_MASTER_KEY_FILE: the keys are read
        again each time). An event the broker refused is not retried: only a set-aside moves past it."""
        log.error(
            "halted at position %d: %s. Set it aside with `writ relay --exchange %s --set-aside %d "
            "--reason ...`",
            poison.position,
            poison.reason,
            self.exchange_name,
            poison.position,
        )
        await asyncio.to_thread(self._record_halt, poison)
        while not stop.is_set():
            await wait_or_stop(stop, self.halt_check_interval)
            await self._check_lease()
            if poison.position in await asyncio.to_thread(self._set_asides):
                log.info("position %d was set aside; resuming", poison.position)
                return
            if poison.unreadable and await asyncio.to_thread(self._reads_now, poison.position):
                log.info("position %d reads now; resuming", poison.position)
                return

    def _record_halt(self, poison: UnpublishableEventError) -> None:
        with self.database.transaction() as tx:
            self.positions.halt(tx, self.name, poison.position, poison.reason)

    def _reads_now(self, position: int) -> bool:
        """Whether the event at ``position`` can be published now, the master keys read again first; the halt is
        cleared when it can."""
        try:
            self.backend.reload_master_keys()
        except ConfigurationError as exc:
            log.warning("the master keys cannot be read again: %s", exc)
            return False
        if self.log.read(position - 1, 1).poison is not None:
            return False
        with self.database.transaction() as tx:
            self.positions.clear_halt(tx, self.name)
        return True

    def _set_asides(self) -> set[int]:
        with self.database.reading() as tx:
            return set(self.positions.set_asides(tx, self.name))

    def _read(self) -> Position:
        with self.database.reading() as tx:
            return self.positions.read(tx, self.name)

    def save(self, position: int) -> None:
        with self.database.transaction() as tx:
            self.positions.advance_to(tx, self.name, self.epoch, position)


class PositionSaver:
    """Writes the confirmed position in the background, one save at a time, always the newest value:
    the unsaved tail after a crash is at most the window plus one save."""

    def __init__(self, relay: Relay, saved: int) -> None:
        self._relay = relay
        self.saved = saved
        self._task: asyncio.Task[None] | None = None

    def offer(self, position: int) -> None:
        task = self._task
        if task is not None:
            if not task.done():
                return
            self._task = None
            task.result()
        if position > self.saved:
            self._task = asyncio.create_task(self._save(position))

    async def flush(self, position: int) -> None:
        task, self._task = self._task, None
        if task is not None:
            await task
        if position > self.saved:
            await self._save(position)

    async def _save(self, position: int) -> None:
        await asyncio.to_thread(self._relay.save, position)
        self.saved = position


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await connection.close()
    except Exception as exc:  # already broken: nothing left to close
        log.debug("closing a broken broker connection: %s", exc)


def _safe(url: str) -> str:
    return str(URL(url).with_password("***")) if URL(url).password else url

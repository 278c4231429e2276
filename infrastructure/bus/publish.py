"""Publishing with publisher confirms over a window, and the confirmed position that follows them.

A ``Publisher`` keeps up to ``size`` publishes in flight on one confirming
channel and advances ``confirmed`` only over a contiguous prefix of confirmed
positions, so a saved position never skips an unconfirmed event. A nack or a
lost connection surfaces as the exception of the first unconfirmed publish.
``PublicPublisher`` uses aio-pika's public API only (one task per publish,
each awaiting its confirm); ``infrastructure.bus.fast_publish`` has the
pipelined variant that writes a whole chunk per socket write (the relay's
default, kept behind a behaviour check of the pinned aiormq).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange
from pamqp.commands import Basic


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message ready to publish: the body, its routing key and AMQP properties, and its log position."""

    position: int
    body: bytes
    routing_key: str
    properties: Basic.Properties


class Publisher(ABC):
    """Publishes in order with a window of unconfirmed messages; tracks the confirmed position."""

    def __init__(self, size: int, confirmed: int) -> None:
        self._size = size
        self._in_flight = 0
        self._room = asyncio.Event()
        self._pending: deque[tuple[int, asyncio.Future[Any] | None]] = deque()
        self.confirmed = confirmed

    async def publish_many(
        self, items: Sequence[Outgoing], progress: Callable[[int], None]
    ) -> None:
        """Publish ``items`` in order, as many at once as the window has room for;
        ``progress(confirmed)`` is called whenever the confirmed position may have moved."""
        start = 0
        while start < len(items):
            while self._in_flight >= self._size:
                self._room.clear()
                await self._room.wait()
                self._advance()
                progress(self.confirmed)
            chunk = items[start : start + self._size - self._in_flight]
            for item, future in zip(chunk, await self._send(chunk), strict=True):
                self._in_flight += 1
                future.add_done_callback(self._released)
                self._pending.append((item.position, future))
            start += len(chunk)
            self._advance()
        progress(self.confirmed)

    @abstractmethod
    async def _send(self, chunk: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        """Send ``chunk`` in order; one future per message, resolved when the broker confirms it."""

    def _released(self, _: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        self._room.set()

    def skip_to(self, position: int) -> None:
        """Positions up to here need no confirm (unpublished events): pass them once all before are."""
        self._pending.append((position, None))
        self._advance()

    async def drain(self) -> None:
        """Wait for every publish in flight; raise the first failure."""
        futures = [future for _, future in self._pending if future is not None]
        if futures:
            await asyncio.wait(futures)
        self._advance()

    async def abandon(self) -> None:
        """Forget the publishes in flight (the next session republishes them)."""
        for _, future in self._pending:
            if future is not None:
                future.cancel()
        self._pending.clear()

    def _advance(self) -> None:
        pending = self._pending
        while pending:
            position, future = pending[0]
            if future is not None:
                if not future.done():
                    return
                future.result()
            pending.popleft()
            self.confirmed = position


class PublicPublisher(Publisher):
    """aio-pika's public API: ``exchange.publish`` per message, each in its own task."""

    def __init__(
        self, channel: AbstractChannel, exchange: AbstractExchange, size: int, confirmed: int
    ) -> None:
        super().__init__(size, confirmed)
        self._exchange = exchange

    async def _send(self, chunk: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        # Tasks start in creation order and aiormq's channel lock is FIFO: the broker receives them in order.
        return [
            asyncio.ensure_future(
                self._exchange.publish(as_message(item), item.routing_key, mandatory=False)
            )
            for item in chunk
        ]


def as_message(item: Outgoing) -> aio_pika.Message:
    """The body and properties of ``item`` as an aio-pika message."""
    p = item.properties
    return aio_pika.Message(
        item.body,
        message_id=p.message_id,
        content_type=p.content_type,
        headers=p.headers,
        delivery_mode=aio_pika.DeliveryMode(p.delivery_mode or 1),
        type=p.message_type,
        correlation_id=p.correlation_id,
        timestamp=p.timestamp,
        app_id=p.app_id,
    )

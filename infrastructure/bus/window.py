"""Publisher confirms over a pipelined window, and the position that follows them.

``ConfirmWindow`` keeps up to ``size`` publishes in flight on one confirming
channel (aio-pika's underlying aiormq channel), writing every chunk of messages
that fits the window as one buffer, and advances ``confirmed`` only over a
contiguous prefix of confirmed positions, so a saved position never skips an
unconfirmed event. A nack or a
lost connection surfaces as the exception of the first unconfirmed publish.
``PositionSaver`` writes ``confirmed`` to the database in the background, one
save at a time, always the newest value — the unsaved tail after a crash is at
most the window plus one save.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import aiormq
from aiormq.abc import ChannelFrame
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from infrastructure.bus.positions import PositionTable

if TYPE_CHECKING:
    from infrastructure.bus.relay import Outgoing

log = logging.getLogger("writ.relay")


class ConfirmWindow:
    def __init__(self, channel: aiormq.Channel, exchange: str, size: int, confirmed: int) -> None:
        self._channel = channel
        self._exchange = exchange
        self._size = size
        self._in_flight = 0
        self._room = asyncio.Event()
        self._pending: deque[tuple[int, asyncio.Future[Any] | None]] = deque()
        self.confirmed = confirmed

    async def publish_many(self, items: Sequence[Outgoing], progress: Callable[[int], None]) -> None:
        """Publish ``items`` in order, as many per socket write as the window has room for;
        ``progress(confirmed)`` is called whenever the confirmed position may have moved."""
        start = 0
        while start < len(items):
            while self._in_flight >= self._size:
                self._room.clear()
                await self._room.wait()
                self._advance()
                progress(self.confirmed)
            chunk = items[start:start + self._size - self._in_flight]
            await self._send(chunk)
            start += len(chunk)
            self._advance()
        progress(self.confirmed)

    async def _send(self, chunk: Sequence[Outgoing]) -> None:
        # aiormq's basic_publish writes (and makes a syscall for) one message at a time; here the
        # same frames and confirmation futures are set up under the channel lock for a whole chunk,
        # and handed to the connection's writer as one buffer. Acks resolve the futures as usual.
        channel = self._channel
        frames: list[Any] = []
        async with channel.lock:
            for item in chunk:
                channel.delivery_tag += 1
                confirmation = channel.create_future()
                channel.confirmations[channel.delivery_tag] = confirmation
                confirmation.add_done_callback(self._released)
                self._in_flight += 1
                self._pending.append((item.position, confirmation))
                frames += (Basic.Publish(exchange=self._exchange, routing_key=item.routing_key),
                           ContentHeader(properties=item.properties, body_size=len(item.body)),
                           *channel._split_body(item.body))
            await channel.write_queue.put(ChannelFrame.marshall(channel_number=channel.number, frames=frames))

    def _released(self, _: asyncio.Future[Any]) -> None:
        self._in_flight -= 1
        self._room.set()

    def skip_to(self, position: int) -> None:
        """Positions up to here need no confirm (internal events): pass them once all before are."""
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


class PositionSaver:
    def __init__(self, table: PositionTable, saved: int) -> None:
        self._table = table
        self.saved = saved
        self._task: asyncio.Task[None] | None = None

    def offer(self, position: int) -> None:
        """Save ``position`` soon, unless a save is running (the next offer catches up)."""
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
        await asyncio.to_thread(self._table.save, position)
        self.saved = position

"""Publisher confirms over a pipelined window, and the position that follows them.

``ConfirmWindow`` keeps up to ``size`` publishes in flight on one confirming
channel (aio-pika's underlying aiormq channel, publishing without a
per-message socket drain) and advances ``confirmed`` only over a contiguous prefix of confirmed
positions, so a saved position never skips an unconfirmed event. A nack or a
lost connection surfaces as the exception of the first unconfirmed publish.
``PositionSaver`` writes ``confirmed`` to the database in the background, one
save at a time, always the newest value — the unsaved tail after a crash is at
most the window plus one save.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import aiormq
from pamqp.commands import Basic

from infrastructure.bus.positions import PositionTable

log = logging.getLogger("writ.relay")


class ConfirmWindow:
    def __init__(self, channel: aiormq.Channel, exchange: str, size: int, confirmed: int) -> None:
        self._channel = channel
        self._exchange = exchange
        self._slots = asyncio.Semaphore(size)
        self._pending: deque[tuple[int, asyncio.Future[Any] | None]] = deque()
        self.confirmed = confirmed

    async def publish(self, position: int, body: bytes, properties: Basic.Properties, routing_key: str) -> None:
        await self._slots.acquire()
        # wait=False: hand the frame to the writer without a per-message socket drain; still confirmed
        task = asyncio.ensure_future(self._channel.basic_publish(
            body, exchange=self._exchange, routing_key=routing_key, properties=properties, wait=False,
        ))
        task.add_done_callback(lambda _: self._slots.release())
        self._pending.append((position, task))
        self._advance()

    def skip_to(self, position: int) -> None:
        """Positions up to here need no confirm (internal events): pass them once all before are."""
        self._pending.append((position, None))
        self._advance()

    async def drain(self) -> None:
        """Wait for every publish in flight; raise the first failure."""
        tasks = [task for _, task in self._pending if task is not None]
        if tasks:
            await asyncio.wait(tasks)
        self._advance()

    async def abandon(self) -> None:
        """Forget the publishes in flight (the next session republishes them)."""
        tasks = [task for _, task in self._pending if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()

    def _advance(self) -> None:
        pending = self._pending
        while pending:
            position, task = pending[0]
            if task is not None:
                if not task.done():
                    return
                task.result()
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

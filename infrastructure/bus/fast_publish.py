"""The relay's fast path: a whole chunk of publishes in one socket write. Confined here.

aiormq's ``basic_publish`` writes (and makes a syscall for) one message at a
time; this sets up the same frames and confirmation futures under the
channel's lock for a whole chunk and hands them to the connection's writer as
one buffer. It relies on aiormq internals (``delivery_tag``,
``confirmations``, ``write_queue``, ``_split_body``), so it is used only with
the aiormq version it was checked against (``SUPPORTED_AIORMQ``) and only when
those internals look as expected; otherwise the relay uses
``infrastructure.bus.publish.PublicPublisher``.
``tests/integration/test_relay.py`` checks both against a real broker.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Sequence
from typing import Any

import aiormq
from aiormq.abc import ChannelFrame
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from infrastructure.bus.publish import Outgoing, Publisher

SUPPORTED_AIORMQ = "7.2.4"
_INTERNALS = (
    "delivery_tag",
    "confirmations",
    "write_queue",
    "lock",
    "_split_body",
    "create_future",
)


def fast_path_available(channel: object) -> str | None:
    """None when the fast path can run on ``channel``; otherwise why not."""
    version = importlib.metadata.version("aiormq")
    if version != SUPPORTED_AIORMQ:
        return f"aiormq {version} is not the checked {SUPPORTED_AIORMQ}"
    if not isinstance(channel, aiormq.Channel):
        return f"not an aiormq channel: {type(channel).__name__}"
    missing = [name for name in _INTERNALS if not hasattr(channel, name)]
    if missing:
        return f"aiormq channel lacks {', '.join(missing)}"
    if not isinstance(channel.confirmations, dict) or not getattr(
        channel, "publisher_confirms", False
    ):
        return "the channel does not confirm publishes"
    return None


class PipelinedPublisher(Publisher):
    def __init__(self, channel: aiormq.Channel, exchange: str, size: int, confirmed: int) -> None:
        super().__init__(size, confirmed)
        self._channel = channel
        self._exchange = exchange

    async def _send(self, chunk: Sequence[Outgoing]) -> list[asyncio.Future[Any]]:
        channel = self._channel
        frames: list[Any] = []
        futures: list[asyncio.Future[Any]] = []
        async with channel.lock:
            for item in chunk:
                channel.delivery_tag += 1
                confirmation = channel.create_future()
                channel.confirmations[channel.delivery_tag] = confirmation
                futures.append(confirmation)
                frames += (
                    Basic.Publish(exchange=self._exchange, routing_key=item.routing_key),
                    ContentHeader(properties=item.properties, body_size=len(item.body)),
                    *channel._split_body(item.body),
                )
            await channel.write_queue.put(
                ChannelFrame.marshall(channel_number=channel.number, frames=frames)
            )
        return futures

"""Dead letters: the messages a ``Subscriber`` gave up on (``<queue>.dead``), listed, or moved back to its queue.

A subscriber dead-letters a message after ``max_attempts`` failed deliveries (``infrastructure.bus.subscriber``).
Once the cause is fixed, ``replay`` moves them back, oldest first: each message is published again unchanged
(body, ``message_id``, content type, its headers but the broker's ``x-death`` bookkeeping, persistent) through
the default exchange straight to the subscriber's queue, so no other subscriber bound to the same events gets
it twice, and it is removed from ``<queue>.dead`` only after the broker confirmed the copy. A crash in between
leaves it in both: the subscriber's inbox drops the duplicate by ``message_id``. A replay moves at most the
messages that were dead when it started, so one that fails again and comes back is not looped on.
``peek`` reads without removing: the messages it read go back where they were when its channel closes.

A message whose data a purge has erased since it was dead-lettered (its record's key destroyed; for an
approval event, its request's key, which the purge of any record it covers destroys) goes back without it
(``erased``): a record event without its data, changes or reason, ``redacted`` true; an approval event with
only the request's plain facts. The dead queue itself is the broker's: Writ cannot reach into it, so what it
holds until then is the broker's retention (docs/bus.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import aio_pika
import orjson
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiormq.exceptions import ChannelNotFoundEntity

from domain.errors import RecordNotFoundError, ServiceUnavailableError
from infrastructure.bus.contract import IntegrationEvent, sealed_by
from infrastructure.bus.contract import erased as contract_erased
from infrastructure.bus.outbox import BROKER_ERRORS

Erased = Callable[[UUID], bool]
"""Whether what this owner (a record, an approval request) sealed is erased: its data key destroyed by a purge
(``infrastructure.vault.Vault.is_destroyed``)."""

DEAD_SUFFIX = ".dead"
BROKER_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
)


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered message, as an operator reads it."""

    message_id: str | None
    routing_key: str | None
    event_type: str | None
    record_id: str | None
    deaths: int
    reason: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "routing_key": self.routing_key,
            "event_type": self.event_type,
            "record_id": self.record_id,
            "deaths": self.deaths,
            "reason": self.reason,
        }


async def peek(amqp_url: str, queue: str, limit: int) -> tuple[int, list[DeadLetter]]:
    """How many messages ``<queue>.dead`` holds, and the first ``limit`` of them (left where they are)."""
    async with _channel(amqp_url) as channel:
        dead = await _queue(channel, queue + DEAD_SUFFIX)
        count = _count(dead)
        found = []
        for _ in range(min(limit, count)):
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            found.append(_described(message))
        return count, found  # unacknowledged: requeued in place when the channel closes


async def replay(amqp_url: str, queue: str, purged: Erased, limit: int | None = None) -> int:
    """Move the messages of ``<queue>.dead`` (at most ``limit``, at most those there now) back to ``queue``,
    without what a purge erased since (``erased``); how many were moved."""
    async with _channel(amqp_url) as channel:
        await _queue(channel, queue)  # the subscriber's queue must exist: it is where they go
        dead = await _queue(channel, queue + DEAD_SUFFIX)
        most = _count(dead) if limit is None else min(limit, _count(dead))
        moved = 0
        while moved < most:
            message = await dead.get(no_ack=False, fail=False)
            if message is None:
                break
            # waits for the confirm
            await channel.default_exchange.publish(_again(message, purged), routing_key=queue)
            await message.ack()
            moved += 1
        return moved


@asynccontextmanager
async def _channel(amqp_url: str) -> AsyncIterator[AbstractChannel]:
    try:
        connection = await aio_pika.connect(amqp_url, timeout=5)
    except BROKER_ERRORS as exc:
        raise ServiceUnavailableError(
            f"the broker at {_where(amqp_url)} is unreachable: {exc}"
        ) from None
    async with connection:
        yield await connection.channel(publisher_confirms=True)


async def _queue(channel: AbstractChannel, name: str) -> AbstractQueue:
    try:
        return await channel.declare_queue(name, passive=True)
    except ChannelNotFoundEntity:
        raise RecordNotFoundError(
            f"queue {name!r} not found on the broker (a subscriber declares it when it starts)"
        ) from None


def _count(queue: AbstractQueue) -> int:
    result = queue.declaration_result
    return int(result.message_count or 0) if result is not None else 0


def erased(body: bytes, purged: Erased) -> bytes:
    """``body`` unchanged unless it is one of Writ's events whose ``sealed_by`` key a purge has destroyed since,
    then ``contract.erased``: what the relay would publish now."""
    try:
        event = IntegrationEvent.from_json(body)
    except (
        ValueError,
        TypeError,
    ):  # not Writ's (orjson's error and ContractVersionError are ValueErrors)
        return body
    owner = sealed_by(event)
    if owner is None or not purged(owner):
        return body
    return contract_erased(event).to_json()


def _again(message: AbstractIncomingMessage, purged: Erased) -> aio_pika.Message:
    headers = {k: v for k, v in (message.headers or {}).items() if k not in BROKER_HEADERS}
    return aio_pika.Message(
        body=erased(message.body, purged),
        message_id=message.message_id,
        headers=headers,
        content_type=message.content_type,
        correlation_id=message.correlation_id,
        timestamp=message.timestamp,
        type=message.type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
    )


def _described(message: AbstractIncomingMessage) -> DeadLetter:
    found: Any = (message.headers or {}).get("x-death")
    deaths: list[dict[str, Any]] = (
        [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []
    )
    keys = deaths[0].get("routing-keys") if deaths else None
    try:
        body = orjson.loads(message.body)
    except orjson.JSONDecodeError:
        body = {}
    body = body if isinstance(body, dict) else {}
    return DeadLetter(
        message_id=message.message_id,
        routing_key=str(keys[0]) if isinstance(keys, list) and keys else message.routing_key,
        event_type=body.get("event_type"),
        record_id=body.get("record_id"),
        deaths=sum(int(d.get("count", 1) or 1) for d in deaths),
        reason=str(deaths[0].get("reason")) if deaths else None,
    )


def _where(amqp_url: str) -> str:
    """The broker's address without its credentials."""
    return amqp_url.rpartition("@")[2]

"""What the relay reads: batches of outgoing messages from the notification log.

``RelayLog`` reads the log after a position, decodes each published event
through the application's mapper, strips the data of records purged since
(at any later position: a replay never republishes purged data), and of the
approval requests whose key such a purge destroyed (``contract.erased``, the
rule a replayed dead letter follows too), and turns it into an ``Outgoing``
message (``contract``). A batch stops before an event
whose message exceeds the broker's size limit and names it as ``poison``;
events an operator has set aside are passed over. ``BatchReader`` reads the
next batch in a worker thread while the current one is published.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from aiormq.exceptions import AMQPChannelError, AMQPError, ChannelInvalidStateError, DeliveryError
from eventsourcing.persistence import Notification
from pamqp.commands import Basic

from domain.approval import APPROVAL_TOPICS
from domain.decision import Decision
from domain.errors import WritError
from domain.record import EVENT_TOPICS
from infrastructure.bus.contract import (
    APPROVAL_MODEL,
    SCHEMA,
    IntegrationEvent,
    erased,
    from_stored,
    is_published,
    sealed_by,
)
from infrastructure.bus.publish import Outgoing
from infrastructure.log import EventLog

PUBLISHED_TOPICS = (*EVENT_TOPICS, Decision.Created.TOPIC, *APPROVAL_TOPICS)
PERSISTENT = 2  # AMQP delivery mode: the broker writes the message to disk
BROKER_ERRORS = (AMQPError, ChannelInvalidStateError, ConnectionError, OSError, TimeoutError)
CHANNEL_ERRORS = (AMQPChannelError, DeliveryError, ChannelInvalidStateError)
"""The broker closed the channel or refused a message, while the connection stayed up."""


@dataclass(frozen=True)
class Poison:
    """An event the relay cannot publish: where, and why."""

    position: int
    reason: str
    unreadable: bool = False
    """It could not be read (not a size the broker refuses): it may read later, e.g. once a missing master key is
    configured."""


@dataclass(frozen=True)
class Batch:
    items: list[Outgoing]
    last: int
    count: int
    poison: Poison | None = None


class RelayLog:
    """The notification log as outgoing messages."""

    def __init__(self, log: EventLog, max_message_bytes: int) -> None:
        self.log = log
        self.max_message_bytes = max_message_bytes
        self.set_aside: frozenset[int] = frozenset()

    def read(self, after: int, limit: int) -> Batch:
        notifications = self.log.read(after, limit)
        published, unreadable = self._decoded(notifications)
        events = [
            from_stored(n.id, n.originator_id, n.originator_version, n.topic, state)
            for n, state in published
        ]
        owners = [sealed_by(event) for event in events]
        gone = self._erased(events, owners)
        items: list[Outgoing] = []
        for event, owner in zip(events, owners, strict=True):
            item = outgoing(erased(event) if owner in gone else event)
            if len(item.body) > self.max_message_bytes:
                reason = (
                    f"its message has {len(item.body):,} bytes, over the broker limit of "
                    f"{self.max_message_bytes:,}"
                )
                return _stopped_at(items, notifications, Poison(event.position, reason))
            items.append(item)
        if unreadable is not None:
            return _stopped_at(items, notifications, unreadable)
        return Batch(items, notifications[-1].id if notifications else after, len(notifications))

    def _erased(
        self, events: Sequence[IntegrationEvent], owners: Sequence[UUID | None]
    ) -> set[UUID | None]:
        """The ``owners`` (each event's ``contract.sealed_by``) whose data a purge erased: records purged, approval
        requests whose key went with the purge of a record they cover."""
        records: set[UUID] = set()
        requests: set[UUID] = set()
        for event, owner in zip(events, owners, strict=True):
            if owner is not None:
                (requests if event.model == APPROVAL_MODEL else records).add(owner)
        gone: set[UUID | None] = set(self.log.purged_among(records)) if records else set()
        return gone | (self.log.backend.vault().destroyed_among(requests) if requests else set())

    def _decoded(
        self, notifications: Sequence[Notification]
    ) -> tuple[list[tuple[Notification, Any]], Poison | None]:
        """The published events of a batch, decoded, up to the first one that cannot be read (its data key does
        not unwrap: a master key this process lacks, say), which is returned as poison. A database that does
        not answer is no reason to halt: that error goes on (the relay reconnects)."""
        transient = self.log.backend.transient
        # one key of the batch does not unwrap: found event by event below
        with contextlib.suppress(Exception):
            self.log.prefetch(notifications)
        published: list[tuple[Notification, Any]] = []
        for notification in notifications:
            if not is_published(notification.topic) or notification.id in self.set_aside:
                continue
            try:
                published.append((notification, self.log.decode(notification)))
            except transient:
                raise
            except WritError as error:
                # its record's key does not open (KEY_INVALID, a master key it lacks)
                return published, Poison(notification.id, error.reason, unreadable=True)
            except Exception as exc:
                return published, Poison(
                    notification.id,
                    f"it cannot be read: {type(exc).__name__}: {exc}",
                    unreadable=True,
                )
        return published, None

    def behind(self, position: int) -> int:
        return self.log.count_after(position, PUBLISHED_TOPICS)

    def close(self) -> None:
        self.log.close()


def properties(event: IntegrationEvent) -> Basic.Properties:
    """AMQP properties: persistent JSON, ``message_id`` = event id, correlation/causation headers."""
    headers: dict[str, Any] = {"writ-schema": SCHEMA, "writ-position": event.position}
    if event.correlation_id is not None:
        headers["correlation_id"] = event.correlation_id
    if event.causation_id is not None:
        headers["causation_id"] = event.causation_id
    return Basic.Properties(
        message_id=event.event_id,
        content_type="application/json",
        delivery_mode=PERSISTENT,
        headers=headers,
        message_type=event.event_type,
        correlation_id=event.correlation_id,
        timestamp=datetime.fromisoformat(event.occurred_at),
        app_id="writ",
    )


def _stopped_at(
    items: list[Outgoing], notifications: Sequence[Notification], poison: Poison
) -> Batch:
    """The batch up to (not including) the poison event."""
    return Batch(
        items, poison.position - 1, sum(1 for n in notifications if n.id < poison.position), poison
    )


def outgoing(event: IntegrationEvent) -> Outgoing:
    return Outgoing(event.position, event.to_json(), event.routing_key, properties(event))


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
        if batch.count >= self._limit and batch.poison is None:
            self._next = self._spawn(batch.last)
        return batch

    def _spawn(self, after: int) -> asyncio.Future[Batch]:
        return asyncio.ensure_future(asyncio.to_thread(self._read, after))

    async def close(self) -> None:
        if self._next is not None:
            await asyncio.gather(self._next, return_exceptions=True)


class Backoff:
    """Delays that double from ``first`` up to ``ceiling``; ``reset`` after a success."""

    def __init__(self, first: float = 0.5, ceiling: float = 5.0) -> None:
        self.first, self.ceiling, self.delay = first, ceiling, first

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self.delay = self.first


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)

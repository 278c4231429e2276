"""Saves whose events are encoded as the recorder reads them.

The library's ``EventStore.put`` encodes (and seals) every event of a save
before the recorder sees the first one, so a 10,000-event bulk update spent
its encoding time and then its insert time, one after the other.
``EncodingEventStore.put`` hands the recorder the events as an ``Encoded``
sequence, which encodes each event the first time it is read (once): a
recorder that inserts a big save in parts, in one transaction
(``infrastructure.postgres_recorder``), encodes the next part while the
database inserts the one before; a recorder that reads the whole sequence at
once gets what the library would have given it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording, StoredEvent

Event = DomainEventProtocol[UUID]
T = TypeVar("T")


class Encoded(Sequence[StoredEvent], Generic[T]):
    """``events`` as stored events, each encoded when first read, in order."""

    def __init__(self, events: Sequence[T], encode: Callable[[T], StoredEvent]) -> None:
        self._events, self._encode = events, encode
        self._done: list[StoredEvent] = []

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> StoredEvent: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[StoredEvent]: ...

    def __getitem__(self, index: int | slice) -> StoredEvent | Sequence[StoredEvent]:
        wanted = range(len(self))[index]  # IndexError past either end, as a list; negative indices resolved
        if isinstance(wanted, int):
            self._encode_until(wanted + 1)
            return self._done[wanted]
        if wanted:
            self._encode_until(max(wanted) + 1)
        return [self._done[position] for position in wanted]

    def __iter__(self) -> Iterator[StoredEvent]:
        self._encode_until(len(self))
        return iter(self._done)

    def _encode_until(self, count: int) -> None:
        """Encode the events before position ``count`` that are not encoded yet."""
        done = self._done
        if count > len(done):
            done.extend(map(self._encode, self._events[len(done):count]))


class EncodingEventStore(EventStore[UUID]):
    """The library's event store, but a save's events reach the recorder as an ``Encoded`` sequence."""

    def put(self, domain_events: Sequence[Event], **kwargs: Any) -> list[Recording[UUID]]:
        stored = Encoded(list(domain_events), self.mapper.to_stored_event)
        positions = self.recorder.insert_events(stored, **kwargs)
        if not positions:
            return []
        if len(positions) != len(stored):
            raise RuntimeError(f"the recorder returned {len(positions)} positions for {len(stored)} events")
        return [Recording(event, Notification(id=position, originator_id=s.originator_id,
                                              originator_version=s.originator_version, topic=s.topic,
                                              state=s.state))
                for event, s, position in zip(domain_events, stored, positions, strict=True)]

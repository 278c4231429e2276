"""Saves whose events are made and encoded as the recorder reads them.

The library's ``EventStore.put`` encodes (and seals) every event of a save
before the recorder sees the first one, so a 10,000-event bulk update spent
its encoding time and then its insert time, one after the other.
``EncodingEventStore.put`` hands the recorder the events as a ``MadeOnRead``
sequence, which encodes each event the first time it is read (once): a
recorder that inserts a big save in parts, in one transaction
(``infrastructure.postgres_recorder``), encodes the next part while the
database inserts the one before; a recorder that reads the whole sequence at
once gets what the library would have given it. A save's events may
themselves be a ``MadeOnRead`` sequence (a bulk update patches each record
when its event is first read): then each event is made and encoded in turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, overload
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, Notification, Recording

Event = DomainEventProtocol[UUID]
T = TypeVar("T")
R = TypeVar("R")


class MadeOnRead(Sequence[R], Generic[T, R]):
    """``ready``, then ``make(source)`` for each of ``sources``: each item made the first time it (or one after
    it) is read, once, in order."""

    def __init__(
        self, sources: Sequence[T], make: Callable[[T], R], ready: Sequence[R] = ()
    ) -> None:
        self._sources, self._make = sources, make
        self._done: list[R] = list(ready)
        self._ready = len(self._done)

    def __len__(self) -> int:
        return self._ready + len(self._sources)

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[R]: ...

    def __getitem__(self, index: int | slice) -> R | Sequence[R]:
        # IndexError past either end, as a list; negative indices resolved
        wanted = range(len(self))[index]
        if isinstance(wanted, int):
            self._make_until(wanted + 1)
            return self._done[wanted]
        if wanted:
            self._make_until(max(wanted) + 1)
        if wanted.step == 1:  # a recorder's part: one slice of the list, not an index at a time
            return self._done[wanted.start : wanted.stop]
        return [self._done[position] for position in wanted]

    def __iter__(self) -> Iterator[R]:
        self._make_until(len(self))
        return iter(self._done)

    def _make_until(self, count: int) -> None:
        """Make the items before position ``count`` that are not made yet."""
        done, ready = self._done, self._ready
        if count > len(done):
            done.extend(map(self._make, self._sources[len(done) - ready : count - ready]))


class EncodingEventStore(EventStore[UUID]):
    """The library's event store, but a save's events reach the recorder as a ``MadeOnRead`` sequence."""

    def put(self, domain_events: Sequence[Event], **kwargs: Any) -> list[Recording[UUID]]:
        events = domain_events if isinstance(domain_events, MadeOnRead) else list(domain_events)
        stored = MadeOnRead(events, self.mapper.to_stored_event)
        positions = self.recorder.insert_events(stored, **kwargs)
        if not positions:
            return []
        if len(positions) != len(stored):
            raise RuntimeError(
                f"the recorder returned {len(positions)} positions for {len(stored)} events"
            )
        return [
            dataclass_of(
                Recording,
                domain_event=event,
                notification=dataclass_of(
                    Notification,
                    originator_id=s.originator_id,
                    originator_version=s.originator_version,
                    topic=s.topic,
                    state=s.state,
                    id=position,
                ),
            )
            for event, s, position in zip(domain_events, stored, positions, strict=True)
        ]


F = TypeVar("F")


def dataclass_of(cls: type[F], **fields: Any) -> F:
    """An instance of the frozen dataclass ``cls`` holding exactly ``fields`` (every one), as its ``__init__``
    would, without setting them one at a time through ``object.__setattr__`` (what that saves a large save:
    docs/performance.md, bulk)."""
    made = object.__new__(cls)
    object.__setattr__(made, "__dict__", fields)
    return made

"""A unit of work's staging area: the aggregates one atomic save will write, with savepoints.

Every write stages what it changes here — records, and the counters, unique claims and families beside
them (``domain.links``) — and the service saves all of it in one save. Commands staged later see what
earlier ones staged (a child finds the parent created before it, a second create takes the next number).
A savepoint copies an aggregate the first time it is touched after the savepoint began; rolling back puts
the copies back and drops what the block created, so only that block's changes are discarded.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.results import WriteResult
from domain.record import Record

Loader = Callable[[UUID], Any]
LOCK_WAIT = 10.0


class Locks:
    """One re-entrant lock per aggregate id that a thread of this process holds or waits for (forgotten when
    nobody does: a process that touched millions of records keeps no lock for them)."""

    def __init__(self) -> None:
        self._locks: dict[UUID, tuple[threading.RLock, list[int]]] = {}
        self._guard = threading.Lock()

    def take(self, aggregate_id: UUID, timeout: float) -> Callable[[], None] | None:
        """Wait up to ``timeout`` for the aggregate's lock; what releases it, or None when the wait ran out."""
        with self._guard:
            lock, users = self._locks.setdefault(aggregate_id, (threading.RLock(), [0]))
            users[0] += 1
        if lock.acquire(timeout=timeout):

            def release() -> None:
                lock.release()
                self._leave(aggregate_id, users)

            return release
        self._leave(aggregate_id, users)
        return None

    def _leave(self, aggregate_id: UUID, users: list[int]) -> None:
        with self._guard:
            users[0] -= 1
            if not users[0]:
                del self._locks[aggregate_id]


@dataclass
class _Savepoint:
    copies: dict[UUID, Aggregate | None] = field(default_factory=dict)
    """Each aggregate touched since the savepoint began, as it was then (None: it did not exist)."""
    decided: int = 0


class Unit:
    def __init__(self, load: Loader, locks: Locks | None = None) -> None:
        self._load = load
        self._locks = locks
        self._held: list[Callable[[], None]] = []
        self.hot = False
        """It advanced a counter: a conflict at save is a ``HotConflict``."""
        self.staged: dict[UUID, Aggregate] = {}
        self.decided: list[WriteResult] = []
        """Each executed command's result as it was staged, in order (positions come with the save)."""
        self.children: dict[UUID, list[str]] = {}
        """Parent id -> the ids of the children its nested create made."""
        self._savepoints: list[_Savepoint] = []

    def get(self, aggregate_id: UUID) -> Any:
        """The aggregate as staged, or as stored (None when there is none)."""
        found = self.staged.get(aggregate_id)
        return found if found is not None else self._load(aggregate_id)

    def touch(self, aggregate: Aggregate) -> Any:
        """Stage ``aggregate`` before changing it (copied first for the innermost savepoint)."""
        if self._savepoints:
            copies = self._savepoints[-1].copies
            if aggregate.id not in copies:
                # None: as stored (or new); rolling back unstages it
                staged = self.staged.get(aggregate.id)
                copies[aggregate.id] = copy.deepcopy(staged) if staged is not None else None
        self.staged[aggregate.id] = aggregate
        return aggregate

    def __enter__(self) -> Unit:
        return self

    def __exit__(self, *_: object) -> None:
        self.unlock()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A block whose changes are discarded, alone, if it raises (the exception goes on to the caller)."""
        depth = self.begin()
        try:
            yield
        except BaseException:
            self.rollback(depth)
            raise
        self.release(depth)

    def begin(self) -> int:
        self._savepoints.append(_Savepoint(decided=len(self.decided)))
        return len(self._savepoints)

    def rollback(self, depth: int) -> None:
        """Discard everything staged since savepoint ``depth`` began (and the savepoints inside it)."""
        while len(self._savepoints) >= depth:
            savepoint = self._savepoints.pop()
            for aggregate_id, before in savepoint.copies.items():
                if before is None:
                    self.staged.pop(aggregate_id, None)
                else:
                    self.staged[aggregate_id] = before
            del self.decided[savepoint.decided :]

    def release(self, depth: int) -> None:
        """Keep what savepoint ``depth`` staged: its copies pass to the savepoint around it."""
        while len(self._savepoints) >= depth:
            savepoint = self._savepoints.pop()
            if self._savepoints:
                outer = self._savepoints[-1].copies
                for aggregate_id, before in savepoint.copies.items():
                    outer.setdefault(aggregate_id, before)

    def serialize(self, aggregate_id: UUID) -> None:
        """Hold this process's lock on a hot aggregate (a counter) until ``unlock``: threads of one process
        then take turns instead of conflicting in the store (other processes still retry on a conflict)."""
        self.hot = True
        self.take_turn(aggregate_id)

    def take_turn(self, aggregate_id: UUID) -> None:
        """Hold this process's lock on the aggregate (a record about to be decided) until ``unlock``: commands on
        one record in one process decide one after the other, each on the state the one before saved, instead
        of deciding at once and all but one conflicting. Past ``LOCK_WAIT`` it goes on unlocked (two units
        taking two records in opposite orders): the store's optimistic concurrency still decides."""
        if self._locks is not None:
            release = self._locks.take(aggregate_id, LOCK_WAIT)
            if release is not None:
                self._held.append(release)

    def unlock(self) -> None:
        while self._held:
            self._held.pop()()

    def aggregates(self) -> list[Aggregate]:
        return list(self.staged.values())


def unit_record(unit: Unit, record_id: UUID) -> Record | None:
    staged = unit.staged.get(record_id)
    return staged if isinstance(staged, Record) else None


def decision_of(record: Record) -> str:
    """The decision id the record's last staged event carries."""
    return str(record.pending_events[-1].meta["decision_id"])  # type: ignore[attr-defined]

"""A unit of work's staging area: the aggregates one atomic save will write, with savepoints.

Every write stages what it changes here — records, and the counters, unique claims and families beside
them (``domain.links``) — and the service saves all of it in one save. Commands staged later see what
earlier ones staged (a child finds the parent created before it, a second create takes the next number).
A savepoint copies an aggregate the first time it is touched after the savepoint began; rolling back puts
the copies back and drops what the block created, so only that block's changes are discarded.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application.results import WriteResult
from domain.record import Record

Loader = Callable[[UUID], Any]


@dataclass
class _Savepoint:
    copies: dict[UUID, Aggregate | None] = field(default_factory=dict)
    """Each aggregate touched since the savepoint began, as it was then (None: it did not exist)."""
    decided: int = 0


class Unit:
    def __init__(self, load: Loader) -> None:
        self._load = load
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
                staged = self.staged.get(aggregate.id)  # None: as stored (or new); rolling back unstages it
                copies[aggregate.id] = copy.deepcopy(staged) if staged is not None else None
        self.staged[aggregate.id] = aggregate
        return aggregate

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
            del self.decided[savepoint.decided:]

    def release(self, depth: int) -> None:
        """Keep what savepoint ``depth`` staged: its copies pass to the savepoint around it."""
        while len(self._savepoints) >= depth:
            savepoint = self._savepoints.pop()
            if self._savepoints:
                outer = self._savepoints[-1].copies
                for aggregate_id, before in savepoint.copies.items():
                    outer.setdefault(aggregate_id, before)

    def record(self, record_id: UUID) -> Record:
        staged = self.staged[record_id]
        assert isinstance(staged, Record)
        return staged

    def aggregates(self) -> list[Aggregate]:
        return list(self.staged.values())


def unit_record(unit: Unit, record_id: UUID) -> Record | None:
    staged = unit.staged.get(record_id)
    return staged if isinstance(staged, Record) else None


def decision_of(record: Record) -> str:
    """The decision id the record's last staged event carries."""
    return str(record.pending_events[-1].meta["decision_id"])  # type: ignore[attr-defined]

"""Group commit: the saves of concurrent commands in one process, stored together.

Every governed save goes through ``GroupCommit.save``. Its caller encodes (and seals) its own events first,
in its own thread, then queues them. A caller that finds nobody storing becomes the leader: it takes the
saves waiting (up to ``max_saves`` of them and ``max_events`` events), and the event store inserts them as
one batch (``BatchStore.insert_groups``): one transaction, one lock hold, one WAL flush. Each save keeps its
own outcome: its recordings, or the ``IntegrityError`` of its own optimistic-concurrency conflict (checked
exactly, since nothing else can insert while the batch holds the events table's lock); its neighbours are
stored all the same. When a batch fails as a whole (the database refused one save's rows), each of its saves
is stored again on its own, so one save's error never costs another save its write; when the store itself
is unavailable (``ServiceUnavailableError``: its table held past the lock timeout), every save of the batch
fails with it at once. Callers that arrive
while a batch is being stored wait for it, and form the next batch: a caller alone waits for nobody, and
under load a batch is whoever queued during the flush before (``window`` seconds more, when configured).
"""

from __future__ import annotations

import _thread
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Mapper, Notification, Recording, StoredEvent

from application.encoding import dataclass_of
from domain.errors import ConfigurationError, ServiceUnavailableError

Event = DomainEventProtocol[UUID]


class RaceLost(IntegrityError):  # noqa: N818 - it is an IntegrityError, as the library names it
    """A save that conflicts with events stored since it was decided: it lost its optimistic-concurrency race
    (the store reported this save's conflict as such), as opposed to any other integrity error."""


def _locked() -> _thread.LockType:
    lock = threading.Lock()
    lock.acquire()
    return lock


class BatchStore(Protocol):
    """The recorder's batch insert (``infrastructure.sqlite_recorder``, ``infrastructure.postgres_recorder``)."""

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        """Each group's positions, or None where the group conflicted with stored events; one transaction."""


@dataclass
class _Save:
    events: Sequence[Event]
    stored: list[StoredEvent]
    positions: list[int] | None = None
    error: BaseException | None = None
    done: bool = False
    wake: _thread.LockType = field(default_factory=_locked)
    """Held from the start; released once to wake its caller: its save is done, or it is to lead the next batch."""

    def outcome(self) -> list[Recording[UUID]]:
        if self.error is not None:
            raise self.error
        assert self.positions is not None
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
            for event, s, position in zip(self.events, self.stored, self.positions, strict=True)
        ]


@dataclass
class BatchFigures:
    """What the batches have been so far (for the benchmarks and the operators)."""

    batches: int = 0
    saves: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)
    storing: float = 0.0
    """Seconds spent in the store's insert calls (each a batch's transaction, its commit's flush included)."""

    def count(self, size: int, seconds: float) -> None:
        """A batch of ``size`` saves whose insert call took ``seconds`` (counted once the call has ended)."""
        self.batches += 1
        self.saves += size
        self.storing += seconds
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


class GroupCommit:
    """Concurrent saves of one process stored as batches (see the module)."""

    def __init__(
        self,
        mapper: Mapper[UUID],
        store: BatchStore,
        *,
        max_saves: int = 64,
        max_events: int = 1000,
        window: float = 0.0,
    ) -> None:
        if max_saves < 1 or max_events < 1:
            raise ConfigurationError(
                f"A group commit batch holds at least one save and one event (WRIT_GROUP_COMMIT_SAVES is "
                f"{max_saves}, WRIT_GROUP_COMMIT_EVENTS {max_events})"
            )
        self._mapper, self._batches = mapper, store
        self.max_saves, self.max_events, self.window = max_saves, max_events, window
        self._mutex = threading.Lock()
        self._waiting: deque[_Save] = deque()
        self._leading = False
        self.figures = BatchFigures()

    def status(self) -> dict[str, Any]:
        """This process's batching since it started, for its operator (``GET /healthz``): batches stored (each
        insert call: a batch one save broke is stored again save by save, each counted), saves in them, the mean
        and largest batch, the mean milliseconds an insert call took, the saves queued now, and the bounds in
        force (``WRIT_GROUP_COMMIT_*``). Read without the lock, each figure once: a leader counting a batch
        meanwhile may be in some figures and not yet in others."""
        figures = self.figures
        batches, saves, storing = figures.batches, figures.saves, figures.storing
        return {
            "batches": batches,
            "saves": saves,
            "mean_batch": round(saves / batches, 2) if batches else 0.0,
            "largest_batch": figures.largest,
            "mean_store_ms": round(storing / batches * 1e3, 3) if batches else 0.0,
            "queued": self.queued,
            "max_saves": self.max_saves,
            "max_events": self.max_events,
            "window_ms": self.window * 1e3,
        }

    @property
    def leading(self) -> bool:
        """A batch is being stored now."""
        return self._leading

    @property
    def queued(self) -> int:
        """Saves waiting for the next batch."""
        return len(self._waiting)

    def save(self, events: Sequence[Event]) -> list[Recording[UUID]]:
        """Store ``events`` (one command's save) in the next batch; their recordings once it has committed,
        or the ``IntegrityError`` of this save's own conflict.

        Each caller waits on a lock of its own, and is woken once: by the leader that stored its save, or by the
        leader before it, to lead the next batch (whose first save is its own). Only the callers whose turn
        it is wake (one ``notify_all`` waking every waiting thread took a sixth of the process's time under
        sixteen writers)."""
        if not events:
            return []
        mine = _Save(events, [self._mapper.to_stored_event(event) for event in events])
        with self._mutex:
            self._waiting.append(mine)
            leads = not self._leading
            self._leading = True
        if not leads:
            try:
                mine.wake.acquire()
            except BaseException:
                self._abandon(mine)
                raise
            if mine.done:
                return mine.outcome()
        self._lead(mine)  # first in the queue: the batch it takes starts with its own save
        return mine.outcome()

    def _lead(self, mine: _Save) -> None:
        batch: list[_Save] = []
        try:
            if self.window:
                time.sleep(self.window)  # configured: let a batch form behind the first caller
            with self._mutex:
                batch = self._take()
            assert batch and batch[0] is mine, "a leader's batch starts with its own save"
            self._store(batch)
        except BaseException as error:
            # the leader was interrupted: nobody of the batch may wait forever
            if not batch:  # before it took its batch: its own save leaves the queue
                with self._mutex:
                    if mine in self._waiting:
                        self._waiting.remove(mine)
            for save in batch or [mine]:
                if not save.done:
                    save.error, save.done = error, True
            raise
        finally:
            self._hand_over(batch)

    def _hand_over(self, batch: list[_Save]) -> None:
        """Wake the batch's other callers, and the caller of the next waiting save to lead (or stop leading)."""
        for save in batch[1:]:
            save.wake.release()
        with self._mutex:
            if self._waiting:
                self._waiting[0].wake.release()
            else:
                self._leading = False

    def _abandon(self, mine: _Save) -> None:
        """A waiting caller interrupted (its save may still be stored, as any interrupted write's may): its save
        leaves the queue if no leader took it, and the leadership it was handed, if it was, goes on."""
        with self._mutex:
            if mine in self._waiting:
                self._waiting.remove(mine)
            if mine.wake.acquire(blocking=False) and not mine.done:
                # woken to lead, and gone: the next waiting save leads, or nobody is leading
                if self._waiting:
                    self._waiting[0].wake.release()
                else:
                    self._leading = False

    def _take(self) -> list[_Save]:
        batch: list[_Save] = []
        events = 0
        while self._waiting and len(batch) < self.max_saves:
            size = len(self._waiting[0].stored)
            if batch and events + size > self.max_events:
                break
            batch.append(self._waiting.popleft())
            events += size
        return batch

    def _store(self, batch: list[_Save]) -> None:
        try:
            placed = self._insert(batch)
        except ServiceUnavailableError as error:
            # the store, not one save's rows: each save stored alone would wait as long again
            for save in batch:
                save.error, save.done = error, True
            return
        except Exception as error:
            if len(batch) == 1:
                batch[0].error, batch[0].done = error, True
                return
            # one save's rows broke the batch: each alone, so only that one fails
            for save in batch:
                self._store([save])
            return
        for save, positions in zip(batch, placed, strict=True):
            if positions is None:
                save.error = RaceLost("the save conflicts with events stored since it was decided")
            save.positions, save.done = positions, True

    def _insert(self, batch: list[_Save]) -> list[list[int] | None]:
        """The store's insert call for ``batch``, counted with its time (``BatchFigures``) however it ends."""
        began = time.perf_counter()
        try:
            return self._batches.insert_groups([save.stored for save in batch])
        finally:
            self.figures.count(len(batch), time.perf_counter() - began)

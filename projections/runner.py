"""The projection runner: follows the notification log into the view store.

``ProjectionWorker.run`` first becomes the one active worker (PostgreSQL
advisory lock / SQLite file lock; standbys retry every half second), prepares
the tables (adding columns for fields the catalog gained; rebuilding when a
dropped field is declared again, its values being in the log), then loops: read up
to ``batch_size`` record events after the tracked position with
``select_notifications``, fold them into row changes, and commit the rows and
the new position in one transaction whose first statement is the fenced
position update, so a batch is applied exactly once or not at all. When the
log is drained it waits for news (LISTEN on PostgreSQL, a short poll on SQLite).

Reading and folding the next batch happens in a helper thread while the current
batch is written, so the database's work and Python's overlap.

``rebuild`` replays the whole log into fresh tables and swaps them in within
one transaction, after catching up to the live position under its lock, so
readers see the old view or the new one, never half of one.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from eventsourcing.persistence import Notification

from domain.catalog import Catalog
from projections.errors import PositionMovedError, ProjectionBusyError
from projections.rows import RECORD_TOPICS, RowChange, fold
from projections.schema import DEFAULT_PROJECTION
from projections.store import Cursor, ViewStore

Changes = Mapping[str, Mapping[str, RowChange]]
Folded = tuple[int, Changes]
"""A batch read and folded: (its last position, row changes per model and record)."""

class LogRecorder(Protocol):
    """What the worker needs of Writ's application recorder (``infrastructure.persistence``)."""

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]: ...

    def max_notification_id(self) -> int | None: ...

    def count_after(self, position: int, topics: Sequence[str]) -> int: ...


Progress = Callable[[int, int], None]
"""Called with (position reached, head of the log) after each rebuild batch."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    events_behind: int
    seconds_behind: float
    updated_at: str | None
    worker: str | None


DEFAULT_BATCH_SIZE = 10_000
"""Events per transaction at most: big enough to amortize commits during catch-up (live batches are small)."""


class ProjectionWorker:
    """Keeps the current-rows views of one catalog up to date from the log."""

    standby_interval = 0.5
    wake_interval = 1.0  # a safety net only: NOTIFY (PostgreSQL) or the short poll (SQLite) wakes us first

    def __init__(self, catalog: Catalog, recorder: LogRecorder, store: ViewStore, *,
                 name: str = DEFAULT_PROJECTION, batch_size: int = DEFAULT_BATCH_SIZE,
                 log: Callable[[str], None] | None = None, on_close: Callable[[], None] | None = None) -> None:
        self.catalog, self.recorder, self.store, self.name = catalog, recorder, store, name
        self.batch_size = batch_size
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._log = log or (lambda _: None)
        self._on_close = on_close

    # -- following the log ----------------------------------------------------

    def run(self, stop: threading.Event | None = None, *, until_caught_up: bool = False) -> None:
        """Follow the log as the one active worker until ``stop`` is set (or, optionally, caught up)."""
        stop = stop or threading.Event()
        announced_standby = False
        while not stop.is_set():
            try:
                if not self.store.try_lock(self.name):
                    if not announced_standby:
                        self._log(f"standby: another worker is active for {self.name}")
                        announced_standby = True
                    stop.wait(self.standby_interval)
                    continue
                try:
                    self.activate(stop)
                    self.follow(stop, until_caught_up=until_caught_up)
                finally:
                    self.store.release_lock(self.name)
                return
            except self.store.transient as exc:
                self._log(f"database unavailable ({exc}); reconnecting")
                self.store.close()
                stop.wait(1.0)

    def activate(self, stop: threading.Event | None = None) -> None:
        """Prepare tables and tracking, claim the projection, subscribe to news; rebuild first when
        a dropped field is declared again (until a rebuild has swapped in, every start asks again)."""
        self.store.start_listening()
        with self.store.transaction() as cursor:
            stale = self.store.prepare(cursor)
            self.store.ensure_tracking(cursor, self.name)
        self.store.claim(self.name, self.worker_id)
        if stale:
            self._log(f"{', '.join(stale)}: a field dropped earlier is declared again; rebuilding from the log")
            try:
                self.rebuild(stop=stop)
            except ProjectionBusyError:
                self._log("another process is rebuilding; following the log meanwhile")
        self._log(f"active: {self.name} as {self.worker_id} from position {self.position()}")

    def follow(self, stop: threading.Event, *, until_caught_up: bool = False) -> None:
        """Apply batches as they come, from the tracked position."""
        self.stream(self.position(), stop, until_caught_up=until_caught_up)

    def stream(self, position: int, stop: threading.Event, *, until_caught_up: bool = False,
               name: str | None = None, shadow: bool = False,
               progress: Callable[[int], None] | None = None) -> int:
        """Apply batches after ``position`` until ``stop`` (or caught up); return the position reached.

        The next batch is read and folded in a helper thread while this one is written.
        """
        with ThreadPoolExecutor(1, thread_name_prefix="writ-projection-read") as reader:
            upcoming = reader.submit(self.read_folded, position)
            while not stop.is_set():
                folded = upcoming.result()
                if folded is None:
                    if until_caught_up:
                        break
                    self.store.wait_for_events(self.wake_interval)
                    upcoming = reader.submit(self.read_folded, position)
                    continue
                target, changes = folded
                upcoming = reader.submit(self.read_folded, target)
                reached = self.project_folded(changes, position, target, name=name, shadow=shadow)
                if reached != target:  # someone else moved the position: re-read from where it is
                    upcoming.result()
                    upcoming = reader.submit(self.read_folded, reached)
                position = reached
                if progress is not None:
                    progress(position)
        return position

    def read(self, position: int, limit: int | None = None) -> Sequence[Notification]:
        return self.recorder.select_notifications(position + 1, limit or self.batch_size, topics=RECORD_TOPICS)

    def read_folded(self, position: int) -> Folded | None:
        """The next batch after ``position``, folded into row changes; None when there is none."""
        batch = self.read(position)
        return (batch[-1].id, fold(batch, self.catalog)) if batch else None

    def project_folded(self, changes: Changes, position: int, target: int, *, name: str | None = None,
                       shadow: bool = False) -> int:
        """Apply folded changes and advance from ``position`` to ``target`` in one transaction."""
        name = name or self.name
        try:
            with self.store.transaction() as cursor:
                return self._apply(cursor, changes, name, position, target, shadow=shadow)
        except PositionMovedError:
            self._log(f"{name} was moved by someone else; reloading its position")
            return self.position(name)

    def _apply(self, cursor: Cursor, changes: Changes, name: str, position: int, target: int, *,
               shadow: bool) -> int:
        self.store.advance(cursor, name, position, target)  # first: the fence, and the lock order
        self.store.apply(cursor, changes, shadow=shadow)
        self.store.announce(cursor, name, target)
        return target

    def position(self, name: str | None = None) -> int:
        with self.store.reading() as cursor:
            return self.store.position(cursor, name or self.name)

    # -- rebuild --------------------------------------------------------------

    def rebuild(self, progress: Progress | None = None, *, stop: threading.Event | None = None) -> int:
        """Replay the log into fresh tables, then swap them in atomically; return the live position.

        The live worker may keep running meanwhile; a second rebuild of the same projection is
        refused with ``PROJECTION_BUSY`` (the two would reset each other's progress). When ``stop``
        is set first, the rebuild ends without a swap and the live views stay as they were."""
        lock = f"{self.name}:rebuild"
        if not self.store.try_lock(lock):
            raise ProjectionBusyError(f"Another process is rebuilding {self.name}")
        try:
            return self._rebuild(progress, stop or threading.Event())
        finally:
            self.store.release_lock(lock)

    def _rebuild(self, progress: Progress | None, stop: threading.Event) -> int:
        shadow_name = f"{self.name}:rebuild"
        with self.store.transaction() as cursor:
            self.store.prepare(cursor)
            self.store.ensure_tracking(cursor, self.name)
            self.store.drop_tables(cursor, shadow=True)
            self.store.prepare(cursor, shadow=True)
            self.store.ensure_tracking(cursor, shadow_name, reset=True)
        head = self.recorder.max_notification_id() or 0
        position = self.stream(0, stop, until_caught_up=True, name=shadow_name, shadow=True,
                               progress=None if progress is None else lambda at: progress(at, max(head, at)))
        if stop.is_set():
            self._log(f"rebuild of {self.name} stopped at position {position}, before the swap: views unchanged")
            return self.position()
        with self.store.transaction() as cursor:
            live = self.store.position(cursor, self.name, lock=True)
            while position < live and (batch := self.read(position)):
                position = self._apply(cursor, fold(batch, self.catalog), shadow_name, position, batch[-1].id,
                                       shadow=True)
            self.store.swap(cursor)
            self.store.set_position(cursor, self.name, position)
            self.store.forget(cursor, shadow_name)
            self.store.announce(cursor, self.name, position)
        self._log(f"rebuilt {self.name} at position {position}")
        return position

    # -- status ---------------------------------------------------------------

    def status(self) -> list[ProjectionStatus]:
        """Position, lag in events and in seconds, and the active worker, per tracked projection."""
        head = self.recorder.max_notification_id() or 0
        found = []
        for name, position, updated_at, worker in self.store.tracking():
            behind = self.recorder.count_after(position, RECORD_TOPICS)
            found.append(ProjectionStatus(name, position, head, behind, self._seconds_behind(position, behind),
                                          updated_at, worker))
        return found

    def _seconds_behind(self, position: int, behind: int) -> float:
        waiting = self.read(position, limit=1) if behind else ()
        if not waiting:
            return 0.0
        state: dict[str, Any] = orjson.loads(waiting[0].state)
        since = datetime.fromisoformat(state["timestamp"])
        return max(0.0, (datetime.now(UTC) - since).total_seconds())

    def close(self) -> None:
        self.store.close()
        if self._on_close is not None:
            self._on_close()

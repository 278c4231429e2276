"""The projection runner: follows the notification log into the view store.

``ProjectionWorker.run`` first becomes the one active worker (the backend's
worker lock; standbys retry every half second) and claims the projection's
position row, which bumps its epoch and fences off any earlier holder. Views
left from another log (``infrastructure.log_identity``) are dropped there and
projected again from the new log's first event. It prepares the tables
(``projections.migrations``; rebuilding when a dropped field is declared
again, its values being in the log), then loops: read up to
``batch_size`` record events after the position, decode them through the
application's mapper, fold them into row changes, and commit the rows and the
new position in one transaction whose first statement is the fenced position
update, so a batch is applied exactly once or not at all. When the log is
drained it waits on the log's wake-up (LISTEN on PostgreSQL, a short poll on
SQLite). Reading and folding the next batch happens in a helper thread while
the current one is written; the cyclic collector is paused meanwhile (a
batch's objects all live until it is written, and it makes no cycles to free:
the collector's passes over them were half the cost of a catch-up).

A batch that fails for any reason but a lost connection is split in halves
until the one event that fails alone is found; the events before it are
committed, and the worker halts there with the reason (``--status``) until an
operator sets that event aside (``writ project --set-aside``); nothing after
it is lost. ``rebuild`` replays the log into fresh tables and swaps them in
within one transaction, so readers see the old view or the new one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification

from application import collector
from domain.catalog import Catalog
from domain.errors import WritError
from infrastructure.database import Tx
from infrastructure.erasures import IdleWait
from infrastructure.locks import holder_label
from infrastructure.log import EventLog
from infrastructure.positions import TABLE as POSITIONS_TABLE
from infrastructure.positions import FencedError, Position
from projections.approvals import ApprovalRows
from projections.current_rows import CurrentRows
from projections.decisions import DecisionRows
from projections.errors import ProjectionBusyError, ProjectionHaltedError
from projections.read_model import ReadModel
from projections.schema import DEFAULT_PROJECTION, LEGACY_TRACKING_TABLE
from projections.store import POSITIONS_CHANNEL, ViewStore

Changes = list[tuple[ReadModel, Any]]
"""A batch folded: what each read model writes."""
Progress = Callable[[int, int], None]
"""Called with (position reached, head of the log) after each rebuild batch."""

DEFAULT_BATCH_SIZE = 10_000
"""Events per transaction at most: big enough to amortize commits during catch-up (live batches are small)."""


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    events_behind: int
    seconds_behind: float | None
    """Since the first event not projected was written; None when that event cannot be read (a worker halts
    there: ``halted_reason`` says why)."""
    updated_at: str | None
    worker: str | None
    halted_at: int | None = None
    halted_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Folded:
    """A batch read and folded (``changes``), or the batch whose folding failed (``error``)."""

    batch: Sequence[Notification]
    changes: Changes | None = None
    error: Exception | None = None

    @property
    def last(self) -> int:
        return self.batch[-1].id


class PoisonEventError(Exception):
    """One event the projection cannot apply (internal: the worker halts at it)."""

    def __init__(self, position: int, reason: str) -> None:
        super().__init__(f"position {position}: {reason}")
        self.position, self.reason = position, reason


class ProjectionWorker:
    """Keeps the current-rows views of one catalog up to date from the log."""

    standby_interval = 0.5
    wake_interval = (
        1.0  # a safety net only: NOTIFY (PostgreSQL) or the short poll (SQLite) wakes us first
    )
    halt_check_interval = 1.0
    erasure_check_interval = 5.0
    """How often, while it waits for events, the worker finishes the erasures purges left pending."""

    def __init__(
        self,
        catalog: Catalog,
        log: EventLog,
        store: ViewStore,
        *,
        name: str = DEFAULT_PROJECTION,
        batch_size: int = DEFAULT_BATCH_SIZE,
        log_line: Callable[[str], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.catalog, self.log, self.store, self.name = catalog, log, store, name
        self.models: list[ReadModel] = [
            CurrentRows(store),
            DecisionRows(store),
            ApprovalRows(store),
        ]
        self.topics = self.read_model_topics()
        self.key = f"projection:{name}"
        self.batch_size = batch_size
        self.worker_id = holder_label()
        self.epoch = 0
        self.set_aside: frozenset[int] = frozenset()
        self._say = log_line or (lambda _: None)

    @staticmethod
    def read_model_topics() -> tuple[str, ...]:
        """Every topic the read models follow (what "caught up" is measured against)."""
        return tuple(
            sorted(set().union(CurrentRows.topics, DecisionRows.topics, ApprovalRows.topics))
        )

    # -- following the log ----------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        until_caught_up: bool = False,
        give_way: bool = False,
    ) -> None:
        """Follow the log as the one active worker until ``stop`` is set (or, optionally, caught up);
        ``give_way``: return at once when another worker is active (it is projecting already)."""
        stop = stop or threading.Event()
        lock = self.store.backend.worker_lock(self.key)
        announced_standby = False
        while not stop.is_set():
            try:
                if not lock.try_acquire():
                    if give_way:
                        return
                    if not announced_standby:
                        self._say(f"standby: another worker is active for {self.name}")
                        announced_standby = True
                    stop.wait(self.standby_interval)
                    continue
                try:
                    self.activate(stop)
                    self.follow(stop, until_caught_up=until_caught_up)
                finally:
                    lock.release()
                return
            except FencedError as exc:
                self._say(f"another worker took over ({exc}); standing by")
            except self.store.backend.transient as exc:
                self._say(f"database unavailable ({exc}); reconnecting")
                self.store.database.close()
                stop.wait(1.0)

    def activate(self, stop: threading.Event | None = None) -> None:
        """Prepare tables, claim the projection (fencing earlier holders), rebuild first when a dropped
        field is declared again (until a rebuild has swapped in, every start asks again)."""
        with self.store.backend.table_creation(), self.store.transaction() as tx:
            self.store.positions.create(tx)
            self.store.positions.ensure(tx, self.key)
            self.store.positions.adopt(tx, self.key, LEGACY_TRACKING_TABLE, "name", self.name)
            self._restart_if_another_log(tx)
            stale = self._prepare(tx, position=self.store.positions.read(tx, self.key).position)
            self.epoch = self.store.positions.claim(tx, self.key, self.worker_id)
            self.set_aside = frozenset(self.store.positions.set_asides(tx, self.key))
        if stale:
            self._say(
                f"{', '.join(stale)}: a field dropped earlier is declared again, or a read model is new; "
                "rebuilding from the log"
            )
            try:
                self.rebuild(stop=stop)
            except ProjectionBusyError:
                self._say("another process is rebuilding; following the log meanwhile")
        self._say(f"active: {self.name} as {self.worker_id} from position {self.position()}")

    def _restart_if_another_log(self, tx: Tx) -> None:
        """Views projected from another log (the event store was made afresh under them) are dropped, and the
        projection starts again from this log's first event, in the activating transaction."""
        identity = self.log.identity()
        changed = self.store.positions.log_changed(tx, self.key, identity, self.log.head())
        if changed is None:
            return
        self._say(
            f"the views are not this log's ({changed}): projecting them again from its first event"
        )
        for model in self.models:
            model.drop(tx, shadow=False)
        self.store.positions.restart(tx, self.key, identity)

    def follow(self, stop: threading.Event, *, until_caught_up: bool = False) -> None:
        """Apply batches as they come, from the stored position; halt at an event that cannot be applied."""
        wakeup = self.log.wakeup()
        try:
            while not stop.is_set():
                try:
                    self.stream(
                        self.position(),
                        stop,
                        until_caught_up=until_caught_up,
                        wake=IdleWait(
                            wakeup, self.store.backend, self.erasure_check_interval, self._say
                        ),
                    )
                    return
                except PoisonEventError as poison:
                    self._halt(poison, stop, until_caught_up=until_caught_up)
        finally:
            wakeup.close()

    def stream(
        self,
        position: int,
        stop: threading.Event,
        *,
        until_caught_up: bool = False,
        key: str | None = None,
        shadow: bool = False,
        progress: Callable[[int], None] | None = None,
        wake: Callable[[float], None] | None = None,
    ) -> int:
        """Apply batches after ``position`` until ``stop`` (or caught up); return the position reached.
        The next batch is read and folded in a helper thread while this one is written."""
        with ThreadPoolExecutor(1, thread_name_prefix="writ-projection-read") as reader:
            upcoming = reader.submit(self.read_folded, position)
            while not stop.is_set():
                folded = upcoming.result()
                if folded is None:
                    if until_caught_up:
                        break
                    if wake is None:
                        raise ValueError("stream needs a wake-up to follow the log past its end")
                    wake(self.wake_interval)
                    upcoming = reader.submit(self.read_folded, position)
                    continue
                upcoming = reader.submit(self.read_folded, folded.last)
                with collector.paused():
                    reached = self._apply_folded(folded, position, key=key, shadow=shadow)
                # someone else moved the position, or it was split: re-read
                if reached != folded.last:
                    upcoming.result()
                    upcoming = reader.submit(self.read_folded, reached)
                position = reached
                if progress is not None:
                    progress(position)
        return position

    def read(self, position: int, limit: int | None = None) -> Sequence[Notification]:
        """The next batch after ``position``, events set aside included: ``fold`` skips them, and the position
        still moves past them (a batch of them alone, or one at the log's end, would hold it back for good)."""
        return self.log.read(position, limit or self.batch_size, self.topics)

    def read_folded(self, position: int) -> Folded | None:
        """The next batch after ``position``, folded into row changes; None when there is none."""
        # a batch's objects live until it is written: nothing for the collector to free
        with collector.paused():
            batch = self.read(position)
            if not batch:
                return None
            try:
                return Folded(batch, self.fold(batch))
            except Exception as exc:
                # one event of it cannot be read: found and halted at by _apply_folded
                return Folded(batch, error=exc)

    def fold(self, batch: Sequence[Notification]) -> Changes:
        """What each read model writes for ``batch`` (the events an operator set aside skipped)."""
        if self.set_aside:
            batch = [n for n in batch if n.id not in self.set_aside]
        # read now, so no key another process destroyed is used; not cached
        keys = self.log.keys(batch)
        decoded = [(n, self.log.decode(n, keys=keys)) for n in batch]
        return [
            (
                model,
                model.fold(
                    [
                        (n, self.log.decode(n, sealed=True)) if model.keeps_sealed else (n, state)
                        for n, state in decoded
                        if n.topic in model.topics
                    ]
                ),
            )
            for model in self.models
        ]

    def _prepare(self, tx: Tx, *, shadow: bool = False, position: int = 0) -> list[str]:
        return [
            stale
            for model in self.models
            for stale in model.prepare(tx, shadow=shadow, position=position)
        ]

    def _apply_folded(self, folded: Folded, position: int, *, key: str | None, shadow: bool) -> int:
        key = key or self.key
        try:
            if folded.error is not None:
                raise folded.error
            assert folded.changes is not None
            with self.store.transaction() as tx:
                reached = self._apply(tx, folded.changes, key, position, folded.last, shadow=shadow)
            self._shred(folded.changes, shadow=shadow)
            return reached
        except FencedError:
            if key != self.key or shadow:
                raise
            with self.store.reading() as tx:
                # claimed by another worker: FencedError again, to stand by (``run``), never chase its position
                current = self._still_ours(tx)
            self._say(f"{key} was moved by someone else; reloading its position")
            return current.position
        except self.store.backend.transient:
            raise
        except Exception:
            return self._isolate(folded.batch, position, key=key, shadow=shadow)

    def _isolate(
        self, batch: Sequence[Notification], position: int, *, key: str, shadow: bool
    ) -> int:
        """Apply ``batch`` in halves until the one event that fails alone is found (``PoisonEventError``),
        committing what comes before it; return the position reached."""
        try:
            changes = self.fold(batch)
            with self.store.transaction() as tx:
                reached = self._apply(tx, changes, key, position, batch[-1].id, shadow=shadow)
            self._shred(changes, shadow=shadow)
            return reached
        except FencedError:
            raise
        except self.store.backend.transient:
            raise
        except Exception as exc:
            if len(batch) == 1:
                reason = (
                    exc.reason if isinstance(exc, WritError) else f"{type(exc).__name__}: {exc}"
                )
                raise PoisonEventError(batch[0].id, reason.strip()) from exc
            middle = len(batch) // 2
            position = self._isolate(batch[:middle], position, key=key, shadow=shadow)
            return self._isolate(batch[middle:], position, key=key, shadow=shadow)

    def _apply(
        self, tx: Tx, changes: Changes, key: str, position: int, target: int, *, shadow: bool
    ) -> int:
        epoch = self.epoch if key == self.key else self._shadow_epoch
        # first: the fence, and the lock order
        self.store.positions.advance(tx, key, epoch, position, target)
        for model, folded in changes:
            model.apply(tx, folded, shadow=shadow)
        self.store.backend.notify(tx, POSITIONS_CHANNEL)
        return target

    def _shred(self, changes: Changes, *, shadow: bool) -> None:
        """After a committed batch that purged rows: rewrite their tables, so the old bytes leave the files."""
        tables = [
            table for model, folded in changes for table in model.purged_from(folded, shadow=shadow)
        ]
        if tables:
            self.store.backend.compact(tables, views=True)

    def _halt(
        self, poison: PoisonEventError, stop: threading.Event, *, until_caught_up: bool
    ) -> None:
        self._say(
            f"halted at position {poison.position}: {poison.reason}. Set it aside with "
            f"`writ project --set-aside {poison.position} --reason ...` once you have looked at it"
        )
        with self.store.transaction() as tx:
            self.store.positions.halt(tx, self.key, poison.position, poison.reason)
        if until_caught_up:
            raise ProjectionHaltedError(
                f"Projection {self.name} halted at position {poison.position}: {poison.reason}"
            )
        while not stop.wait(self.halt_check_interval):
            with self.store.reading() as tx:
                self.set_aside = frozenset(self.store.positions.set_asides(tx, self.key))
                self._still_ours(tx)
            if poison.position in self.set_aside:
                self._say(f"position {poison.position} was set aside; resuming")
                return

    def _still_ours(self, tx: Tx) -> Position:
        """The projection's position, claimed under this worker's epoch: ``FencedError`` once another claimed it."""
        current = self.store.positions.read(tx, self.key)
        if current.epoch != self.epoch:
            raise FencedError(f"{self.key} was claimed by {current.holder}")
        return current

    def set_aside_event(self, position: int, reason: str, operator: str) -> None:
        """An operator skips the event at ``position`` (kept in ``writ_set_aside`` with who and why)."""
        with self.store.backend.table_creation(), self.store.transaction() as tx:
            self.store.positions.create(tx)
            self.store.positions.set_aside(tx, self.key, position, reason, operator)

    def position(self, key: str | None = None) -> int:
        with self.store.reading() as tx:
            return self.store.positions.read(tx, key or self.key).position

    # -- rebuild --------------------------------------------------------------

    _shadow_epoch = 0

    def rebuild(
        self, progress: Progress | None = None, *, stop: threading.Event | None = None
    ) -> int:
        """Replay the log into fresh tables, then swap them in atomically; return the live position.

        The live worker may keep running meanwhile; a second rebuild of the same projection is
        refused with ``PROJECTION_BUSY`` (the two would reset each other's progress). When ``stop``
        is set first, the rebuild ends without a swap and the live views stay as they were."""
        lock = self.store.backend.worker_lock(f"{self.key}:rebuild")
        if not lock.try_acquire():
            raise ProjectionBusyError(f"Another process is rebuilding {self.name}")
        try:
            return self._rebuild(progress, stop or threading.Event())
        except PoisonEventError as poison:
            raise ProjectionHaltedError(
                f"The rebuild of {self.name} stopped at position {poison.position}: "
                f"{poison.reason}; set it aside first (writ project --set-aside)"
            ) from None
        finally:
            lock.release()

    def _rebuild(self, progress: Progress | None, stop: threading.Event) -> int:
        shadow_key = f"{self.key}:rebuild"
        with self.store.backend.table_creation(), self.store.transaction() as tx:
            self.store.positions.create(tx)
            self._prepare(tx)
            self.store.positions.ensure(tx, self.key)
            self.set_aside = frozenset(self.store.positions.set_asides(tx, self.key))
            for model in self.models:
                model.drop(tx, shadow=True)
            self._prepare(tx, shadow=True)
            self.store.positions.forget(tx, shadow_key)
            self._shadow_epoch = self.store.positions.claim(tx, shadow_key, self.worker_id)
        head = self.log.head()
        position = self.stream(
            0,
            stop,
            until_caught_up=True,
            key=shadow_key,
            shadow=True,
            progress=None if progress is None else lambda at: progress(at, max(head, at)),
        )
        if stop.is_set():
            self._say(
                f"rebuild of {self.name} stopped at position {position}, before the swap: views unchanged"
            )
            return self.position()
        with self.store.transaction() as tx:
            live = self.store.positions.read(tx, self.key, lock=True).position
            while position < live and (batch := self.read(position)):
                position = self._apply(
                    tx, self.fold(batch), shadow_key, position, batch[-1].id, shadow=True
                )
            for model in self.models:
                model.swap(tx)
            self.store.positions.reset(tx, self.key, position)
            self.store.positions.follow(tx, self.key, self.log.identity())
            self.store.positions.forget(tx, shadow_key)
            self.store.backend.notify(tx, POSITIONS_CHANNEL)
        self._say(f"rebuilt {self.name} at position {position}")
        return position

    # -- status ---------------------------------------------------------------

    def status(self) -> list[ProjectionStatus]:
        """Position, lag in events and in seconds, the active worker and any halt, per projection."""
        head = self.log.head()
        with self.store.reading() as tx:
            # the catalog, not information_schema: a table this role may not read fails, not reads as none
            if not self.store.backend.has_table(tx, POSITIONS_TABLE):
                return []
            rows = [p for p in self.store.positions.all(tx) if p.name.startswith("projection:")]
        found = []
        for row in rows:
            behind = self.log.count_after(row.position, self.topics)
            found.append(
                ProjectionStatus(
                    row.name.removeprefix("projection:"),
                    row.position,
                    head,
                    behind,
                    self._seconds_behind(row.position, behind),
                    row.updated_at,
                    row.holder,
                    row.halted_at,
                    row.halted_reason,
                )
            )
        return found

    def _seconds_behind(self, position: int, behind: int) -> float | None:
        # the first event not set aside (one set aside may be one that cannot be decoded)
        after = self.read(position, limit=1 + len(self.set_aside)) if behind else ()
        waiting = [n for n in after if n.id not in self.set_aside]
        if not waiting:
            return 0.0
        try:
            # the time only: no key needed
            state: dict[str, Any] = self.log.decode(waiting[0], sealed=True)
            since = datetime.fromisoformat(state["timestamp"])
        except Exception:  # the status of a worker halted at this very event must still read
            return None
        return max(0.0, (datetime.now(UTC) - since).total_seconds())

    def close(self) -> None:
        self.store.close()
        self.log.close()

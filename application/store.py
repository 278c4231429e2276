"""The event store Writ saves into: the ``eventsourcing`` application, held by the core, never inherited.

``Store`` is the library's ``Application`` configured for Writ: a save's events are encoded as the recorder
reads them (``application.encoding``), concurrent saves of the process are stored together
(``application.group_commit``), and the snapshots a save makes due are taken from the saved aggregates
themselves. Only ``application.core`` holds one, so nothing ungoverned (the library's ``save``,
``repository``, ``take_snapshot``) is reachable from ``Writ``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate
from eventsourcing.persistence import EventStore, Recording

from application.encoding import EncodingEventStore, MadeOnRead
from application.group_commit import GroupCommit
from application.ports import HistoryReader
from domain.links import Counter, Family
from domain.record import PURGED, Record


class Store(Application[UUID]):
    """Writ's event store: one ``eventsourcing`` application for every aggregate."""

    name = "Writ"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        Record: 20,
        Counter: 100,
        Family: 100,
    }
    """Records every 20 events: a load replays (decrypts and checks the links of) every event past the latest
    snapshot, which a bulk update pays for each of its records; a snapshot costs a row in the same insert as its
    save's other snapshots. Counters and families are read far less often."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        super().__init__(env)
        self.group_commit = self.construct_group_commit()

    def construct_group_commit(self) -> GroupCommit | None:
        """Concurrent saves of this process stored together (``application.group_commit``); None where the
        recorder cannot insert a batch. ``WRIT_GROUP_COMMIT_SAVES`` (64) and ``WRIT_GROUP_COMMIT_EVENTS``
        (1,000) bound a batch; ``WRIT_GROUP_COMMIT_WINDOW_MS`` (0) makes its first save wait for more."""
        recorder: Any = self.recorder
        if not hasattr(recorder, "insert_groups"):
            return None
        return GroupCommit(
            self.mapper,
            recorder,
            max_saves=int(self.env.get("WRIT_GROUP_COMMIT_SAVES", "64")),
            max_events=int(self.env.get("WRIT_GROUP_COMMIT_EVENTS", "1000")),
            window=float(self.env.get("WRIT_GROUP_COMMIT_WINDOW_MS", "0")) / 1000,
        )

    def construct_event_store(self) -> EventStore[UUID]:
        """Saves encode their events as the recorder reads them (``application.encoding``)."""
        return EncodingEventStore(mapper=self.mapper, recorder=self.recorder)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save the aggregates' pending events, in the next group commit, collecting Writ's own aggregates without
        the library's per-object protocol checks (``isinstance`` against runtime-checkable protocols)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        return self._saved(processing)

    def save_made(
        self, events: MadeOnRead[Any, Any], aggregates: Sequence[Aggregate]
    ) -> list[Recording[UUID]]:
        """A save of ``events``, made as the recorder reads them (``application.encoding``), by ``aggregates``:
        stored on its own (a bulk update's), not in a group commit."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events = events  # type: ignore[assignment]  # read as a sequence only
        processing.aggregates.update((aggregate.id, aggregate) for aggregate in aggregates)
        return self._saved(processing)

    def aggregate(self, aggregate_id: UUID) -> Any:
        """An aggregate that is never snapshotted (an idempotency key's claim), its events read at once (the
        recorder's ``read_record``); None when there is none."""
        read = cast(HistoryReader, self.recorder).read_record(aggregate_id)
        stored_events = [] if read.first is None else [read.first, *read.since]
        if read.snapshot is not None:
            # snapshotted after all: what was read skips the events before the snapshot
            stored_events = list(self.recorder.select_events(aggregate_id))
        found: Any = None
        for stored in stored_events:
            event: Any = self.events.mapper.to_domain_event(stored)
            found = event.mutate(found)
        return found

    def close(self) -> None:
        recorder: Any = self.recorder
        if hasattr(recorder, "close"):  # a connection it keeps for saves
            recorder.close()
        super().close()

    def _saved(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        if self.group_commit is None or isinstance(processing.events, MadeOnRead):
            recordings = self._record(processing)
        else:
            recordings = self.group_commit.save(processing.events)
        self._snapshot_saved(processing)
        return recordings

    def _snapshot_saved(self, processing: ProcessingEvent[UUID]) -> None:
        """Snapshots of the aggregates this save carried onto or past a multiple of their interval, taken from
        the saved aggregates themselves (the save succeeded: their state is what was recorded) at the version
        they reached, and put in one insert. The library's way reads each aggregate back from the store and puts
        its snapshot in a transaction of its own. No snapshot of a purged record: its key is gone."""
        if self.snapshots is None or not self.snapshotting_intervals:
            return
        due: dict[UUID, Any] = {}
        # every interval is a multiple of it: a version that is not is a multiple of none (no aggregate looked up)
        step = math.gcd(*self.snapshotting_intervals.values()) or 1
        for event in processing.events:
            if event.originator_version % step:
                continue
            aggregate = processing.aggregates.get(event.originator_id)
            interval = (
                self.snapshotting_intervals.get(type(aggregate)) if aggregate is not None else None
            )
            if (
                interval
                and event.originator_version % interval == 0
                and getattr(aggregate, "state", None) != PURGED
            ):
                due[event.originator_id] = aggregate
        taken = []
        for aggregate in due.values():
            kind = getattr(type(aggregate), "Snapshot", None) or self.snapshot_class
            # the library's Snapshot, for aggregates without a class of their own
            assert kind is not None
            taken.append(kind.take(aggregate))
        if taken:
            self.snapshots.put(taken)

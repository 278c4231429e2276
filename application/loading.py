"""Loading records: the tenant first, then the latest snapshot and the events since, every link checked.

``RecordLoader.load`` reads a record at once (the recorder's ``read_record``:
one view of the tables; on PostgreSQL one statement, one round trip): its
``Created`` event, its latest snapshot (at or before a wanted version) and its
events from the snapshot's own version on. (Three reads through the library's
``get`` took a patch on PostgreSQL 2.40 M instructions, against 1.57 M now:
docs/performance.md.) It stops at the first event when the record belongs to
another tenant or model: the reader reads nothing past it (it finds the tenant
and model asked for in the event's bytes) and tells from its plain fields that
it is another's, so nothing of it is unsealed, nor its key fetched; answering
``NOT_FOUND`` for another tenant's record costs about what an id nobody has
costs. Then it rebuilds the record with ``domain.record.replay``: the snapshot
must digest to the state its event recorded, and every later event must link to
the one before. A snapshot that cannot be used (altered, another record's, a
purged record's, or of a record written before digests existed) is passed over:
the record is replayed from its first event (its events read again in full, when
the read began at that snapshot); if they end before the snapshot's version, the
record's tail is gone: ``CHAIN_BROKEN``. ``events`` streams a record's history
in pages, checked the same way, in bounded memory. ``each`` loads many records (a bulk update's
candidates) ``LOAD_PART`` at a time through the recorder's ``read_histories``
(each part's keys, latest snapshots and the events from each snapshot's version
on, as the database finds them; on PostgreSQL in one round trip, the next part
asked for before this one is handed over), and hands each record over as soon
as it is rebuilt, so the caller decides it while its data is still in the CPU's
cache. A record whose snapshot and events do not fit (a snapshot saved between
the two reads) is loaded on its own. (Reading the next part in a helper thread
instead gained nothing measurable: the reader waits for the interpreter lock
the checking holds.)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import EventStore, StoredEvent

from application.ports import HistoryReader
from domain.chain import Digest, DigestUnavailable
from domain.errors import ChainBrokenError
from domain.record import Record, check_shredded, check_snapshot, is_shredded, replay, step

PAGE = 500
"""Events read per query when a history is streamed."""
LOAD_PART = 2_000
"""Records read per round of queries by ``RecordLoader.each``."""
UNREADABLE = (ChainBrokenError, ValueError, KeyError, TypeError, AttributeError)
"""What decoding an altered snapshot (or another record's, which does not open with this one's key) raises."""
SnapshotUnusable = (ChainBrokenError, DigestUnavailable)
_ORIGINATOR_INT = attrgetter("originator_id.int")


class RecordLoader:
    def __init__(
        self, events: EventStore[UUID], snapshots: EventStore[UUID] | None, digest: Digest
    ) -> None:
        self.events, self.snapshots, self.digest = events, snapshots, digest
        # Writ's recorders read a record at once
        self._reader = cast(HistoryReader, events.recorder)

    def load(
        self,
        record_id: UUID,
        *,
        tenant: str | None = None,
        model: str | None = None,
        version: int | None = None,
    ) -> Record | None:
        """The record (as of ``version``), or None when there is none for this tenant and model."""
        read = self._reader.read_record(record_id, version, tenant=tenant, model=model)
        # another's: nothing of it opened, nor its key fetched
        if read.first is None or read.another:
            return None
        decode = self.events.mapper.to_domain_event
        first = decode(read.first)
        if (
            not isinstance(first, Record.Created)
            or (tenant is not None and first.tenant != tenant)
            or (model is not None and first.model != model)
        ):
            return None
        if read.withheld:
            # the reader could not tell the record is the caller's (laid out otherwise): it is
            read = self._reader.read_record(record_id, version)
        rest = cast(list[Record.Event], [decode(stored) for stored in read.since])
        snapshot = None if read.snapshot is None else self._snapshot(read.snapshot)
        if snapshot is not None:
            since = [e for e in [first, *rest] if e.originator_version >= snapshot.version]
            resumed = self._resumed(snapshot, since)
            if resumed is not None:
                return resumed
        if read.snapshot is not None:
            # of no use: the record is replayed from its first event, every event read when the read began
            # at the snapshot
            if read.snapshot.originator_version > 2:
                rest = self._events(record_id, gt=1, lte=version)
            reached = rest[-1].originator_version if rest else 1
            if reached < read.snapshot.originator_version:
                raise ChainBrokenError(  # the snapshot's row says the record reached its version
                    f"{first.model} {record_id}: its snapshot at version "
                    f"{read.snapshot.originator_version} has no event at that version",
                    record_id=str(record_id),
                    version=read.snapshot.originator_version,
                )
        return replay(None, [first, *rest], self.digest)

    def _resumed(self, snapshot: Record | None, since: list[Any]) -> Record | None:
        """The record from its snapshot and the events from the snapshot's version on; None when the snapshot
        is of no use (not true to its event, written before digests, or purged as it was read): the caller
        replays the record from its first event. No event at its version: ``CHAIN_BROKEN``."""
        if snapshot is None:  # its content does not make a record
            return None
        if not since:
            check_snapshot(snapshot, None, self.digest)  # raises: the snapshot's own event is gone
        try:
            check_snapshot(snapshot, since[0], self.digest)
        except SnapshotUnusable:
            return None
        try:
            return replay(snapshot, since[1:], self.digest)
        except DigestUnavailable:  # purged as it was read
            return None

    def load_many(
        self, record_ids: Sequence[UUID], *, tenant: str, model: str
    ) -> dict[UUID, Record]:
        """``each`` as a dict by id."""
        return {record.id: record for record in self.each(record_ids, tenant=tenant, model=model)}

    def each(self, record_ids: Sequence[UUID], *, tenant: str, model: str) -> Iterator[Record]:
        """Many records, each checked link by link and yielded as soon as it is rebuilt (a caller that works on
        it right away finds its data still in the CPU's cache), by id within each ``LOAD_PART`` of
        ``record_ids``. Each part is read with its keys, latest snapshots and the events since (the recorder
        may read the next part meanwhile). Records of another tenant or model, or none at all, are left out."""
        parts = (
            record_ids[start : start + LOAD_PART] for start in range(0, len(record_ids), LOAD_PART)
        )
        for snapshots, stored_events in self._reader.read_histories(parts):
            for rid, snapshot, events in self._histories(snapshots, stored_events):
                record = self._rebuilt(rid, snapshot, events)
                if record is not None and record.tenant == tenant and record.model == model:
                    yield record

    def _histories(
        self, stored_snapshots: list[StoredEvent], stored_events: list[StoredEvent]
    ) -> Iterator[tuple[UUID, Any, list[Any]]]:
        """(id, latest snapshot, events since) of each record, its events decoded when it comes up."""
        decode = self.events.mapper.to_domain_event
        stored_ids: dict[int, Any] = {_ORIGINATOR_INT(s): s.originator_id for s in stored_snapshots}
        # by UUID.int (hashing and comparing a UUID are Python calls); a snapshot that does not decode: none
        snapshots = {
            s.originator_id.int: s for s in map(self._decoded, stored_snapshots) if s is not None
        }
        for number, stored in groupby(stored_events, key=_ORIGINATOR_INT):
            events = list(map(decode, stored))
            stored_ids.pop(number, None)
            yield events[0].originator_id, snapshots.get(number), events
        for number, record_id in stored_ids.items():
            # a snapshot (good or bad) and no events from its version on: the snapshot's own event is gone
            yield record_id, snapshots.get(number), []

    def _rebuilt(self, record_id: UUID, snapshot: Any, events: list[Any]) -> Record | None:
        """The record from its latest snapshot (or first event) and the events since; one ``load`` when they
        do not fit (a snapshot taken between the two reads, none since a snapshot) or the snapshot cannot be
        used (a purged record's, one written before digests)."""
        if not events:
            return self.load(record_id)  # it says what is left: the tail under the snapshot is gone
        first = events[0]
        if snapshot is None and first.originator_version == 1:
            return replay(None, events, self.digest)
        if (
            snapshot is not None
            and first.originator_version == snapshot.originator_version
            and not is_shredded(snapshot)
        ):
            resumed = self._resumed(self._mutated(snapshot), events)
            if resumed is not None:
                return resumed
        return self.load(record_id)

    @staticmethod
    def _mutated(snapshot: Any) -> Record | None:
        """The record a decoded snapshot holds, or None when its content does not make one."""
        try:
            record = snapshot.mutate(None)
        except UNREADABLE:
            return None
        return record if isinstance(record, Record) else None

    def _decoded(self, stored: StoredEvent) -> Any:
        """A stored snapshot decoded, or None when it cannot be (altered, or another record's)."""
        try:
            return self.events.mapper.to_domain_event(stored)
        except UNREADABLE:
            return None

    def history(
        self, record_id: UUID, start: Record | None = None
    ) -> Iterator[tuple[Record.Event, Record]]:
        """Every event of the record with the record as it left it (one object, advanced in place: read it
        before taking the next), checked link by link, a page at a time; after ``start`` (the record as
        ``load`` rebuilt it at some version) when given, so a later page costs no replay from the first event."""
        record: Record | None = start
        after, shredded = (0 if start is None else start.version), False
        while True:
            page = self._events(record_id, gt=after, limit=PAGE)
            for event in page:
                record = step(record, event, self.digest)
                shredded = shredded or is_shredded(event)
                yield event, record
            if len(page) < PAGE:
                if shredded and record is not None:
                    check_shredded(record)
                return
            after = page[-1].originator_version

    def _events(self, record_id: UUID, **selection: Any) -> list[Record.Event]:
        return cast(list[Record.Event], list(self.events.get(record_id, **selection)))

    def _snapshot(self, stored: StoredEvent) -> Record | None:
        """The record a stored snapshot holds, or None: it does not decode (altered, or another record's: the
        events are replayed instead), or it is a purged record's (nothing to start from)."""
        if self.snapshots is None:
            return None
        try:
            found: Any = self.snapshots.mapper.to_domain_event(stored)
        except UNREADABLE:
            return None
        if is_shredded(found):
            return None
        return self._mutated(found)

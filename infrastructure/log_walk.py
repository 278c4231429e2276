"""One stretch of the log, walked for ``writ verify``: every event and save in it checked.

``infrastructure.verification`` cuts the log at save boundaries into ranges and
walks each here, in worker processes when the log is long (each reads its own
range, so the reading is shared out too) or in this process when it is short.
A range is checked as one walk over the whole log would check it: a record's
state before the range (its last record event at or before the range's start,
as that walk would have left it) is read from the database before the walk of
the range (``LogQueries.states_before``), so no state crosses between
processes. What does cross, to ``infrastructure.walk_merge``: the
findings and counts, each save's digest (for the log chain), the records met
(to count them) and each decision id's first and last save in the range (a
decision id met again in a save that does not follow the last one it was in is
used twice).

Per save: its events' digest chained on the stored previous chain must give
the stored chain (else the manifest names what changed), the manifest must
list each of its events, and its tag must check under the writer key
(``infrastructure.writer_keys``). Per record event: ``infrastructure.
record_checks``. Per aggregate's first event: its data key
(``infrastructure.key_checks``).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.record import EVENT_TOPICS
from infrastructure.database import column_uuid
from infrastructure.key_checks import FIRST_SEALED, MARKER
from infrastructure.log_chain import CHAIN, MANIFEST, next_chain
from infrastructure.record_checks import RECORD_EVENTS, RecordChains, end_of
from infrastructure.sql import SQL, P
from infrastructure.verify_report import Finding
from infrastructure.writer_keys import WriterKeys

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.master_keys import MasterKeys

BATCH = 5000
SAVES = 500
"""Chain rows read per window (a save holds up to the ``rows`` limit of events; events are streamed)."""


@dataclass(frozen=True)
class Plan:
    """What every range's walk is told about the whole log."""

    first_saved: int | None
    """The first position the first save covers: an event before it that no save lists was written before the
    manifest existed (unattested); one after it, never by Writ (inserted). None: no save at all."""
    first_tagged: int | None
    """The last position of the first tagged save: an untagged save after it was not made by Writ."""
    writer_keys: WriterKeys | None
    """None: the tags cannot be checked here."""
    masters: MasterKeys | None
    """None: the data keys cannot be unwrapped here."""


@dataclass(frozen=True)
class Span:
    """A range of the log: positions after ``after`` up to ``until`` (a save's last; None: a log never chained)."""

    index: int
    after: int
    until: int | None
    previous_chain: bytes
    """The stored chain of the save just before the range."""


@dataclass
class Walked:
    """What one range's walk found and what the merge needs."""

    index: int
    findings: list[Finding] = field(default_factory=list)
    events: int = 0
    saves: int = 0
    unattested: int = 0
    authenticated: int = 0
    untagged: int = 0
    digests: list[tuple[int, bytes]] = field(default_factory=list)
    """Each save's (last position, digest of its events as found), in order."""
    records: list[int] = field(default_factory=list)
    """The records met (``UUID.int``)."""
    sealing: list[int] = field(default_factory=list)
    """The aggregates whose first event, met here, seals data (``UUID.int``): each must have a data key."""
    decisions: dict[str, tuple[int, int, int, int, int]] = field(default_factory=dict)
    """Each decision id's first and last save in the range (their index in it), and its first event's record,
    version and position (``infrastructure.record_checks``): plain ints, to travel back cheaply."""


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while verifying: the walk keeps a state per record and reads a few
    objects per event and key, which the collector would trace again and again (a tenth of the time; what is
    made forms no cycles worth collecting before the end)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class RangeWalk:
    """The walk of one range (``log``: an ``EventLog``; ``database``: Writ's tables)."""

    def __init__(self, backend: Backend, log: Any, database: Any, plan: Plan, span: Span) -> None:
        self.backend, self.log, self.database, self.plan, self.span = (
            backend,
            log,
            database,
            plan,
            span,
        )
        self.chain_table, self.manifest_table = backend.table(CHAIN), backend.table(MANIFEST)
        self.walked = Walked(span.index)
        self.records = RecordChains(self.walked.findings, self.walked.decisions)
        self._previous = span.previous_chain

    def run(self) -> Walked:
        after = self.span.after
        with collector_paused():
            self._states_before()
            for saves in self._windows():
                until = int(saves[-1][0]) if saves else self.span.until
                self._window(saves, after, until)
                after = until if until is not None else after
        self.walked.records = list(self.records.ends)
        return self.walked

    # -- reading --------------------------------------------------------------------

    def _windows(self) -> Iterator[list[tuple[Any, ...]]]:
        """The range's chain rows, ``SAVES`` at a time (a log never chained: one window, no rows)."""
        if self.span.until is None:
            yield []
            return
        after = self.span.after
        while after < self.span.until:
            with self.database.reading() as tx:
                saves = tx.query(
                    SQL(
                        "SELECT last, first, count, chain, mac, writer_key FROM {} WHERE last > {} AND "
                        "last <= {} ORDER BY last LIMIT {}"
                    ).format(self.chain_table, P, P, P),
                    [after, self.span.until, SAVES],
                )
            if not saves:
                return
            yield saves
            after = int(saves[-1][0])

    def _batches(
        self, after: int, until: int | None
    ) -> Iterator[list[tuple[int, UUID, int, str, bytes]]]:
        """The rows after ``after`` up to ``until``, ``BATCH`` at a time: a helper thread reads the next batch
        while this one is checked (the database's time and the checking's overlap; psycopg lets go of the
        interpreter while it waits)."""
        with ThreadPoolExecutor(1, thread_name_prefix="writ-verify-read") as reader:
            upcoming = reader.submit(self.log.rows, after, until, BATCH)
            while True:
                batch = upcoming.result()
                full = len(batch) == BATCH  # else the last page, or one cut at ``until``
                if full:
                    upcoming = reader.submit(self.log.rows, batch[-1][0], until, BATCH)
                yield batch
                if not full:
                    return

    def _states_before(self) -> None:
        """Each record's state before the range, where it has events on both sides of its start: from its last
        record event at or before the start (one query for the range, the database joining the two sides)."""
        if self.span.after and self.span.until is not None:
            for originator, version, state in self.log.recorder.states_before(
                self.span.after, self.span.until, EVENT_TOPICS
            ):
                self.records.ends[column_uuid(originator).int] = end_of(int(version), bytes(state))

    def _listed(self, after: int, until: int) -> set[int]:
        """The positions the manifest lists in the window."""
        with self.database.reading() as tx:
            rows = tx.query(
                SQL("SELECT position FROM {} WHERE position > {} AND position <= {}").format(
                    self.manifest_table, P, P
                ),
                [after, until],
            )
        return {int(row[0]) for row in rows}

    # -- a window of saves ------------------------------------------------------------

    def _window(self, saves: list[tuple[Any, ...]], after: int, until: int | None) -> None:
        """Every event after ``after`` up to ``until``, each in its save (or in none), in position order."""
        listed = self._listed(after, until) if saves and until is not None else set()
        at, held, count, events = 0, list[tuple[int, UUID, int, bytes]](), len(saves), 0
        first, last = (int(saves[0][1]), int(saves[0][0])) if saves else (0, -1)
        sha256, record_events, record, sealing = (
            hashlib.sha256,
            RECORD_EVENTS,
            self.records.event,
            self.walked.sealing,
        )
        for batch in self._batches(after, until):
            for position, originator, version, topic, state in batch:
                while position > last and at < count:
                    self._save(saves[at], held, listed)
                    at, held = at + 1, []
                    first, last = (int(saves[at][1]), int(saves[at][0])) if at < count else (0, -1)
                hashed = sha256(state).digest()
                events += 1
                if position >= first and at < count:
                    held.append((position, originator, version, hashed))
                    save = self.walked.saves
                else:
                    self._uncovered(position, originator, version)
                    save = None
                if topic in record_events:
                    record(position, originator, version, topic, state, save)
                if version == 1 and topic in FIRST_SEALED and MARKER in state:
                    sealing.append(originator.int)
        self.walked.events += events
        for row in saves[at:]:
            self._save(row, held, listed)
            held = []
        for position in sorted(listed):  # listed, yet no save holds an event there
            self.walked.findings.append(
                Finding(
                    "manifest",
                    f"the manifest lists position {position}, where no "
                    "save holds an event: the manifest was edited",
                    position=position,
                )
            )

    def _uncovered(self, position: int, originator: UUID, version: int) -> None:
        first = self.plan.first_saved
        if first is None or position < first:
            self.walked.unattested += 1
        else:
            self.walked.findings.append(
                Finding(
                    "inserted",
                    f"{originator} version {version} at position {position} "
                    "was never written by Writ",
                    str(originator),
                    version,
                    position,
                )
            )

    def _save(
        self, save: tuple[Any, ...], held: list[tuple[int, UUID, int, bytes]], listed: set[int]
    ) -> None:
        """One save's events against its chain row (chained on the stored previous one, so one bad save does not
        make every later one look bad): where they differ, its manifest names what changed; where they agree,
        the manifest must list each event and the tag must check."""
        last, first, stored = int(save[0]), int(save[1]), bytes(save[3])
        walked = self.walked
        walked.saves += 1
        entries = [
            originator.bytes + version.to_bytes(8, "big", signed=True) + hashed
            for _, originator, version, hashed in held
        ]
        digest = hashlib.sha256(
            b"".join(
                position.to_bytes(8, "big", signed=True) + entry  # log_chain.save_digest
                for (position, _, _, _), entry in zip(held, entries, strict=True)
            )
        ).digest()
        walked.digests.append((last, digest))
        previous, self._previous = self._previous, stored
        if next_chain(previous, digest) != stored:
            listed.difference_update(range(first, last + 1))
            self._compare(first, last, held)
            return
        for position, originator, version, _ in held:
            if position in listed:
                listed.discard(position)
            else:
                walked.findings.append(
                    Finding(
                        "manifest",
                        f"{originator} version {version} (position {position}) is "
                        "missing from the manifest: the manifest was edited",
                        str(originator),
                        version,
                        position,
                    )
                )
        self._tag(save, held, entries)

    def _tag(
        self, save: tuple[Any, ...], held: list[tuple[int, UUID, int, bytes]], entries: list[bytes]
    ) -> None:
        mac, key, keys = save[4], save[5], self.plan.writer_keys
        if mac is None:
            first_tagged = self.plan.first_tagged
            if first_tagged is None or int(save[0]) < first_tagged:
                self.walked.untagged += 1
                return
            why = (
                "is in a save with no tag, made after saves began to be tagged: not written by Writ"
            )
        elif keys is None:
            return  # not checked here: the report notes it
        else:
            valid = keys.check(str(key), bytes(mac), entries)
            if valid:
                self.walked.authenticated += 1
                return
            why = (
                "is in a save tagged with writer key {key}, which is not configured here"
                if valid is None
                else "is not covered by a valid tag: written without the writer key"
            ).format(key=key)
        self.walked.findings.extend(
            Finding(
                "unauthenticated",
                f"{originator} version {version} (position {position}) {why}",
                str(originator),
                version,
                position,
            )
            for position, originator, version, _ in held
        )

    def _compare(self, first: int, last: int, held: list[tuple[int, UUID, int, bytes]]) -> None:
        with self.database.reading() as tx:
            listed = tx.query(
                SQL(
                    "SELECT position, originator_id, originator_version, event_hash FROM {} WHERE "
                    "position >= {} AND position <= {} ORDER BY position"
                ).format(self.manifest_table, P, P),
                [first, last],
            )
        rows, found = {int(row[0]): row for row in listed}, {event[0]: event for event in held}
        before = len(self.walked.findings)
        for position in sorted({*rows, *found}):
            self._differs(position, rows.get(position), found.get(position))
        if len(self.walked.findings) == before:
            self.walked.findings.append(
                Finding(
                    "chain",
                    f"the log chain differs at the save ending at position "
                    f"{last}: the chain table was edited",
                    position=last,
                )
            )

    def _differs(
        self, position: int, row: tuple[Any, ...] | None, event: tuple[int, UUID, int, bytes] | None
    ) -> None:
        found = self.walked.findings
        if row is not None and event is None:
            record, version = column_uuid(row[1]), int(row[2])
            found.append(
                Finding(
                    "removed",
                    f"{record} version {version} (position {position}) is gone",
                    str(record),
                    version,
                    position,
                )
            )
        elif row is None and event is not None:
            found.append(
                Finding(
                    "inserted",
                    f"{event[1]} version {event[2]} at position {position} was never "
                    "written by Writ",
                    str(event[1]),
                    event[2],
                    position,
                )
            )
        elif (
            row is not None
            and event is not None
            and not (
                bytes(row[3]) == event[3]
                and int(row[2]) == event[2]
                and column_uuid(row[1]) == event[1]
            )
        ):
            found.append(
                Finding(
                    "altered",
                    f"{event[1]} version {event[2]} (position {position}) is not what was written",
                    str(event[1]),
                    event[2],
                    position,
                )
            )

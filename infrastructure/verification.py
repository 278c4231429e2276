"""``verify``: is the stored history what was written?

Reads the whole log once, in position order, in batches, and checks three
things from the events themselves:

* **the manifest** (``infrastructure.log_chain``): every event listed is there
  with the same bytes; an event missing is reported with the record and
  version the manifest names (a middle event, a record's last event, every
  event of a record), an event changed or swapped with another is ``altered``,
  one the manifest never listed is ``inserted``;
* **the log chain**: each save's chain recomputed from its events matches the
  stored one (so the manifest and chain tables cannot have been edited to
  match), and at every signed checkpoint, the chain recomputed from the first
  event on matches the signed value (so nothing before it was rewritten, even
  consistently, by someone who cannot sign);
* **each record's own chain**: versions follow one another and every event's
  hash links to the one before (``domain.chain``).

Purges destroy keys, never events: a purged record still verifies. Events
written before the manifest existed are counted as ``unattested`` and checked
by their record chains only. The result is a ``Report``; ``ok`` is false when
anything is found, and each finding names the record and version where it can.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.chain import GENESIS as RECORD_GENESIS
from domain.chain import legacy_link, link
from domain.errors import WritError
from domain.record import EVENT_TOPICS
from infrastructure.checkpoints import Checkpoint, CheckpointTable, Signer
from infrastructure.log import open_log_of
from infrastructure.log_chain import CHAIN, GENESIS, MANIFEST, event_hash, next_chain, save_digest
from infrastructure.sql import SQL, P

if TYPE_CHECKING:

    from infrastructure.backend import Backend
    from infrastructure.database import Tx

BATCH = 5000
SAVES = 500
"""Saves per window (a bulk save holds up to the ``rows`` limit of events)."""
PRIORITY = {"removed": 0, "altered": 0, "inserted": 0, "out_of_order": 1, "broken_link": 1, "chain": 2,
            "checkpoint": 3}
RECORD_EVENTS = frozenset(EVENT_TOPICS)
_LEGACY_EXCLUDED = frozenset({"timestamp", "hash", "originator_topic"})


@dataclass(frozen=True)
class Finding:
    kind: str
    """``removed``, ``altered``, ``inserted``, ``broken_link``, ``out_of_order``, ``chain``, ``checkpoint``."""
    message: str
    record_id: str | None = None
    version: int | None = None
    position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "record_id": self.record_id, "version": self.version,
                "position": self.position, "message": self.message}


@dataclass
class Report:
    events: int = 0
    records: int = 0
    saves: int = 0
    unattested: int = 0
    checkpoints: int = 0
    head: int = 0
    chain: str = ""
    """Hex of the log chain recomputed up to ``head``."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def sort(self) -> None:
        """Findings in log order; at one event, what happened to it (removed, altered, inserted) before what
        followed from it (a broken link, a version out of order)."""
        self.findings.sort(key=lambda f: (f.position if f.position is not None else -1, PRIORITY.get(f.kind, 9)))

    def first_per_record(self) -> dict[str, Finding]:
        """Each record's first finding (lowest version; at one version, the event's own fault first)."""
        first: dict[str, Finding] = {}
        for finding in sorted(self.findings, key=lambda f: (f.version or 0, PRIORITY.get(f.kind, 9))):
            if finding.record_id is not None:
                first.setdefault(finding.record_id, finding)
        return first

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "records": self.records, "saves": self.saves,
                "unattested": self.unattested, "checkpoints": self.checkpoints, "head": self.head,
                "chain": self.chain, "findings": [f.to_dict() for f in self.findings],
                "first_per_record": {record: f.to_dict() for record, f in self.first_per_record().items()}}


@dataclass(frozen=True, slots=True)
class Stored:
    position: int
    originator: UUID
    version: int
    topic: str
    state: bytes
    hashed: bytes
    """SHA-256 of ``state``: what the manifest lists."""


class Verifier:
    def __init__(self, backend: Backend, *, public_keys: dict[str, Ed25519PublicKey] | None = None,
                 checkpoints: Sequence[Checkpoint] = ()) -> None:
        self.backend = backend
        self.public_keys = dict(public_keys or {})
        self.extra_checkpoints = list(checkpoints)

    def run(self) -> Report:
        report = Report()
        log = open_log_of(self.backend)
        database = self.backend.database()
        try:
            with database.reading() as tx:
                stored = self._checkpoints(tx)
            wanted = {c.position for c in [*stored, *self.extra_checkpoints]}
            recomputed = self._walk(log, database, report, wanted)
            self._check_tail(log, database, report)
            self._check_checkpoints([*stored, *self.extra_checkpoints], recomputed, report)
            report.sort()
        finally:
            database.close()
            log.close()
        return report

    # -- the walk -------------------------------------------------------------------

    def _walk(self, log: Any, database: Any, report: Report, wanted: set[int]) -> dict[int, bytes]:
        """Check every event up to the last save at the start (later ones are the next run's); the chain
        recomputed from the events at each wanted position."""
        with database.reading() as tx:
            head = tx.one(SQL("SELECT MAX(last) FROM {}").format(self.backend.table(CHAIN)))
        report.head = int(head[0]) if head and head[0] is not None else 0
        chains: dict[int, bytes] = {}
        recomputed = previous = GENESIS
        records: dict[int, tuple[int, str]] = {}
        for events, saves in self._windows(log, database, report.head):
            for event in events:
                self._check_record(event, records, report)
            at = 0
            for save in saves:
                last, first = int(save[0]), int(save[1])
                while at < len(events) and events[at].position < first:
                    self._uncovered(events[at], report)
                    at += 1
                end = at
                while end < len(events) and events[end].position <= last:
                    end += 1
                actual = self._check_save(save, events[at:end], previous, database, report)
                at, recomputed, previous = end, next_chain(recomputed, actual), bytes(save[3])
                if last in wanted:
                    chains[last] = recomputed
            for event in events[at:]:
                self._uncovered(event, report)
            report.events += len(events)
        report.records = len(records)
        report.chain = recomputed.hex()
        return chains

    def _check_tail(self, log: Any, database: Any, report: Report) -> None:
        """Events past the head the walk stopped at are saves committed since, and every save commits its chain
        row with its events: so an event there that no chain row read after it covers was put there by hand."""
        if report.head == 0:  # no save was ever chained: the walk read the whole log, unattested
            return
        tail = [(int(row[0]), _uuid(row[1]), int(row[2])) for row in self._rows(log, report.head, None)]
        if not tail:
            return
        with database.reading() as tx:
            saves = tx.query(SQL("SELECT first, last FROM {} WHERE last > {}").format(self.backend.table(CHAIN), P),
                             [report.head])
        covered = sorted((int(first), int(last)) for first, last in saves)
        for position, record, version in tail:
            if not any(first <= position <= last for first, last in covered):
                report.findings.append(Finding("inserted", f"{record} version {version} at position {position} "
                                               "was never written by Writ", str(record), version, position))

    @staticmethod
    def _uncovered(event: Stored, report: Report) -> None:
        """An event no save lists: before the first save, written before the manifest existed; after, inserted."""
        if report.saves == 0:
            report.unattested += 1
        else:
            report.findings.append(Finding("inserted", f"{event.originator} version {event.version} at "
                                           f"position {event.position} was never written by Writ",
                                           str(event.originator), event.version, event.position))

    def _windows(self, log: Any, database: Any, head: int) -> Iterator[tuple[list[Stored], list[tuple[Any, ...]]]]:
        """The log up to ``head`` in batches of saves: their events (in position order) and chain rows (with no
        saves at all, the whole log at once, unattested)."""
        after = 0
        while after < head or (head == 0 and after == 0):
            with database.reading() as tx:
                saves = tx.query(SQL("SELECT last, first, count, chain FROM {} WHERE last > {} ORDER BY last "
                                     "LIMIT {}").format(self.backend.table(CHAIN), P, P), [after, SAVES])
            until = int(saves[-1][0]) if saves else (head or None)
            events = [Stored(*row, event_hash(row[4])) for row in self._rows(log, after, until)]
            yield events, [tuple(s) for s in saves]
            if not saves:
                return
            after = int(saves[-1][0])

    @staticmethod
    def _rows(log: Any, after: int, until: int | None) -> Iterator[tuple[int, UUID, int, str, bytes]]:
        position = after
        while True:
            batch = log.rows(position, until, BATCH)
            yield from batch
            if len(batch) < BATCH:  # the last page, or one cut at ``until``
                return
            position = batch[-1][0]

    def _check_save(self, save: tuple[Any, ...], present: list[Stored], previous: bytes, database: Any,
                    report: Report) -> bytes:
        """One save's events against its chain row (chained on the stored previous one, so one bad save does
        not make every later one look bad); where they differ, its manifest names what changed. Returns the
        digest of its actual events."""
        last, first, stored_chain = int(save[0]), int(save[1]), bytes(save[3])
        report.saves += 1
        actual = save_digest([(e.position, e.originator, e.version, e.hashed) for e in present])
        if next_chain(previous, actual) == stored_chain:
            return actual
        with database.reading() as tx:
            listed = tx.query(SQL("SELECT position, originator_id, originator_version, event_hash FROM {} WHERE "
                                  "position >= {} AND position <= {} ORDER BY position").format(
                                      self.backend.table(MANIFEST), P, P), [first, last])
        rows, found = {int(row[0]): row for row in listed}, {e.position: e for e in present}
        before = len(report.findings)
        for position in sorted({*rows, *found}):
            self._compare(position, rows.get(position), found.get(position), report)
        if len(report.findings) == before:
            report.findings.append(Finding("chain", f"the log chain differs at the save ending at position {last}: "
                                           "the chain table was edited", position=last))
        return actual

    @staticmethod
    def _compare(position: int, row: tuple[Any, ...] | None, event: Stored | None, report: Report) -> None:
        if row is not None and event is None:
            record, version = _uuid(row[1]), int(row[2])
            report.findings.append(Finding("removed", f"{record} version {version} (position {position}) is gone",
                                           str(record), version, position))
        elif row is None and event is not None:
            report.findings.append(Finding("inserted", f"{event.originator} version {event.version} at position "
                                           f"{position} was never written by Writ", str(event.originator),
                                           event.version, position))
        elif row is not None and event is not None and not _same(row, event):
            report.findings.append(Finding("altered", f"{event.originator} version {event.version} (position "
                                           f"{position}) is not what was written", str(event.originator),
                                           event.version, position))

    @staticmethod
    def _check_record(event: Stored, records: dict[int, tuple[int, str]], report: Report) -> None:
        if event.topic not in RECORD_EVENTS:
            return
        number = event.originator.int
        version, previous = records.get(number, (0, RECORD_GENESIS))
        try:
            state = orjson.loads(event.state)
            expected = _expected_hash(event, state, previous)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            records[number] = (event.version, "")
            report.findings.append(Finding("altered", f"{event.originator} version {event.version} cannot be read "
                                           f"({type(exc).__name__})", str(event.originator), event.version,
                                           event.position))
            return
        records[number] = (event.version, state.get("hash", ""))
        if event.version != version + 1:
            report.findings.append(Finding("out_of_order", f"{event.originator}: version {event.version} follows "
                                           f"version {version}", str(event.originator), event.version,
                                           event.position))
            return
        if state.get("hash") != expected:
            report.findings.append(Finding("broken_link", f"{event.originator} version {event.version}: its hash "
                                           "does not match its content and the event before it",
                                           str(event.originator), event.version, event.position))

    # -- checkpoints ----------------------------------------------------------------

    def _checkpoints(self, tx: Tx) -> list[Checkpoint]:
        table = CheckpointTable(self.backend)
        table.create(tx)
        return table.all(tx)

    def _check_checkpoints(self, checkpoints: Iterable[Checkpoint], chains: dict[int, bytes],
                           report: Report) -> None:
        for checkpoint in checkpoints:
            report.checkpoints += 1
            if not checkpoint.verified_by(self.public_keys):
                report.findings.append(Finding("checkpoint", f"the checkpoint at position {checkpoint.position} "
                                               f"is not signed by a known key ({checkpoint.key_id})",
                                               position=checkpoint.position))
            elif chains.get(checkpoint.position, b"").hex() != checkpoint.chain:
                report.findings.append(Finding("checkpoint", f"the log up to position {checkpoint.position} was "
                                               f"rewritten since its checkpoint signed at {checkpoint.signed_at}",
                                               position=checkpoint.position))


def _expected_hash(event: Stored, state: dict[str, Any], previous: str) -> str:
    kind = event.topic.rpartition(":")[2]
    timestamp = datetime.fromisoformat(state["timestamp"])
    if state.get("state_digest") is None:  # written by Writ 0.1
        body = {k: v for k, v in state.items() if k not in _LEGACY_EXCLUDED}
        return legacy_link(previous, record_id=event.originator, version=event.version, kind=kind,
                           timestamp=timestamp, body=body)
    return link(previous, record_id=event.originator, version=event.version, kind=kind, timestamp=timestamp,
                meta=state.get("meta") or {}, body_digest=state.get("body_digest", ""),
                state_digest=state["state_digest"])


def _same(row: tuple[Any, ...], event: Stored) -> bool:
    """A manifest row lists this very event: same record, version and bytes."""
    return bytes(row[3]) == event.hashed and int(row[2]) == event.version and _uuid(row[1]) == event.originator


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def verify(backend: Backend, **options: Any) -> Report:
    """Check the whole store (see the module's docstring)."""
    return Verifier(backend, **options).run()


def sign_head(backend: Backend, signer: Signer) -> Checkpoint | None:
    """Verify the whole log, then sign its head and store the checkpoint; None when nothing was saved since
    the last one. Refuses (``CHECKPOINT_REFUSED``) to sign a log that does not verify."""
    report = verify(backend, public_keys={signer.key_id: signer.private.public_key()})
    if not report.ok:
        first = report.findings[0]
        raise CheckpointRefusedError(f"the log does not verify ({len(report.findings)} findings, first: "
                                     f"{first.message}); investigate with `writ verify` before signing")
    database = backend.database()
    try:
        with database.transaction() as tx:
            table = CheckpointTable(backend)
            table.create(tx)
            latest = max((c.position for c in table.all(tx)), default=0)
            if report.head <= latest:
                return None
            checkpoint = signer.sign(report.head, bytes.fromhex(report.chain))
            table.add(tx, checkpoint)
    finally:
        database.close()
    return checkpoint


class CheckpointRefusedError(WritError):
    code = "CHECKPOINT_REFUSED"

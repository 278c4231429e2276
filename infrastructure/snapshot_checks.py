"""``writ verify``'s look at the snapshots: each record snapshot true to the event at its version.

A snapshot saves loading a long history, so it must say exactly what its
events say. Each record snapshot is read with the event at its version (one
join, a page at a time) and must have one; its ``last_hash`` must be that
event's hash (a snapshot of another record or version swapped in fails here,
with no key needed); and, where the master key is at hand, it must open with
its record's key and digest to that event's ``state_digest``
(``domain.record.check_snapshot``: a flipped byte, or values re-sealed by
someone holding the master key, fail there). A snapshot of a purged record
(its key is gone) or of one written before digests is checked as far as its
link. Reads fall back to replaying the events past a bad snapshot
(``application.loading``); verify names it. Counters' and families' snapshots
carry no chain and are not checked.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent

from domain.errors import ChainBrokenError, WritError
from domain.record import RecordSnapshot, check_snapshot, is_shredded
from infrastructure.database import column_uuid
from infrastructure.sql import SQL, P
from infrastructure.verify_report import Finding, Report

if TYPE_CHECKING:
    from infrastructure.backend import Backend
    from infrastructure.database import Database
    from infrastructure.log import EventLog
    from infrastructure.vault import Vault

PAGE = 1000


def check_snapshots(
    backend: Backend, database: Database, log: EventLog, vault: Vault | None, report: Report
) -> None:
    """Add a ``snapshot`` finding for each record snapshot that does not match its event (see the module)."""
    for rows in _pages(backend, database, log):
        if vault is not None:
            # a key that does not open: each of its snapshots says so below
            with suppress(WritError):
                vault.prefetch(column_uuid(row[0]) for row in rows)
        for owner, version, state, event_topic, event_state in rows:
            report.snapshots += 1
            why = _fault(
                log, vault, column_uuid(owner), int(version), bytes(state), event_topic, event_state
            )
            if why is not None:
                record = str(column_uuid(owner))
                report.findings.append(
                    Finding(
                        "snapshot",
                        f"{record}: its snapshot at version {version} {why}",
                        record,
                        int(version),
                    )
                )


def _pages(backend: Backend, database: Database, log: EventLog) -> Any:
    recorder = log.recorder
    statement = SQL(
        "SELECT s.originator_id, s.originator_version, s.state, e.topic, e.state FROM {} AS s LEFT JOIN {} AS e ON "
        "e.originator_id = s.originator_id AND e.originator_version = s.originator_version WHERE s.topic = {} AND "
        "(s.originator_id > {} OR (s.originator_id = {} AND s.originator_version > {})) "
        "ORDER BY s.originator_id, s.originator_version LIMIT {}"
    ).format(
        backend.table(recorder.snapshots_table_name),
        backend.table(recorder.events_table_name),
        P,
        P,
        P,
        P,
        P,
    )
    with database.reading() as tx:
        if not backend.existing_columns(tx, recorder.snapshots_table_name):
            return  # a store never written to: no snapshot table yet (it is made with the first application)
    after: tuple[Any, int] = (backend.uuid_param(UUID(int=0)), 0)
    while True:
        with database.reading() as tx:
            rows = tx.query(statement, [RecordSnapshot.TOPIC, after[0], after[0], after[1], PAGE])
        if rows:
            yield rows
        if len(rows) < PAGE:
            return
        after = (rows[-1][0], int(rows[-1][1]))


def _fault(
    log: EventLog,
    vault: Vault | None,
    owner: UUID,
    version: int,
    state: bytes,
    event_topic: str | None,
    event_state: bytes | None,
) -> str | None:
    """What is wrong with one snapshot, or None."""
    if event_state is None or event_topic is None:
        return "has no event at that version"
    try:
        kept, event = orjson.loads(state), orjson.loads(bytes(event_state))
        if kept["state"]["last_hash"] != event["hash"]:
            return "does not match the event at that version (another record's or version's)"
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    if vault is None or event.get("state_digest") is None:  # no key here, or written before digests
        return None
    mapper = log.mapper
    try:
        snapshot = mapper.to_domain_event(StoredEvent(owner, version, RecordSnapshot.TOPIC, state))
        if is_shredded(snapshot):
            return None  # purged: its values are gone with its key, its link checked above
        event_at = mapper.to_domain_event(
            StoredEvent(owner, version, event_topic, bytes(event_state))
        )
        state_then = snapshot.mutate(None)  # type: ignore[attr-defined]
        check_snapshot(state_then, event_at, vault.digest)  # type: ignore[arg-type]
    except ChainBrokenError as broken:
        return f"does not match its history ({broken.message})"
    except WritError as error:  # e.g. its key is wrapped by a master key not configured here
        return f"cannot be opened here ({error.message})"
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return f"cannot be read ({type(exc).__name__})"
    return None

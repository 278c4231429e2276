"""What ``writ verify`` reports: findings, each naming the record and version where one exists, and the counts.

A ``Finding``'s ``kind`` says what was found (see ``KINDS``); the ``Report``
holds them with what was read and checked, and ``notes`` saying what could not
be checked on this host and why (no writer key: the saves' tags; no master
key: the snapshots' contents and the data keys). ``ok`` is false when anything
is found; a note alone does not make a store bad.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = {
    "removed": "an event the manifest lists is gone",
    "altered": "an event is not what was written (or cannot be read)",
    "inserted": "an event no save of Writ's wrote",
    "unauthenticated": "an event of a save whose tag does not check under the writer key (or that has none)",
    "out_of_order": "a record's versions do not follow one another",
    "broken_link": "an event's hash does not match its content and the event before it",
    "timestamp": "a record's event is dated before the event before it",
    "decision": "a decision id used by two commands (in saves apart, or twice on one record)",
    "manifest": "the manifest misses an event, or lists one no save holds",
    "chain": "the log chain table was edited",
    "snapshot": "a snapshot does not match the event at its version",
    "key_destroyed": "a data key destroyed without a Purged tombstone",
    "key_invalid": "a data key that does not unwrap for its record",
    "key_missing": "a record whose data is sealed has no data key",
    "checkpoint": "a checkpoint that is not signed by a trusted key, or that the log no longer matches",
}
PRIORITY = {
    "removed": 0,
    "altered": 0,
    "inserted": 0,
    "unauthenticated": 0,
    "out_of_order": 1,
    "broken_link": 1,
    "timestamp": 1,
    "decision": 1,
    "manifest": 2,
    "chain": 2,
    "snapshot": 2,
    "key_destroyed": 2,
    "key_invalid": 2,
    "key_missing": 2,
    "checkpoint": 3,
}


@dataclass(frozen=True)
class Finding:
    kind: str
    """One of ``KINDS``."""
    message: str
    record_id: str | None = None
    version: int | None = None
    position: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "record_id": self.record_id,
            "version": self.version,
            "position": self.position,
            "message": self.message,
        }


@dataclass
class Report:
    events: int = 0
    records: int = 0
    saves: int = 0
    unattested: int = 0
    """Events written before the manifest existed (checked by their record chains only)."""
    authenticated: int = 0
    """Saves whose tag checked under a writer key."""
    untagged: int = 0
    """Saves made before writer keys existed (before the first tagged save)."""
    snapshots: int = 0
    keys: int = 0
    checkpoints: int = 0
    head: int = 0
    chain: str = ""
    """Hex of the log chain recomputed up to ``head``."""
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def sort(self) -> None:
        """Findings in log order; at one event, what happened to it (removed, altered, inserted) before what
        followed from it (a broken link, a version out of order); what has no position (the key table's) last."""
        self.findings.sort(
            key=lambda f: (
                f.position is None,
                f.position or 0,
                PRIORITY.get(f.kind, 9),
                f.record_id or "",
                f.version or 0,
                f.kind,
                f.message,
            )
        )

    def first_per_record(self) -> dict[str, Finding]:
        """Each record's first finding (lowest version; at one version, the event's own fault first)."""
        first: dict[str, Finding] = {}
        for finding in sorted(
            self.findings, key=lambda f: (f.version or 0, PRIORITY.get(f.kind, 9))
        ):
            if finding.record_id is not None:
                first.setdefault(finding.record_id, finding)
        return first

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "records": self.records,
            "saves": self.saves,
            "unattested": self.unattested,
            "authenticated": self.authenticated,
            "untagged": self.untagged,
            "snapshots": self.snapshots,
            "keys": self.keys,
            "checkpoints": self.checkpoints,
            "head": self.head,
            "chain": self.chain,
            "findings": [f.to_dict() for f in self.findings],
            "first_per_record": {
                record: f.to_dict() for record, f in self.first_per_record().items()
            },
            "notes": self.notes,
        }

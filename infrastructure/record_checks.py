"""A record's own chain as ``writ verify``'s walk meets its events, one after another, in log order.

Each record event is checked against the record's state after the event read
before it (``End``): its version follows that one's, its hash links to that
one's (``domain.chain``), its time is not before that one's, and it does not
carry that one's decision id (a command decides a record once). Across records,
a decision id is one command's: its events lie in one save, or in saves next to
one another (a big save is chained a part at a time, its parts one after
another), so a decision id met in a save that does not follow the last save it
was in is used twice. The checks run inline on every event (the hot path of
verification); ``follow`` says what is wrong only when one fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from domain.chain import GENESIS, legacy_link, link
from domain.record import EVENT_TOPICS
from infrastructure.verify_report import Finding

RECORD_EVENTS = frozenset(EVENT_TOPICS)
KINDS = {topic: topic.rpartition(":")[2] for topic in EVENT_TOPICS}
_LEGACY_EXCLUDED = frozenset({"timestamp", "hash", "originator_topic"})
_UNREADABLE = (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError)

End = tuple[int, str, datetime | None, str | None]
"""A record's chain state after the last of its events read: version, hash, time, decision id."""
NO_END: End = (0, GENESIS, None, None)


class RecordChains:
    """The records' states as the walk leaves them (``ends``, by ``UUID.int``), findings appended to
    ``findings``, each decision id's saves kept in ``decisions``."""

    def __init__(
        self, findings: list[Finding], decisions: dict[str, tuple[int, int, int, int, int]]
    ) -> None:
        self.findings, self.decisions = findings, decisions
        self.ends: dict[int, End] = {}

    def event(
        self,
        position: int,
        originator: UUID,
        version: int,
        topic: str,
        state: bytes,
        save: int | None,
    ) -> None:
        """One record event (``save``: the index of the save that holds it, None when none does) against the
        record's state before it."""
        ends, number = self.ends, originator.int
        last_version, last_hash, last_time, last_decision = before = ends.get(number, NO_END)
        try:
            doc = orjson.loads(state)
            time = datetime.fromisoformat(doc["timestamp"])
            meta = doc.get("meta")
            stored = doc.get("hash", "")
            digest = doc.get("state_digest")
            expected = (
                legacy_link(
                    last_hash, **_legacy_fields(originator, version, KINDS[topic], time, doc)
                )
                if digest is None
                else link(
                    last_hash,
                    record_id=originator,
                    version=version,
                    kind=KINDS[topic],
                    timestamp=time,
                    meta=meta or {},
                    body_digest=doc.get("body_digest", ""),
                    state_digest=digest,
                )
            )
        except _UNREADABLE as exc:
            ends[number] = (version, "", None, None)
            self.findings.append(
                Finding(
                    "altered",
                    f"{originator} version {version} cannot be read ({type(exc).__name__})",
                    str(originator),
                    version,
                    position,
                )
            )
            return
        decision = meta.get("decision_id") if type(meta) is dict else None
        ends[number] = (version, stored, time, decision)
        if not (
            version == last_version + 1
            and stored == expected
            and (
                last_time is None
                or (time.tzinfo is None) != (last_time.tzinfo is None)
                or time >= last_time
            )
            and (decision is None or decision != last_decision)
        ):
            self.findings.extend(
                follow(before, originator, position, version, stored, expected, time, decision)
            )
        if save is not None and decision is not None:
            self._decision(decision, save, originator, version, position)

    def _decision(
        self, decision: str, save: int, originator: UUID, version: int, position: int
    ) -> None:
        spans = self.decisions
        span = spans.get(decision)
        if span is None:
            # plain ints: they travel back
            spans[decision] = (save, save, originator.int, version, position)
            return
        if span[1] < save - 1:
            self.findings.append(reused(decision, originator, version, position))
        spans[decision] = (span[0], save, *span[2:])


def follow(
    before: End,
    record: UUID,
    position: int,
    version: int,
    stored: str,
    expected: str,
    time: datetime,
    decision: str | None,
) -> Iterator[Finding]:
    """What is wrong with a record's event given its state ``before`` (``expected``: its hash, linked to that
    state's): called only when one of the checks ``RecordChains.event`` makes inline fails."""
    last_version, _, last_time, last_decision = before
    name = str(record)
    if version != last_version + 1:
        yield Finding(
            "out_of_order",
            f"{name}: version {version} follows version {last_version}",
            name,
            version,
            position,
        )
        return
    if stored != expected:
        yield Finding(
            "broken_link",
            f"{name} version {version}: its hash does not match its content and the event "
            "before it",
            name,
            version,
            position,
        )
    if (
        last_time is not None
        and (time.tzinfo is None) == (last_time.tzinfo is None)
        and time < last_time
    ):
        yield Finding(
            "timestamp",
            f"{name} version {version} is dated {time.isoformat()}, before version "
            f"{last_version} ({last_time.isoformat()})",
            name,
            version,
            position,
        )
    if decision is not None and decision == last_decision:
        yield Finding(
            "decision",
            f"{name} version {version} carries the decision of version {last_version} "
            f"({decision}): a command decides a record once",
            name,
            version,
            position,
        )


def reused(decision: str, record: UUID | int, version: int, position: int) -> Finding:
    name = str(record if isinstance(record, UUID) else UUID(int=record))
    return Finding(
        "decision",
        f"{name} version {version} (position {position}) carries decision {decision}, which "
        "saves before it used: a decision is one command's, saved at once",
        name,
        version,
        position,
    )


def _legacy_fields(
    originator: UUID, version: int, kind: str, time: datetime, doc: dict[str, Any]
) -> dict[str, Any]:
    """The fields of a link written by Writ 0.1 (``domain.chain.legacy_link``): over the whole body."""
    return {
        "record_id": originator,
        "version": version,
        "kind": kind,
        "timestamp": time,
        "body": {k: v for k, v in doc.items() if k not in _LEGACY_EXCLUDED},
    }


def end_of(version: int, state: bytes) -> End:
    """A record's state after one of its events, as the walk leaves it (unreadable: no hash, time or decision)."""
    try:
        doc = orjson.loads(state)
        meta = doc.get("meta")
        return (
            version,
            doc.get("hash", ""),
            datetime.fromisoformat(doc["timestamp"]),
            meta.get("decision_id") if type(meta) is dict else None,
        )
    except _UNREADABLE:
        return (version, "", None, None)

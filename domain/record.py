"""The ``Record`` aggregate: one business record and its lifecycle.

Each record is an event-sourced aggregate whose events are ``Created``,
``Replaced``, ``Patched``, ``Deleted``, ``Restored``, ``Purged`` and
``Failed``. Every event carries the audit metadata (actor, tenant, model,
purpose, correlation/causation, decision, idempotency key, audit attributes),
an explicit timestamp injected by the caller, and its links in the record's
hash chain (``domain.chain``); a data event's metadata also names the fields it
changed (``CHANGED``), which a purge leaves readable. Command methods check the lifecycle first and
only then trigger an event, because ``apply`` bodies are replayed on every
load. ``replay`` rebuilds a record from a snapshot and events, checking every
link on the way: a broken one is ``ChainBrokenError``, never a wrong value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, ClassVar, Self
from uuid import UUID

from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.utils import register_topic

from domain.chain import (
    GENESIS,
    SEAL_STATUS,
    SHREDDED,
    Digest,
    DigestUnavailable,
    id_text,
    iso_text,
    legacy_link,
    link,
    plain_digest,
)
from domain.errors import (
    ChainBrokenError,
    RecordDeletedError,
    RecordNotDeletedError,
    RecordNotFoundError,
)
from domain.ids import new_id

NEW, MODIFIED, DELETED, PURGED = "new", "modified", "deleted", "purged"
CHANGED = "changed"
"""The ``meta`` key of a ``Created``, ``Replaced`` or ``Patched`` event listing the fields it changed: metadata,
never sealed, so a history keeps the names after a purge erases the values (events written before the names
were kept lack it)."""


class RecordSnapshot(Snapshot):
    """A snapshot whose datetimes survive a JSON round trip."""

    TOPIC: ClassVar[str] = "writ.record:Snapshot"

    def mutate(self, _: None) -> Any:
        aggregate = super().mutate(None)
        for name in ("_created_on", "_modified_on"):
            value = aggregate.__dict__.get(name)
            if isinstance(value, str):
                aggregate.__dict__[name] = datetime.fromisoformat(value)
        return aggregate


# The library registers the TOPIC of aggregates and their events when their classes are defined, but not
# of a Snapshot subclass: without this, only a process that took a snapshot itself could read one back.
register_topic(RecordSnapshot.TOPIC, RecordSnapshot)


class Record(Aggregate):
    TOPIC = "writ.record:Record"
    Snapshot = RecordSnapshot

    class Event(Aggregate.Event):
        meta: dict[str, Any]
        hash: str
        body_digest: str
        state_digest: str
        PAYLOAD: ClassVar[tuple[str, ...]] = ()

        def apply(self, record: Record) -> None:
            record.updated_at = iso_text(self.timestamp)
            record.updated_by = self.meta.get("actor")
            record.last_hash = self.hash
            self.change(record)

        @classmethod
        def preview(
            cls, record: Record, timestamp: datetime, meta: dict[str, Any], **payload: Any
        ) -> Record:
            """The record as an event of this kind would leave it (a copy; ``record`` is untouched): what the
            event's ``state_digest`` covers, known before the event exists. ``change`` never mutates the
            record's data in place, so a shallow copy will do."""
            after = object.__new__(Record)
            # a dict's copy clones its table (``update`` would insert key by key)
            state = vars(record).copy()
            state["updated_at"], state["updated_by"] = iso_text(timestamp), meta.get("actor")
            object.__setattr__(after, "__dict__", state)
            cls.change(SimpleNamespace(timestamp=timestamp, meta=meta, **payload), after)  # type: ignore[arg-type]
            return after

        def change(self, record: Record) -> None:
            """What this kind of event does to the record's state."""

        def payload(self) -> dict[str, Any]:
            """What the event says, beyond its audit metadata (digested into ``body_digest``)."""
            return {name: getattr(self, name) for name in self.PAYLOAD}

        @classmethod
        def made(cls, **attributes: Any) -> Self:
            """An event of this kind holding exactly ``attributes`` (every field), as the store decodes one."""
            event = object.__new__(cls)
            object.__setattr__(event, "__dict__", attributes)
            return event

    class Created(Event, Aggregate.Created):
        TOPIC = "writ.record:Created"
        PAYLOAD = ("model", "tenant", "data")
        model: str
        tenant: str
        data: dict[str, Any]

        def change(self, record: Record) -> None:
            record.created_at = record.updated_at
            record.created_by = record.updated_by

        def mutate(self, aggregate: Any) -> Any:
            """The library's construction, without its per-event signature inspection (loading thousands of
            records at once spent a fifth of its time there)."""
            record = Record.__new__(Record)
            record.__base_init__(self.originator_id, self.originator_version, self.timestamp)
            Record.__init__(record, self.model, self.tenant, self.data)
            self.apply(record)
            return record

    class Replaced(Event):
        TOPIC = "writ.record:Replaced"
        PAYLOAD = ("data",)
        data: dict[str, Any]

        def change(self, record: Record) -> None:
            record.data = dict(self.data)
            record.state = MODIFIED

    class Patched(Event):
        TOPIC = "writ.record:Patched"
        PAYLOAD = ("changes",)
        changes: dict[str, Any]

        def change(self, record: Record) -> None:
            record.data = {**record.data, **self.changes}
            record.state = MODIFIED

    class Deleted(Event):
        TOPIC = "writ.record:Deleted"

        def change(self, record: Record) -> None:
            record.state = DELETED

    class Restored(Event):
        TOPIC = "writ.record:Restored"

        def change(self, record: Record) -> None:
            record.state = MODIFIED

    class Purged(Event):
        TOPIC = "writ.record:Purged"

        def change(self, record: Record) -> None:
            record.data = {}
            record.state = PURGED

    class Failed(Event):
        TOPIC = "writ.record:Failed"
        PAYLOAD = ("reason",)
        reason: str

        def change(self, record: Record) -> None:
            record.failure = self.reason

    def __init__(self, model: str, tenant: str, data: dict[str, Any]) -> None:
        self.model = model
        self.tenant = tenant
        self.data = dict(data)
        self.state = NEW
        self.created_at = self.updated_at = ""
        self.created_by: str | None = None
        self.updated_by: str | None = None
        self.last_hash = GENESIS
        self.failure: str | None = None

    # -- commands -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        model: str,
        tenant: str,
        data: dict[str, Any],
        meta: dict[str, Any],
        now: datetime,
        record_id: UUID | None = None,
        digest: Digest = plain_digest,
    ) -> Record:
        record_id = record_id or new_id()
        payload = {"model": model, "tenant": tenant, "data": data}
        meta = {**meta, CHANGED: sorted(name for name, value in data.items() if value is not None)}
        after: Record = cls._created(
            record_id, now, meta, "", {"body_digest": "", "state_digest": ""}, payload
        ).mutate(None)
        digests = _digests(digest, record_id, payload, after)
        chained = link(
            GENESIS,
            record_id=record_id,
            version=1,
            kind="Created",
            timestamp=now,
            meta=meta,
            **digests,
        )
        event = cls._created(record_id, now, meta, chained, digests, payload)
        # the record is the state previewed (and digested), not the event applied again (as ``_trigger``)
        after.last_hash = chained
        after.pending_events.append(event)
        return after

    @classmethod
    def _created(
        cls,
        record_id: UUID,
        now: datetime,
        meta: dict[str, Any],
        chained: str,
        digests: dict[str, str],
        payload: dict[str, Any],
    ) -> Record.Created:
        """The ``Created`` event the library's ``_create`` would make (its fields in their order), without its
        per-call topic checks and keyword filtering, nor the frozen dataclass set field by field."""
        return cls.Created.made(
            originator_id=record_id,
            originator_version=cls.INITIAL_VERSION,
            timestamp=now,
            originator_topic=cls.TOPIC,
            meta=meta,
            hash=chained,
            **digests,
            **payload,
        )

    def replace(
        self,
        data: dict[str, Any],
        meta: dict[str, Any],
        now: datetime,
        digest: Digest = plain_digest,
    ) -> None:
        self._require_live()
        self._trigger(self.Replaced, now, meta, digest, data=data)

    def patch(
        self,
        changes: dict[str, Any],
        meta: dict[str, Any],
        now: datetime,
        digest: Digest = plain_digest,
    ) -> None:
        self._require_live()
        self._trigger(self.Patched, now, meta, digest, changes=changes)

    def delete(self, meta: dict[str, Any], now: datetime, digest: Digest = plain_digest) -> None:
        self._require_live()
        self._trigger(self.Deleted, now, meta, digest)

    def restore(self, meta: dict[str, Any], now: datetime, digest: Digest = plain_digest) -> None:
        self._require_existing()
        if self.state != DELETED:
            raise RecordNotDeletedError(
                f"{self.model} {self.id} is not deleted; nothing to restore"
            )
        self._trigger(self.Restored, now, meta, digest)

    def purge(self, meta: dict[str, Any], now: datetime, digest: Digest = plain_digest) -> None:
        self._require_existing()
        self._trigger(self.Purged, now, meta, digest)

    def fail(
        self, reason: str, meta: dict[str, Any], now: datetime, digest: Digest = plain_digest
    ) -> None:
        self._require_existing()
        self._trigger(self.Failed, now, meta, digest, reason=reason)

    # -- queries --------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        return self.state in (NEW, MODIFIED)

    def view(self) -> dict[str, Any]:
        """The record as callers see it: id, tenant, data and system fields."""
        return {
            "id": id_text(self.id),
            **self.data,
            "_model": self.model,
            "_state": self.state,
            "_version": self.version,
            "_created_at": self.created_at,
            "_created_by": self.created_by,
            "_updated_at": self.updated_at,
            "_updated_by": self.updated_by,
        }

    def fingerprint(self) -> dict[str, Any]:
        """Everything an event leaves in the record, as digested into ``state_digest``."""
        return {
            "model": self.model,
            "tenant": self.tenant,
            "data": self.data,
            "state": self.state,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "failure": self.failure,
        }

    # -- internals ------------------------------------------------------------

    def _require_existing(self) -> None:
        if self.state == PURGED:
            raise RecordNotFoundError(f"{self.model} {self.id} not found")

    def _require_live(self) -> None:
        self._require_existing()
        if self.state == DELETED:
            raise RecordDeletedError(f"{self.model} {self.id} is deleted; restore it first")

    def _trigger(
        self,
        event_class: type[Record.Event],
        now: datetime,
        meta: dict[str, Any],
        digest: Digest,
        **payload: Any,
    ) -> None:
        record_id = self.id
        # a record's time never goes back (another writer's clock may run ahead)
        now = max(now, self.modified_on)
        version = self.version + 1
        after = event_class.preview(self, now, meta, **payload)
        if event_class.PAYLOAD == ("data",):
            meta = {**meta, CHANGED: changed_fields(self.data, after.data)}
        elif event_class.PAYLOAD == ("changes",):  # only the patched fields can differ
            before = self.data
            meta = {
                **meta,
                CHANGED: sorted(
                    name for name, value in payload["changes"].items() if before.get(name) != value
                ),
            }
        digests = _digests(digest, self.id, payload, after)
        chained = link(
            self.last_hash,
            record_id=record_id,
            version=version,
            kind=event_class.__name__,
            timestamp=now,
            meta=meta,
            body_digest=digests["body_digest"],
            state_digest=digests["state_digest"],
        )
        event = event_class.made(
            originator_id=record_id,
            originator_version=version,
            timestamp=now,
            meta=meta,
            hash=chained,
            **digests,
            **payload,
        )
        # what the library's trigger_event does, without copying its keywords twice and constructing the frozen
        # dataclass field by field (docs/performance.md); the record takes the state previewed (and digested)
        # rather than applying the event again
        state = vars(after)
        state["last_hash"] = chained
        object.__setattr__(self, "__dict__", state)  # the state itself, not copied key by key
        self.version, self.modified_on = version, now
        self.pending_events.append(event)


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The names of the fields whose values differ (an absent field reads as null), sorted."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )


def _digests(
    digest: Digest, record_id: UUID, payload: dict[str, Any], after: Record
) -> dict[str, str]:
    return {
        "body_digest": digest(record_id, "body", payload),
        "state_digest": digest(record_id, "state", after.fingerprint()),
    }


def replay(
    snapshot: Record | None, events: Iterable[Record.Event], digest: Digest = plain_digest
) -> Record | None:
    """The record as of the last of ``events``, rebuilt from ``snapshot`` (which the caller checked against the
    event at its version: ``check_snapshot``) or from its first event, every link checked."""
    record = snapshot
    shredded = False
    for event in events:
        record = step(record, event, digest)
        shredded = shredded or vars(event).get(SEAL_STATUS) == SHREDDED  # ``is_shredded``, inline
    if shredded and record is not None:
        check_shredded(record)
    return record


def is_shredded(event: object) -> bool:
    """The store could not open this event's (or snapshot's) data: its key was destroyed."""
    return vars(event).get(SEAL_STATUS) == SHREDDED


def check_shredded(record: Record) -> None:
    """Data withheld from a record that was never purged: its key is missing, which only tampering does."""
    if record.state != PURGED:
        raise ChainBrokenError(
            f"{record.model} {record.id}: its data key is missing, yet it was never purged",
            record_id=str(record.id),
            version=record.version,
        )


def step(record: Record | None, event: Record.Event, digest: Digest = plain_digest) -> Record:
    """``record`` advanced by ``event`` (in place; a new record for ``Created``), its link checked."""
    if record is None:
        version, prev = 1, GENESIS
    else:
        version, prev = record.version + 1, record.last_hash
    if event.originator_version != version:
        raise _broken(event, version, "an event is missing or out of order")
    advanced = event.mutate(record)
    assert isinstance(advanced, Record)
    _check_link(event, prev, advanced, digest)
    return advanced


def check_snapshot(record: Record, event: Record.Event | None, digest: Digest) -> None:
    """``record`` (rebuilt from a snapshot) is the state ``event``, the stored event at its version, left:
    ``ChainBrokenError`` otherwise."""
    if (
        event is None
        or event.originator_version != record.version
        or event.hash != record.last_hash
    ):
        raise ChainBrokenError(
            f"{record.model} {record.id}: its snapshot at version {record.version} does not "
            "match the event at that version",
            record_id=str(record.id),
            version=record.version,
        )
    if getattr(event, "state_digest", None) is None:
        raise ChainBrokenError(
            f"{record.model} {record.id}: snapshot of a record written before digests",
            record_id=str(record.id),
            version=record.version,
        )
    if digest(record.id, "state", record.fingerprint()) != event.state_digest:
        raise ChainBrokenError(
            f"{record.model} {record.id}: its snapshot at version {record.version} holds "
            "other values than its history",
            record_id=str(record.id),
            version=record.version,
        )


def _check_link(event: Record.Event, prev: str, record: Record, digest: Digest) -> None:
    kind, version, record_id = type(event).__name__, event.originator_version, record.id
    attributes = vars(event)
    if attributes.get("state_digest") is None:  # written by Writ 0.1
        body = {k: v for k, v in attributes.items() if k not in _LEGACY_EXCLUDED}
        expected = legacy_link(
            prev,
            record_id=record_id,
            version=version,
            kind=kind,
            timestamp=event.timestamp,
            body=body,
        )
        if event.hash != expected:
            raise _broken(event, version, "its hash does not match its content")
        return
    if attributes.get(SEAL_STATUS) != SHREDDED and not _digests_match(
        event, record_id, record, digest
    ):
        raise _broken(event, version, "its content does not match its digests")
    expected = link(
        prev,
        record_id=record_id,
        version=version,
        kind=kind,
        timestamp=event.timestamp,
        meta=event.meta,
        body_digest=event.body_digest,
        state_digest=event.state_digest,
    )
    if event.hash != expected:
        raise _broken(event, version, "its hash does not match its content")


def _digests_match(event: Record.Event, record_id: UUID, record: Record, digest: Digest) -> bool:
    """The event's digests recomputed from its payload and the state it left (``record``, of id ``record_id``);
    True, unchecked, when the record's key is gone (purged): the link still covers the digests as stored."""
    try:
        return event.body_digest == digest(
            record_id, "body", event.payload()
        ) and event.state_digest == digest(record_id, "state", record.fingerprint())
    except DigestUnavailable:
        return True


_LEGACY_EXCLUDED = frozenset(
    {"originator_id", "originator_version", "timestamp", "hash", "originator_topic"}
)


def _broken(event: Record.Event, version: int, why: str) -> ChainBrokenError:
    model = event.meta.get("model", "record") if isinstance(event.meta, dict) else "record"
    return ChainBrokenError(
        f"{model} {event.originator_id}: history broken at version {version} ({why})",
        record_id=str(event.originator_id),
        version=version,
    )


EVENT_TOPICS: tuple[str, ...] = tuple(
    cls.TOPIC
    for cls in (
        Record.Created,
        Record.Replaced,
        Record.Patched,
        Record.Deleted,
        Record.Restored,
        Record.Purged,
        Record.Failed,
    )
)
"""The notification-log topics of every record event."""

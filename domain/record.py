"""The ``Record`` aggregate: one business record and its lifecycle.

Each record is an event-sourced aggregate whose events are ``Created``,
``Replaced``, ``Patched``, ``Deleted``, ``Restored``, ``Purged`` and
``Failed``. Every event carries the audit metadata (actor, tenant, model,
purpose, correlation/causation, decision, idempotency key, audit attributes),
an explicit timestamp injected by the caller, and a hash chained to the
previous event. Command methods check the lifecycle first and only then
trigger an event, because ``apply`` bodies are replayed on every load.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate, Snapshot

from domain.chain import GENESIS, link
from domain.errors import RecordDeletedError, RecordNotDeletedError, RecordNotFoundError

NEW, MODIFIED, DELETED, PURGED = "new", "modified", "deleted", "purged"


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


class Record(Aggregate):
    TOPIC = "writ.record:Record"
    Snapshot = RecordSnapshot

    class Event(Aggregate.Event):
        meta: dict[str, Any]
        hash: str

        def apply(self, record: Record) -> None:
            record.updated_at = self.timestamp.isoformat()
            record.updated_by = self.meta.get("actor")
            record.last_hash = self.hash
            self.change(record)

        def change(self, record: Record) -> None:
            """What this kind of event does to the record's state."""

    class Created(Event, Aggregate.Created):
        TOPIC = "writ.record:Created"
        model: str
        tenant: str
        data: dict[str, Any]

        def change(self, record: Record) -> None:
            record.created_at = record.updated_at
            record.created_by = record.updated_by

    class Replaced(Event):
        TOPIC = "writ.record:Replaced"
        data: dict[str, Any]

        def change(self, record: Record) -> None:
            record.data = dict(self.data)
            record.state = MODIFIED

    class Patched(Event):
        TOPIC = "writ.record:Patched"
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
        cls, model: str, tenant: str, data: dict[str, Any], meta: dict[str, Any], now: datetime,
        record_id: UUID | None = None,
    ) -> Record:
        record_id = record_id or uuid4()
        body = {"model": model, "tenant": tenant, "data": data, "meta": meta}
        digest = link(GENESIS, record_id=record_id, version=1, kind="Created", timestamp=now, body=body)
        return cls._create(cls.Created, id=record_id, timestamp=now, hash=digest, **body)

    def replace(self, data: dict[str, Any], meta: dict[str, Any], now: datetime) -> None:
        self._require_live()
        self._trigger(self.Replaced, now, meta=meta, data=data)

    def patch(self, changes: dict[str, Any], meta: dict[str, Any], now: datetime) -> None:
        self._require_live()
        self._trigger(self.Patched, now, meta=meta, changes=changes)

    def delete(self, meta: dict[str, Any], now: datetime) -> None:
        self._require_live()
        self._trigger(self.Deleted, now, meta=meta)

    def restore(self, meta: dict[str, Any], now: datetime) -> None:
        self._require_existing()
        if self.state != DELETED:
            raise RecordNotDeletedError(f"{self.model} {self.id} is not deleted; nothing to restore")
        self._trigger(self.Restored, now, meta=meta)

    def purge(self, meta: dict[str, Any], now: datetime) -> None:
        self._require_existing()
        self._trigger(self.Purged, now, meta=meta)

    def fail(self, reason: str, meta: dict[str, Any], now: datetime) -> None:
        self._require_existing()
        self._trigger(self.Failed, now, meta=meta, reason=reason)

    # -- queries --------------------------------------------------------------

    @property
    def is_live(self) -> bool:
        return self.state in (NEW, MODIFIED)

    def view(self) -> dict[str, Any]:
        """The record as callers see it: id, tenant, data and system fields."""
        return {
            "id": str(self.id),
            **self.data,
            "_model": self.model,
            "_state": self.state,
            "_version": self.version,
            "_created_at": self.created_at,
            "_created_by": self.created_by,
            "_updated_at": self.updated_at,
            "_updated_by": self.updated_by,
        }

    # -- internals ------------------------------------------------------------

    def _require_existing(self) -> None:
        if self.state == PURGED:
            raise RecordNotFoundError(f"{self.model} {self.id} not found")

    def _require_live(self) -> None:
        self._require_existing()
        if self.state == DELETED:
            raise RecordDeletedError(f"{self.model} {self.id} is deleted; restore it first")

    def _trigger(self, event_class: type[Record.Event], now: datetime, **body: Any) -> None:
        version = self.version + 1
        digest = link(
            self.last_hash, record_id=self.id, version=version,
            kind=event_class.__name__, timestamp=now, body=body,
        )
        self.trigger_event(event_class, timestamp=now, hash=digest, **body)


EVENT_TOPICS: tuple[str, ...] = tuple(
    cls.TOPIC for cls in (Record.Created, Record.Replaced, Record.Patched, Record.Deleted,
                          Record.Restored, Record.Purged, Record.Failed)
)
"""The notification-log topics of every record event."""

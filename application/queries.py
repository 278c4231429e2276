"""Reads on the command side: a record now or as of a version, its history, decisions.

Every read is confined to the principal's tenant: another tenant's record is
``NOT_FOUND``. A purged record is gone for ``get``; its history keeps the
tombstone and who did what, but no data. Arguments are checked at the door
(``application.door``) first, as for writes; reads record no decision.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.decisions import DECISION_TOPICS, decision_view
from application.door import flag_arg, int_arg, optional_str_arg, principal_arg, record_id_arg
from application.results import HistoryEntry
from domain.errors import GrantMissingError, RecordDeletedError, RecordNotFoundError, UnauthenticatedError
from domain.limits import INT_MAX
from domain.principal import Principal
from domain.record import DELETED, PURGED, Record

if TYPE_CHECKING:
    from eventsourcing.application import Repository
    from eventsourcing.persistence import ApplicationRecorder, EventStore

    from domain.catalog import Catalog


class QueriesMixin:
    catalog: Catalog
    repository: Repository[UUID]
    events: EventStore[UUID]
    recorder: ApplicationRecorder

    def get(self, principal: Principal | None, model: str, record_id: UUID | str, *,
            version: int | None = None, include_deleted: bool = False) -> dict[str, Any]:
        """The record as the caller may see it, now or as of ``version``."""
        if version is not None:
            int_arg("version", version, 1, INT_MAX)
        flag_arg("include_deleted", include_deleted)
        record = self._visible(principal, model, record_id)
        if record.state == DELETED and not include_deleted:
            raise RecordDeletedError(f"{model} {record.id} is deleted")
        if include_deleted:
            self._require_read_deleted(principal, model)
        if version is not None:
            if not 1 <= version <= record.version:
                raise RecordNotFoundError(f"{model} {record.id} has no version {version}")
            record = self.repository.get(record.id, version=version)
        return record.view()

    def history(self, principal: Principal | None, model: str, record_id: UUID | str) -> list[HistoryEntry]:
        """Every event of the record with actor, purpose, time and before/after values."""
        record = self._visible(principal, model, record_id, allow_purged=True)
        shredded = record.state == PURGED
        entries: list[HistoryEntry] = []
        state: dict[str, Any] = {}
        lifecycle = "new"
        for event in self.events.get(record.id):
            after, lifecycle = _fold(state, lifecycle, event)
            if shredded:
                state, after = {}, {}
            entries.append(_entry(event, state, after, lifecycle))
            state = after
        return entries

    def decisions(
        self, principal: Principal | None, *, after: int = 0, limit: int = 100,
        actor: str | None = None, model: str | None = None, outcome: str | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions (allowed, refused, parked, failed) in the principal's tenant, oldest first.

        Scans the notification log from position ``after``; ``limit`` bounds the events read, so
        page on with ``after`` = the last position seen. ``actor``, ``model`` and ``outcome`` filter.
        """
        int_arg("after", after, 0, INT_MAX)
        int_arg("limit", limit, 1, self.catalog.limits.page)
        filters = {"actor": actor, "model": model, "outcome": outcome}
        wanted = {"tenant": _require(principal).tenant_id,
                  **{name: optional_str_arg(name, value) for name, value in filters.items()}}
        notifications = self.recorder.select_notifications(
            after, limit, topics=DECISION_TOPICS, inclusive_of_start=False
        )
        found = []
        for notification in notifications:
            view = decision_view(self.events.mapper.to_domain_event(notification), notification.id)
            if all(value is None or view[key] == value for key, value in wanted.items()):
                found.append(view)
        return found

    # -- internals ------------------------------------------------------------

    def _visible(self, principal: Principal | None, model: str, record_id: object, *,
                 allow_purged: bool = False) -> Record:
        principal, record_id = principal_arg(principal), record_id_arg(model, record_id)
        tenant = _require(principal).tenant_id
        self.catalog.model(model)
        record: Any
        try:
            record = self.repository.get(record_id)
        except AggregateNotFoundError:
            record = None
        if (
            not isinstance(record, Record) or record.tenant != tenant or record.model != model
            or (record.state == PURGED and not allow_purged)
        ):
            raise RecordNotFoundError(f"{model} {record_id} not found")
        return record

    def _require_read_deleted(self, principal: Principal | None, model: str) -> None:
        roles = _require(principal).roles
        if not self.catalog.model(model).grants.allows("read_deleted", roles):
            raise GrantMissingError(f"Reading deleted {model} records needs the read_deleted grant")


def _require(principal: object) -> Principal:
    principal = principal_arg(principal)
    if principal is None:
        raise UnauthenticatedError("No principal: every read needs an authenticated caller")
    return principal


def _fold(state: dict[str, Any], lifecycle: str, event: Any) -> tuple[dict[str, Any], str]:
    if isinstance(event, Record.Created | Record.Replaced):
        return dict(event.data), "new" if isinstance(event, Record.Created) else "modified"
    if isinstance(event, Record.Patched):
        return {**state, **event.changes}, "modified"
    if isinstance(event, Record.Purged):
        return {}, PURGED
    transitions = {Record.Deleted: DELETED, Record.Restored: "modified"}
    return dict(state), transitions.get(type(event), lifecycle)


def _entry(event: Any, before: dict[str, Any], after: dict[str, Any], lifecycle: str) -> HistoryEntry:
    meta = event.meta
    changed = sorted(set(before) | set(after))
    return HistoryEntry(
        version=event.originator_version, event=type(event).__name__, at=event.timestamp.isoformat(),
        actor=meta.get("actor"), purpose=meta.get("purpose"), correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"), decision_id=meta.get("decision_id"),
        idempotency_key=meta.get("idempotency_key"), audit=meta.get("audit") or {}, state=lifecycle,
        before=before, after=after, hash=event.hash,
        changes={k: {"before": before.get(k), "after": after.get(k)} for k in changed
                 if before.get(k) != after.get(k)},
    )


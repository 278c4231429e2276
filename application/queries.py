"""Reads on the command side: a record now or as of a version, its history, decisions.

Every read is confined to the principal's tenant: another tenant's record is
``NOT_FOUND`` (and costs the same to answer as a missing one, see
``application.loading``), and governed by the catalog's read grants
(``domain.grants``): a record needs the model's ``read`` grant, checked before
anything is loaded; a deleted one, and its history, ``read_deleted``;
decisions are filtered to those the principal may read (its own, and those of
the models it audits). Every read checks the record's hash chain: a broken
link is ``CHAIN_BROKEN``. A purged record is gone for ``get``; its history
keeps the tombstone and who did what, but no data. Arguments are checked at
the door (``application.door``) first, as for writes. A refused read records
no decision: it changes nothing, and the log must not grow at a reader's will
(README, "Reads are governed").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.decisions import DECISION_TOPICS, decision_record
from application.door import flag_arg, int_arg, optional_str_arg, principal_arg, record_id_arg
from application.results import HistoryEntry
from domain.errors import RecordDeletedError, RecordNotFoundError, UnauthenticatedError
from domain.grants import DecisionScope
from domain.limits import INT_MAX
from domain.principal import Principal
from domain.record import CHANGED, DELETED, PURGED, Record, is_shredded

if TYPE_CHECKING:
    from application.core import Core


class Reads:
    """``get``, ``history``, ``iter_history`` and ``decisions`` of ``Writ``, over the core's loader and store."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def get(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        version: int | None = None,
        include_deleted: bool = False,
    ) -> dict[str, Any]:
        """The record as the caller may see it, now or as of ``version``."""
        if version is not None:
            int_arg("version", version, 1, INT_MAX)
        record = self.visible(
            principal,
            model,
            record_id,
            include_deleted=flag_arg("include_deleted", include_deleted),
        )
        if version is not None:
            if not 1 <= version <= record.version:
                raise RecordNotFoundError(f"{model} {record.id} has no version {version}")
            record = self.core.loader.load(record.id, version=version) or record
        return record.view()

    def history(
        self, principal: Principal | None, model: str, record_id: UUID | str
    ) -> list[HistoryEntry]:
        """Every event of the record with actor, purpose, time and before/after values."""
        return list(self.iter_history(principal, model, record_id))

    def iter_history(
        self, principal: Principal | None, model: str, record_id: UUID | str, *, after: int = 0
    ) -> Iterator[HistoryEntry]:
        """``history``, streamed: events are read a page at a time (bounded memory for long histories); only
        those past version ``after`` (a page's cursor), read on from the latest snapshot at or before it."""
        int_arg("after", after, 0, INT_MAX)
        record = self.visible(principal, model, record_id, allow_purged=True)
        shredded = record.state == PURGED
        start = self.core.loader.load(record.id, version=after) if after and not shredded else None
        before: dict[str, Any] = {} if start is None else start.data
        for event, state in self.core.loader.history(record.id, start):
            data = {} if shredded else state.data
            if event.originator_version > after:  # a purged record is read from its first event
                yield _entry(event, before, data, state.state, purged=shredded)
            before = data

    def decisions(
        self,
        principal: Principal | None,
        *,
        after: int = 0,
        limit: int = 100,
        actor: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions (allowed, refused, parked, failed) in the principal's tenant, oldest first.

        Scans the notification log from position ``after``; ``limit`` bounds the events read, so
        page on with ``after`` = the last position seen. ``actor``, ``model`` and ``outcome`` filter.
        """
        int_arg("after", after, 0, INT_MAX)
        int_arg("limit", limit, 1, self.core.catalog.limits.page)
        filters = {"actor": actor, "model": model, "outcome": outcome}
        who = _require(principal)
        wanted = {
            "tenant": who.tenant_id,
            **{name: optional_str_arg(name, value) for name, value in filters.items()},
        }
        scope = DecisionScope.of(self.core.catalog.grants, who)
        notifications = self.core.store.recorder.select_notifications(
            after, limit, topics=DECISION_TOPICS, inclusive_of_start=False
        )
        found = []
        for notification in notifications:
            event = self.core.store.events.mapper.to_domain_event(notification)
            view = decision_record(
                notification.topic, event.originator_id, vars(event), notification.id
            )
            if all(
                value is None or view[key] == value for key, value in wanted.items()
            ) and scope.admits(view["model"], view["actor"]):
                found.append(view)
        return found

    # -- internals ------------------------------------------------------------

    def visible(
        self,
        principal: Principal | None,
        model: str,
        record_id: object,
        *,
        allow_purged: bool = False,
        include_deleted: bool | None = None,
    ) -> Record:
        """The record, if the principal may read it (``GRANT_MISSING`` otherwise, before anything is loaded).
        A deleted record needs the ``read_deleted`` grant; ``include_deleted=False`` makes it
        ``RECORD_DELETED`` instead (``get`` without asking for deleted records)."""
        principal, record_id = principal_arg(principal), record_id_arg(model, record_id)
        who = _require(principal)
        grants = self.core.catalog.model(model).grants
        grants.require_reading(model, who.roles, deleted=bool(include_deleted))
        record = self.core.loader.load(record_id, tenant=who.tenant_id, model=model)
        if record is None or (record.state == PURGED and not allow_purged):
            raise RecordNotFoundError(f"{model} {record_id} not found")
        if record.state == DELETED and include_deleted is False:
            raise RecordDeletedError(f"{model} {record.id} is deleted")
        if record.state == DELETED:
            grants.require_reading(model, who.roles, deleted=True)
        return record


def _require(principal: object) -> Principal:
    principal = principal_arg(principal)
    if principal is None:
        raise UnauthenticatedError("No principal: every read needs an authenticated caller")
    return principal


def _entry(
    event: Any, before: dict[str, Any], after: dict[str, Any], lifecycle: str, *, purged: bool
) -> HistoryEntry:
    """One history entry. A purged record's entries keep their metadata, the names of the fields each event
    changed among it (events written before the names were kept: none, once redacted), and no values: no
    failure's reason either (told from the tombstone, ``purged``: an event whose key this process still holds
    cached, destroyed by another process's purge, still opens here)."""
    meta = event.meta
    redacted = is_shredded(event)
    changes = {
        k: {"before": before.get(k), "after": after.get(k)}
        for k in sorted(set(before) | set(after))
        if before.get(k) != after.get(k)
    }
    reason = (
        getattr(event, "reason", None)
        if isinstance(event, Record.Failed) and not redacted and not purged
        else None
    )
    return HistoryEntry(
        version=event.originator_version,
        event=type(event).__name__,
        at=event.timestamp.isoformat(),
        actor=meta.get("actor"),
        purpose=meta.get("purpose"),
        correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"),
        decision_id=meta.get("decision_id"),
        idempotency_key=meta.get("idempotency_key"),
        audit=meta.get("audit") or {},
        state=lifecycle,
        before=before,
        after=after,
        hash=event.hash,
        approval=meta.get("approval"),
        changes=changes,
        changed=list(meta.get(CHANGED) or ([] if redacted else changes)),
        redacted=redacted,
        reason=reason or None,
    )

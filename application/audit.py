"""Auditors' reads: a record as of a time, the difference between two versions, and an export of a time range.

All stay in the principal's tenant and check every link they read, as the other
reads do. ``as_of`` and ``diff`` answer for records the principal may read
(the read grants of ``domain.grants``: a deleted record needs ``read_deleted``;
a purged one is ``NOT_FOUND``). ``export`` streams every event of the log
stored in [``since``, ``until``) in the principal's tenant, for the models whose
``audit`` grant the principal holds (their auditors; with the refusals naming
no model of the catalog, as ``decisions`` shows them to auditors), as
JSON-native dicts: what it is, who did it and why, its data (``null`` and
``redacted`` once the record was purged), its hash-chain link and the SHA-256
of its stored bytes, which ``writ_log_manifest`` and the checkpoints vouch for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.decisions import decision_record
from application.door import int_arg, principal_arg, time_arg
from domain.approval import APPROVAL_TOPICS
from domain.decision import Decision
from domain.errors import RecordNotFoundError, UnauthenticatedError
from domain.grants import DecisionScope
from domain.limits import INT_MAX
from domain.principal import Principal
from domain.record import EVENT_TOPICS, Record, is_shredded

if TYPE_CHECKING:
    from application.core import Core
    from application.queries import Reads

PAGE = 1000
PAYLOADS = ("data", "changes", "reason")


class Audit:
    """``as_of``, ``diff`` and ``export`` of ``Writ``: auditors' reads, each record read as ``Reads`` allows."""

    def __init__(self, core: Core, reads: Reads) -> None:
        self.core, self.reads = core, reads

    def as_of(
        self, principal: Principal | None, model: str, record_id: UUID | str, at: str | datetime
    ) -> dict[str, Any]:
        """The record as it stood at time ``at`` (its last event at or before then)."""
        moment = datetime.fromisoformat(str(time_arg("at", at)))
        record = self.reads.visible(principal, model, record_id)
        version = 0
        for event, _ in self.core.loader.history(record.id):
            if event.timestamp > moment:
                break
            version = event.originator_version
        if version == 0:
            raise RecordNotFoundError(
                f"{model} {record.id} did not exist yet at {moment.isoformat()}"
            )
        then = self.core.loader.load(record.id, version=version)
        assert then is not None
        return then.view()

    def diff(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        from_version: int,
        to_version: int,
    ) -> dict[str, dict[str, Any]]:
        """The fields that differ between two versions of the record: ``{field: {"before", "after"}}``."""
        record = self.reads.visible(principal, model, record_id)
        older, newer = (
            self._version_of(record, int_arg(name, value, 1, INT_MAX))
            for name, value in (("from_version", from_version), ("to_version", to_version))
        )
        return {
            name: {"before": older.get(name), "after": newer.get(name)}
            for name in sorted(set(older) | set(newer))
            if older.get(name) != newer.get(name)
        }

    def export(
        self, principal: Principal | None, *, since: str | datetime, until: str | datetime
    ) -> Iterator[dict[str, Any]]:
        """Every event stored in [``since``, ``until``) in the principal's tenant, for the models whose
        ``audit`` grant the principal holds, in log order."""
        who = principal_arg(principal)
        if who is None:
            raise UnauthenticatedError("No principal: every read needs an authenticated caller")
        start, end = (
            datetime.fromisoformat(str(time_arg(n, v)))
            for n, v in (("since", since), ("until", until))
        )
        scope = DecisionScope.of(self.core.catalog.grants, who)
        topics = (*EVENT_TOPICS, Decision.Created.TOPIC, *APPROVAL_TOPICS)
        position = 0
        while True:
            page = self.core.store.recorder.select_notifications(
                position, PAGE, topics=topics, inclusive_of_start=False
            )
            # the page's keys read again: one another process destroyed (a purge) must not open from the cache
            self.core.keys.prefetch(UUID(str(n.originator_id)) for n in page)
            for notification in page:
                line = self._exported(notification, who.tenant_id, scope, start, end)
                if line is not None:
                    yield line
            if len(page) < PAGE:
                return
            position = page[-1].id

    # -- internals ------------------------------------------------------------

    def _version_of(self, record: Record, version: int) -> dict[str, Any]:
        if version > record.version:
            raise RecordNotFoundError(f"{record.model} {record.id} has no version {version}")
        then = (
            record
            if version == record.version
            else self.core.loader.load(record.id, version=version)
        )
        assert then is not None
        return {name: value for name, value in then.view().items() if not name.startswith("_")}

    def _exported(
        self, notification: Any, tenant: str, scope: DecisionScope, start: datetime, end: datetime
    ) -> dict[str, Any] | None:
        event = self.core.store.events.mapper.to_domain_event(notification)
        state = dict(vars(event))
        if not start <= state["timestamp"] < end:
            return None
        line = {
            "position": notification.id,
            "id": str(event.originator_id),
            "version": event.originator_version,
            "type": notification.topic,
            "at": state["timestamp"].isoformat(),
            "sha256": hashlib.sha256(bytes(notification.state)).hexdigest(),
        }
        if notification.topic == Decision.Created.TOPIC:
            decided = decision_record(
                notification.topic, event.originator_id, state, notification.id
            )
            if decided["tenant"] != tenant or not scope.audits(decided["model"]):
                return None
            return {**line, "decision": decided}
        meta = state.get("meta") or {}
        owner_tenant = meta.get("tenant", state.get("tenant"))
        model = meta.get("model", state.get("model"))
        if owner_tenant != tenant or model not in scope.audited:
            return None
        shredded = is_shredded(event)
        body = {
            key: (None if shredded else state[key])
            for key in (*PAYLOADS, "command", "preview", "results")
            if key in state
        }
        return {
            **line,
            "tenant": owner_tenant,
            "model": model,
            "meta": meta,
            "hash": state.get("hash"),
            "redacted": shredded,
            **body,
            **{key: state[key] for key in ("approver", "by", "code", "message") if key in state},
        }

"""How decisions are recorded.

An allowed command's decision travels inside the event it allowed: the event's
``meta`` carries the decision id, operation, reasons, catalog version and the
whole audit context, so the decision and the change are one atomic fact. A
command that is refused, parked or fails is recorded as a ``Decision``
aggregate of its own. ``decision_view`` reads either back in one shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import uuid4

from domain.commands import Create, RecordCommand
from domain.decision import Decision
from domain.errors import WritError
from domain.pipeline import Verdict
from domain.principal import Principal
from domain.record import Record

_OPERATION_OF_EVENT: dict[type[Any], str] = {
    Record.Created: "create", Record.Replaced: "update", Record.Patched: "update",
    Record.Deleted: "delete", Record.Restored: "restore", Record.Purged: "force_delete",
}
DECISION_TOPICS: list[str] = [Decision.Created.TOPIC, *(cls.TOPIC for cls in _OPERATION_OF_EVENT)]


def allowed_meta(principal: Principal, command: Create | RecordCommand, verdict: Verdict,
                 policy_version: str, idempotency_key: str | None) -> dict[str, Any]:
    """The audit metadata (and allowed decision) stamped on the events of one command."""
    return {
        "actor": principal.user_id, "roles": sorted(principal.roles), "tenant": principal.tenant_id,
        "model": command.model, "operation": command.operation, "purpose": principal.purpose,
        "correlation_id": principal.correlation_id, "causation_id": principal.causation_id,
        "decision_id": str(uuid4()), "policy_version": policy_version, "reasons": list(verdict.reasons),
        "idempotency_key": idempotency_key, "audit": dict(principal.audit_attributes),
    }


def refused_decision(principal: Principal | None, command: Create | RecordCommand, verdict: Verdict | None,
                     error: WritError, policy_version: str, idempotency_key: str | None,
                     outcome: str, now: datetime) -> Decision:
    """A decision that changed nothing: refused, parked or failed."""
    reasons = list(verdict.reasons) if verdict else [f"{error.code}: {error.message}"]
    return Decision.record(
        now, outcome=outcome, operation=command.operation, model=command.model[:200],
        tenant=principal.tenant_id if principal else None,
        record_id=str(command.id) if isinstance(command, RecordCommand) else None,
        actor=principal.user_id if principal else None,
        roles=sorted(principal.roles) if principal else [],
        purpose=principal.purpose if principal else None,
        correlation_id=principal.correlation_id if principal else None,
        code=error.code, reasons=reasons, policy_version=policy_version,
        idempotency_key=idempotency_key, audit=dict(principal.audit_attributes) if principal else {},
    )


def decision_view(event: Any, position: int) -> dict[str, Any]:
    """One decision, whether recorded on its own or inside the event it allowed."""
    if isinstance(event, Decision.Created):
        fields = {k: v for k, v in vars(event).items()
                  if k not in ("originator_id", "originator_version", "originator_topic", "timestamp")}
        return {"id": str(event.originator_id), "position": position, "at": event.timestamp.isoformat(),
                **fields}
    meta = event.meta
    return {
        "id": meta.get("decision_id"), "position": position, "at": event.timestamp.isoformat(),
        "outcome": "allowed", "operation": meta.get("operation", _OPERATION_OF_EVENT.get(type(event))),
        "model": meta.get("model"), "tenant": meta.get("tenant"), "record_id": str(event.originator_id),
        "actor": meta.get("actor"), "roles": meta.get("roles", []), "purpose": meta.get("purpose"),
        "correlation_id": meta.get("correlation_id"), "code": None, "reasons": meta.get("reasons", []),
        "policy_version": meta.get("policy_version"), "idempotency_key": meta.get("idempotency_key"),
        "audit": meta.get("audit", {}),
    }

"""How decisions are recorded.

An allowed command's decision travels inside the event it allowed: the event's
``meta`` carries the decision id, operation, reasons, catalog version and the
whole audit context, so the decision and the change are one atomic fact. A
command that is refused, parked or fails is recorded as a ``Decision``
aggregate of its own. ``decision_record`` reads either back in one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
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


DECISION_FIELDS = ("outcome", "operation", "record_id", "roles", "code", "reasons", "policy_version")
"""What a published event carries of its decision (``infrastructure.bus.contract``)."""

_OPERATION_OF_TOPIC = {cls.TOPIC: operation for cls, operation in _OPERATION_OF_EVENT.items()}
_INTERNAL = ("originator_id", "originator_version", "originator_topic", "timestamp")


def decision_record(topic: str, originator_id: Any, state: Mapping[str, Any], position: int) -> dict[str, Any]:
    """One decision, whether recorded on its own (``Decision.Created``) or inside the record event it
    allowed, from the stored event's attributes (``state``: as decoded, the timestamp ISO text or a datetime)."""
    at = state["timestamp"]
    at = at if isinstance(at, str) else at.isoformat()
    if topic == Decision.Created.TOPIC:
        fields = {k: v for k, v in state.items() if k not in _INTERNAL}
        return {"id": str(originator_id), "position": position, "at": at, **fields}
    meta = state.get("meta") or {}
    return {
        "id": meta.get("decision_id"), "position": position, "at": at,
        "outcome": "allowed", "operation": meta.get("operation", _OPERATION_OF_TOPIC.get(topic)),
        "model": meta.get("model", state.get("model")), "tenant": meta.get("tenant", state.get("tenant")),
        "record_id": str(originator_id), "actor": meta.get("actor"), "roles": meta.get("roles", []),
        "purpose": meta.get("purpose"), "correlation_id": meta.get("correlation_id"), "code": None,
        "reasons": meta.get("reasons", []), "policy_version": meta.get("policy_version"),
        "idempotency_key": meta.get("idempotency_key"), "audit": meta.get("audit", {}),
    }

"""How decisions are recorded.

An allowed command's decision travels inside the event it allowed: the event's
``meta`` carries the decision id, operation, reasons, catalog version and the
whole audit context, so the decision and the change are one atomic fact. A
command that is refused, parked or fails is recorded as a ``Decision``
aggregate of its own, and so is a read an entry point accounts for (outcome
``read``). ``decision_record`` reads either back in one shape.

A refused command may be anything a caller sent (``Subject``): what a decision
stores of it is made safe first — text escaped and capped, a principal that
breaks the hard limits left out, at most ``MAX_REASONS`` reasons — so the
decision can always be encoded, stored and published.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from application.door import Subject
from domain.commands import AnyCommand
from domain.decision import Decision
from domain.errors import WritError
from domain.ids import new_id
from domain.limits import HARD_LIMITS, label, unstorable
from domain.pipeline import Verdict
from domain.principal import Principal
from domain.record import Record

MAX_REASONS = 20
MAX_REASON_LENGTH = 1_000

_OPERATION_OF_EVENT: dict[type[Any], str] = {
    Record.Created: "create",
    Record.Replaced: "update",
    Record.Patched: "update",
    Record.Deleted: "delete",
    Record.Restored: "restore",
    Record.Purged: "force_delete",
}
DECISION_TOPICS: list[str] = [Decision.Created.TOPIC, *(cls.TOPIC for cls in _OPERATION_OF_EVENT)]


def allowed_meta(
    principal: Principal,
    command: AnyCommand,
    verdict: Verdict,
    policy_version: str,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The audit metadata (and allowed decision) stamped on the events of one command."""
    return {
        "actor": principal.user_id,
        "roles": sorted(principal.roles),
        "tenant": principal.tenant_id,
        "model": command.model,
        "operation": command.operation,
        "purpose": principal.purpose,
        "correlation_id": principal.correlation_id,
        "causation_id": principal.causation_id,
        "decision_id": str(new_id()),
        "policy_version": policy_version,
        "reasons": list(verdict.reasons),
        "idempotency_key": idempotency_key,
        "audit": dict(principal.audit_attributes),
    }


def refused_decision(
    principal: object,
    subject: Subject,
    verdict: Verdict | None,
    error: WritError,
    policy_version: str,
    idempotency_key: object,
    outcome: str,
    now: datetime,
) -> Decision:
    """A decision that changed nothing: refused, parked or failed (whatever the caller sent)."""
    reasons = list(verdict.reasons) if verdict else [error.reason]
    return _decision(
        principal, subject, outcome, error.code, reasons, policy_version, idempotency_key, now
    )


def read_decision(
    principal: object,
    subject: Subject,
    error: WritError | None,
    reasons: Sequence[str],
    policy_version: str,
    now: datetime,
) -> Decision:
    """The record of a read (outcome ``read``): what was asked and how much was answered, or the refusal's
    code; ``reasons`` must not hold the values read (decisions outlive a purge)."""
    told = [*reasons, *([error.reason] if error else [])]
    return _decision(
        principal, subject, "read", error.code if error else None, told, policy_version, None, now
    )


def _decision(
    principal: object,
    subject: Subject,
    outcome: str,
    code: str | None,
    reasons: Sequence[str],
    policy_version: str,
    idempotency_key: object,
    now: datetime,
) -> Decision:
    caller = (
        principal
        if isinstance(principal, Principal) and principal.problem(HARD_LIMITS) is None
        else None
    )
    return Decision.record(
        now,
        outcome=outcome,
        operation=subject.operation,
        model=_text(subject.model),
        tenant=caller.tenant_id if caller else None,
        record_id=None if subject.record_id is None else _text(subject.record_id),
        actor=caller.user_id if caller else None,
        roles=sorted(caller.roles) if caller else [],
        purpose=caller.purpose if caller else None,
        correlation_id=caller.correlation_id if caller else None,
        code=code,
        reasons=_bounded(reasons),
        policy_version=policy_version,
        idempotency_key=None if idempotency_key is None else _text(idempotency_key, 200),
        audit=dict(caller.audit_attributes) if caller else {},
    )


def _text(value: object, cap: int = 100) -> str:
    """A caller's value as decisions store it: clean text as is, other text escaped, other types named."""
    if isinstance(value, UUID):
        return str(value)
    return label(value, cap) if isinstance(value, str) else f"<{type(value).__name__}>"


def _bounded(reasons: Sequence[str]) -> list[str]:
    kept = [
        reason[:MAX_REASON_LENGTH]
        if unstorable(reason) is None
        else ascii(reason)[:MAX_REASON_LENGTH]
        for reason in reasons[:MAX_REASONS]
    ]
    if len(reasons) > MAX_REASONS:
        kept.append(f"... and {len(reasons) - MAX_REASONS:,} more")
    return kept


DECISION_FIELDS = (
    "outcome",
    "operation",
    "record_id",
    "roles",
    "code",
    "reasons",
    "policy_version",
)
"""What a published event carries of its decision (``infrastructure.bus.contract``)."""

_OPERATION_OF_TOPIC = {cls.TOPIC: operation for cls, operation in _OPERATION_OF_EVENT.items()}
_INTERNAL = ("originator_id", "originator_version", "originator_topic", "timestamp")


def decision_record(
    topic: str, originator_id: Any, state: Mapping[str, Any], position: int
) -> dict[str, Any]:
    """One decision, whether recorded on its own (``Decision.Created``) or inside the record event it
    allowed, from the stored event's attributes (``state``: as decoded, the timestamp ISO text or a datetime)."""
    at = state["timestamp"]
    at = at if isinstance(at, str) else at.isoformat()
    if topic == Decision.Created.TOPIC:
        fields = {k: v for k, v in state.items() if k not in _INTERNAL}
        return {"id": str(originator_id), "position": position, "at": at, **fields}
    meta = state.get("meta") or {}
    return {
        "id": meta.get("decision_id"),
        "position": position,
        "at": at,
        "outcome": "allowed",
        "operation": meta.get("operation", _OPERATION_OF_TOPIC.get(topic)),
        "model": meta.get("model", state.get("model")),
        "tenant": meta.get("tenant", state.get("tenant")),
        "record_id": str(originator_id),
        "actor": meta.get("actor"),
        "roles": meta.get("roles", []),
        "purpose": meta.get("purpose"),
        "correlation_id": meta.get("correlation_id"),
        "code": None,
        "reasons": meta.get("reasons", []),
        "policy_version": meta.get("policy_version"),
        "idempotency_key": meta.get("idempotency_key"),
        "audit": meta.get("audit", {}),
    }

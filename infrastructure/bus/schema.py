"""The integration-event schema: what Writ publishes on the bus, version 1.

Subscribers depend on this contract, never on the stored event state. One
``IntegrationEvent`` per record event or decision, encoded with orjson:

* ``schema`` is ``"writ.event/1"``; additive changes keep the major version,
  anything else bumps it (``from_json`` refuses an unknown major version).
* ``event_id`` is ``"{record_or_decision_id}:{version}"`` — stable across
  republishing, and the AMQP ``message_id`` consumers deduplicate on.
* ``event_type`` is the record event (``Created``, ``Replaced``, ``Patched``,
  ``Deleted``, ``Restored``, ``Purged``, ``Failed``) or ``Decision``.
* ``data`` (Created/Replaced), ``changes`` (Patched), ``reason`` (Failed) carry
  the payload; when the record has been purged they are ``null`` and
  ``redacted`` is true. ``decision`` carries the decision: for a record event the
  one that allowed it (outcome ``allowed``), for a ``Decision`` event the refusal.

The routing key is ``tenant.model.EventType`` (dots inside a segment become
``_``, a missing tenant is ``_``). Idempotency-key events are internal and are
never published.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any
from uuid import UUID

import orjson

SCHEMA = "writ.event/1"
RECORD_PREFIX = "writ.record:"
DECISION_TOPIC = "writ.decision:Created"
PUBLISHED_PREFIXES = (RECORD_PREFIX, DECISION_TOPIC)
DATA_EVENTS = frozenset({"Created", "Replaced", "Patched"})
_DECISION_FIELDS = ("outcome", "operation", "record_id", "roles", "code", "reasons", "policy_version")


class SchemaVersionError(ValueError):
    """A message written under a schema major version this code does not know."""


@dataclass(frozen=True, slots=True)
class IntegrationEvent:
    """One published event, schema ``writ.event/1``."""

    event_id: str
    event_type: str
    record_id: str
    version: int
    position: int
    occurred_at: str
    tenant: str | None
    model: str | None
    actor: str | None = None
    purpose: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    decision_id: str | None = None
    idempotency_key: str | None = None
    audit: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    changes: dict[str, Any] | None = None
    reason: str | None = None
    redacted: bool = False
    hash: str | None = None
    decision: dict[str, Any] | None = None
    schema: str = SCHEMA

    @property
    def routing_key(self) -> str:
        return ".".join(_segment(part) for part in (self.tenant, self.model, self.event_type))

    def to_json(self) -> bytes:
        return orjson.dumps(self)

    @classmethod
    def from_json(cls, body: bytes) -> IntegrationEvent:
        raw = orjson.loads(body)
        if not str(raw.get("schema", "")).startswith("writ.event/1"):
            raise SchemaVersionError(f"Unknown integration-event schema: {raw.get('schema')!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def event_id(originator_id: UUID | str, version: int) -> str:
    return f"{originator_id}:{version}"


def is_published(topic: str) -> bool:
    return topic.startswith(PUBLISHED_PREFIXES)


def from_stored(position: int, originator_id: UUID | str, version: int, topic: str, state: dict[str, Any],
                *, redact: bool = False) -> IntegrationEvent:
    """The integration event for one stored record event or decision."""
    if topic == DECISION_TOPIC:
        return _from_decision(position, originator_id, version, state)
    kind = topic.removeprefix(RECORD_PREFIX)
    meta = state.get("meta") or {}
    data, changes = (None, None) if redact else (state.get("data"), state.get("changes"))
    return IntegrationEvent(
        event_id=event_id(originator_id, version), event_type=kind, record_id=str(originator_id),
        version=version, position=position, occurred_at=state["timestamp"],
        tenant=meta.get("tenant", state.get("tenant")), model=meta.get("model", state.get("model")),
        actor=meta.get("actor"), purpose=meta.get("purpose"), correlation_id=meta.get("correlation_id"),
        causation_id=meta.get("causation_id"), decision_id=meta.get("decision_id"),
        idempotency_key=meta.get("idempotency_key"), audit=meta.get("audit") or {},
        data=data, changes=changes, reason=state.get("reason"), redacted=redact and kind in DATA_EVENTS,
        hash=state.get("hash"), decision=_allowed_decision(originator_id, meta),
    )


def _allowed_decision(record_id: UUID | str, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The decision that allowed a record event travels in its metadata."""
    if "operation" not in meta:
        return None
    return {"outcome": "allowed", "operation": meta["operation"], "record_id": str(record_id),
            "roles": meta.get("roles"), "code": None, "reasons": meta.get("reasons"),
            "policy_version": meta.get("policy_version")}


def _from_decision(position: int, decision_id: UUID | str, version: int,
                   state: dict[str, Any]) -> IntegrationEvent:
    return IntegrationEvent(
        event_id=event_id(decision_id, version), event_type="Decision",
        record_id=state.get("record_id") or "", version=version, position=position,
        occurred_at=state["timestamp"], tenant=state.get("tenant"), model=state.get("model"),
        actor=state.get("actor"), purpose=state.get("purpose"),
        correlation_id=state.get("correlation_id"), decision_id=str(decision_id),
        idempotency_key=state.get("idempotency_key"), audit=state.get("audit") or {},
        decision={name: state.get(name) for name in _DECISION_FIELDS},
    )


def _segment(value: str | None) -> str:
    return (value or "_").replace(".", "_")[:80]

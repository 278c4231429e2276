"""The integration-event contract: what Writ publishes on the bus, version 1.

Subscribers depend on this contract, never on the stored event state. One
``IntegrationEvent`` per record event or decision, encoded with orjson:

* ``schema`` is ``"writ.event/1"``; additive changes keep the major version,
  anything else bumps it (``from_json`` refuses an unknown major version).
* ``event_id`` is ``"{record_or_decision_id}:{version}"`` — stable across
  republishing, and the AMQP ``message_id`` consumers deduplicate on.
* ``event_type`` is the record event (``Created``, ``Replaced``, ``Patched``,
  ``Deleted``, ``Restored``, ``Purged``, ``Failed``), ``Decision``, or an
  approval's (``Requested``, ``Approved``, ``Rejected``, ``Cancelled``,
  ``Expired``, ``Executed``, ``Failed``: model ``Approval``, routed
  ``tenant.Approval.<Type>``, the request's details in ``data``) for notifiers.
* ``data`` (Created/Replaced), ``changes`` (Patched), ``reason`` (Failed) carry
  the payload; when the record has been purged they are ``null`` and
  ``redacted`` is true, and an approval event of a request the purge erased
  keeps ``PLAIN_APPROVAL`` of its ``data`` alone (``erased``). ``decision`` carries the decision: for a record event the
  one that allowed it (outcome ``allowed``), for a ``Decision`` event the refusal.

The routing key is ``tenant.model.EventType``, each segment encoded
injectively by ``routing_segment``: characters other than letters, digits and
``_ : @ + = -`` become ``%XX`` (UTF-8), so tenants ``acme.x`` and ``acme_x``
route as ``acme%2Ex`` and ``acme_x``; a missing tenant is ``_`` (a tenant named
``_`` is ``%5F``; an encoded segment over 120 characters becomes ``~`` and a
SHA-256 prefix). Idempotency-key events are internal and are never published.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any
from uuid import UUID

import orjson

from application.decisions import DECISION_FIELDS, decision_record
from infrastructure.documents import kept_json

SCHEMA = "writ.event/1"
DEFAULT_EXCHANGE = "writ.events"
RECORD_PREFIX = "writ.record:"
DECISION_TOPIC = "writ.decision:Created"
APPROVAL_PREFIX = "writ.approval:"
PUBLISHED_PREFIXES = (RECORD_PREFIX, DECISION_TOPIC, APPROVAL_PREFIX)
APPROVAL_MODEL = "Approval"
"""The model segment of an approval event's routing key: ``tenant.Approval.Requested`` (``data.model`` names
the model the request is about)."""
_APPROVAL_DATA = (
    "model",
    "operation",
    "record_id",
    "record_version",
    "requester",
    "reasons",
    "preview",
    "required",
    "expires_at",
    "approver",
    "roles",
    "reason",
    "by",
    "results",
    "code",
    "message",
    "fingerprint",
)
DATA_EVENTS = frozenset({"Created", "Replaced", "Patched"})
SEALED_EVENTS = DATA_EVENTS | {"Failed"}
"""The record events that carry something of the record's data (a failure's reason may quote it)."""
PLAIN_APPROVAL = ("approval_id", "model", "operation", "record_id", "record_version", "required")
"""What an approval event still says once a purge erased its request: which request, about what, and how many
approvers."""
MAX_ROUTING_KEY = 255
"""AMQP routing keys are short strings: at most 255 bytes."""
MAX_SEGMENT = 120
"""A longer encoded segment (a 64-character tenant id of dots, say) is replaced by ``~`` and a 40-digit
SHA-256 prefix, so every key fits ``MAX_ROUTING_KEY``: tenant and model (63 characters) and event type."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_:@+=-]")


class ContractVersionError(ValueError):
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
        return routing_key(self.tenant, self.model, self.event_type)

    def to_json(self) -> bytes:
        return kept_json(self)  # a relayed batch keeps its messages until the broker confirms them

    @classmethod
    def from_json(cls, body: bytes) -> IntegrationEvent:
        raw = orjson.loads(body)
        if not isinstance(raw, dict) or _major(raw.get("schema")) != SCHEMA:
            schema = raw.get("schema") if isinstance(raw, dict) else None
            raise ContractVersionError(f"Unknown integration-event schema: {schema!r}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


def _major(schema: Any) -> str | None:
    """``writ.event/N`` of a schema ``writ.event/N`` or ``writ.event/N.M`` (a minor version: additive)."""
    if not isinstance(schema, str):
        return None
    name, slash, version = schema.partition("/")
    return f"{name}/{version.partition('.')[0]}" if slash else None


def sealed_by(event: IntegrationEvent) -> UUID | None:
    """Whose data key seals what ``event`` carries of a record's data, so a purge erases it: an approval event's
    request (whose key the purge of any record it covers destroys), a record event's record when it carries data,
    changes or a failure's reason; None for the rest (a decision, a deletion, an event not of Writ's). The model
    name ``Approval`` is the approval events' alone: the catalog refuses it for a model."""
    try:
        if event.model == APPROVAL_MODEL:
            return UUID(str((event.data or {}).get("approval_id")))
        if event.event_type in SEALED_EVENTS:
            return UUID(event.record_id)
    except (ValueError, TypeError, AttributeError):  # not shaped as Writ writes them
        return None
    return None


def erased(event: IntegrationEvent) -> IntegrationEvent:
    """``event`` as it reads once a purge destroyed its ``sealed_by`` key: a record event without its data,
    changes or reason, an approval event with ``PLAIN_APPROVAL`` alone, ``redacted`` true. The relay publishes
    such an event so, and a dead letter goes back so: one rule for both."""
    plain = (
        {k: v for k, v in event.data.items() if k in PLAIN_APPROVAL}
        if event.model == APPROVAL_MODEL and isinstance(event.data, dict)
        else None
    )
    return replace(event, data=plain, changes=None, reason=None, redacted=True)


def event_id(originator_id: UUID | str, version: int) -> str:
    return f"{originator_id}:{version}"


def is_published(topic: str) -> bool:
    return topic.startswith(PUBLISHED_PREFIXES)


def from_stored(
    position: int,
    originator_id: UUID | str,
    version: int,
    topic: str,
    state: Mapping[str, Any],
) -> IntegrationEvent:
    """The integration event for one stored record event, decision or approval event (``state``: the decoded
    attributes; ``erased`` takes out what a purge since erased)."""
    if topic.startswith(APPROVAL_PREFIX):
        return _approval_event(position, originator_id, version, topic, state)
    decision = decision_record(topic, originator_id, state, position)
    summary = {name: decision.get(name) for name in DECISION_FIELDS}
    if topic == DECISION_TOPIC:
        return IntegrationEvent(
            event_id=event_id(originator_id, version),
            event_type="Decision",
            record_id=decision["record_id"] or "",
            version=version,
            position=position,
            occurred_at=decision["at"],
            tenant=decision["tenant"],
            model=decision["model"],
            actor=decision["actor"],
            purpose=decision["purpose"],
            correlation_id=decision["correlation_id"],
            decision_id=str(originator_id),
            idempotency_key=decision["idempotency_key"],
            audit=decision.get("audit") or {},
            decision=summary,
        )
    kind = topic.removeprefix(RECORD_PREFIX)
    meta = state.get("meta") or {}
    return IntegrationEvent(
        event_id=event_id(originator_id, version),
        event_type=kind,
        record_id=str(originator_id),
        version=version,
        position=position,
        occurred_at=decision["at"],
        tenant=decision["tenant"],
        model=decision["model"],
        actor=decision["actor"],
        purpose=decision["purpose"],
        correlation_id=decision["correlation_id"],
        causation_id=meta.get("causation_id"),
        decision_id=decision["id"],
        idempotency_key=decision["idempotency_key"],
        audit=decision["audit"] or {},
        data=state.get("data"),
        changes=state.get("changes"),
        reason=state.get("reason"),
        hash=state.get("hash"),
        decision=summary if "operation" in meta else None,
    )


def _approval_event(
    position: int, approval_id: UUID | str, version: int, topic: str, state: Mapping[str, Any]
) -> IntegrationEvent:
    requester = state.get("requester") or {}
    data = {"approval_id": str(approval_id), **{k: state[k] for k in _APPROVAL_DATA if k in state}}
    at = state["timestamp"]
    return IntegrationEvent(
        event_id=event_id(approval_id, version),
        event_type=topic.removeprefix(APPROVAL_PREFIX),
        record_id=str(state.get("record_id") or ""),
        version=version,
        position=position,
        occurred_at=at if isinstance(at, str) else at.isoformat(),
        tenant=state.get("tenant"),
        model=APPROVAL_MODEL,
        actor=state.get("approver") or state.get("by") or requester.get("user_id"),
        purpose=requester.get("purpose"),
        correlation_id=requester.get("correlation_id"),
        decision_id=state.get("decision_id"),
        data=data,
        # the actor's agent, as writes
        audit=dict(state.get("audit") or requester.get("audit_attributes") or {}),
    )


def routing_segment(value: str | None) -> str:
    """One routing-key segment, encoded injectively (see the module docstring)."""
    if value is None:
        return "_"
    if value == "_":
        return "%5F"
    encoded = _UNSAFE.sub(lambda m: "".join(f"%{byte:02X}" for byte in m.group().encode()), value)
    # "~" never survives the encoding, so no short value looks like this
    if len(encoded) > MAX_SEGMENT:
        return "~" + hashlib.sha256(value.encode()).hexdigest()[:40]
    return encoded


def routing_key(tenant: str | None, model: str | None, event_type: str) -> str:
    """``tenant.model.EventType``, each segment encoded by ``routing_segment``."""
    key = ".".join(routing_segment(part) for part in (tenant, model, event_type))
    if len(key.encode()) > MAX_ROUTING_KEY:
        raise ValueError(f"routing key longer than {MAX_ROUTING_KEY} bytes: {key[:80]}...")
    return key

"""What commands and queries return: write results, evaluations, history entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from eventsourcing.persistence import Recording


def last_position(recordings: Iterable[Recording[Any]]) -> int | None:
    """The log position of a save's last event (None for a save that recorded nothing)."""
    return max((r.notification.id for r in recordings if r.notification is not None), default=None)


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of one executed (or parked) write.

    A plain dataclass, not a pydantic model: it is built on every write's hot path.
    """

    status: Literal["executed", "pending_approval"]
    model: str
    id: str
    version: int | None
    state: str
    position: int | None
    decision_id: str
    approval_id: str | None = None
    data: dict[str, Any] | None = None
    replayed: bool = False
    children: list[str] = field(default_factory=list)
    """Ids of the child records a nested create made with it (grandchildren under theirs, not here)."""

    def placed(self, position: int | None) -> WriteResult:
        """This result at ``position`` in the log (``dataclasses.replace`` inspects every field each time)."""
        return WriteResult(
            self.status,
            self.model,
            self.id,
            self.version,
            self.state,
            position,
            self.decision_id,
            self.approval_id,
            self.data,
            self.replayed,
            self.children,
        )

    def to_dict(self) -> dict[str, Any]:
        """The result's fields as a dict (``data`` and ``children`` copied one level: nothing mutates deeper,
        and ``dataclasses.asdict``'s deep copy of the data was a sixth of a create's CPU)."""
        return {
            "status": self.status,
            "model": self.model,
            "id": self.id,
            "version": self.version,
            "state": self.state,
            "position": self.position,
            "decision_id": self.decision_id,
            "approval_id": self.approval_id,
            "data": None if self.data is None else dict(self.data),
            "replayed": self.replayed,
            "children": list(self.children),
        }


class BulkResult(_Result):
    """What a bulk update did: how many records it updated (each its own event), under one decision and
    one correlation id; or, parked, the approval it waits for."""

    status: Literal["executed", "pending_approval"]
    model: str
    updated_count: int
    ids: list[str]
    decision_id: str
    correlation_id: str | None = None
    approval_id: str | None = None
    position: int | None = None
    replayed: bool = False


class ApprovalResult(_Result):
    """Where an approval request stands after an approve, reject or cancel (and, once executed, the writes)."""

    approval_id: str
    status: str
    approvals: list[str]
    required: int
    results: list[WriteResult]
    bulk: BulkResult | None = None
    outcome: dict[str, Any] | None = None
    """How the request ended (``domain.approval.outcome_of``); None while it waits for more approvals."""
    position: int | None = None
    """The log position of this action's last event: pass it as ``Writ-Wait-Position`` to read the views
    with the action in them (None when the action wrote nothing)."""

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        body["results"] = [result.to_dict() for result in self.results]
        return body


class Evaluation(_Result):
    """A dry run: what Writ would decide, why, and what would change."""

    outcome: Literal["allow", "deny", "require_approval"]
    code: str | None
    message: str | None
    errors: list[dict[str, Any]]
    reasons: list[str]
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    policy_version: str


class HistoryEntry(_Result):
    """One event of a record's history, with the values it changed."""

    version: int
    event: str
    at: str
    actor: str | None
    purpose: str | None
    correlation_id: str | None
    causation_id: str | None
    decision_id: str | None
    idempotency_key: str | None
    audit: dict[str, str]
    state: str
    before: dict[str, Any]
    after: dict[str, Any]
    changes: dict[str, dict[str, Any]]
    hash: str
    approval: dict[str, Any] | None = None
    changed: list[str] = []
    """The fields the event changed: metadata, kept after a purge erases their values."""
    redacted: bool = False
    """The event's values were erased by a purge: ``before``, ``after``, ``changes`` and ``reason`` are empty."""
    reason: str | None = None
    """Why a ``Failed`` event failed (None once redacted)."""

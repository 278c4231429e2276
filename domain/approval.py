"""The ``ApprovalRequest`` aggregate: a parked command waiting for people to approve it.

A command whose policy says ``require_approval`` is not executed: it becomes a
request holding the exact command (its JSON and a fingerprint of it and of the
record version it was evaluated against), who asked and why, the reasons and
a preview of the change. Its lifecycle:

    pending ── Approved x N ──▶ Executed │ Failed       (on the last approval, in the same save)
       ├────── Rejected
       ├────── Cancelled   (by the requester)
       └────── Expired     (after ``expires_at``; recorded when someone next acts on it)

Each approver approves the fingerprint they were shown; ``N`` distinct
approvers are needed (four eyes and beyond), ``N`` as the catalog in force
when they act says (the caller passes it: a request parked under 2 waits for 3
once the catalog asks for 3, and one that already has enough under a lowered
count executes at the next approval); the requester may not approve their own
request. Approvals, rejections and cancellations carry the audit attributes
the person acted with (an agent acting for them), as a write's events do. The
checks live in the command methods, never in event bodies (those are replayed
on every load).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.errors import (
    AlreadyApprovedError,
    ApprovalNotPendingError,
    ApprovalStaleError,
    SelfApprovalForbiddenError,
)
from domain.ids import new_id

PENDING, EXECUTED, FAILED, REJECTED, CANCELLED, EXPIRED = (
    "pending",
    "executed",
    "failed",
    "rejected",
    "cancelled",
    "expired",
)
APPROVAL_TOPICS: tuple[str, ...] = ()  # filled below, once the classes exist


class ApprovalRequest(Aggregate):
    TOPIC = "writ.approval:ApprovalRequest"

    class Event(Aggregate.Event):
        """Every event after the request names its tenant and model too, so it can be routed on its own."""

        tenant: str
        model: str

    class Created(Aggregate.Created):
        """The request: published as ``Requested``."""

        TOPIC = "writ.approval:Requested"
        tenant: str
        model: str
        operation: str
        command: dict[str, Any]
        fingerprint: str
        record_id: str | None
        record_version: int | None
        requester: dict[str, Any]
        reasons: list[str]
        preview: dict[str, Any]
        required: int
        expires_at: str
        decision_id: str
        covers: list[str]
        """The records the request's data is about: purging one of them erases the request's copy too."""

    class Approved(Event):
        TOPIC = "writ.approval:Approved"
        approver: str
        roles: list[str]
        reason: str | None
        fingerprint: str
        audit: dict[str, str] | None = None
        """The approver's audit attributes (``{"agent": ...}``); None in events stored before they were kept."""

        def apply(self, request: ApprovalRequest) -> None:
            request.approvers.append(self.approver)
            request.acted_with[self.approver] = dict(self.audit or {})

    class Rejected(Event):
        TOPIC = "writ.approval:Rejected"
        approver: str
        roles: list[str]
        reason: str
        audit: dict[str, str] | None = None

        def apply(self, request: ApprovalRequest) -> None:
            request.status, request.outcome = (
                REJECTED,
                outcome_of("Rejected", vars(self), self.timestamp),
            )
            request.acted_with[self.approver] = dict(self.audit or {})

    class Cancelled(Event):
        TOPIC = "writ.approval:Cancelled"
        by: str
        reason: str | None
        audit: dict[str, str] | None = None

        def apply(self, request: ApprovalRequest) -> None:
            request.status, request.outcome = (
                CANCELLED,
                outcome_of("Cancelled", vars(self), self.timestamp),
            )
            request.acted_with[self.by] = dict(self.audit or {})

    class Expired(Event):
        TOPIC = "writ.approval:Expired"

        def apply(self, request: ApprovalRequest) -> None:
            request.status, request.outcome = (
                EXPIRED,
                outcome_of("Expired", vars(self), self.timestamp),
            )

    class Executed(Event):
        TOPIC = "writ.approval:Executed"
        results: list[dict[str, Any]]

        def apply(self, request: ApprovalRequest) -> None:
            request.status, request.results = EXECUTED, list(self.results)
            request.outcome = outcome_of("Executed", vars(self), self.timestamp)

    class Failed(Event):
        TOPIC = "writ.approval:Failed"
        code: str
        message: str

        def apply(self, request: ApprovalRequest) -> None:
            request.status, request.outcome = (
                FAILED,
                outcome_of("Failed", vars(self), self.timestamp),
            )

    def __init__(
        self,
        tenant: str,
        model: str,
        operation: str,
        command: dict[str, Any],
        fingerprint: str,
        record_id: str | None,
        record_version: int | None,
        requester: dict[str, Any],
        reasons: list[str],
        preview: dict[str, Any],
        required: int,
        expires_at: str,
        decision_id: str,
        covers: list[str] | None = None,
    ) -> None:
        self.tenant, self.model, self.operation = tenant, model, operation
        self.command, self.fingerprint = command, fingerprint
        self.record_id, self.record_version = record_id, record_version
        self.requester, self.reasons, self.preview = requester, reasons, preview
        self.required, self.expires_at, self.decision_id = required, expires_at, decision_id
        self.covers = list(covers or ())
        self.status = PENDING
        self.approvers: list[str] = []
        self.outcome: dict[str, Any] | None = None
        """How the request ended (``outcome_of``); None while it is pending."""
        self.acted_with: dict[str, dict[str, str]] = {}
        """Who approved, rejected or cancelled -> the audit attributes they acted with."""
        self.results: list[dict[str, Any]] = []

    # -- commands -------------------------------------------------------------

    @classmethod
    def request(
        cls, now: datetime, approval_id: UUID | None = None, **fields: Any
    ) -> ApprovalRequest:
        return cls._create(cls.Created, id=approval_id or new_id(), timestamp=now, **fields)

    def approve(
        self,
        approver: str,
        roles: list[str],
        reason: str | None,
        fingerprint: str,
        now: datetime,
        *,
        required: int,
        audit: dict[str, str],
    ) -> None:
        """One more approval; ``required``: how many the catalog in force asks for. An approver who already
        approved may act again only to execute a request that has enough approvals (no new approval then)."""
        self._require_pending(now)
        if approver == self.requester.get("user_id"):
            raise SelfApprovalForbiddenError(
                f"{approver} asked for this change and may not approve it"
            )
        if approver in self.approvers and self.missing(required):
            raise AlreadyApprovedError(
                f"{approver} already approved this request; it waits for {self.missing(required)} more approver(s)"
            )
        if fingerprint != self.fingerprint:
            raise ApprovalStaleError(
                "The request changed since it was shown to you; look at it again"
            )
        if approver not in self.approvers:
            self._trigger(
                self.Approved,
                now,
                approver=approver,
                roles=roles,
                reason=reason,
                fingerprint=fingerprint,
                audit=audit,
            )

    def reject(
        self, approver: str, roles: list[str], reason: str, now: datetime, *, audit: dict[str, str]
    ) -> None:
        self._require_pending(now)
        self._trigger(
            self.Rejected, now, approver=approver, roles=roles, reason=reason, audit=audit
        )

    def cancel(self, by: str, reason: str | None, now: datetime, *, audit: dict[str, str]) -> None:
        self._require_pending(now)
        self._trigger(self.Cancelled, now, by=by, reason=reason, audit=audit)

    def expire(self, now: datetime) -> None:
        if self.status == PENDING:
            self._trigger(self.Expired, now)

    def executed(self, results: list[dict[str, Any]], now: datetime) -> None:
        self._trigger(self.Executed, now, results=results)

    def failed(self, code: str, message: str, now: datetime) -> None:
        self._trigger(self.Failed, now, code=code, message=message)

    def _trigger(
        self, event_class: type[ApprovalRequest.Event], now: datetime, **fields: Any
    ) -> None:
        self.trigger_event(
            event_class, timestamp=now, tenant=self.tenant, model=self.model, **fields
        )

    # -- queries --------------------------------------------------------------

    def missing(self, required: int) -> int:
        """Approvals still needed when ``required`` are (the catalog in force decides, not ``self.required``)."""
        return max(0, required - len(self.approvers))

    def stamp(self) -> dict[str, Any]:
        """What the events it executes say of the approval (``meta.approval``): its id, who approved, and the
        audit attributes (an agent) of the approvers who acted with any."""
        stamp: dict[str, Any] = {"id": str(self.id), "approvers": list(self.approvers)}
        audit = {
            name: self.acted_with[name] for name in self.approvers if self.acted_with.get(name)
        }
        return {**stamp, "audit": audit} if audit else stamp

    def is_expired(self, now: datetime) -> bool:
        return self.status == EXPIRED or (
            self.status == PENDING and now >= datetime.fromisoformat(self.expires_at)
        )

    def _require_pending(self, now: datetime) -> None:
        if self.is_expired(now):
            raise ApprovalNotPendingError(f"Approval {self.id} expired at {self.expires_at}")
        if self.status != PENDING:
            raise ApprovalNotPendingError(f"Approval {self.id} is {self.status}, not pending")


ENDINGS: dict[str, str] = {
    "Rejected": REJECTED,
    "Cancelled": CANCELLED,
    "Expired": EXPIRED,
    "Executed": EXECUTED,
    "Failed": FAILED,
}
"""The events that end a request (by class name), and the status each leaves."""


def outcome_of(kind: str, fields: Mapping[str, Any], at: datetime | str) -> dict[str, Any]:
    """How a request ended, in the one shape every reader shows (the aggregate, the approvals view, HTTP,
    the CLI, the agent tools): ``status``; ``by``, who ended it (the rejecting approver, the cancelling
    requester; None when it expired, executed or failed on its own); ``reason`` (the rejection's or
    cancellation's reason, a failure's message); ``code`` (a failure's error code, else None); ``at`` (UTC,
    ISO-8601 with microseconds); ``audit``, the audit attributes (an agent) ``by`` acted with ({} when none).
    ``kind`` is the ending event's class name, ``fields`` its attributes."""
    moment = datetime.fromisoformat(at) if isinstance(at, str) else at
    return {
        "status": ENDINGS[kind],
        "by": fields.get("approver") or fields.get("by"),
        "reason": fields.get("message") if kind == "Failed" else fields.get("reason"),
        "code": fields.get("code") if kind == "Failed" else None,
        "at": moment.astimezone(UTC).isoformat(timespec="microseconds"),
        "audit": fields.get("audit") or {},
    }


APPROVAL_TOPICS = tuple(
    cls.TOPIC
    for cls in (
        ApprovalRequest.Created,
        ApprovalRequest.Approved,
        ApprovalRequest.Rejected,
        ApprovalRequest.Cancelled,
        ApprovalRequest.Expired,
        ApprovalRequest.Executed,
        ApprovalRequest.Failed,
    )
)
"""The notification-log topics of every approval event."""

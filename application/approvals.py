"""Approvals on the command side: parking a write that needs them, and deciding on parked writes.

A write whose policy says ``require_approval`` writes nothing to its records:
``park`` saves an ``ApprovalRequest`` holding the exact commands, a
fingerprint of them and of the record versions they were evaluated against,
who asked and why, the reasons and the preview, together with the parked
decision (one save). Approvers ``approve`` or ``reject`` with a reason (the
model's ``approve`` grant; never their own request); the requester may
``cancel``. Each records the audit attributes the person acted with (an agent
acting for them). On the last of the ``N`` approvals (``N`` as the catalog in
force asks now, not as it asked at the park) the commands are decided again,
on the records as they are now and as the requester, and executed in the same
save as the approval and its ``Executed`` event: so they run exactly once,
even when two approvers' final clicks race (the loser's save conflicts, it
retries, and finds the request no longer pending). If a record changed since
the request was evaluated, or the stored command no longer matches its
fingerprint, nothing is written to the records and the request ends
``failed`` with ``APPROVAL_STALE``. Requests expire (``expires_after``, 7
days by default); an expired one cannot be approved. Every refusal of an
approve, reject or cancel is recorded, an id no request of the caller's tenant
has (another tenant's included, recorded alike) and a reason that breaks the
purpose's limits too. ``approval`` reads one request, for its requester, its
eligible approvers and the model's auditors (``domain.grants``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.approval_execution import ApprovalExecution, result_of
from application.door import Subject, optional_str_arg, principal_arg, record_id_arg
from application.fingerprints import kept
from application.parking import approvers_needed, fingerprint, requester_of
from application.results import ApprovalResult, WriteResult, last_position
from application.retry import ATTEMPTS, Lost
from domain.approval import EXECUTED, ApprovalRequest, outcome_of
from domain.commands import AnyCommand, Create
from domain.errors import (
    GrantMissingError,
    InvalidInputError,
    ModelUnknownError,
    RecordNotFoundError,
    UnauthenticatedError,
    WritError,
)
from domain.grants import ApprovalScope
from domain.ids import new_id
from domain.limits import text_problem
from domain.principal import Principal

if TYPE_CHECKING:
    from application.bulk import Bulk
    from application.core import Core

APPROVAL = "Approval"
"""The model a refusal names when no request of the caller's tenant has the id it was given."""


class Approvals:
    """``park`` (for ``application.commands``), and ``approval``, ``approve``, ``reject``, ``cancel`` of ``Writ``."""

    def __init__(self, core: Core, bulk: Bulk) -> None:
        self.core = core
        self.execution = ApprovalExecution(core, bulk)

    def park(
        self,
        principal: Principal,
        commands: list[AnyCommand],
        verdicts: list[Any],
        versions: dict[str, int],
        idempotency_key: str | None,
        now: datetime,
    ) -> list[WriteResult]:
        """Save the approval request and the parked decision; nothing is written to the records."""
        spec = self.core.catalog.model(commands[0].model)
        bodies = [c.model_dump(mode="json", exclude={"idempotency_key"}) for c in commands]
        creates = {i: str(new_id()) for i, c in enumerate(commands) if isinstance(c, Create)}
        for index, record_id in creates.items():
            bodies[index]["id"] = record_id  # the record the approved create will make
        required = approvers_needed(spec.approvals, {"commands": bodies}, commands[0].operation)
        parked = next(v for v in verdicts if v.action == "require_approval")
        decision = self.core.parked_decision(principal, commands[0], parked, idempotency_key, now)
        request = ApprovalRequest.request(
            now,
            tenant=principal.tenant_id,
            model=commands[0].model,
            operation=commands[0].operation,
            command={"commands": bodies},
            fingerprint=kept(self.core.keys, fingerprint(bodies, versions)),
            record_id=_record_of(commands[0], bodies[0]),
            record_version=versions.get(_record_of(commands[0], bodies[0]) or ""),
            requester=requester_of(principal),
            reasons=list(parked.reasons),
            preview={"before": parked.before, "after": parked.after, "count": len(commands)},
            required=required,
            expires_at=(now + spec.approvals.expires_after).isoformat(),
            decision_id=str(decision.id),
            covers=[str(body["id"]) for body in bodies if body.get("id")],
        )
        results = [
            WriteResult(
                status="pending_approval",
                model=c.model,
                id=body.get("id") or "",
                version=None,
                state="pending_approval",
                position=None,
                decision_id=str(decision.id),
                approval_id=str(request.id),
            )
            for c, body in zip(commands, bodies, strict=True)
        ]
        key = self.core.repeats.claim(
            principal, commands, idempotency_key, [r.to_dict() for r in results], now
        )
        recordings = self.core.save(request, decision, *key)
        position = next(
            r.notification.id for r in recordings if r.domain_event.originator_id == request.id
        )
        return [WriteResult(**{**r.to_dict(), "position": position}) for r in results]

    def approval(self, principal: Principal | None, approval_id: UUID | str) -> dict[str, Any]:
        """A request as its aggregate has it now (the read model lists them: ``Views.approvals``), for its
        requester, its eligible approvers and the model's auditors (``GRANT_MISSING`` for anyone else)."""
        who = _who(principal)
        request = self._request(who, approval_id)
        ApprovalScope.of(self.core.catalog.grants, who).require(
            request.model, request.requester.get("user_id"), request.id
        )
        return _shown(request, self.core.clock(), self._required(request))

    def approve(
        self,
        principal: Principal | None,
        approval_id: UUID | str,
        *,
        reason: str | None = None,
        fingerprint: str | None = None,
    ) -> ApprovalResult:
        """Approve (the model's ``approve`` grant); once the request has as many approvals as the catalog in force
        asks for, the commands execute now."""
        who, request, texts = self._open(
            principal, "approve", approval_id, reason=reason, fingerprint=fingerprint
        )

        def attempt(lost_before: int) -> ApprovalResult:
            current = self._request(who, approval_id) if lost_before else request
            self._require_grant(who, current, "approve")
            now = self.core.clock()
            self._expire_if_due(who, current, now)
            required = self._required(current)
            self._refusing(
                who,
                current,
                "approve",
                lambda: current.approve(
                    who.user_id,
                    sorted(who.roles),
                    texts["reason"],
                    texts["fingerprint"] or current.fingerprint,
                    now,
                    required=required,
                    audit=dict(who.audit_attributes),
                ),
            )
            if current.missing(required):
                saved = self.core.save(current)
                return result_of(current, required, position=last_position(saved))
            return self.execution.execute(who, current, now, required)

        # another approver's click (or a write to its records) saved first: again, on the request as it is now
        lost = Lost(
            who,
            Subject("approve", request.model, request.id),
            None,
            f"Approval {request.id} changed while it was approved, {ATTEMPTS} times; "
            "nothing was written: try again",
        )
        return self.core.retry.run(attempt, lost)

    def reject(
        self, principal: Principal | None, approval_id: UUID | str, reason: str
    ) -> ApprovalResult:
        """Reject with a reason (the model's ``approve`` grant): the commands never run."""
        who, request, texts = self._open(principal, "reject", approval_id, reason=reason)
        if not (texts["reason"] or "").strip():
            self._refuse_approval(
                who, request, "reject", InvalidInputError("A rejection needs a reason")
            )
        self._require_grant(who, request, "reject")
        now = self.core.clock()
        self._expire_if_due(who, request, now)
        self._refusing(
            who,
            request,
            "reject",
            lambda: request.reject(
                who.user_id,
                sorted(who.roles),
                str(texts["reason"]),
                now,
                audit=dict(who.audit_attributes),
            ),
        )
        saved = self.core.save(request)
        return result_of(request, self._required(request), position=last_position(saved))

    def cancel(
        self, principal: Principal | None, approval_id: UUID | str, *, reason: str | None = None
    ) -> ApprovalResult:
        """The requester withdraws the request."""
        who, request, texts = self._open(principal, "cancel", approval_id, reason=reason)
        if request.requester.get("user_id") != who.user_id:
            self._refuse_approval(
                who,
                request,
                "cancel",
                # not naming who asked: the caller may not be one who may read the request
                GrantMissingError(f"Only the user who asked may cancel approval {request.id}"),
            )
        now = self.core.clock()
        self._expire_if_due(who, request, now)
        self._refusing(
            who,
            request,
            "cancel",
            lambda: request.cancel(
                who.user_id, texts["reason"], now, audit=dict(who.audit_attributes)
            ),
        )
        saved = self.core.save(request)
        return result_of(request, self._required(request), position=last_position(saved))

    # -- internals ------------------------------------------------------------

    def _open(
        self, principal: object, action: str, approval_id: object, **texts: object
    ) -> tuple[Principal, ApprovalRequest, dict[str, str | None]]:
        """The caller, the request they act on and their texts (a reason, a fingerprint), checked; a refusal here
        is recorded like any other. An id no request of the caller's tenant has is refused and recorded the same
        way whether it exists in another tenant or nowhere: the decision names neither the request's model nor
        anything else of it."""
        subject = Subject(action, APPROVAL, approval_id)
        try:
            who = _who(principal)
            request = self._request(who, approval_id)
            subject = Subject(action, request.model, request.id)
            checked = {name: self._text(name, value) for name, value in texts.items()}
        except WritError as error:
            self.core.record_refusal(principal, subject, None, error, None, "refused")
            raise
        return who, request, checked

    def _text(self, name: str, value: object) -> str | None:
        """A reason or fingerprint: text within the purpose's limits (``purpose_length``, no NUL, no lone
        surrogate), or None."""
        text = optional_str_arg(name, value)
        problem = (
            None if text is None else text_problem(text, self.core.catalog.limits.purpose_length)
        )
        if problem is not None:
            raise InvalidInputError(f"The {name} {problem}")
        return text

    def _required(self, request: ApprovalRequest) -> int:
        """Approvers the request needs under the catalog in force now (its model gone: as it was parked)."""
        spec = self.core.catalog.models.get(request.model)
        return (
            request.required
            if spec is None
            else approvers_needed(spec.approvals, request.command, request.operation)
        )

    def _request(self, who: Principal, approval_id: object) -> ApprovalRequest:
        wanted = record_id_arg("Approval", approval_id)
        request: Any
        # its key read again: one another process destroyed (its record's purge) must not open here from the cache
        self.core.keys.prefetch([wanted])
        try:
            request = self.core.store.repository.get(wanted)
        except AggregateNotFoundError:
            request = None
        if not isinstance(request, ApprovalRequest) or request.tenant != who.tenant_id:
            raise RecordNotFoundError(f"Approval {wanted} not found")
        return request

    def _require_grant(self, who: Principal, request: ApprovalRequest, action: str) -> None:
        spec = self.core.catalog.models.get(request.model)
        if spec is None:  # the model left the catalog since: no one holds its approve grant
            self._refuse_approval(
                who,
                request,
                action,
                ModelUnknownError(
                    f"{request.model} is no longer in the catalog: its requests can be neither approved "
                    "nor rejected (the requester may cancel, or they expire)"
                ),
            )
        if not spec.grants.allows("approve", who.roles):
            roles = ", ".join(sorted(who.roles)) or "no role"
            self._refuse_approval(
                who,
                request,
                action,
                GrantMissingError(
                    f"{roles} may not approve {request.model} changes (the approve grant)"
                ),
            )

    def _expire_if_due(self, who: Principal, request: ApprovalRequest, now: datetime) -> None:
        if request.status == "pending" and request.is_expired(now):
            request.expire(now)
            self.core.save(request)

    def _refusing(self, who: Principal, request: ApprovalRequest, action: str, step: Any) -> None:
        try:
            step()
        except WritError as error:
            self._refuse_approval(who, request, action, error)

    def _refuse_approval(
        self, who: Principal, request: ApprovalRequest, action: str, error: WritError
    ) -> NoReturn:
        self.core.record_refusal(
            who, Subject(action, request.model, request.id), None, error, None, "refused"
        )
        raise error


def _who(principal: object) -> Principal:
    who = principal_arg(principal)
    if who is None:
        raise UnauthenticatedError(
            "No principal: deciding on approvals needs an authenticated caller"
        )
    return who


def _record_of(command: AnyCommand, body: dict[str, Any]) -> str | None:
    return str(body["id"]) if body.get("id") else None


def _shown(request: ApprovalRequest, now: datetime, required: int) -> dict[str, Any]:
    """The request as ``approval`` shows it: ``required`` is what the catalog in force asks for, ``audit`` the
    audit attributes (an agent) each person who approved, rejected or cancelled it acted with, where any."""
    status = "expired" if request.is_expired(now) else request.status
    outcome = request.outcome
    if outcome is None and status == "expired":  # past its expiry, and nobody has acted on it since
        outcome = outcome_of("Expired", {}, request.expires_at)
    return {
        "id": str(request.id),
        "tenant": request.tenant,
        "model": request.model,
        "operation": request.operation,
        "record_id": request.record_id,
        "status": status,
        "requester": request.requester.get("user_id"),
        "purpose": request.requester.get("purpose"),
        "reasons": request.reasons,
        "preview": request.preview,
        "command": request.command,
        "fingerprint": request.fingerprint,
        "required": required,
        "approvals": list(request.approvers),
        "expires_at": request.expires_at,
        "decided_by": outcome["by"] if outcome else None,
        "outcome": outcome,
        "audit": {name: audit for name, audit in request.acted_with.items() if audit},
        "results": request.results if request.status == EXECUTED else [],
    }

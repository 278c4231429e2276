"""Approvals on the command side: parking a write that needs them, and deciding on parked writes.

A write whose policy says ``require_approval`` writes nothing to its records:
``park`` saves an ``ApprovalRequest`` holding the exact commands, a
fingerprint of them and of the record versions they were evaluated against,
who asked and why, the reasons and the preview, together with the parked
decision (one save). Approvers ``approve`` or ``reject`` with a reason (the
model's ``approve`` grant; never their own request); the requester may
``cancel``. ``approval`` reads one request, for its requester, its eligible
approvers and the model's auditors (``domain.grants``). On the last of the ``N`` approvals the commands are decided again,
on the records as they are now and as the requester, and executed in the same
save as the approval and its ``Executed`` event: so they run exactly once,
even when two approvers' final clicks race (the loser's save conflicts, it
retries, and finds the request no longer pending). If a record changed since
the request was evaluated, or the stored command no longer matches its
fingerprint, nothing is written to the records and the request ends
``failed`` with ``APPROVAL_STALE``. Requests expire (``expires_after``, 7
days by default); an expired one cannot be approved.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application import collector
from application.door import Subject, optional_str_arg, principal_arg, record_id_arg
from application.parking import fingerprint, principal_of, requester_of
from application.results import ApprovalResult, BulkResult, WriteResult
from domain.approval import EXECUTED, ApprovalRequest
from domain.commands import Create, RecordCommand, parse_command
from domain.errors import (
    ApprovalStaleError,
    GrantMissingError,
    InvalidInputError,
    RecordNotFoundError,
    UnauthenticatedError,
    VersionConflictError,
    WritError,
)
from domain.grants import ApprovalScope
from domain.principal import Principal
from domain.record import Record

if TYPE_CHECKING:
    from collections.abc import Callable

    from eventsourcing.application import Repository
    from eventsourcing.persistence import Recording

    from application.loading import RecordLoader
    from domain.catalog import Catalog
    from domain.decision import Decision
    from domain.idempotency import IdempotencyKey

AnyCommand = Create | RecordCommand


class ApprovalsMixin:
    """``approve``, ``reject``, ``cancel`` and ``approval`` of ``application.service.Writ``."""

    catalog: Catalog
    repository: Repository[UUID]
    max_attempts: int
    clock: Callable[[], datetime]
    save: Callable[..., list[Recording[UUID]]]
    parked_decision: Callable[..., Decision]
    failed_decision: Callable[..., Decision]
    claim_key: Callable[..., list[IdempotencyKey]]
    _load: Callable[[UUID, Principal | None], Record | None]
    _apply_approved: Callable[..., tuple[list[Record], list[WriteResult]]]
    loader: RecordLoader
    remember_counters: Callable[..., None]
    decide_bulk: Callable[..., list[Any]]
    bulk_patch: Callable[..., tuple[BulkResult, Any]]
    save_bulk: Callable[..., list[Any]]
    record_refusal: Callable[..., None]

    def park(self, principal: Principal, commands: list[AnyCommand], verdicts: list[Any],
             versions: dict[str, int], idempotency_key: str | None, now: datetime) -> list[WriteResult]:
        """Save the approval request and the parked decision; nothing is written to the records."""
        spec = self.catalog.model(commands[0].model)
        bodies = [c.model_dump(mode="json", exclude={"idempotency_key"}) for c in commands]
        creates = {i: str(uuid4()) for i, c in enumerate(commands) if isinstance(c, Create)}
        for index, record_id in creates.items():
            bodies[index]["id"] = record_id  # the record the approved create will make
        required = max(spec.approvals.required_for(c.operation) for c in commands)
        parked = next(v for v in verdicts if v.action == "require_approval")
        decision = self.parked_decision(principal, commands[0], parked, idempotency_key, now)
        request = ApprovalRequest.request(
            now, tenant=principal.tenant_id, model=commands[0].model, operation=commands[0].operation,
            command={"commands": bodies}, fingerprint=fingerprint(bodies, versions),
            record_id=_record_of(commands[0], bodies[0]), record_version=versions.get(_record_of(commands[0],
                                                                                                 bodies[0]) or ""),
            requester=requester_of(principal), reasons=list(parked.reasons),
            preview={"before": parked.before, "after": parked.after, "count": len(commands)}, required=required,
            expires_at=(now + spec.approvals.expires_after).isoformat(), decision_id=str(decision.id),
            covers=[str(body["id"]) for body in bodies if body.get("id")],
        )
        results = [WriteResult(status="pending_approval", model=c.model, id=body.get("id") or "", version=None,
                               state="pending_approval", position=None, decision_id=str(decision.id),
                               approval_id=str(request.id)) for c, body in zip(commands, bodies, strict=True)]
        key = self.claim_key(principal, commands, idempotency_key, [r.to_dict() for r in results], now)
        recordings = self.save(request, decision, *key)
        position = next(r.notification.id for r in recordings if r.domain_event.originator_id == request.id)
        return [WriteResult(**{**r.to_dict(), "position": position}) for r in results]

    def approval(self, principal: Principal | None, approval_id: UUID | str) -> dict[str, Any]:
        """A request as its aggregate has it now (the read model lists them: ``Views.approvals``), for its
        requester, its eligible approvers and the model's auditors (``GRANT_MISSING`` for anyone else)."""
        who = _who(principal)
        request = self._request(who, approval_id)
        ApprovalScope.of(self.catalog.grants, who).require(request.model, request.requester.get("user_id"),
                                                           request.id)
        return _shown(request, self.clock())

    def approve(self, principal: Principal | None, approval_id: UUID | str, *, reason: str | None = None,
                fingerprint: str | None = None) -> ApprovalResult:
        """Approve (the model's ``approve`` grant); on the last approval the commands execute now."""
        who = _who(principal)
        reason, fingerprint = optional_str_arg("reason", reason), optional_str_arg("fingerprint", fingerprint)
        for attempt in range(self.max_attempts):
            request = self._request(who, approval_id)
            self._require_grant(who, request, "approve")
            now = self.clock()
            self._expire_if_due(who, request, now)
            try:
                self._refusing(who, request, "approve", lambda r=request, n=now: r.approve(
                    who.user_id, sorted(who.roles), reason, fingerprint or r.fingerprint, n))
                if request.missing:
                    self.save(request)
                    return _result(request)
                return self._execute(who, request, now)
            except IntegrityError:  # another approver's click (or a write to its records) saved first: again
                if attempt + 1 == self.max_attempts:
                    lost = VersionConflictError(f"Approval {request.id} changed while it was approved, "
                                                f"{self.max_attempts} times; nothing was written: try again")
                    self.record_refusal(who, Subject("approve", request.model, request.id), None, lost, None,
                                        "failed")
                    raise lost from None
        raise AssertionError("unreachable")

    def reject(self, principal: Principal | None, approval_id: UUID | str, reason: str) -> ApprovalResult:
        """Reject with a reason (the model's ``approve`` grant): the commands never run."""
        who, reason = _who(principal), _reason(reason)
        request = self._request(who, approval_id)
        self._require_grant(who, request, "approve")
        now = self.clock()
        self._expire_if_due(who, request, now)
        self._refusing(who, request, "reject", lambda: request.reject(who.user_id, sorted(who.roles), reason, now))
        self.save(request)
        return _result(request)

    def cancel(self, principal: Principal | None, approval_id: UUID | str, *,
               reason: str | None = None) -> ApprovalResult:
        """The requester withdraws the request."""
        who = _who(principal)
        request = self._request(who, approval_id)
        if request.requester.get("user_id") != who.user_id:
            self._refuse_approval(who, request, "cancel", GrantMissingError(
                f"Only {request.requester.get('user_id')}, who asked, may cancel approval {request.id}"))
        now = self.clock()
        self._expire_if_due(who, request, now)
        self._refusing(who, request, "cancel", lambda: request.cancel(who.user_id, optional_str_arg(
            "reason", reason), now))
        self.save(request)
        return _result(request)

    # -- internals ------------------------------------------------------------

    def _execute(self, approver: Principal, request: ApprovalRequest, now: datetime) -> ApprovalResult:
        """Decide the commands again, as the requester, on the records as they are; save them with the
        approval's ``Executed`` event, or end the request ``failed`` and write nothing to the records."""
        if "bulk" in request.command:
            with collector.paused():  # thousands of records alive until the save (``application.collector``)
                return self._execute_bulk(approver, request, now)
        bodies: list[dict[str, Any]] = request.command.get("commands", [])
        try:
            commands = [parse_command({k: v for k, v in body.items() if not (k == "id" and body["kind"] == "create")})
                        for body in bodies]
            records, results = self._reapply(request, commands, bodies, now)
        except WritError as error:
            request.failed(error.code, error.message, now)
            self.save(request, self.failed_decision(approver, request, error, now))
            raise
        request.executed([r.to_dict() for r in results], now)
        recordings = self.save(request, *records)
        self.remember_counters(records, saved=True)
        positions = {r.domain_event.originator_id: r.notification.id for r in recordings}
        return _result(request, [WriteResult(**{**r.to_dict(), "position": positions.get(UUID(r.id))})
                                 for r in results])

    def _execute_bulk(self, approver: Principal, request: ApprovalRequest, now: datetime) -> ApprovalResult:
        """The approved bulk on exactly the records it was evaluated against, each at that version."""
        body = request.command["bulk"]
        try:
            matched = {UUID(rid): version for rid, version in body["matched"].items()}
            records = self.loader.load_many(list(matched), tenant=request.tenant, model=body["model"])
            versions = {str(rid): record.version for rid, record in records.items()}
            if fingerprint([body], versions) != request.fingerprint:
                raise ApprovalStaleError(f"Approval {request.id}: records of the bulk changed since it was "
                                         "evaluated, or the request was altered; nothing was written (ask again)")
            requester = principal_of(request.requester)
            decided = self.decide_bulk(requester, body["model"], [records[rid] for rid in matched], body["changes"],
                                       now)
            refused = next((v.error for _, v in decided if v.error is not None and v.action != "require_approval"),
                           None)
            if refused is not None:
                raise refused
        except WritError as error:
            request.failed(error.code, error.message, now)
            self.save(request, self.failed_decision(approver, request, error, now))
            raise
        approval = {"id": str(request.id), "approvers": list(request.approvers)}
        result, patch = self.bulk_patch(requester, body["model"], decided, None, now, approval)
        request.executed([result.to_dict()], now)
        recordings = self.save_bulk(decided, patch, [request])
        position = max((r.notification.id for r in recordings if r.notification is not None), default=None)
        return _result(request, bulk=result.model_copy(update={"position": position}))

    def _reapply(self, request: ApprovalRequest, commands: list[AnyCommand], bodies: list[dict[str, Any]],
                 now: datetime) -> tuple[list[Record], list[WriteResult]]:
        requester = principal_of(request.requester)
        versions: dict[str, int] = {}
        records: dict[UUID, Record] = {}
        loaded: list[tuple[AnyCommand, Record | None]] = []
        for command in commands:
            record = None if isinstance(command, Create) else records.get(command.id) or self._load(command.id,
                                                                                                   requester)
            if record is not None:
                versions.setdefault(str(record.id), record.version)
                records[record.id] = record
            loaded.append((command, record))
        if fingerprint(bodies, versions) != request.fingerprint:
            raise ApprovalStaleError(f"Approval {request.id}: the records or the command changed since it was "
                                     "evaluated; nothing was written (ask again)")
        return self._apply_approved(request, requester, loaded, bodies, now)

    def _request(self, who: Principal, approval_id: object) -> ApprovalRequest:
        wanted = record_id_arg("Approval", approval_id)
        request: Any
        try:
            request = self.repository.get(wanted)
        except AggregateNotFoundError:
            request = None
        if not isinstance(request, ApprovalRequest) or request.tenant != who.tenant_id:
            raise RecordNotFoundError(f"Approval {wanted} not found")
        return request

    def _require_grant(self, who: Principal, request: ApprovalRequest, action: str) -> None:
        if not self.catalog.model(request.model).grants.allows("approve", who.roles):
            roles = ", ".join(sorted(who.roles)) or "no role"
            self._refuse_approval(who, request, action, GrantMissingError(
                f"{roles} may not approve {request.model} changes (the approve grant)"))

    def _expire_if_due(self, who: Principal, request: ApprovalRequest, now: datetime) -> None:
        if request.status == "pending" and request.is_expired(now):
            request.expire(now)
            self.save(request)

    def _refusing(self, who: Principal, request: ApprovalRequest, action: str, step: Any) -> None:
        try:
            step()
        except WritError as error:
            self._refuse_approval(who, request, action, error)

    def _refuse_approval(self, who: Principal, request: ApprovalRequest, action: str,
                         error: WritError) -> None:
        self.record_refusal(who, Subject(action, request.model, request.id), None, error, None, "refused")
        raise error


def _who(principal: object) -> Principal:
    who = principal_arg(principal)
    if who is None:
        raise UnauthenticatedError("No principal: deciding on approvals needs an authenticated caller")
    return who


def _reason(reason: object) -> str:
    text = optional_str_arg("reason", reason)
    if not (text or "").strip():
        raise InvalidInputError("A rejection needs a reason")
    return str(text)


def _record_of(command: AnyCommand, body: dict[str, Any]) -> str | None:
    return str(body["id"]) if body.get("id") else None


def _result(request: ApprovalRequest, results: list[WriteResult] | None = None,
            bulk: BulkResult | None = None) -> ApprovalResult:
    return ApprovalResult(approval_id=str(request.id), status=request.status, approvals=list(request.approvers),
                          required=request.required, results=results or [], bulk=bulk)


def _shown(request: ApprovalRequest, now: datetime) -> dict[str, Any]:
    status = "expired" if request.is_expired(now) else request.status
    return {"id": str(request.id), "tenant": request.tenant, "model": request.model, "operation": request.operation,
            "status": status, "requester": request.requester.get("user_id"),
            "purpose": request.requester.get("purpose"), "reasons": request.reasons, "preview": request.preview,
            "command": request.command, "fingerprint": request.fingerprint, "required": request.required,
            "approvals": list(request.approvers), "expires_at": request.expires_at,
            "outcome": request.outcome_reason, "results": request.results if request.status == EXECUTED else []}

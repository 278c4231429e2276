"""Executing an approved request: its commands decided again and saved with the approval's ``Executed`` event.

On the last approval the commands are decided again, on the records as they are now and as the requester,
under the catalog in force, and applied in the same save as the request's ``Executed`` event (their events
carry ``meta.approval``: the request, its approvers and the audit attributes they approved with). A bulk runs
on exactly the records it was evaluated against, each at that version. A record that changed since the request
was evaluated, or a stored command that no longer matches its fingerprint, ends the request ``failed`` with
``APPROVAL_STALE`` (recorded as a failed decision) and writes nothing to the records.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application import collector
from application.fingerprints import matches
from application.parking import fingerprint, principal_of
from application.results import ApprovalResult, BulkResult, WriteResult, last_position
from domain.approval import ApprovalRequest
from domain.commands import AnyCommand, Create, parse_command
from domain.errors import ApprovalStaleError, WritError
from domain.principal import Principal
from domain.record import Record

if TYPE_CHECKING:
    from application.bulk import Bulk
    from application.core import Core


class ApprovalExecution:
    """The execution half of ``application.approvals.Approvals``: the last approval runs the parked commands."""

    def __init__(self, core: Core, bulk: Bulk) -> None:
        self.core, self.bulk = core, bulk

    def execute(
        self, approver: Principal, request: ApprovalRequest, now: datetime, required: int
    ) -> ApprovalResult:
        """Decide the commands again, as the requester, on the records as they are; save them with the
        approval's ``Executed`` event, or end the request ``failed`` and write nothing to the records."""
        if "bulk" in request.command:
            # thousands of records alive until the save (``application.collector``)
            with collector.paused():
                return self._execute_bulk(approver, request, now, required)
        bodies: list[dict[str, Any]] = request.command.get("commands", [])
        try:
            commands = [
                parse_command(
                    {k: v for k, v in body.items() if not (k == "id" and body["kind"] == "create")}
                )
                for body in bodies
            ]
            records, results = self._reapply(request, commands, bodies, now)
        except WritError as error:
            self._fail(approver, request, error, now)
            raise
        request.executed([r.to_dict() for r in results], now)
        recordings = self.core.save(request, *records)
        self.core.staging.remember_counters(records, saved=True)
        positions = {r.domain_event.originator_id: r.notification.id for r in recordings}
        executed = [
            WriteResult(**{**r.to_dict(), "position": positions.get(UUID(r.id))}) for r in results
        ]
        return result_of(request, required, executed, position=last_position(recordings))

    def _execute_bulk(
        self, approver: Principal, request: ApprovalRequest, now: datetime, required: int
    ) -> ApprovalResult:
        """The approved bulk on exactly the records it was evaluated against, each at that version."""
        body = request.command["bulk"]
        try:
            matched = {UUID(rid): version for rid, version in body["matched"].items()}
            records = self.core.loader.load_many(
                list(matched), tenant=request.tenant, model=body["model"]
            )
            versions = {str(rid): record.version for rid, record in records.items()}
            if not matches(self.core.keys, request.fingerprint, fingerprint([body], versions)):
                raise ApprovalStaleError(
                    f"Approval {request.id}: records of the bulk changed since it was "
                    "evaluated, or the request was altered; nothing was written (ask again)"
                )
            requester = principal_of(request.requester)
            decided = self.bulk.decide_bulk(
                requester, body["model"], [records[rid] for rid in matched], body["changes"], now
            )
            refused = next(
                (
                    v.error
                    for _, v in decided
                    if v.error is not None and v.action != "require_approval"
                ),
                None,
            )
            if refused is not None:
                raise refused
        except WritError as error:
            self._fail(approver, request, error, now)
            raise
        result, patch = self.bulk.bulk_patch(
            requester, body["model"], decided, None, now, request.stamp()
        )
        request.executed([result.to_dict()], now)
        recordings = self.bulk.save_bulk(decided, patch, [request])
        position = last_position(recordings)
        return result_of(
            request,
            required,
            bulk=result.model_copy(update={"position": position}),
            position=position,
        )

    def _fail(
        self, approver: Principal, request: ApprovalRequest, error: WritError, now: datetime
    ) -> None:
        """End the request ``failed`` with its failed decision (nothing written to the records), and say on
        ``error`` where that decision is in the log."""
        request.failed(error.code, error.recorded, now)
        saved = self.core.save(request, self.core.failed_decision(approver, request, error, now))
        error.position = last_position(saved)

    def _reapply(
        self,
        request: ApprovalRequest,
        commands: list[AnyCommand],
        bodies: list[dict[str, Any]],
        now: datetime,
    ) -> tuple[list[Record], list[WriteResult]]:
        requester = principal_of(request.requester)
        versions: dict[str, int] = {}
        records: dict[UUID, Record] = {}
        loaded: list[tuple[AnyCommand, Record | None]] = []
        for command in commands:
            record = (
                None
                if isinstance(command, Create)
                else records.get(command.id) or self.core.load(command.id, requester)
            )
            if record is not None:
                versions.setdefault(str(record.id), record.version)
                records[record.id] = record
            loaded.append((command, record))
        if not matches(self.core.keys, request.fingerprint, fingerprint(bodies, versions)):
            raise ApprovalStaleError(
                f"Approval {request.id}: the records or the command changed since it was "
                "evaluated; nothing was written (ask again)"
            )
        return self.core.apply_approved(request, requester, loaded, bodies, now)


def result_of(
    request: ApprovalRequest,
    required: int,
    results: list[WriteResult] | None = None,
    bulk: BulkResult | None = None,
    *,
    position: int | None = None,
) -> ApprovalResult:
    """Where the request stands after an action (``required``: what the catalog in force asks for;
    ``position``: where the action's last event is in the log)."""
    return ApprovalResult(
        approval_id=str(request.id),
        status=request.status,
        approvals=list(request.approvers),
        required=required,
        results=results or [],
        bulk=bulk,
        outcome=request.outcome,
        position=position,
    )

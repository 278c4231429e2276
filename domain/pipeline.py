"""The decision pipeline: may this principal do this to this record, and what changes?

``decide`` is pure: given the catalog, a command, the principal, the record as
loaded (or ``None``) and the time, it returns a ``Verdict`` — the action, the
errors of the first failing stage, the reasons, the before/after preview and
the payload the event would carry. Stages run in the specification's order:
principal and purpose → model → grant → unconditional policy deny → record
state → field rules → conditional policy (deny, or require approval).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from domain.catalog import Catalog, ModelSpec
from domain.commands import Create, Patch, Purge, RecordCommand, Replace, Restore
from domain.errors import (
    ApprovalRequiredError,
    GrantMissingError,
    PurposeRequiredError,
    RecordDeletedError,
    RecordNotDeletedError,
    RecordNotFoundError,
    UnauthenticatedError,
    VersionConflictError,
    WriteDeniedError,
    WritError,
)
from domain.principal import Principal
from domain.record import DELETED, Record
from domain.rules import check_create, check_update, stamp

Action = Literal["allow", "deny", "require_approval"]


@dataclass(frozen=True)
class Verdict:
    action: Action
    errors: tuple[WritError, ...] = ()
    reasons: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def error(self) -> WritError | None:
        return self.errors[0] if self.errors else None


class _Refused(Exception):  # noqa: N818 - internal control flow, never escapes decide()
    def __init__(self, *errors: WritError, reasons: tuple[str, ...] = (), **preview: Any) -> None:
        self.errors = errors
        self.reasons = reasons
        self.preview = preview


def decide(
    catalog: Catalog,
    command: Create | RecordCommand,
    principal: Principal | None,
    record: Record | None,
    now: datetime,
) -> Verdict:
    try:
        return _decide(catalog, command, principal, record, now)
    except _Refused as refused:
        reasons = refused.reasons + tuple(f"{e.code}: {e.message}" for e in refused.errors)
        return Verdict("deny", refused.errors, reasons, **refused.preview)


def _decide(
    catalog: Catalog, command: Create | RecordCommand, principal: Principal | None,
    record: Record | None, now: datetime,
) -> Verdict:
    principal = _check_principal(principal)
    spec = _check_model(catalog, command.model)
    operation = command.operation
    if not spec.grants.allows(operation, principal.roles):
        roles = ", ".join(sorted(principal.roles)) or "no role"
        raise _Refused(GrantMissingError(f"{roles} may not {operation} {command.model}"))
    if spec.policy.always_denies(operation):
        raise _Refused(WriteDeniedError(f"Policy denies {operation} on {command.model}"))
    before = None if isinstance(command, Create) else _check_record(command, principal, record)
    payload, after = _apply_field_rules(spec, command, principal, before, now)
    action, reason = spec.policy.resolve(operation, after or before or {}, spec.typed)
    if action == "deny":
        raise _Refused(WriteDeniedError(f"Policy denies this {operation}"), reasons=(reason,),
                       before=before, after=after)
    errors: tuple[WritError, ...] = ()
    if action == "require_approval":
        errors = (ApprovalRequiredError(
            f"Policy requires approval for this {operation}; it was not executed"
        ),)
    return Verdict(action, errors, (reason,), before, after, payload)


def _check_principal(principal: Principal | None) -> Principal:
    if principal is None:
        raise _Refused(UnauthenticatedError("No principal: every command needs an authenticated caller"))
    if not (principal.purpose or "").strip():
        raise _Refused(PurposeRequiredError("Every write must state its purpose"))
    return principal


def _check_model(catalog: Catalog, name: str) -> ModelSpec:
    try:
        return catalog.model(name)
    except WritError as exc:
        raise _Refused(exc) from None


def _check_record(
    command: RecordCommand, principal: Principal, record: Record | None
) -> dict[str, Any]:
    if (
        record is None or record.model != command.model
        or record.tenant != principal.tenant_id or not (record.is_live or record.state == DELETED)
    ):
        raise _Refused(RecordNotFoundError(f"{command.model} {command.id} not found"))
    if command.expected_version is not None and command.expected_version != record.version:
        raise _Refused(VersionConflictError(
            f"{command.model} {command.id} is at version {record.version}, "
            f"not {command.expected_version}"
        ))
    if isinstance(command, Restore):
        if record.state != DELETED:
            raise _Refused(RecordNotDeletedError(f"{command.model} {command.id} is not deleted"))
    elif record.state == DELETED and not isinstance(command, Purge):
        raise _Refused(RecordDeletedError(f"{command.model} {command.id} is deleted; restore it first"))
    return record.view()


def _apply_field_rules(
    spec: ModelSpec, command: Create | RecordCommand, principal: Principal,
    before: dict[str, Any] | None, now: datetime,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The event payload and the after-state preview, or the field violations."""
    if isinstance(command, Create):
        data, errors = check_create(spec, command.data)
        if errors:
            raise _Refused(*errors)
        payload = {**data, **stamp(spec, "create", principal, now), spec.tenant_field: principal.tenant_id}
        return payload, payload
    if not isinstance(command, Replace | Patch):
        return {}, None
    assert before is not None
    body = command.data if isinstance(command, Replace) else command.changes
    changes, errors = check_update(spec, before, body, replace=isinstance(command, Replace))
    if errors:
        raise _Refused(*errors, before=before)
    payload = {**changes, **stamp(spec, "update", principal, now)}
    if isinstance(command, Replace):
        return payload, {"id": before["id"], **payload}
    current = {name: value for name, value in before.items() if not name.startswith("_")}
    return payload, {**current, **payload}

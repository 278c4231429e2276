"""The decision pipeline: may this principal do this to this record, and what changes?

``decide`` is pure: given the catalog, a command, the principal, the record as
loaded (or ``None``) and the time, it returns a ``Verdict`` — the action, the
errors of the first failing stage, the reasons, the before/after preview and
the payload the event would carry. Stages run in the specification's order:
principal and purpose → model → grant → unconditional policy deny → record
state → field rules → conditional policy (deny, or require approval). The
catalog's limits are checked in the stages they concern: the principal's
fields with the principal, each value by the field rules, and the record as
the command would leave it (its encoded size, ``Verdict.size``) right after
them. Then what needs the store, through the ``Effects`` port: generated values
on create, then uniqueness and a child's parent; then the custom validators.
Any ``WritError`` raised on the way is a refusal too, never an escape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson

from domain.catalog import Catalog, ModelSpec
from domain.commands import AnyCommand, Create, Patch, Purge, RecordCommand, Replace, Restore
from domain.errors import (
    ApprovalRequiredError,
    GrantMissingError,
    InvalidInputError,
    PurposeRequiredError,
    RecordDeletedError,
    RecordNotDeletedError,
    RecordNotFoundError,
    UnauthenticatedError,
    ValidationFailedError,
    VersionConflictError,
    WriteDeniedError,
    WritError,
)
from domain.fields import Operation
from domain.limits import Limits
from domain.policy import Outcome, PolicyOperation, split_field
from domain.principal import Principal
from domain.record import DELETED, Record
from domain.rules import check_create, check_update, stamp
from domain.validators import run_validators

Action = Literal["allow", "deny", "require_approval"]


@dataclass(frozen=True)
class Verdict:
    action: Action
    errors: tuple[WritError, ...] = ()
    reasons: tuple[str, ...] = ()
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    """The encoded size of the record as the command leaves it (0 when it changes no data)."""

    @property
    def error(self) -> WritError | None:
        return self.errors[0] if self.errors else None


class Effects(Protocol):
    """What deciding a command needs from the store (``application.unit``): reads, and proposals that are
    kept only if the command is executed."""

    def generate(
        self,
        spec: ModelSpec,
        model: str,
        principal: Principal,
        payload: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """The values of the model's generated fields for a new record with ``payload``."""

    def conflicts(
        self, spec: ModelSpec, command: AnyCommand, principal: Principal, state: dict[str, Any]
    ) -> list[WritError]:
        """What stands in the way of leaving the record in ``state``: a unique value another live record
        holds, a parent that is not there."""


class _Refused(Exception):  # noqa: N818 - internal control flow, never escapes decide()
    def __init__(self, *errors: WritError, reasons: tuple[str, ...] = (), **preview: Any) -> None:
        self.errors = errors
        self.reasons = reasons
        self.preview = preview


def decide(
    catalog: Catalog,
    command: AnyCommand,
    principal: Principal | None,
    record: Record | None,
    now: datetime,
    operation: PolicyOperation | None = None,
    *,
    effects: Effects | None = None,
) -> Verdict:
    """The verdict on ``command`` (``operation``: the grant and policy to decide it under, when not the
    command's own; a bulk update decides each record's patch under ``bulk_update``)."""
    return Decider(catalog, principal, now, effects).decide(command, record, operation)


class Decider:
    """Decides commands of one principal at one moment; what does not depend on the record is worked out once.

    A bulk update decides ten thousand patches with the same changes: the principal is checked once, the
    auto-set values stamped once per operation, and the field rules (``check_update``, a function of the
    changes and of the stored values of the fields they name and the fields an update keeps) computed once
    per distinct set of such stored values; the conditional policy's outcome once per distinct set of the
    values its conditions read (``ModelPolicy.reads``), from the second decision on. Everything else (the
    record's state, the after-state, its size, the validators) is decided for each record. The verdicts are
    the ones ``decide`` gives for each command alone.
    """

    def __init__(
        self,
        catalog: Catalog,
        principal: Principal | None,
        now: datetime,
        effects: Effects | None = None,
    ) -> None:
        self.catalog, self.principal, self.now, self.effects = catalog, principal, now, effects
        self._checked: Principal | _Refused | None = None
        self._stamps: dict[tuple[int, str], dict[str, Any]] = {}
        self._rules: dict[tuple[int, bytes], tuple[dict[str, Any], list[WritError]]] = {}
        self._outcomes: dict[tuple[int, str, bytes], Outcome] | None = None
        """From the second decision on: the policy's outcomes per model, operation and values its conditions read."""

    def decide(
        self, command: AnyCommand, record: Record | None, operation: PolicyOperation | None = None
    ) -> Verdict:
        try:
            return self._decide(command, record, operation or command.operation)
        except _Refused as refused:
            reasons = refused.reasons + tuple(e.reason for e in refused.errors)
            return Verdict("deny", refused.errors, reasons, **refused.preview)
        except WritError as error:
            # e.g. a principal attribute auto-set into a field it does not fit
            return Verdict("deny", (error,), (error.reason,))

    def _decide(
        self, command: AnyCommand, record: Record | None, operation: PolicyOperation
    ) -> Verdict:
        catalog, effects = self.catalog, self.effects
        principal = self._principal()
        spec = _check_model(catalog, command.model)
        if not spec.grants.allows(operation, principal.roles):
            roles = ", ".join(sorted(principal.roles)) or "no role"
            raise _Refused(GrantMissingError(f"{roles} may not {operation} {command.model}"))
        if spec.policy.always_denies(operation):
            raise _Refused(WriteDeniedError(f"Policy denies {operation} on {command.model}"))
        before = None if isinstance(command, Create) else _check_record(command, principal, record)
        payload, after = self._field_rules(spec, command, principal, before, record)
        size = _check_size(command, before, after, catalog.limits)
        if effects is not None:
            if isinstance(command, Create) and spec.generators:
                payload = after = {
                    **payload,
                    **effects.generate(spec, command.model, principal, payload, self.now),
                }
            state = before if isinstance(command, Restore) else after
            if state is not None and (
                conflicts := effects.conflicts(spec, command, principal, state)
            ):
                raise _Refused(*conflicts, before=before, after=after)
        if spec.validators and after is not None:
            problems = run_validators(
                spec.validators, catalog.validator_functions, after, principal
            )
            if problems:
                raise _Refused(ValidationFailedError.of(problems), before=before, after=after)
        outcome = self._outcome(spec, operation, before, after)
        action, reason = outcome.action, outcome.reason
        if action == "deny":
            raise _Refused(
                _denial(operation, outcome), reasons=(reason,), before=before, after=after
            )
        errors: tuple[WritError, ...] = ()
        if action == "require_approval":
            errors = (
                ApprovalRequiredError(
                    f"Policy requires approval for this {operation}; it was not executed"
                ),
            )
        return Verdict(action, errors, (reason,), before, after, payload, size)

    def _principal(self) -> Principal:
        if self._checked is None:
            try:
                self._checked = _check_principal(self.principal, self.catalog.limits)
            except _Refused as refused:
                self._checked = refused
        if isinstance(self._checked, _Refused):
            raise self._checked
        return self._checked

    def _stamp(self, spec: ModelSpec, operation: Operation, principal: Principal) -> dict[str, Any]:
        key = (id(spec), operation)  # the catalog, and so each spec, lives as long as this decider
        if key not in self._stamps:
            self._stamps[key] = stamp(spec, operation, principal, self.now, self.catalog.limits)
        return self._stamps[key]

    def _outcome(
        self,
        spec: ModelSpec,
        operation: PolicyOperation,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> Outcome:
        """``spec.policy.outcome``; remembered, from a decider's second decision on (a bulk update's), per the
        values its conditions read, when all of them are plain JSON values (else worked out afresh)."""
        if self._outcomes is None:
            self._outcomes = {}
            return spec.policy.outcome(operation, before, after, spec.typed)
        states = {"before": before or {}, "after": after or {}}
        try:
            read = orjson.dumps(
                [states[state].get(name) for state, name in spec.policy.reads(operation)]
            )
        except TypeError:  # a value that is not JSON-native: no key can stand for it
            return spec.policy.outcome(operation, before, after, spec.typed)
        key = (id(spec), operation, read)
        found = self._outcomes.get(key)
        if found is None:
            found = self._outcomes[key] = spec.policy.outcome(operation, before, after, spec.typed)
        return found

    def _field_rules(
        self,
        spec: ModelSpec,
        command: AnyCommand,
        principal: Principal,
        before: dict[str, Any] | None,
        record: Record | None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The event payload and the after-state preview, or the field violations."""
        limits = self.catalog.limits
        if isinstance(command, Create):
            data, errors = check_create(spec, command.data, limits)
            if errors:
                raise _Refused(*errors)
            payload = {
                **data,
                **self._stamp(spec, "create", principal),
                spec.tenant_field: principal.tenant_id,
            }
            return payload, payload
        if not isinstance(command, Replace | Patch):
            return {}, None
        assert before is not None and record is not None
        replace = isinstance(command, Replace)
        body = command.data if isinstance(command, Replace) else command.changes
        changes, errors = self._update_rules(spec, before, body, replace)
        if errors:
            raise _Refused(*errors, before=before)
        payload = {**changes, **self._stamp(spec, "update", principal)}
        if replace:
            return payload, {"id": before["id"], **payload}
        # the view without its "_" fields
        return payload, {"id": before["id"], **record.data, **payload}

    def _update_rules(
        self, spec: ModelSpec, before: dict[str, Any], body: dict[str, Any], replace: bool
    ) -> tuple[dict[str, Any], list[WritError]]:
        """``check_update``, remembered per model, body and stored values of the fields it reads (the body's
        names and the kept fields), when all of them are plain JSON values (else computed afresh)."""
        read = (*body, *spec.kept_on_update)
        try:
            stored = [[name in before, before.get(name)] for name in read]
            key = (id(spec), orjson.dumps([replace, body, stored]))
        except TypeError:  # a value that is not JSON-native: no key can stand for it
            return check_update(spec, before, body, self.catalog.limits, replace=replace)
        if key not in self._rules:
            self._rules[key] = check_update(
                spec, before, body, self.catalog.limits, replace=replace
            )
        changes, errors = self._rules[key]
        return dict(changes), list(errors)


def _denial(operation: str, outcome: Outcome) -> WriteDeniedError:
    """The policy's denial; a rule that failed closed names the field it could not read."""
    if not outcome.unknown:
        return WriteDeniedError(f"Policy denies this {operation}")
    return WriteDeniedError(
        f"Policy denies this {operation}: a rule cannot be evaluated, {', '.join(outcome.unknown)} "
        "no longer fits its field's type (fail closed)",
        field=split_field(outcome.unknown[0])[1],
    )


def _check_principal(principal: Principal | None, limits: Limits) -> Principal:
    if principal is None:
        raise _Refused(
            UnauthenticatedError("No principal: every command needs an authenticated caller")
        )
    problem = principal.problem(limits)
    if problem is not None:
        raise _Refused(InvalidInputError(f"principal: {problem}"))
    if not (principal.purpose or "").strip():
        raise _Refused(PurposeRequiredError("Every write must state its purpose"))
    return principal


def _check_size(
    command: AnyCommand, before: dict[str, Any] | None, after: dict[str, Any] | None, limits: Limits
) -> int:
    """The encoded size of the record the command leaves, refused past ``record_bytes``."""
    if after is None:
        return 0
    try:
        size = len(orjson.dumps(after))
    except TypeError as exc:  # orjson.JSONEncodeError: the field rules should have refused it first
        raise _Refused(
            InvalidInputError(f"{command.model} record cannot be encoded: {exc}"), before=before
        ) from None
    if size > limits.record_bytes:
        raise _Refused(
            InvalidInputError(
                f"{command.model} record would be {size:,} bytes encoded; at most {limits.record_bytes:,}"
            ),
            before=before,
            after=after,
        )
    return size


def _check_model(catalog: Catalog, name: str) -> ModelSpec:
    try:
        return catalog.model(name)
    except WritError as exc:
        raise _Refused(exc) from None


def _check_record(
    command: RecordCommand, principal: Principal, record: Record | None
) -> dict[str, Any]:
    if (
        record is None
        or record.model != command.model
        or record.tenant != principal.tenant_id
        or not (record.is_live or record.state == DELETED)
    ):
        raise _Refused(RecordNotFoundError(f"{command.model} {command.id} not found"))
    if command.expected_version is not None and command.expected_version != record.version:
        raise _Refused(
            VersionConflictError(
                f"{_named(command, record)} is at version {record.version}, "
                f"not {command.expected_version}"
            )
        )
    if isinstance(command, Restore):
        if record.state != DELETED:
            raise _Refused(RecordNotDeletedError(f"{_named(command, record)} is not deleted"))
    elif record.state == DELETED and not isinstance(command, Purge):
        raise _Refused(
            RecordDeletedError(f"{_named(command, record)} is deleted; restore it first")
        )
    return record.view()


def _named(command: RecordCommand, record: Record) -> str:
    """The record decided, by its own id: a bulk update decides one patch for every record it matched."""
    return f"{command.model} {record.id}"

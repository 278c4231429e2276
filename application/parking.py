"""What binds an approval to what was asked: the fingerprint of the exact commands and record versions,
the requester, kept so the commands can be decided again as them when the last approval comes, and the
number of approvers the request needs under the catalog in force."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from domain.approval_rules import ApprovalRules
from domain.commands import OPERATION_OF_KIND
from domain.principal import Principal


def fingerprint(commands: list[dict[str, Any]], versions: dict[str, int]) -> str:
    """What an approver approves: the exact commands and the record versions they were evaluated against."""
    canonical = orjson.dumps(
        {"commands": commands, "versions": versions}, option=orjson.OPT_SORT_KEYS
    )
    return hashlib.sha256(canonical).hexdigest()


def requester_of(principal: Principal) -> dict[str, Any]:
    return {
        "user_id": principal.user_id,
        "tenant_id": principal.tenant_id,
        "roles": sorted(principal.roles),
        "attributes": dict(principal.attributes),
        "purpose": principal.purpose,
        "correlation_id": principal.correlation_id,
        "causation_id": principal.causation_id,
        "audit_attributes": dict(principal.audit_attributes),
    }


def principal_of(requester: dict[str, Any]) -> Principal:
    return Principal(**{**requester, "roles": frozenset(requester.get("roles", ()))})


def approvers_needed(rules: ApprovalRules, command: dict[str, Any], operation: str) -> int:
    """How many distinct approvers ``rules`` ask of a request holding ``command`` (its commands' operations, the
    most any of them needs; a bulk's ``bulk_update``). ``operation``, the request's own, stands in for a stored
    command a purge erased. The catalog in force decides, at the park and at every approval after it."""
    if "bulk" in command:
        operations = ["bulk_update"]
    else:
        bodies = command.get("commands") or []
        operations = [
            OPERATION_OF_KIND[b["kind"]]
            for b in bodies
            if isinstance(b, dict) and b.get("kind") in OPERATION_OF_KIND
        ]
    return max(rules.required_for(name) for name in operations or [operation])

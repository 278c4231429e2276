"""What binds an approval to what was asked: the fingerprint of the exact commands and record versions,
and the requester, kept so the commands can be decided again as them when the last approval comes."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from domain.principal import Principal


def fingerprint(commands: list[dict[str, Any]], versions: dict[str, int]) -> str:
    """What an approver approves: the exact commands and the record versions they were evaluated against."""
    canonical = orjson.dumps({"commands": commands, "versions": versions}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def requester_of(principal: Principal) -> dict[str, Any]:
    return {"user_id": principal.user_id, "tenant_id": principal.tenant_id, "roles": sorted(principal.roles),
            "attributes": dict(principal.attributes), "purpose": principal.purpose,
            "correlation_id": principal.correlation_id, "causation_id": principal.causation_id,
            "audit_attributes": dict(principal.audit_attributes)}


def principal_of(requester: dict[str, Any]) -> Principal:
    return Principal(**{**requester, "roles": frozenset(requester.get("roles", ()))})

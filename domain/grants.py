"""Who may do what: a model's grants, and the read rules that follow from them (SPEC §3, "Reads are governed").

``Grants`` names, per write operation, the roles that may request it (``*``: any authenticated principal),
``approve`` the roles that decide its parked writes, and three grants for reading:

- ``read``: the model's live records (rows, ``get``, ``history``, ``as_of``, ``diff``). A model that declares
  no ``read`` is read by every role holding any grant on it, and by no other role.
- ``read_deleted``: its soft-deleted records and their history too (and so its live ones).
- ``audit``: its auditors: everything ``read_deleted`` reads, every actor's decisions about the model, every
  approval request of it, and its events in an export.

A decision is read by its own actor and by the auditors of its model; a decision naming no model of the
catalog (a refusal at the door: an unknown or malformed model, an unknown approval id) by its actor and by
whoever audits at least one model. An approval request is read by its requester, its eligible approvers
(the model's ``approve`` grant) and the model's auditors. Each rule reads the catalog in force at the read,
as writes do; ``DecisionScope`` and ``ApprovalScope`` hold one principal's share, for a filter in Python
(the command side's log scans) or in SQL (the read models).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.errors import GrantMissingError
from domain.principal import Principal

GrantName = Literal[
    "create",
    "update",
    "delete",
    "restore",
    "force_delete",
    "bulk_update",
    "approve",
    "read",
    "read_deleted",
    "audit",
]
ANY_ROLE = "*"


def _admits(granted: tuple[str, ...] | None, roles: frozenset[str]) -> bool:
    return granted is not None and (ANY_ROLE in granted or not roles.isdisjoint(granted))


class Grants(BaseModel):
    """Roles allowed each operation on one model, and to read it (``*`` means any authenticated role)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    restore: tuple[str, ...] = ()
    force_delete: tuple[str, ...] = ()
    bulk_update: tuple[str, ...] = ()
    approve: tuple[str, ...] = ()
    read: tuple[str, ...] | None = None
    """None (not declared): every role holding any grant on the model reads it."""
    read_deleted: tuple[str, ...] = ()
    audit: tuple[str, ...] = ()

    def allows(self, grant: GrantName, roles: frozenset[str]) -> bool:
        """``roles`` hold ``grant`` itself (reads: see ``reads``, ``reads_deleted``, ``audits``)."""
        granted: tuple[str, ...] | None = getattr(self, grant)
        return _admits(granted, roles)

    def holds_any(self, roles: frozenset[str]) -> bool:
        return any(_admits(getattr(self, name), roles) for name in type(self).model_fields)

    def reads(self, roles: frozenset[str]) -> bool:
        """May read the model's live records."""
        if self.read is None:
            return self.holds_any(roles)
        return _admits(self.read, roles) or self.reads_deleted(roles)

    def reads_deleted(self, roles: frozenset[str]) -> bool:
        """May read its deleted records and their history too."""
        return _admits(self.read_deleted, roles) or self.audits(roles)

    def audits(self, roles: frozenset[str]) -> bool:
        """May read every decision and approval request of the model (and all its records)."""
        return _admits(self.audit, roles)

    def require_reading(self, model: str, roles: frozenset[str], *, deleted: bool = False) -> None:
        """``GRANT_MISSING`` unless ``roles`` may read the model's records (its deleted ones, with ``deleted``)."""
        if not self.reads(roles):
            who = f"Roles {', '.join(sorted(roles))}" if roles else "A principal without roles"
            raise GrantMissingError(f"{who} may not read {model} records (the read grant)")
        if deleted and not self.reads_deleted(roles):
            raise GrantMissingError(f"Reading deleted {model} records needs the read_deleted grant")


@dataclass(frozen=True)
class DecisionScope:
    """The decisions of its tenant one principal may read: its own, and those of the models it audits (with
    those naming no model of the catalog, once it audits any)."""

    actor: str
    audited: frozenset[str]
    known: frozenset[str]

    @classmethod
    def of(cls, grants: Mapping[str, Grants], principal: Principal) -> DecisionScope:
        audited = frozenset(
            name for name, granted in grants.items() if granted.audits(principal.roles)
        )
        return cls(principal.user_id, audited, frozenset(grants))

    @property
    def everything(self) -> bool:
        """It audits every model, and so reads every decision of its tenant."""
        return bool(self.audited) and self.audited == self.known

    def audits(self, model: object) -> bool:
        return model in self.audited if model in self.known else bool(self.audited)

    def admits(self, model: object, actor: object) -> bool:
        return actor == self.actor or self.audits(model)


@dataclass(frozen=True)
class ApprovalScope:
    """The approval requests of its tenant one principal may read: those it asked for, and those of the models
    it may approve or audits."""

    requester: str
    models: frozenset[str]

    @classmethod
    def of(cls, grants: Mapping[str, Grants], principal: Principal) -> ApprovalScope:
        roles = principal.roles
        models = frozenset(
            name
            for name, granted in grants.items()
            if granted.allows("approve", roles) or granted.audits(roles)
        )
        return cls(principal.user_id, models)

    def admits(self, model: object, requester: object) -> bool:
        return requester == self.requester or model in self.models

    def require(self, model: str, requester: object, approval_id: object) -> None:
        """``GRANT_MISSING`` unless the principal may read this request."""
        if not self.admits(model, requester):
            raise GrantMissingError(
                f"Approval {approval_id} is read by its requester, the {model} approvers "
                "(the approve grant) and auditors (the audit grant)"
            )

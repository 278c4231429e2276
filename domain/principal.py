"""Who is asking, and why.

A ``Principal`` identifies the caller (user, tenant, roles, attributes) and
carries the per-command audit context: the ``purpose`` every write must state,
correlation and causation ids, and ``audit_attributes`` stamped verbatim on the
events.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Principal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=200)
    tenant_id: str = Field(min_length=1, max_length=200)
    roles: frozenset[str] = frozenset()
    attributes: dict[str, Any] = Field(default_factory=dict)
    purpose: str | None = Field(default=None, max_length=1000)
    correlation_id: str | None = Field(default=None, max_length=200)
    causation_id: str | None = Field(default=None, max_length=200)
    audit_attributes: dict[str, str] = Field(default_factory=dict)

    def for_purpose(self, purpose: str, **context: Any) -> Principal:
        """The same principal issuing a command for ``purpose``."""
        return self.model_copy(update={"purpose": purpose, **context})

    def attribute(self, name: str) -> Any:
        if name in ("user_id", "tenant_id"):
            return getattr(self, name)
        return self.attributes.get(name)

"""Who is asking, and why.

A ``Principal`` identifies the caller (user, tenant, roles, attributes) and
carries the per-command audit context: the ``purpose`` every write must state,
correlation and causation ids, and ``audit_attributes`` stamped verbatim on the
events. Its fields are checked when it is built (``InvalidInputError``):
identifiers (user, tenant, roles) are ``A-Za-z0-9._:@+-`` starting with a
letter or digit (they key tables and route bus messages), correlation and
causation ids printable ASCII (they travel in AMQP headers), audit keys
printable, no text holds NUL or a lone surrogate, and every length and count
is within ``HARD_LIMITS``. ``problem`` checks the lengths and counts against a
catalog's tighter ``Limits`` (and the text again): the pipeline does so on
every command.
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, StrictStr, model_validator

from domain.inputs import InputModel
from domain.limits import HARD_LIMITS, Limits, identifier_problem, shown, unstorable


class Principal(InputModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: StrictStr
    tenant_id: StrictStr
    roles: frozenset[StrictStr] = frozenset()
    attributes: dict[StrictStr, Any] = Field(default_factory=dict)
    purpose: StrictStr | None = None
    correlation_id: StrictStr | None = None
    causation_id: StrictStr | None = None
    audit_attributes: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Principal:
        problem = self.problem(HARD_LIMITS)
        if problem is not None:
            raise ValueError(problem)
        return self

    def for_purpose(self, purpose: str, **context: Any) -> Principal:
        """The same principal issuing a command for ``purpose`` (checked like a new one)."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self)(**{**fields, "purpose": purpose, **context})

    def attribute(self, name: str) -> Any:
        if name in ("user_id", "tenant_id"):
            return getattr(self, name)
        return self.attributes.get(name)

    def problem(self, limits: Limits) -> str | None:
        """The first field that breaks ``limits`` or holds text no store takes, as a message; None if all fit.

        Checked again on every command: ``model_construct`` and ``model_copy`` build a principal unchecked.
        """
        return self._text_problem() or self._size_problem(limits)

    def _size_problem(self, limits: Limits) -> str | None:
        most = limits.identifier_length
        if not 1 <= len(self.user_id) <= most or not 1 <= len(self.tenant_id) <= most:
            return f"user_id and tenant_id are 1 to {most} characters"
        if len(self.roles) > limits.roles or any(len(role) > most for role in self.roles):
            return f"at most {limits.roles} roles, each at most {most} characters"
        if self.purpose is not None and len(self.purpose) > limits.purpose_length:
            return f"purpose is at most {limits.purpose_length:,} characters"
        for trace_id in (self.correlation_id, self.causation_id):
            if trace_id is not None and len(trace_id) > limits.trace_id_length:
                return f"correlation_id and causation_id are at most {limits.trace_id_length} characters"
        return self._audit_problem(limits) if self.audit_attributes else None

    def _audit_problem(self, limits: Limits) -> str | None:
        keys, values = limits.audit_key_length, limits.audit_value_length
        if len(self.audit_attributes) > limits.audit_attributes:
            return f"audit_attributes has at most {limits.audit_attributes} entries"
        if any(
            not 1 <= len(k) <= keys or len(v) > values for k, v in self.audit_attributes.items()
        ):
            return f"audit_attributes keys are 1 to {keys} characters, values at most {values:,}"
        return None

    def _text_problem(self) -> str | None:
        """Text no store, bus header or routing key can take: what no limit changes."""
        identifiers = [
            ("user_id", self.user_id),
            ("tenant_id", self.tenant_id),
            *(("role", r) for r in self.roles),
        ]
        for name, value in identifiers:
            if problem := identifier_problem(value):
                return f"{name} {shown(value, 40)} {problem}"
        for name, trace_id in (
            ("correlation_id", self.correlation_id),
            ("causation_id", self.causation_id),
        ):
            if trace_id is not None and not (trace_id.isascii() and trace_id.isprintable()):
                return f"{name} must be printable ASCII"
        if self.purpose is not None and (problem := unstorable(self.purpose)):
            return f"purpose {problem}"
        return self._audit_text_problem() if self.audit_attributes else None

    def _audit_text_problem(self) -> str | None:
        for key, value in self.audit_attributes.items():
            if not key.isprintable():
                return f"audit_attributes key {shown(key, 40)} is not printable"
            if problem := unstorable(value):
                return f"audit_attributes[{shown(key, 40)}] {problem}"
        return None

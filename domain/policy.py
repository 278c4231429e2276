"""Write policy: per-operation rules, optionally conditional on the data.

A rule is data, never code: an ``action`` (``allow``, ``deny``,
``require_approval``) and an optional ``when`` condition built from
comparisons (``field``, ``op``, ``value``) combined with ``all`` / ``any``.
Rules are tried top-down and the first match wins; when nothing matches the
write is denied, because writes are opt-in. Values are compared typed like the
field they name (``Comparison.operand``); the catalog types every condition's
value through that same method at load, so evaluating a rule never raises.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["allow", "deny", "require_approval"]
Comparator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null"]
PolicyOperation = Literal["create", "update", "delete", "restore", "force_delete", "bulk_update"]
POLICY_OPERATIONS: tuple[PolicyOperation, ...] = (
    "create", "update", "delete", "restore", "force_delete", "bulk_update",
)


def _contains(left: Any, right: Any) -> bool:
    return right in left


COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "in": lambda left, right: left in right,
    "contains": _contains,
    "is_null": lambda left, right: (left is None) is bool(right),
}

Typer = Callable[[str, Any], Any]
"""Turns (field, raw value) into the field's typed value, for comparisons."""


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str
    op: Comparator
    value: Any = None

    def matches(self, state: Mapping[str, Any], typed: Typer) -> bool:
        left = state.get(self.field)
        if self.op == "is_null":
            return COMPARATORS["is_null"](left, True if self.value is None else self.value)
        if left is None:
            return self.op == "ne" and self.value is not None
        subject = typed(self.field, left)
        right = self.operand(typed, listed=isinstance(subject, list))
        try:
            return COMPARATORS[self.op](subject, right)
        except TypeError:
            return False

    def operand(self, typed: Typer, *, listed: bool) -> Any:
        """The condition's value as it is compared: typed like the field (``in``: each item;
        ``contains``: like one item of a list field, or the plain substring of a str field).

        The catalog check types every condition's value through this very method at load.
        """
        if self.op == "in":
            return [typed(self.field, item) for item in self.value]
        if self.op == "contains":
            return typed(self.field, [self.value])[0] if listed else self.value
        return typed(self.field, self.value)


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[Condition, ...] = Field(min_length=1)

    def matches(self, state: Mapping[str, Any], typed: Typer) -> bool:
        return all(c.matches(state, typed) for c in self.all)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: tuple[Condition, ...] = Field(min_length=1)

    def matches(self, state: Mapping[str, Any], typed: Typer) -> bool:
        return any(c.matches(state, typed) for c in self.any)


Condition = Comparison | AllOf | AnyOf
AllOf.model_rebuild()
AnyOf.model_rebuild()


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    when: Condition | None = None

    def describe(self) -> str:
        return self.action if self.when is None else f"{self.action} when {_describe(self.when)}"


def _describe(condition: Condition) -> str:
    if isinstance(condition, Comparison):
        return f"{condition.field} {condition.op} {condition.value!r}"
    joiner, parts = (" and ", condition.all) if isinstance(condition, AllOf) else (" or ", condition.any)
    return "(" + joiner.join(_describe(p) for p in parts) + ")"


def _rules(value: Any) -> Any:
    """Accept ``"allow"``, a single rule table, or a list mixing both."""
    if value is None:
        return ()
    items = value if isinstance(value, list | tuple) else [value]
    return tuple({"action": item} if isinstance(item, str) else item for item in items)


class ModelPolicy(BaseModel):
    """Rules per operation; an operation with no rules is denied."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    create: tuple[PolicyRule, ...] = ()
    update: tuple[PolicyRule, ...] = ()
    delete: tuple[PolicyRule, ...] = ()
    restore: tuple[PolicyRule, ...] = ()
    force_delete: tuple[PolicyRule, ...] = ()
    bulk_update: tuple[PolicyRule, ...] = ()
    max_affected: int | None = Field(default=None, ge=1)

    _normalize = field_validator(*POLICY_OPERATIONS, mode="before")(_rules)

    def rules_for(self, operation: PolicyOperation) -> tuple[PolicyRule, ...]:
        rules: tuple[PolicyRule, ...] = getattr(self, operation)
        return rules

    def always_denies(self, operation: PolicyOperation) -> bool:
        return all(rule.action == "deny" for rule in self.rules_for(operation))

    def resolve(
        self, operation: PolicyOperation, state: Mapping[str, Any], typed: Typer
    ) -> tuple[Action, str]:
        """The first matching rule's action and a reason naming the rule."""
        for rule in self.rules_for(operation):
            if rule.when is None or rule.when.matches(state, typed):
                return rule.action, f"policy {operation}: {rule.describe()}"
        return "deny", f"policy {operation}: no rule allows it (writes are opt-in)"

"""Write policy: per-operation rules, optionally conditional on the data.

A rule is data, never code: an ``action`` (``allow``, ``deny``,
``require_approval``) and an optional ``when`` condition built from
comparisons (``field``, ``op``, ``value``) combined with ``all`` / ``any``.
Rules are tried top-down and the first match wins; when nothing matches the
write is denied, because writes are opt-in. Values are compared typed like the
field they name (``Comparison.operand``); the catalog types every condition's
value through that same method at load, so evaluating a rule never raises.

A condition says which state it reads: ``before.<field>`` is the stored
record, ``after.<field>`` the record as the command would leave it, and the
``changed`` operator is true when the command changes the field. A bare name
reads the only state there is: the after-state on create, the before-state on
delete, restore and force delete. On update and bulk update both states exist,
so a bare name is refused at load (``domain.catalog_checks``): a rule on the
stored status must not be sidestepped by changing the status in the same
patch. Each decision's reason names the rule and what it read.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.errors import InvalidFieldValueError

Action = Literal["allow", "deny", "require_approval"]
Comparator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null", "changed"]
PolicyOperation = Literal["create", "update", "delete", "restore", "force_delete", "bulk_update"]
POLICY_OPERATIONS: tuple[PolicyOperation, ...] = (
    "create", "update", "delete", "restore", "force_delete", "bulk_update",
)
StateName = Literal["before", "after"]
STATES: dict[str, tuple[StateName, ...]] = {
    "create": ("after",), "update": ("before", "after"), "bulk_update": ("before", "after"),
    "delete": ("before",), "restore": ("before",), "force_delete": ("before",),
}
"""The states each operation's conditions may read."""


def split_field(name: str) -> tuple[StateName | None, str]:
    """``before.total`` -> (``before``, ``total``); a bare name -> (None, name)."""
    state, dot, field = name.partition(".")
    if dot and state in ("before", "after"):
        return state, field  # type: ignore[return-value]
    return None, name


class States:
    """What one decision's conditions read: the stored record and the record as the command would leave it."""

    def __init__(self, operation: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> None:
        self.default: StateName = "before" if STATES.get(operation) == ("before",) else "after"
        self.states: dict[str, Mapping[str, Any]] = {"before": before or {}, "after": after or {}}
        self.read: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        state, field = split_field(name)
        value = self.states[state or self.default].get(field)
        self.read[f"{state or self.default}.{field}"] = value
        return value

    def changed(self, name: str, typed: Typer) -> bool:
        _, field = split_field(name)
        before, after = self.get(f"before.{field}"), self.get(f"after.{field}")
        if None in (before, after):
            return bool(before != after)
        return bool(as_stored(typed, field, before) != as_stored(typed, field, after))


def as_stored(typed: Typer, field: str, value: Any) -> Any:
    """A record's value typed like its field, or as stored when it no longer fits the field's type (the catalog
    changed it since): a condition compares it as it is rather than failing the decision."""
    try:
        return typed(field, value)
    except pydantic.ValidationError:
        return value


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

    def matches(self, state: Mapping[str, Any] | States, typed: Typer) -> bool:
        if self.op == "changed":
            return isinstance(state, States) and state.changed(self.field, typed)
        left = state.get(self.field)
        if self.op == "is_null":
            return COMPARATORS["is_null"](left, True if self.value is None else self.value)
        if left is None:
            return self.op == "ne" and self.value is not None
        subject = as_stored(typed, split_field(self.field)[1], left)
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
        field = split_field(self.field)[1]
        if self.op == "in":
            return [typed(field, item) for item in self.value]
        if self.op == "contains":
            return typed(field, [self.value])[0] if listed else self.value
        return typed(field, self.value)


FILTER_OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null")


def filter_of(item: Any) -> Comparison:
    """A query filter, given as a ``Comparison``, a ``(field, op[, value])`` tuple or a mapping: a comparison
    on one field of the record as it stands (no ``before.``/``after.`` state, no ``changed``)."""
    try:
        if isinstance(item, Comparison):
            comparison = item
        elif isinstance(item, tuple):
            comparison = Comparison(field=item[0], op=item[1], value=item[2] if len(item) > 2 else None)
        else:
            comparison = Comparison.model_validate(item)
    except (pydantic.ValidationError, IndexError, TypeError):
        comparison = None
    if comparison is None or comparison.op not in FILTER_OPERATORS or split_field(comparison.field)[0]:
        raise InvalidFieldValueError(f"Invalid filter {shown_value(item)}: use (field, op, value) with op one of "
                                     f"{', '.join(FILTER_OPERATORS)}")
    return comparison


def shown_value(item: Any) -> str:
    text = ascii(item)
    return text if len(text) <= 100 else text[:97] + "..."


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[Condition, ...] = Field(min_length=1)

    def matches(self, state: Mapping[str, Any] | States, typed: Typer) -> bool:
        return all(c.matches(state, typed) for c in self.all)


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: tuple[Condition, ...] = Field(min_length=1)

    def matches(self, state: Mapping[str, Any] | States, typed: Typer) -> bool:
        return any(c.matches(state, typed) for c in self.any)


Condition = Comparison | AllOf | AnyOf
AllOf.model_rebuild()
AnyOf.model_rebuild()


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Action
    when: Condition | None = None

    @cached_property
    def description(self) -> str:
        """``allow``, or ``deny when before.status eq 'shipped'``: how decisions name the rule."""
        return self.action if self.when is None else f"{self.action} when {_describe(self.when)}"


def _describe(condition: Condition) -> str:
    if isinstance(condition, Comparison):
        if condition.op in ("changed", "is_null") and condition.value is None:
            return f"{condition.field} {condition.op}"
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
        return operation in self.denied_operations

    @cached_property
    def denied_operations(self) -> frozenset[str]:
        """The operations whose every rule denies (none at all included)."""
        return frozenset(op for op in POLICY_OPERATIONS if all(r.action == "deny" for r in self.rules_for(op)))

    def resolve(
        self, operation: PolicyOperation, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
        typed: Typer,
    ) -> tuple[Action, str]:
        """The first matching rule's action and a reason naming the rule and the state it read (``before.total``;
        never the values: a decision is kept after the record's data is purged)."""
        for rule in self.rules_for(operation):
            states = States(operation, before, after)
            if rule.when is None or rule.when.matches(states, typed):
                read = ", ".join(states.read)  # names, never values: decisions outlive purges
                return rule.action, f"policy {operation}: {rule.description}" + (f" (read {read})" if read else "")
        return "deny", f"policy {operation}: no rule allows it (writes are opt-in)"

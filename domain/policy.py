"""Write policy: per-operation rules, optionally conditional on the data.

A rule is data, never code: an ``action`` (``allow``, ``deny``,
``require_approval``) and an optional ``when`` condition built from
comparisons (``field``, ``op``, ``value``) combined with ``all`` / ``any``.
Rules are tried top-down and the first match wins; when nothing matches the
write is denied, because writes are opt-in. Values are compared typed like the
field they name (``Comparison.operand``); the catalog types every condition's
value through that same method at load, so evaluating a rule never raises.

A rule fails closed. A stored value that no longer fits its field's type (the
catalog changed the type since it was written) cannot be compared: the
comparison is unknown, and ``all``/``any`` combine unknowns as three-valued
logic does (``any`` with one true part is true whatever the others are). A
``deny`` or ``require_approval`` rule whose condition is unknown denies, the
most restrictive outcome; an ``allow`` rule whose condition is unknown does
not allow, and the rules after it decide (whatever they say is at most as
permissive as the allow). Either way the reason names the field that could
not be read.

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
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

Action = Literal["allow", "deny", "require_approval"]
Comparator = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null", "changed"]
PolicyOperation = Literal["create", "update", "delete", "restore", "force_delete", "bulk_update"]
POLICY_OPERATIONS: tuple[PolicyOperation, ...] = (
    "create",
    "update",
    "delete",
    "restore",
    "force_delete",
    "bulk_update",
)
StateName = Literal["before", "after"]
STATES: dict[str, tuple[StateName, ...]] = {
    "create": ("after",),
    "update": ("before", "after"),
    "bulk_update": ("before", "after"),
    "delete": ("before",),
    "restore": ("before",),
    "force_delete": ("before",),
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

    def __init__(
        self, operation: str, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
    ) -> None:
        self.default: StateName = "before" if STATES.get(operation) == ("before",) else "after"
        self.states: dict[str, Mapping[str, Any]] = {"before": before or {}, "after": after or {}}
        self.read: dict[str, Any] = {}
        self.unknown: list[str] = []
        """The fields (``before.total``) whose values could not be compared."""

    def qualified(self, name: str) -> str:
        state, field = split_field(name)
        return f"{state or self.default}.{field}"

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
    changed it since): ``changed`` compares such a value as it is (equal raw values did not change)."""
    try:
        return typed(field, value)
    except pydantic.ValidationError:
        return value


def _unknown(state: Mapping[str, Any] | States, name: str) -> None:
    """A comparison on ``name`` that cannot be evaluated: noted on the decision's states, and unknown."""
    if isinstance(state, States):
        state.unknown.append(state.qualified(name))


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
        """True when the comparison holds; False when it does not or cannot be evaluated."""
        return self.evaluate(state, typed) is True

    def evaluate(self, state: Mapping[str, Any] | States, typed: Typer) -> bool | None:
        """Whether the comparison holds; None when it cannot be evaluated (a stored value that no longer fits
        its field's type)."""
        if self.op == "changed":
            return isinstance(state, States) and state.changed(self.field, typed)
        left = state.get(self.field)
        if self.op == "is_null":
            return COMPARATORS["is_null"](left, True if self.value is None else self.value)
        if left is None:
            return self.op == "ne" and self.value is not None
        try:
            subject = typed(split_field(self.field)[1], left)
            return bool(
                COMPARATORS[self.op](subject, self.operand(typed, listed=isinstance(subject, list)))
            )
        except (pydantic.ValidationError, TypeError):
            _unknown(state, self.field)
            return None

    def matcher(self, typed: Typer) -> Callable[[Mapping[str, Any]], bool]:
        """``matches`` on plain states (records' data or views), its value typed once rather than for each
        state: what a bulk update checks ten thousand records against. ``contains`` types its value by the
        state's, and ``changed`` and ``is_null`` need no typing: those match as ``matches`` does."""
        if self.op in ("changed", "is_null", "contains"):
            return lambda state: self.matches(state, typed)
        try:
            operand = self.operand(typed, listed=False)
        except (
            pydantic.ValidationError,
            TypeError,
        ):  # never typed: each state is unknown, as below
            return lambda state: self.matches(state, typed)
        name, field, compare = self.field, split_field(self.field)[1], COMPARATORS[self.op]
        absent = self.op == "ne" and self.value is not None

        def matches(state: Mapping[str, Any]) -> bool:
            left = state.get(name)
            if left is None:
                return absent
            try:
                return bool(compare(typed(field, left), operand))
            except (pydantic.ValidationError, TypeError):
                return False  # unknown: not a match

        return matches

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


class AllOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    all: tuple[Condition, ...] = Field(min_length=1)

    def evaluate(self, state: Mapping[str, Any] | States, typed: Typer) -> bool | None:
        """False when a part is false; else unknown when a part is; else true."""
        result: bool | None = True
        for condition in self.all:
            holds = condition.evaluate(state, typed)
            if holds is False:
                return False
            if holds is None:
                result = None
        return result


class AnyOf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    any: tuple[Condition, ...] = Field(min_length=1)

    def evaluate(self, state: Mapping[str, Any] | States, typed: Typer) -> bool | None:
        """True when a part is true; else unknown when a part is; else false."""
        result: bool | None = False
        for condition in self.any:
            holds = condition.evaluate(state, typed)
            if holds is True:
                return True
            if holds is None:
                result = None
        return result


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
    joiner, parts = (
        (" and ", condition.all) if isinstance(condition, AllOf) else (" or ", condition.any)
    )
    return "(" + joiner.join(_describe(p) for p in parts) + ")"


def _read_by(condition: Condition, default: StateName) -> list[tuple[StateName, str]]:
    if isinstance(condition, Comparison):
        state, field = split_field(condition.field)
        if condition.op == "changed":
            return [("before", field), ("after", field)]
        return [(state or default, field)]
    parts = condition.all if isinstance(condition, AllOf) else condition.any
    return [pair for part in parts for pair in _read_by(part, default)]


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

    def reads(self, operation: PolicyOperation) -> tuple[tuple[StateName, str], ...]:
        """The (state, field) pairs the operation's conditions read: its outcome is a function of their values
        (``changed`` reads both states of its field; a bare name, the operation's default state)."""
        return self.reads_by_operation[operation]

    @cached_property
    def reads_by_operation(self) -> dict[str, tuple[tuple[StateName, str], ...]]:
        found: dict[str, tuple[tuple[StateName, str], ...]] = {}
        for operation in POLICY_OPERATIONS:
            default: StateName = "before" if STATES.get(operation) == ("before",) else "after"
            pairs: dict[tuple[StateName, str], None] = {}
            for rule in self.rules_for(operation):
                if rule.when is not None:
                    pairs.update(dict.fromkeys(_read_by(rule.when, default)))
            found[operation] = tuple(pairs)
        return found

    @cached_property
    def denied_operations(self) -> frozenset[str]:
        """The operations whose every rule denies (none at all included)."""
        return frozenset(
            op for op in POLICY_OPERATIONS if all(r.action == "deny" for r in self.rules_for(op))
        )

    def resolve(
        self,
        operation: PolicyOperation,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        typed: Typer,
    ) -> tuple[Action, str]:
        """The first matching rule's action and a reason naming the rule and the state it read (``before.total``;
        never the values: a decision is kept after the record's data is purged)."""
        outcome = self.outcome(operation, before, after, typed)
        return outcome.action, outcome.reason

    def outcome(
        self,
        operation: PolicyOperation,
        before: Mapping[str, Any] | None,
        after: Mapping[str, Any] | None,
        typed: Typer,
    ) -> Outcome:
        """``resolve``, with the fields whose values could not be compared (the rule failed closed on them)."""
        skipped: list[str] = []
        unknown: list[str] = []
        for rule in self.rules_for(operation):
            states = States(operation, before, after)
            holds = True if rule.when is None else rule.when.evaluate(states, typed)
            if holds is None:
                unknown += [name for name in states.unknown if name not in unknown]
                note = (
                    f"policy {operation}: {rule.description} cannot be evaluated: {', '.join(states.unknown)} "
                    "no longer fits its field's type"
                )
                # not allowed by it: the rules below decide, at most as permissive
                if rule.action == "allow":
                    skipped.append(f"{note}, so it does not allow")
                    continue
                return Outcome(
                    "deny",
                    "; ".join([*skipped, f"{note}, so it denies (fail closed)"]),
                    tuple(unknown),
                )
            if holds:
                read = ", ".join(states.read)  # names, never values: decisions outlive purges
                reason = f"policy {operation}: {rule.description}" + (
                    f" (read {read})" if read else ""
                )
                return Outcome(rule.action, "; ".join([*skipped, reason]), tuple(unknown))
        reason = f"policy {operation}: no rule allows it (writes are opt-in)"
        return Outcome("deny", "; ".join([*skipped, reason]), tuple(unknown))


@dataclass(frozen=True)
class Outcome:
    """What a model's policy says about one command."""

    action: Action
    reason: str
    """The rule that decided (and any allow rule it could not evaluate), naming the fields it read."""
    unknown: tuple[str, ...] = ()
    """The fields (``before.total``) whose stored values no longer fit their type, so a rule failed closed."""

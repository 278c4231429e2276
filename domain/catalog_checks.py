"""Model-level catalog checks: a catalog that loads is one that can be written.

A ``FieldSpec`` checks its own declaration; the checks here need the whole
model: names, the ``required`` and ``immutable`` lists, auto-set sources
against their fields' types, the roles its grants name (a role no principal
can hold would be a typo that silently grants nothing), and policy conditions, whose values are typed by
the very method the pipeline compares with (``Comparison.operand``), so a
condition that could raise at write time cannot load. Each failure is a
``CatalogCheckError`` naming its key relative to the model
(``policy.update.0.when.all.1``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol

import pydantic

from domain.fields import NAME_PATTERN, CatalogCheckError, FieldSpec, Operation
from domain.generators import FITS
from domain.generators import parse as parse_generator
from domain.grants import ANY_ROLE, Grants
from domain.limits import HARD_LIMITS, identifier_problem
from domain.policy import (
    POLICY_OPERATIONS,
    STATES,
    AllOf,
    Comparison,
    Condition,
    ModelPolicy,
    split_field,
)

AUTO_SOURCE_TYPES = {"principal.user_id": "str", "principal.tenant_id": "str", "now()": "datetime"}
"""The one field type each built-in auto-set source fits (``principal.<attr>`` can be anything)."""
ORDERING = ("lt", "le", "gt", "ge")
UNORDERED = ("bool", "json", "list")


class DeclaredAutoSet(Protocol):
    """An auto-set rule as the checks read it (``domain.catalog.AutoSet``)."""

    @property
    def value(self) -> str: ...
    @property
    def on(self) -> tuple[Operation, ...]: ...


class DeclaredChild(Protocol):
    """A child link as the checks read it (``domain.catalog.ChildSpec``)."""

    @property
    def model(self) -> str: ...
    @property
    def via(self) -> str: ...


class DeclaredModel(Protocol):
    """What the checks read of a model (``domain.catalog.ModelSpec``, which runs them: so typed, this module
    need not import the catalog that imports it)."""

    @property
    def fields(self) -> Mapping[str, FieldSpec]: ...
    @property
    def required(self) -> tuple[str, ...]: ...
    @property
    def immutable(self) -> tuple[str, ...]: ...
    @property
    def auto_set(self) -> Mapping[str, DeclaredAutoSet]: ...
    @property
    def tenant_field(self) -> str: ...
    @property
    def policy(self) -> ModelPolicy: ...
    @property
    def grants(self) -> Grants: ...
    @property
    def generators(self) -> Mapping[str, str]: ...
    @property
    def unique(self) -> tuple[tuple[str, ...], ...]: ...
    @property
    def validators(self) -> tuple[str, ...]: ...
    @property
    def children(self) -> Mapping[str, DeclaredChild]: ...
    def compared(self, name: str) -> FieldSpec | None: ...
    def typed(self, name: str, value: Any) -> Any: ...


def check_model(spec: DeclaredModel) -> None:
    """Raise ``CatalogCheckError`` for the first declaration that would break writes."""
    _check_names(spec)
    _check_lists(spec)
    _check_required(spec)
    _check_auto_set(spec)
    _check_generators(spec)
    _check_unique(spec)
    _check_grants(spec)
    _check_policy(spec)


def check_links(models: Mapping[str, DeclaredModel], validators: Collection[str]) -> None:
    """What spans models: children point at declared models through a uuid field, no model is its own
    ancestor or has two parents, and every validator a model names is declared."""
    parents: dict[str, str] = {}
    for name, spec in models.items():
        for key, child in spec.children.items():
            where = f"models.{name}.children.{key}"
            if not NAME_PATTERN.match(key) or key in spec.fields:
                raise CatalogCheckError(
                    where, f"{key!r} must be a field-like name no field of {name!r} uses"
                )
            if child.model not in models:
                raise CatalogCheckError(where, f"child model {child.model!r} is not declared")
            via = models[child.model].fields.get(child.via)
            if via is None or via.type != "uuid":
                raise CatalogCheckError(
                    where, f"{child.model}.{child.via} must be a declared uuid field"
                )
            if child.model in parents:
                raise CatalogCheckError(
                    where, f"{child.model!r} already belongs to {parents[child.model]!r}"
                )
            parents[child.model] = name
    for name, parent in parents.items():
        seen, model = {name}, parent
        while model in parents:
            if model in seen:
                raise CatalogCheckError(f"models.{name}", "its children form a cycle")
            seen.add(model)
            model = parents[model]
    for name, spec in models.items():
        for index, validator in enumerate(spec.validators):
            if validator not in validators:
                raise CatalogCheckError(
                    f"models.{name}.validators.{index}",
                    f"validator {validator!r} is not declared in [validators]",
                )


def _check_generators(spec: DeclaredModel) -> None:
    for name, template in spec.generators.items():
        key = f"generators.{name}"
        if name not in spec.fields:
            raise CatalogCheckError(key, f"generators names undeclared field {name!r}")
        if name in spec.auto_set or name in spec.required:
            raise CatalogCheckError(
                key, f"field {name!r} is generated; it cannot also be auto-set or required"
            )
        try:
            generator = parse_generator(template)
        except ValueError as exc:
            raise CatalogCheckError(key, str(exc)) from None
        field_type = spec.fields[name].type
        if field_type not in FITS[generator.kind]:
            raise CatalogCheckError(
                key,
                f"{{{generator.kind}}} makes {' or '.join(FITS[generator.kind])} values; "
                f"field {name!r} is {field_type}",
            )
        if generator.source is not None and (
            generator.source not in spec.fields or generator.source == name
        ):
            raise CatalogCheckError(
                key,
                f"{generator.kind} reads {generator.source!r}, which is not another declared field",
            )


def _check_unique(spec: DeclaredModel) -> None:
    for index, names in enumerate(spec.unique):
        unknown = [name for name in names if name not in spec.fields]
        if not names or unknown or len(set(names)) != len(names):
            raise CatalogCheckError(
                f"unique.{index}",
                f"unique lists declared fields, each once: {', '.join(unknown) or 'none given'}",
            )
        for name in names:
            if spec.fields[name].type in ("json", "list"):
                raise CatalogCheckError(
                    f"unique.{index}", f"{name!r} is {spec.fields[name].type}: not comparable"
                )


def _check_grants(spec: DeclaredModel) -> None:
    """Every role a grant names is ``*`` or a role a principal can hold (``domain.principal``'s identifiers)."""
    for grant in type(spec.grants).model_fields:
        for index, role in enumerate(getattr(spec.grants, grant) or ()):
            problem = identifier_problem(role) if role != ANY_ROLE else None
            if problem is None and len(role) > HARD_LIMITS.identifier_length:
                problem = f"is longer than {HARD_LIMITS.identifier_length} characters"
            if problem is not None:
                raise CatalogCheckError(
                    f"grants.{grant}.{index}",
                    f"role {_show(role)} {problem}: no principal can hold it",
                )


def _check_names(spec: DeclaredModel) -> None:
    reserved = (
        "use lowercase letters, digits and underscores, starting with a letter ('id' is reserved)"
    )
    for name in spec.fields:
        if not NAME_PATTERN.match(name) or name == "id":
            raise CatalogCheckError(
                f"fields.{name}", f"field name {name!r} is not allowed: {reserved}"
            )
    if not NAME_PATTERN.match(spec.tenant_field) or spec.tenant_field == "id":
        raise CatalogCheckError(
            "tenant_field", f"tenant field {spec.tenant_field!r} is not allowed: {reserved}"
        )
    if spec.tenant_field in spec.fields:
        raise CatalogCheckError(
            f"fields.{spec.tenant_field}",
            f"tenant field {spec.tenant_field!r} is implicit; do not declare it",
        )


def _check_lists(spec: DeclaredModel) -> None:
    system = {"id", spec.tenant_field}
    for key, names in (
        ("required", spec.required),
        ("immutable", spec.immutable),
        ("auto_set", spec.auto_set),
    ):
        unknown = sorted(set(names) - set(spec.fields) - system)
        if unknown:
            raise CatalogCheckError(key, f"{key} names undeclared fields: {', '.join(unknown)}")
        twice = sorted({name for name in names if list(names).count(name) > 1})
        if twice:
            raise CatalogCheckError(key, f"{key} lists {', '.join(twice)} more than once")


def _check_required(spec: DeclaredModel) -> None:
    for name in spec.required:
        if name in ("id", spec.tenant_field):
            raise CatalogCheckError(
                "required", f"required names {name!r}, which Writ sets: every create would fail"
            )
        if name in spec.auto_set:
            raise CatalogCheckError(
                "required", f"required names {name!r}, which is auto-set, never sent by callers"
            )
        field = spec.fields[name]
        if not field.writable_on:
            raise CatalogCheckError(
                "required", f"required field {name!r} has writable_on = []: no one can write it"
            )
        if "create" not in field.writable_on and field.default is None:
            raise CatalogCheckError(
                "required",
                f"required field {name!r} is not writable on create and has no default: "
                "every create would fail",
            )


def _check_auto_set(spec: DeclaredModel) -> None:
    for name, rule in spec.auto_set.items():
        if name in ("id", spec.tenant_field):
            raise CatalogCheckError(
                f"auto_set.{name}", f"{name!r} is set by Writ itself; it cannot be auto-set"
            )
        field_type = spec.fields[name].type
        fits = AUTO_SOURCE_TYPES.get(rule.value, field_type)
        if field_type != fits:
            raise CatalogCheckError(
                f"auto_set.{name}",
                f"{rule.value} gives a {fits} value; field {name!r} is {field_type}: "
                "every stamped write would fail",
            )
        if "update" in rule.on and name in spec.immutable:
            raise CatalogCheckError(
                f"auto_set.{name}.on", f"field {name!r} is immutable but auto-set on update"
            )


def _check_policy(spec: DeclaredModel) -> None:
    for operation in POLICY_OPERATIONS:
        for index, rule in enumerate(spec.policy.rules_for(operation)):
            if rule.when is not None:
                _check_condition(spec, operation, rule.when, f"policy.{operation}.{index}.when")


def _check_condition(spec: DeclaredModel, operation: str, condition: Condition, key: str) -> None:
    if isinstance(condition, Comparison):
        _check_state(operation, condition, key)
        _check_comparison(spec, condition, key)
        return
    combinator, parts = (
        ("all", condition.all) if isinstance(condition, AllOf) else ("any", condition.any)
    )
    for index, part in enumerate(parts):
        _check_condition(spec, operation, part, f"{key}.{combinator}.{index}")


def _check_state(operation: str, comparison: Comparison, key: str) -> None:
    """The condition reads a state this operation has, and says which when there are two."""
    state, field = split_field(comparison.field)
    states = STATES[operation]
    if comparison.op == "changed":
        if states != ("before", "after") or state is not None:
            raise CatalogCheckError(
                key,
                f"{comparison.field} changed: 'changed' applies to update and "
                "bulk_update rules, on a bare field name",
            )
        return
    if state is None and len(states) > 1:
        article = "an" if operation[0] in "aeiou" else "a"
        raise CatalogCheckError(
            key,
            f"condition on {field!r} in {article} {operation} rule must say which state it "
            f"reads: before.{field} (the stored record) or after.{field} (the record "
            "as the command would leave it)",
        )
    if state is not None and state not in states:
        raise CatalogCheckError(
            key, f"a {operation} has no {state}-state: use {field} or {states[0]}.{field}"
        )


def condition_target(spec: DeclaredModel, name: str) -> FieldSpec | None:
    """The field a condition reads, typed for comparison (``id`` as uuid, the tenant field as str): the one
    place a condition's field name is resolved (``before.total`` and ``after.total`` read ``total``)."""
    return spec.compared(split_field(name)[1])


def _check_comparison(spec: DeclaredModel, comparison: Comparison, key: str) -> None:
    target = condition_target(spec, comparison.field)
    if target is None:
        raise CatalogCheckError(key, f"condition names undeclared field {comparison.field!r}")
    if comparison.op == "changed":
        if comparison.value is not None:
            raise CatalogCheckError(key, f"{comparison.field} changed: takes no value")
        return
    problem = _operator_problem(comparison, target.type)
    if problem:
        raise CatalogCheckError(key, f"{comparison.field} {comparison.op}: {problem}")
    if comparison.op == "is_null":
        return
    try:
        operand = comparison.operand(spec.typed, listed=target.type == "list")
    except Exception as exc:  # whatever typing raises here, every evaluation would raise
        raise CatalogCheckError(
            key,
            f"value {_show(comparison.value)} does not fit field "
            f"{comparison.field!r} ({target.type}): {_why(exc)}",
        ) from None
    _check_choices(spec, comparison, operand, key)


def _operator_problem(comparison: Comparison, field_type: str) -> str | None:
    """Why this operator cannot apply to this field type and value (None when it can)."""
    op, value = comparison.op, comparison.value
    if op in ORDERING and field_type in UNORDERED:
        return f"{field_type} values have no order"
    if op == "contains" and field_type not in ("str", "list"):
        return f"applies to str and list fields only, not {field_type}"
    if op == "contains" and field_type == "str" and not isinstance(value, str):
        return f"needs a str value, not {_show(value)}"
    if op == "in" and not isinstance(value, list | tuple):
        return f"needs a list of values, not {_show(value)}"
    if op == "is_null" and value is not None and not isinstance(value, bool):
        return f"takes true or false, not {_show(value)}"
    if op not in ("in", "is_null") and value is None:
        return "needs a value (test for null with is_null)"
    return None


def _check_choices(spec: DeclaredModel, comparison: Comparison, operand: Any, key: str) -> None:
    """A value outside the field's choices in eq/ne/in is a typo: the rule could never match (or never fail)."""
    name = split_field(comparison.field)[1]
    field = spec.fields.get(name)
    if field is None or field.choices is None or comparison.op not in ("eq", "ne", "in"):
        return
    choices = [spec.typed(name, choice) for choice in field.choices]
    values = operand if comparison.op == "in" else [operand]
    strays = [value for value in values if value is not None and value not in choices]
    if strays:
        raise CatalogCheckError(
            key, f"value {_show(strays[0])} is not one of field {comparison.field!r}'s choices"
        )


def _why(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        return str(exc.errors()[0]["msg"])
    return f"{type(exc).__name__}: {exc}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

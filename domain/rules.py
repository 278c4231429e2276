"""Field rules: what a create or update payload may contain.

Checks run in the specification's order — unknown, not writable, immutable,
required, type/bounds — and each stage reports every violation it finds, so a
dry run can show them all while a real write raises the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from domain.catalog import ModelSpec
from domain.errors import (
    FieldNotWritableError,
    ImmutableFieldError,
    InvalidFieldValueError,
    InvalidInputError,
    RequiredFieldMissingError,
    UnknownFieldError,
    WritError,
)
from domain.fields import Operation
from domain.limits import Limits, label, shown, unstorable
from domain.principal import Principal


def check_create(
    spec: ModelSpec, data: Mapping[str, Any], limits: Limits
) -> tuple[dict[str, Any], list[WritError]]:
    """Normalized caller data (with defaults) for a new record, or the violations."""
    errors = _unknown(spec, data)
    errors += [
        _not_writable(name, "set by Writ, not by the caller")
        for name in data
        if spec.is_stamped(name) or spec.is_system(name)
    ]
    errors += [
        _not_writable(name, "not writable on create")
        for name, field in spec.fields.items()
        if name in data and not spec.is_stamped(name) and not field.writable_on_op("create")
    ]
    if errors:
        return {}, errors
    defaults = spec.create_defaults
    missing = [
        name
        for name in spec.required
        if not spec.is_stamped(name) and data.get(name, defaults.get(name)) is None
    ]
    if missing:
        return {}, [_missing(missing)]
    normalized, errors = _normalize(spec, data, limits, explicit=set(data))
    return {**defaults, **normalized}, errors


def check_update(
    spec: ModelSpec,
    current: Mapping[str, Any],
    payload: Mapping[str, Any],
    limits: Limits,
    *,
    replace: bool,
) -> tuple[dict[str, Any], list[WritError]]:
    """The normalized changes a patch (or the full data a replace) would write."""
    errors = _unknown(spec, payload)
    changed = {
        name: value
        for name, value in payload.items()
        if not _same(spec, name, current, value, limits)
    }
    errors += [
        _not_writable(name, "set by Writ, not by the caller")
        for name in payload
        if spec.is_stamped(name) or (spec.is_system(name) and not spec.is_immutable(name))
    ]
    errors += [
        _not_writable(name, "not writable on update")
        for name in changed
        if name in spec.fields
        and not spec.is_stamped(name)
        and not spec.is_immutable(name)
        and not spec.fields[name].writable_on_op("update")
    ]
    if errors:
        return {}, errors
    errors = [
        ImmutableFieldError(f"Cannot modify immutable field: {name}", field=name)
        for name in changed
        if spec.is_immutable(name)
    ]
    if errors:
        return {}, errors
    kept = {name: current.get(name) for name in spec.kept_on_update}
    if replace:
        values = {name: spec.fields[name].default for name in spec.fields if name not in kept}
        values.update({name: value for name, value in payload.items() if name in values})
        missing = [name for name in spec.required if name not in kept and values.get(name) is None]
    else:
        values = {name: value for name, value in changed.items() if name in spec.fields}
        missing = [name for name in spec.required if name in values and values[name] is None]
    if missing:
        return {}, [_missing(missing)]
    normalized, errors = _normalize(spec, values, limits, explicit=set(payload))
    if replace and not errors:
        normalized = {**kept, **normalized, spec.tenant_field: current.get(spec.tenant_field)}
    return normalized, errors


def stamp(
    spec: ModelSpec, operation: Operation, principal: Principal, now: datetime, limits: Limits
) -> dict[str, Any]:
    """Auto-set values for ``operation``, normalized to their field types."""
    stamped: dict[str, Any] = {}
    for name, rule in spec.auto_fields(operation).items():
        if rule.value == "now()":
            raw: Any = now
        else:
            raw = principal.attribute(rule.value.removeprefix("principal."))
        field = spec.fields.get(name)
        stamped[name] = field.normalize(name, raw, limits) if field is not None else raw
    return stamped


def _unknown(spec: ModelSpec, data: Mapping[str, Any]) -> list[WritError]:
    """Field names that are not text Writ can store, then names the model does not declare."""
    if all(name in spec.fields for name in data):
        return []
    unfit: list[WritError] = [
        InvalidInputError(f"Field name {shown(name)} {problem}")
        for name in data
        if name not in spec.fields and (problem := unstorable(name))
    ]
    return unfit or [
        UnknownFieldError(f"Unknown field: {label(name)}", field=label(name))
        for name in data
        if name not in spec.fields and not spec.is_system(name)
    ]


def _not_writable(name: str, why: str) -> WritError:
    return FieldNotWritableError(f"Field {label(name)} is {why}", field=label(name))


def _same(
    spec: ModelSpec, name: str, current: Mapping[str, Any], value: Any, limits: Limits
) -> bool:
    if name == "id":
        return str(value) == str(current.get("id"))
    field = spec.fields.get(name)
    if field is None:
        return name in current and current[name] == value
    try:
        normalized = field.normalize(name, value, limits)
        stored = current.get(name)
        if normalized == stored:
            return True
        # list items stored before they were normalized (a datetime's offset, a decimal's exponent)
        return (
            field.type == "list"
            and stored is not None
            and normalized == field.normalize(name, stored, limits, choices=False)
        )
    except InvalidFieldValueError:
        return False


def _missing(names: list[str]) -> RequiredFieldMissingError:
    return RequiredFieldMissingError(
        f"Missing required fields: {', '.join(names)}", field=names[0] if len(names) == 1 else None
    )


def _normalize(
    spec: ModelSpec, values: Mapping[str, Any], limits: Limits, *, explicit: set[str]
) -> tuple[dict[str, Any], list[WritError]]:
    """Normalize every value; an omitted optional field is simply absent (null)."""
    normalized: dict[str, Any] = {}
    errors: list[WritError] = []
    for name, value in values.items():
        if value is None and name not in explicit:
            normalized[name] = None
            continue
        try:
            normalized[name] = spec.fields[name].normalize(name, value, limits)
        except InvalidFieldValueError as exc:
            errors.append(exc)
    return normalized, errors

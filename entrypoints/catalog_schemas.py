"""JSON Schemas read off the catalog: the agent tools' arguments and the HTTP API's request bodies.

A create takes the fields a caller may write on create (not what Writ stamps: auto-set and generated
fields, ``id``, the tenant), requiring the catalog's ``required`` fields that have no default; a replace
takes the fields writable on update that are not immutable, required the same way; a patch the same
fields, none required. A create's nested children are arrays of their model's create schema, without
the field naming the parent. Each field carries its type, nullability, choices, bounds, lengths,
pattern, default and description, so an agent can shape a write before sending it. The schemas guide;
they never gate: Writ checks every argument itself and records every refusal.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from domain.catalog import Catalog, ModelSpec
from domain.fields import FieldSpec, Operation
from domain.policy import FILTER_OPERATORS
from projections.queries import MAX_LIMIT
from projections.schema import SYSTEM_TYPES, UNSORTABLE

Schema = dict[str, Any]
Shape = Literal["create", "replace", "patch"]

_TYPES: dict[str, Schema] = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "decimal": {"type": ["string", "number"]},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "uuid": {"type": "string", "format": "uuid"},
    "json": {},
    "list": {"type": "array"},
}
_NOTES = {
    "decimal": 'a decimal: send it as a string ("10.50") to keep it exact',
    "datetime": "ISO-8601 with a UTC offset",
    "json": "any JSON value",
}

PURPOSE: Schema = {
    "type": "string",
    "minLength": 1,
    "description": "Why this write is made, in the terms of the person you act for (recorded).",
}
IDEMPOTENCY_KEY: Schema = {
    "type": "string",
    "minLength": 1,
    "description": "Repeat-safe key: a retry with the same key and command returns the "
    "first result instead of writing again.",
}
RECORD_ID: Schema = {"type": "string", "format": "uuid", "description": "The record's id."}
EXPECTED_VERSION: Schema = {
    "type": "integer",
    "minimum": 1,
    "description": "Refuse with VERSION_CONFLICT unless the record is at this version.",
}


def arguments(properties: Schema, required: list[str]) -> Schema:
    """An object schema with exactly these properties (``required`` only when there are any)."""
    schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def data_schema(catalog: Catalog, model: str, shape: Shape) -> Schema:
    """The ``data`` (create, replace) or ``changes`` (patch) a write of ``model`` may carry."""
    spec = catalog.model(model)
    fields = writable(spec, shape)
    properties = {
        name: field_schema(name, field, defaults=shape != "patch") for name, field in fields.items()
    }
    if shape == "create":
        properties.update(_children(catalog, spec))
    required = (
        []
        if shape == "patch"
        else [name for name in spec.required if name in fields and fields[name].default is None]
    )
    return arguments(properties, required)


def writable(spec: ModelSpec, shape: Shape) -> dict[str, FieldSpec]:
    """The fields a caller may send on a write of ``shape`` (an update never changes an immutable one)."""
    operation: Operation = "create" if shape == "create" else "update"
    return {
        name: field
        for name, field in spec.fields.items()
        if field.writable_on_op(operation)
        and not spec.is_stamped(name)
        and not spec.is_system(name)
        and (operation == "create" or not spec.is_immutable(name))
    }


def field_schema(name: str, field: FieldSpec, *, defaults: bool = True) -> Schema:
    """``field`` as JSON Schema (``defaults=False``: without its default, which a patch never applies)."""
    schema: Schema = {**_TYPES[field.type], **_bounds(field)}
    if field.items is not None:
        schema["items"] = dict(_TYPES[field.items])
    if field.nullable and "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*kinds, "null"]
    if field.choices is not None:
        choices = [field.normalize(name, choice, choices=False) for choice in field.choices]
        schema["enum"] = [*choices, None] if field.nullable else choices
    if defaults and field.default is not None:
        schema["default"] = field.normalize(name, field.default)
    notes = [note for note in (field.description, _NOTES.get(field.type)) if note]
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def _bounds(field: FieldSpec) -> Schema:
    lengths = ("minItems", "maxItems") if field.type == "list" else ("minLength", "maxLength")
    bounds = {
        "minimum": _number(field.min),
        "maximum": _number(field.max),
        lengths[0]: field.min_length,
        lengths[1]: field.max_length,
        "pattern": field.pattern,
    }
    return {key: value for key, value in bounds.items() if value is not None}


def _number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)


def _children(catalog: Catalog, spec: ModelSpec) -> Schema:
    nested: Schema = {}
    for name, child in spec.children.items():
        rows = data_schema(catalog, child.model, "create")
        properties = {key: value for key, value in rows["properties"].items() if key != child.via}
        required = [key for key in rows.get("required", ()) if key != child.via]
        nested[name] = {
            "type": "array",
            "items": arguments(properties, required),
            "description": f"{child.model} records created with this one, in the same save "
            f"(their {child.via} is set to it).",
        }
    return nested


def query_properties(catalog: Catalog, model: str) -> Schema:
    """The arguments of a model's query: filters, sort keys, page size and cursor, deleted rows, a wait."""
    spec = catalog.model(model)
    columns = ["id", *spec.fields, *(name for name in SYSTEM_TYPES if name != "id")]
    sortable = [
        name
        for name in columns
        if name not in spec.fields or spec.fields[name].type not in UNSORTABLE
    ]
    condition = arguments(
        {
            "field": {"type": "string", "enum": columns},
            "op": {"type": "string", "enum": list(FILTER_OPERATORS)},
            "value": {
                "description": "Typed like the field; a list for `in`; true or false for `is_null`."
            },
        },
        ["field", "op"],
    )
    return {
        "filters": {
            "type": "array",
            "items": condition,
            "description": "Conditions that must all hold.",
        },
        "order_by": {
            "type": "array",
            "items": {"type": "string", "enum": [*sortable, *(f"-{n}" for n in sortable)]},
            "description": "Sort keys; a leading '-' sorts descending. Ties end with id.",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
        "after": {"type": "string", "description": "The next_cursor of the previous page."},
        "include_deleted": {
            "type": "boolean",
            "default": False,
            "description": "Also soft-deleted rows (needs the read_deleted grant).",
        },
        "wait_for": {
            "type": "integer",
            "minimum": 0,
            "description": "First wait until the views have reached this log position (a write "
            "result's `position`): read your own writes.",
        },
    }

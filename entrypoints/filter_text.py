"""Filters written as text, ``FIELD:OP[:VALUE]``: how ``writ list -w`` and ``GET /v1/{model}?where=`` take them.

``status:eq:placed``, ``total:ge:10``, ``status:in:placed,shipped`` (or a JSON list, for values with
commas), ``note:is_null`` or ``note:is_null:false``, ``tags:contains:gift``. A value is taken as typed
for the field: text, decimals, dates, times and ids as written; integers, booleans and JSON fields as JSON.
"""

from __future__ import annotations

from typing import Any

import orjson

from domain.catalog import Catalog
from domain.errors import InvalidInputError
from domain.limits import shown
from projections.schema import SYSTEM_TYPES

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null")
JSON_TYPES = frozenset({"int", "bool", "json", "list"})
TRUTH = {"": True, "true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def parse_filter(text: str, catalog: Catalog, model: str) -> tuple[str, str, Any]:
    """``FIELD:OP[:VALUE]`` as a (field, op, value) filter, the value typed for the field."""
    name, _, rest = text.partition(":")
    op, _, value = rest.partition(":")
    if not name or op not in OPERATORS:
        raise InvalidInputError(
            f"filter {shown(text)}: use FIELD:OP[:VALUE] with OP one of {', '.join(OPERATORS)}"
        )
    if op == "is_null":
        if value.lower() not in TRUTH:
            raise InvalidInputError(
                f"filter {shown(text)}: is_null takes true or false (or nothing: true)"
            )
        return name, op, TRUTH[value.lower()]
    if ":" not in rest:
        raise InvalidInputError(f"filter {shown(text)}: {op} needs a value, e.g. FIELD:{op}:VALUE")
    spec = catalog.model(model).fields.get(name)
    kind = spec.type if spec is not None else SYSTEM_TYPES.get(name, "str")
    if op == "in":
        items = _json(text, value) if value.startswith("[") else value.split(",")
        return name, op, [_typed(text, kind, item) for item in items]
    if op == "contains" and kind == "list":
        kind = spec.items if spec is not None and spec.items else "json"
    return name, op, _typed(text, kind, value)


def _typed(text: str, kind: str, value: Any) -> Any:
    return _json(text, value) if isinstance(value, str) and kind in JSON_TYPES else value


def _json(text: str, value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidInputError(f"filter {shown(text)}: {shown(value)} is not valid JSON") from None

"""Catalog checks: a catalog that would break writes is refused at load, naming the model and key.

Each case states the exact refusal: code ``CATALOG_INVALID`` and the message fragment
``model 'Order', key '<key>': <why>``. The positive cases show that what loads also evaluates.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.catalog import Catalog
from domain.commands import Create
from domain.errors import CatalogError
from domain.pipeline import decide
from tests.catalogs import principal

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

BASE: dict[str, Any] = {
    "fields": {
        "qty": {"type": "int", "nullable": True},
        "total": {"type": "decimal", "nullable": True, "max": 5000},
        "sku": {"type": "str", "nullable": True, "pattern": "^[A-Z]+$"},
        "day": {"type": "date", "nullable": True},
        "at": {"type": "datetime", "nullable": True},
        "ref": {"type": "uuid", "nullable": True},
        "flag": {"type": "bool", "nullable": True},
        "meta": {"type": "json", "nullable": True},
        "tags": {"type": "list", "items": "str", "nullable": True},
        "amounts": {"type": "list", "items": "decimal", "nullable": True},
        "status": {"type": "str", "choices": ["draft", "placed"], "default": "draft"},
    },
    "policy": {"create": "allow", "update": "allow"},
    "grants": {"create": ["*"], "update": ["*"]},
}


def order(**changes: Any) -> dict[str, Any]:
    """The base Order model with ``changes`` merged in (one level deep into dicts)."""
    spec = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return {"models": {"Order": spec}}


def field(name: str, **declaration: Any) -> dict[str, Any]:
    return order(fields={name: declaration})


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_dict(data, source="shop.toml")
    assert caught.value.code == "CATALOG_INVALID"
    return caught.value.message


@pytest.mark.parametrize(
    "pattern",
    ["^(?=A)[A-Z]+$", "(?<!x)A", r"(A)\1", "(", "[", "a{99999999999}", "(a{1000}){1000}", "(" * 300 + ")" * 300],
)
def test_a_pattern_the_validating_engine_cannot_compile_is_refused(pattern: str) -> None:
    message = refusal(field("sku", type="str", pattern=pattern))
    assert "model 'Order', key 'fields.sku.pattern': 'pattern' is not a valid regular expression: " in message


def test_the_pattern_that_loads_is_the_one_writes_are_validated_with() -> None:
    catalog = Catalog.from_dict(field("sku", type="str", pattern=r"^[A-Z]+\d?$"))
    create = Create(model="Order", data={"sku": "abc"})
    verdict = decide(catalog, create, principal(), None, NOW)
    assert verdict.error is not None and verdict.error.code == "INVALID_FIELD_VALUE"
    assert decide(catalog, Create(model="Order", data={"sku": "AB7"}), principal(), None, NOW).action == "allow"


@pytest.mark.parametrize(
    ("name", "declaration", "expected"),
    [
        ("qty", {"type": "int", "min": 5, "max": 1}, "key 'fields.qty.min': min 5 is greater than max 1"),
        ("sku", {"type": "str", "min_length": 3, "max_length": 2},
         "key 'fields.sku.min_length': min_length 3 is greater than max_length 2"),
        ("qty", {"type": "int", "min_length": 1}, "key 'fields.qty.min_length': 'min_length'/'max_length' only"),
        ("meta", {"type": "json", "max_length": 1}, "key 'fields.meta.max_length': 'min_length'/'max_length' only"),
        ("day", {"type": "date", "max": 1}, "key 'fields.day.max': 'min'/'max' only apply to int and decimal"),
        ("qty", {"type": "int", "min": "NaN"}, "key 'fields.qty.min': Input should be a finite number"),
        ("sku", {"type": "str", "max_length": 10**30}, "key 'fields.sku': the field's constraints cannot be applied"),
        ("status", {"type": "str", "choices": []}, "key 'fields.status.choices': 'choices' is empty"),
        ("status", {"type": "str", "choices": ["a", 1]}, "key 'fields.status.choices': Invalid value for choices"),
        ("sku", {"type": "str", "pattern": "^[A-Z]+$", "choices": ["A", "b"]},
         "key 'fields.sku.choices': Invalid value for choices: String should match pattern"),
        ("qty", {"type": "int", "max": 3, "choices": [1, 4]}, "key 'fields.qty.choices': Invalid value for choices"),
        ("qty", {"type": "int", "min": 1, "default": 0}, "key 'fields.qty.default': Invalid value for default"),
        ("status", {"type": "str", "choices": ["a"], "default": "b"},
         "key 'fields.status.default': Invalid value for default: must be one of a"),
        ("sku", {"type": "str", "max_length": 1, "default": "AB"}, "key 'fields.sku.default': Invalid value"),
        ("tags", {"type": "list", "items": "int", "default": ["x"]}, "key 'fields.tags.default': Invalid value"),
        ("meta", {"type": "json", "index": True}, "key 'fields.meta.index': json and list fields cannot be indexed"),
        ("qty", {"type": "int", "items": "int"}, "key 'fields.qty.items': 'items' only applies to fields of type"),
    ],
)
def test_a_field_that_breaks_its_own_rules_is_refused(name: str, declaration: dict[str, Any], expected: str) -> None:
    assert f"model 'Order', {expected}" in refusal(field(name, **declaration))

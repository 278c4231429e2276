"""A plain str or int field accepts a value without calling its validator exactly when the validator would accept it
as it is (``FieldSpec.normalize``'s shortcut): every value gets the validator's own result or refusal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.errors import InvalidFieldValueError
from domain.fields import FieldSpec
from domain.limits import DEFAULT_LIMITS

SPECS = [
    FieldSpec(type="str", max_length=5),
    FieldSpec(type="str", min_length=3),
    FieldSpec(type="str", min_length=2, max_length=4, choices=("ab", "abc", "zz")),
    FieldSpec(type="str", choices=("draft", "placed")),
    FieldSpec(type="int", min=Decimal(1), max=Decimal(10)),
    FieldSpec(type="int", min=Decimal(-2)),
    FieldSpec(type="int", choices=(1, 3, 5)),
]
VALUES = [
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "abcdef",
    "zz",
    "draft",
    "placed",
    "Draft",
    "éééé",
    -3,
    -2,
    0,
    1,
    3,
    5,
    10,
    11,
    2**40,
]


def outcome(decide: Any) -> tuple[str, Any]:
    try:
        return "accepted", decide()
    except InvalidFieldValueError as refusal:
        return "refused", refusal.message


@pytest.mark.parametrize("spec", SPECS, ids=repr)
def test_the_shortcut_agrees_with_the_validator(spec: FieldSpec) -> None:
    assert spec._at_once is not None  # the shortcut applies to these fields
    for value in VALUES:
        if (type(value) is str) != (spec.type == "str"):
            continue
        assert outcome(lambda v=value: spec.normalize("f", v)) == outcome(
            lambda v=value: spec._validated("f", v, DEFAULT_LIMITS, True)
        ), value

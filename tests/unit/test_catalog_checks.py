"""Catalog checks: a catalog that would break writes is refused at load, naming the model and key.

Each case states the exact refusal: code ``CATALOG_INVALID`` and the message fragment
``model 'Order', key '<key>': <why>``. The positive cases show that what loads also evaluates.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from domain.catalog import Catalog, ModelSpec
from domain.commands import Create, Patch
from domain.errors import CatalogError
from domain.pipeline import decide
from domain.record import Record
from tests.catalogs import principal

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RECORD_ID = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

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


def when(condition: dict[str, Any]) -> dict[str, Any]:
    """The condition in a create rule (where a bare field name reads the only state there is)."""
    return order(policy={"create": [{"action": "deny", "when": condition}, "allow"]})


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        Catalog.from_dict(data, source="shop.toml")
    assert caught.value.code == "CATALOG_INVALID"
    return caught.value.message


CONDITION = "model 'Order', key 'policy.create.0.when': "


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            {"field": "qty", "op": "gt", "value": "abc"},
            "value 'abc' does not fit field 'qty' (int): Input should be a valid integer",
        ),
        ({"field": "qty", "op": "eq", "value": "5"}, "value '5' does not fit field 'qty' (int)"),
        (
            {"field": "total", "op": "gt", "value": "ten"},
            "value 'ten' does not fit field 'total' (decimal)",
        ),
        (
            {"field": "total", "op": "lt", "value": "NaN"},
            "value 'NaN' does not fit field 'total' (decimal)",
        ),
        (
            {"field": "day", "op": "ge", "value": "2026-13-40"},
            "value '2026-13-40' does not fit field 'day' (date)",
        ),
        (
            {"field": "at", "op": "lt", "value": "2026-01-02T03:04:05"},
            "value '2026-01-02T03:04:05' does not fit field 'at' (datetime): Input should have timezone info",
        ),
        ({"field": "ref", "op": "eq", "value": "x"}, "value 'x' does not fit field 'ref' (uuid)"),
        (
            {"field": "flag", "op": "eq", "value": "yes"},
            "value 'yes' does not fit field 'flag' (bool)",
        ),
        ({"field": "qty", "op": "in", "value": 5}, "qty in: needs a list of values, not 5"),
        ({"field": "sku", "op": "in", "value": "AB"}, "sku in: needs a list of values, not 'AB'"),
        (
            {"field": "qty", "op": "in", "value": [1, "2"]},
            "value [1, '2'] does not fit field 'qty' (int)",
        ),
        (
            {"field": "qty", "op": "contains", "value": 1},
            "qty contains: applies to str and list fields only, not int",
        ),
        (
            {"field": "meta", "op": "contains", "value": "k"},
            "meta contains: applies to str and list fields only",
        ),
        ({"field": "sku", "op": "contains", "value": 5}, "sku contains: needs a str value, not 5"),
        (
            {"field": "tags", "op": "contains", "value": 5},
            "value 5 does not fit field 'tags' (list)",
        ),
        (
            {"field": "amounts", "op": "contains", "value": "lots"},
            "value 'lots' does not fit field 'amounts' (list)",
        ),
        (
            {"field": "note", "op": "is_null", "value": "yes"},
            "condition names undeclared field 'note'",
        ),
        (
            {"field": "qty", "op": "is_null", "value": "yes"},
            "qty is_null: takes true or false, not 'yes'",
        ),
        ({"field": "qty", "op": "is_null", "value": 0}, "qty is_null: takes true or false, not 0"),
        ({"field": "flag", "op": "gt", "value": False}, "flag gt: bool values have no order"),
        ({"field": "meta", "op": "le", "value": 1}, "meta le: json values have no order"),
        ({"field": "tags", "op": "ge", "value": ["a"]}, "tags ge: list values have no order"),
        ({"field": "qty", "op": "eq"}, "qty eq: needs a value (test for null with is_null)"),
        ({"field": "id", "op": "eq", "value": "x"}, "value 'x' does not fit field 'id' (uuid)"),
        (
            {"field": "tenant_id", "op": "eq", "value": 5},
            "value 5 does not fit field 'tenant_id' (str)",
        ),
        (
            {"field": "status", "op": "eq", "value": "shipped"},
            "value 'shipped' is not one of field 'status''s choices",
        ),
        (
            {"field": "status", "op": "in", "value": ["draft", "shiped"]},
            "value 'shiped' is not one of field",
        ),
    ],
)
def test_condition_values_must_fit_their_field(condition: dict[str, Any], expected: str) -> None:
    assert CONDITION + expected in refusal(when(condition))


def test_a_nested_condition_is_named_by_its_path() -> None:
    nested = {
        "any": [
            {"field": "qty", "op": "eq", "value": 1},
            {
                "all": [
                    {"field": "flag", "op": "is_null"},
                    {"field": "qty", "op": "lt", "value": "x"},
                ]
            },
        ]
    }
    message = refusal(when(nested))
    assert (
        "model 'Order', key 'policy.create.0.when.any.1.all.1': value 'x' does not fit field 'qty'"
        in message
    )


@pytest.mark.parametrize(
    ("operation", "condition", "expected"),
    [
        (
            "update",
            {"field": "qty", "op": "gt", "value": 1},
            "condition on 'qty' in an update rule must say which state it reads: before.qty (the stored record) or "
            "after.qty (the record as the command would leave it)",
        ),
        (
            "bulk_update",
            {"field": "qty", "op": "gt", "value": 1},
            "in a bulk_update rule must say which state",
        ),
        (
            "create",
            {"field": "before.qty", "op": "gt", "value": 1},
            "a create has no before-state: use qty or after.qty",
        ),
        (
            "delete",
            {"field": "after.qty", "op": "gt", "value": 1},
            "a delete has no after-state: use qty or before.qty",
        ),
        (
            "create",
            {"field": "qty", "op": "changed"},
            "'changed' applies to update and bulk_update rules",
        ),
        (
            "update",
            {"field": "after.qty", "op": "changed"},
            "'changed' applies to update and bulk_update rules",
        ),
        ("update", {"field": "qty", "op": "changed", "value": 3}, "qty changed: takes no value"),
        (
            "update",
            {"field": "before.colour", "op": "eq", "value": 1},
            "condition names undeclared field 'before.colour'",
        ),
    ],
)
def test_a_condition_says_which_state_it_reads(
    operation: str, condition: dict[str, Any], expected: str
) -> None:
    data = order(policy={operation: [{"action": "deny", "when": condition}, "allow"]})
    assert f"model 'Order', key 'policy.{operation}.0.when': " in refusal(data)
    assert expected in refusal(data)


def test_states_and_changed_load_where_they_apply() -> None:
    for operation, field, op in (
        ("update", "before.qty", "gt"),
        ("update", "after.qty", "gt"),
        ("update", "qty", "changed"),
        ("create", "after.qty", "gt"),
        ("delete", "before.qty", "gt"),
        ("force_delete", "qty", "gt"),
    ):
        condition = {"field": field, "op": op} | ({} if op == "changed" else {"value": 1})
        Catalog.from_dict(
            order(policy={operation: [{"action": "deny", "when": condition}, "allow"]})
        )


def test_conditions_of_every_operation_are_checked() -> None:
    data = order(
        policy={"delete": {"action": "deny", "when": {"field": "qty", "op": "gt", "value": "abc"}}}
    )
    assert "model 'Order', key 'policy.delete.0.when': value 'abc'" in refusal(data)


def _verdict(catalog: Catalog, before: dict[str, Any], changes: dict[str, Any]) -> str:
    data = {"tenant_id": "acme", **before}  # as a create stamps it
    record = Record.create("Order", "acme", data, {"actor": "a"}, NOW, record_id=UUID(RECORD_ID))
    command = Patch(model="Order", id=record.id, changes=changes)
    return decide(catalog, command, principal(), record, NOW).action


@pytest.mark.parametrize(
    ("condition", "before", "changes", "expected"),
    [
        # Conditions compare typed values, not write rules: a bound the value exceeds is no error.
        ({"field": "total", "op": "gt", "value": "10000"}, {"total": "1"}, {"total": "2"}, "allow"),
        ({"field": "amounts", "op": "contains", "value": "1.5"}, {}, {"amounts": ["1.50"]}, "deny"),
        ({"field": "tags", "op": "contains", "value": "b"}, {}, {"tags": ["a", "b"]}, "deny"),
        ({"field": "sku", "op": "contains", "value": "B"}, {}, {"sku": "ABC"}, "deny"),
        ({"field": "id", "op": "in", "value": [RECORD_ID.upper()]}, {}, {"qty": 1}, "deny"),
        ({"field": "tenant_id", "op": "eq", "value": "acme"}, {}, {"qty": 1}, "deny"),
        (
            {"field": "day", "op": "lt", "value": datetime(2026, 1, 3).date()},
            {},
            {"day": "2026-01-02"},
            "deny",
        ),
        (
            {"field": "at", "op": "ge", "value": "2026-01-02T04:00:00+01:00"},
            {},
            {"at": "2026-01-02T03:00:00Z"},
            "deny",
        ),
        ({"field": "qty", "op": "is_null", "value": False}, {}, {"qty": 1}, "deny"),
        ({"field": "qty", "op": "in", "value": [1, None]}, {}, {"qty": 2}, "allow"),
    ],
)
def test_what_loads_evaluates_typed_at_write_time(
    condition: dict[str, Any], before: dict[str, Any], changes: dict[str, Any], expected: str
) -> None:
    reading_after = {**condition, "field": f"after.{condition['field']}"}
    catalog = Catalog.from_dict(
        order(
            policy={
                "create": "allow",
                "update": [{"action": "deny", "when": reading_after}, "allow"],
            }
        )
    )
    assert _verdict(catalog, {"status": "draft", **before}, changes) == expected


@pytest.mark.parametrize(
    "pattern",
    [
        "^(?=A)[A-Z]+$",
        "(?<!x)A",
        r"(A)\1",
        "(",
        "[",
        "a{99999999999}",
        "(a{1000}){1000}",
        "(" * 300 + ")" * 300,
    ],
)
def test_a_pattern_the_validating_engine_cannot_compile_is_refused(pattern: str) -> None:
    message = refusal(field("sku", type="str", pattern=pattern))
    assert (
        "model 'Order', key 'fields.sku.pattern': 'pattern' is not a valid regular expression: "
        in message
    )


def test_the_pattern_that_loads_is_the_one_writes_are_validated_with() -> None:
    catalog = Catalog.from_dict(field("sku", type="str", pattern=r"^[A-Z]+\d?$"))
    create = Create(model="Order", data={"sku": "abc"})
    verdict = decide(catalog, create, principal(), None, NOW)
    assert verdict.error is not None and verdict.error.code == "INVALID_FIELD_VALUE"
    assert (
        decide(catalog, Create(model="Order", data={"sku": "AB7"}), principal(), None, NOW).action
        == "allow"
    )


@pytest.mark.parametrize(
    "field_type", ["int", "decimal", "bool", "date", "datetime", "uuid", "json", "list"]
)
@pytest.mark.parametrize("source", ["principal.user_id", "principal.tenant_id"])
def test_a_principal_string_cannot_be_stamped_into_a_non_str_field(
    source: str, field_type: str
) -> None:
    data = order(
        fields={"stamp": {"type": field_type, "nullable": True}}, auto_set={"stamp": source}
    )
    expected = f"model 'Order', key 'auto_set.stamp': {source} gives a str value; field 'stamp' is {field_type}"
    assert expected in refusal(data)


@pytest.mark.parametrize(
    "field_type", ["str", "date", "int", "decimal", "bool", "uuid", "json", "list"]
)
def test_now_fits_only_a_datetime_field(field_type: str) -> None:
    data = order(
        fields={"stamp": {"type": field_type, "nullable": True}}, auto_set={"stamp": "now()"}
    )
    expected = f"model 'Order', key 'auto_set.stamp': now() gives a datetime value; field 'stamp' is {field_type}"
    assert expected in refusal(data)


@pytest.mark.parametrize("name", ["id", "tenant_id"])
def test_writ_s_own_fields_cannot_be_auto_set(name: str) -> None:
    message = refusal(order(auto_set={name: "principal.user_id"}))
    assert (
        f"model 'Order', key 'auto_set.{name}': '{name}' is set by Writ itself; it cannot be auto-set"
        in message
    )


def test_an_immutable_field_cannot_be_auto_set_on_update() -> None:
    data = order(
        fields={"by": {"type": "str", "nullable": True}},
        immutable=["by"],
        auto_set={"by": {"value": "principal.user_id", "on": ["create", "update"]}},
    )
    assert (
        "model 'Order', key 'auto_set.by.on': field 'by' is immutable but auto-set on update"
        in refusal(data)
    )


def test_a_stamped_value_its_field_refuses_is_a_verdict_not_an_exception() -> None:
    """Allowed at load (the value is only known at write time), so the write must be refused cleanly."""
    data = order(
        fields={"by": {"type": "str", "nullable": True, "pattern": "^[A-Z]+$"}},
        auto_set={"by": "principal.user_id"},
    )
    verdict = decide(
        Catalog.from_dict(data), Create(model="Order", data={}), principal("alice"), None, NOW
    )
    assert verdict.error is not None and verdict.error.code == "INVALID_FIELD_VALUE"


def test_auto_set_sources_that_fit_load() -> None:
    """A stamped value a field's pattern or choices may refuse is allowed: it is only known at write time."""
    data = order(
        fields={
            "by": {"type": "str", "nullable": True, "pattern": "^[a-z]+$"},
            "level": {"type": "int", "nullable": True},
            "when": {"type": "datetime", "nullable": True},
        },
        auto_set={"by": "principal.user_id", "level": "principal.level", "when": "now()"},
    )
    spec = Catalog.from_dict(data).models["Order"]
    assert set(spec.auto_set) == {"by", "level", "when"}


@pytest.mark.parametrize(
    ("name", "declaration", "expected"),
    [
        (
            "qty",
            {"type": "int", "min": 5, "max": 1},
            "key 'fields.qty.min': min 5 is greater than max 1",
        ),
        (
            "sku",
            {"type": "str", "min_length": 3, "max_length": 2},
            "key 'fields.sku.min_length': min_length 3 is greater than max_length 2",
        ),
        (
            "qty",
            {"type": "int", "min_length": 1},
            "key 'fields.qty.min_length': 'min_length'/'max_length' only",
        ),
        (
            "meta",
            {"type": "json", "max_length": 1},
            "key 'fields.meta.max_length': 'min_length'/'max_length' only",
        ),
        (
            "day",
            {"type": "date", "max": 1},
            "key 'fields.day.max': 'min'/'max' only apply to int and decimal",
        ),
        (
            "qty",
            {"type": "int", "pattern": "^1$"},
            "key 'fields.qty.pattern': 'pattern' only applies to str fields",
        ),
        (
            "qty",
            {"type": "int", "min": "NaN"},
            "key 'fields.qty.min': Input should be a finite number",
        ),
        (
            "sku",
            {"type": "str", "max_length": 10**30},
            "key 'fields.sku': the field's constraints cannot be applied",
        ),
        (
            "status",
            {"type": "str", "choices": []},
            "key 'fields.status.choices': 'choices' is empty",
        ),
        (
            "status",
            {"type": "str", "choices": ["a", 1]},
            "key 'fields.status.choices': Invalid value for choices",
        ),
        (
            "sku",
            {"type": "str", "pattern": "^[A-Z]+$", "choices": ["A", "b"]},
            "key 'fields.sku.choices': Invalid value for choices: String should match pattern",
        ),
        (
            "qty",
            {"type": "int", "max": 3, "choices": [1, 4]},
            "key 'fields.qty.choices': Invalid value for choices",
        ),
        (
            "qty",
            {"type": "int", "min": 1, "default": 0},
            "key 'fields.qty.default': Invalid value for default",
        ),
        (
            "status",
            {"type": "str", "choices": ["a"], "default": "b"},
            "key 'fields.status.default': Invalid value for default: must be one of a",
        ),
        (
            "sku",
            {"type": "str", "max_length": 1, "default": "AB"},
            "key 'fields.sku.default': Invalid value",
        ),
        (
            "tags",
            {"type": "list", "items": "int", "default": ["x"]},
            "key 'fields.tags.default': Invalid value",
        ),
        (
            "meta",
            {"type": "json", "index": True},
            "key 'fields.meta.index': json and list fields cannot be indexed",
        ),
        (
            "qty",
            {"type": "int", "items": "int"},
            "key 'fields.qty.items': 'items' only applies to fields of type",
        ),
    ],
)
def test_a_field_that_breaks_its_own_rules_is_refused(
    name: str, declaration: dict[str, Any], expected: str
) -> None:
    assert f"model 'Order', {expected}" in refusal(field(name, **declaration))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"required": ["qty", "qty"]}, "key 'required': required lists qty more than once"),
        (
            {"immutable": ["sku", "qty", "sku"]},
            "key 'immutable': immutable lists sku more than once",
        ),
        (
            {"required": ["id"]},
            "key 'required': required names 'id', which Writ sets: every create would fail",
        ),
        (
            {"required": ["tenant_id"]},
            "key 'required': required names 'tenant_id', which Writ sets",
        ),
        ({"fields": {"id": {"type": "str"}}}, "key 'fields.id': field name 'id' is not allowed"),
        ({"tenant_field": "id"}, "key 'tenant_field': tenant field 'id' is not allowed"),
        ({"required": ["colour"]}, "key 'required': required names undeclared fields: colour"),
        (
            {"required": ["qty"], "auto_set": {"qty": "principal.level"}},
            "key 'required': required names 'qty', which is auto-set, never sent by callers",
        ),
        (
            {
                "required": ["qty"],
                "fields": {"qty": {"type": "int", "writable_on": [], "default": 1}},
            },
            "key 'required': required field 'qty' has writable_on = []: no one can write it",
        ),
        (
            {"required": ["qty"], "fields": {"qty": {"type": "int", "writable_on": ["update"]}}},
            "key 'required': required field 'qty' is not writable on create and has no default",
        ),
        (
            {"policy": {"max_affected": 0}},
            "key 'policy.max_affected': Input should be greater than or equal to 1",
        ),
    ],
)
def test_model_lists_that_break_writes_are_refused(changes: dict[str, Any], expected: str) -> None:
    assert f"model 'Order', {expected}" in refusal(order(**changes))


def test_what_the_model_checks_allow() -> None:
    spec = Catalog.from_dict(
        order(
            required=["qty"],
            immutable=["id", "tenant_id"],
            fields={"qty": {"type": "int", "writable_on": ["update"], "default": 1}},
            grants={"create": ["clerk", "clerk"]},
        )
    ).models["Order"]
    assert isinstance(spec, ModelSpec) and spec.grants.create == ("clerk", "clerk")


@pytest.mark.parametrize(
    ("approvals", "expected"),
    [
        ({"required": {"update": 1}, "expires_after": "1m"}, (1, 60.0)),
        ({"required": {"update": 10}, "expires_after": "3650d"}, (10, 3650 * 86400.0)),
        ({"required": {"update": 0}}, "required.update must be between 1 and 10 approvers"),
        ({"required": {"update": 11}}, "required.update must be between 1 and 10 approvers"),
        ({"expires_after": "0m"}, "expires_after must be between 1 minute and 10 years"),
        ({"expires_after": "3651d"}, "expires_after must be between 1 minute and 10 years"),
    ],
)
def test_approval_counts_and_expiry_are_held_to_their_bounds_inclusive(
    approvals: dict[str, Any], expected: tuple[int, float] | str
) -> None:
    """1 to 10 approvers and 1 minute to 10 years, both ends included; 0 approvers and 11 are refused."""
    data = order(approvals=approvals)
    if isinstance(expected, str):
        assert expected in refusal(data)
        return
    rules = Catalog.from_dict(data).models["Order"].approvals
    assert (rules.required_for("update"), rules.expires_after.total_seconds()) == expected

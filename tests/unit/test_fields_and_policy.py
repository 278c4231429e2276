"""Field values normalize to JSON-native form; policy rules are data evaluated on typed values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.catalog import Catalog
from domain.errors import InvalidFieldValueError
from domain.fields import FieldSpec
from domain.policy import Comparison, ModelPolicy
from domain.rules import check_create, check_update
from tests.catalogs import SHOP_CATALOG


@pytest.mark.parametrize(
    ("spec", "value", "expected"),
    [
        ({"type": "decimal"}, "10.50", "10.50"),
        ({"type": "decimal"}, 3, "3"),
        ({"type": "decimal"}, Decimal("1E+3"), "1000"),
        ({"type": "datetime"}, "2026-01-02T03:04:05+02:00", "2026-01-02T01:04:05Z"),
        (
            {"type": "datetime"},
            datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-02T01:04:05.000007Z",
        ),
        ({"type": "date"}, "2026-01-02", "2026-01-02"),
        (
            {"type": "uuid"},
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        ),
        ({"type": "list", "items": "int"}, (1, 2), [1, 2]),
        (
            {"type": "list", "items": "datetime"},
            ["2026-01-02T03:04:05+02:00", "2026-01-02T03:04:05.5Z"],
            ["2026-01-02T01:04:05Z", "2026-01-02T03:04:05.500000Z"],
        ),
        ({"type": "list", "items": "decimal"}, ["1E+3", "1.50", 2], ["1000", "1.50", "2"]),
        ({"type": "json"}, {"a": [1, None]}, {"a": [1, None]}),
        ({"type": "str", "choices": ["a", "b"]}, "b", "b"),
        (
            {"type": "datetime", "choices": ["2026-01-01T00:00:00Z"]},
            datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
            "2026-01-01T00:00:00Z",
        ),
        ({"type": "str", "min_length": 2}, "ab", "ab"),
        ({"type": "list", "min_length": 1, "max_length": 2}, ["a"], ["a"]),
        ({"type": "list", "max_length": 2}, ["a", "b"], ["a", "b"]),
    ],
)
def test_values_normalize(spec: dict[str, object], value: object, expected: object) -> None:
    assert FieldSpec.model_validate(spec).normalize("f", value) == expected


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        ({"type": "int"}, "5"),
        ({"type": "int"}, True),
        ({"type": "bool"}, 1),
        ({"type": "decimal"}, "NaN"),
        ({"type": "datetime"}, "2026-01-02T03:04:05"),
        ({"type": "datetime"}, datetime(2026, 1, 2, 3, 4, 5)),  # naive: no time zone
        (
            {"type": "datetime", "choices": ["2026-01-01T00:00:00Z"]},
            datetime(2026, 1, 2, tzinfo=UTC),
        ),
        ({"type": "str", "min_length": 2}, "a"),
        ({"type": "list", "min_length": 1}, []),
        ({"type": "list", "max_length": 1}, ["a", "b"]),
        ({"type": "int", "min": 1}, 0),
        ({"type": "str", "max_length": 2}, "abc"),
        ({"type": "str", "choices": ["a"]}, "b"),
        ({"type": "int"}, None),
    ],
)
def test_invalid_values_are_refused_with_the_field(spec: dict[str, object], value: object) -> None:
    with pytest.raises(InvalidFieldValueError) as caught:
        FieldSpec.model_validate(spec).normalize("f", value)
    assert caught.value.field == "f"


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("datetime", 1_700_000_000),  # pydantic alone reads numbers as seconds since 1970
        ("datetime", 1.5e9),
        ("datetime", "1700000000"),
        ("datetime", "20260131"),  # pydantic alone: 1970-08-23T11:48:51Z
        ("date", "20260131"),
        ("date", "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0663\u0661"),  # Arabic-Indic digits
        ("datetime", " 2026-01-31T09:30:00Z"),
        ("date", 0),
        ("date", 1_728_000_000),  # pydantic alone: 2024-10-04, a whole number of days since 1970
        ("date", "2026-01-31T00:00:00Z"),  # a date-time at midnight is not a date
        ("date", "2026-01-31 "),
    ],
)
def test_a_date_or_datetime_must_be_iso_8601_not_a_number_of_seconds(
    kind: str, value: object
) -> None:
    spec = FieldSpec.model_validate({"type": kind})
    listed = FieldSpec.model_validate({"type": "list", "items": kind})
    with pytest.raises(InvalidFieldValueError, match="must be an ISO-8601 date"):
        spec.normalize("f", value)
    with pytest.raises(InvalidFieldValueError, match="must be an ISO-8601 date"):
        listed.normalize("f", [value])


def test_iso_8601_dates_and_datetimes_in_their_usual_forms_are_accepted() -> None:
    moment = FieldSpec.model_validate({"type": "datetime"})
    day = FieldSpec.model_validate({"type": "date"})
    assert moment.normalize("f", "2026-01-31 09:30:00+01:00") == "2026-01-31T08:30:00Z"
    assert moment.normalize("f", "2026-01-31T09:30Z") == "2026-01-31T09:30:00Z"
    assert day.normalize("f", datetime(2026, 1, 31).date()) == "2026-01-31"
    with pytest.raises(InvalidFieldValueError, match="must be an ISO-8601 date"):
        day.normalize("f", datetime(2026, 1, 31, tzinfo=UTC))  # a datetime is a date, to Python
    assert FieldSpec.model_validate({"type": "list", "items": "date"}).normalize(
        "f", ["2026-01-31"]
    ) == ["2026-01-31"]


def test_conditional_policy_first_match_wins() -> None:
    spec = Catalog.from_toml(SHOP_CATALOG).models["Order"]
    resolve = spec.policy.resolve
    shipped, draft = {"status": "shipped", "total": "1"}, {"status": "draft", "total": "1"}
    assert resolve("update", shipped, {**shipped, "status": "draft"}, spec.typed)[0] == "deny"
    assert (
        resolve("update", draft, {**draft, "total": "10000.01"}, spec.typed)[0]
        == "require_approval"
    )
    assert resolve("update", draft, {**draft, "total": "10000"}, spec.typed)[0] == "allow"
    # shipping by update
    assert resolve("update", draft, {**draft, "status": "shipped"}, spec.typed)[0] == "allow"
    _, reason = resolve("update", shipped, {**shipped, "status": "draft"}, spec.typed)
    assert reason == "policy update: deny when before.status eq 'shipped' (read before.status)"
    expected = ("deny", "policy bulk_update: no rule allows it (writes are opt-in)")
    customer = Catalog.from_toml(SHOP_CATALOG).models["Customer"]
    assert customer.policy.resolve("bulk_update", {}, {}, customer.typed) == expected


def test_changed_is_true_when_the_command_changes_the_field() -> None:
    policy = ModelPolicy.model_validate(
        {
            "update": [
                {"action": "require_approval", "when": {"field": "total", "op": "changed"}},
                "allow",
            ]
        }
    )
    typed = lambda _name, value: value  # noqa: E731
    assert policy.resolve("update", {"total": 1}, {"total": 2}, typed)[0] == "require_approval"
    assert policy.resolve("update", {"total": 1}, {"total": 1}, typed)[0] == "allow"
    assert policy.resolve("update", {"total": None}, {"total": 0}, typed)[0] == "require_approval"


def test_all_any_and_operators() -> None:
    policy = ModelPolicy.model_validate(
        {
            "create": [
                {
                    "action": "deny",
                    "when": {
                        "all": [
                            {"field": "n", "op": "ge", "value": 5},
                            {
                                "any": [
                                    {"field": "tag", "op": "in", "value": ["x", "y"]},
                                    {"field": "note", "op": "is_null"},
                                ]
                            },
                        ]
                    },
                },
                "allow",
            ]
        }
    )
    typed = lambda _name, value: value  # noqa: E731
    for state, action in (
        ({"n": 5, "tag": "y", "note": "z"}, "deny"),
        ({"n": 5, "tag": "q"}, "deny"),
        ({"n": 5, "tag": "q", "note": "z"}, "allow"),
        ({"n": 4, "tag": "x"}, "allow"),
    ):
        assert policy.resolve("create", None, state, typed)[0] == action


def test_a_field_named_choices_still_has_its_choices_enforced() -> None:
    from domain.errors import InvalidFieldValueError
    from domain.fields import FieldSpec

    spec = FieldSpec(type="str", choices=("a", "b"))
    assert spec.normalize("choices", "a") == "a"
    with pytest.raises(InvalidFieldValueError):
        spec.normalize("choices", "z")


def test_a_comparison_s_matcher_matches_as_the_comparison_does() -> None:
    """``Comparison.matcher`` (a bulk update's re-check of each record) types the value once: every operator, on
    values that fit the field, values that no longer do (unknown: no match), and absent ones, matches as
    ``matches`` does."""
    spec = Catalog.from_toml(SHOP_CATALOG).models["Order"]
    states = [
        {"total": "5", "quantity": 3, "status": "placed", "tags": ["a", "b"], "note": "rush"},
        {"total": "10000.5", "quantity": 1000, "status": "shipped", "tags": [], "note": None},
        {"total": "not a number", "quantity": "three", "status": 7, "tags": "a"},
        {},
    ]
    comparisons = [
        Comparison(field=field, op=op, value=value)
        for field, value in [
            ("total", "5"),
            ("quantity", 3),
            ("status", "placed"),
            ("note", "rush"),
        ]
        for op in ("eq", "ne", "lt", "le", "gt", "ge")
    ] + [
        Comparison(field="status", op="in", value=["placed", "draft"]),
        Comparison(field="quantity", op="in", value=[1, "x"]),
        Comparison(field="total", op="gt", value="not a number"),
        Comparison(field="tags", op="contains", value="a"),
        Comparison(field="note", op="contains", value="us"),
        Comparison(field="note", op="is_null"),
        Comparison(field="note", op="is_null", value=False),
        Comparison(field="note", op="ne"),
    ]
    for comparison in comparisons:
        matcher = comparison.matcher(spec.typed)
        for state in states:
            assert matcher(state) == comparison.matches(state, spec.typed), (comparison, state)


def test_a_required_field_with_a_default_may_be_omitted_and_a_given_value_wins() -> None:
    catalog = Catalog.from_dict(
        {
            "models": {
                "Task": {
                    "fields": {"state": {"type": "str", "default": "open"}},
                    "required": ["state"],
                    "policy": {"create": "allow"},
                    "grants": {"create": ["*"]},
                }
            }
        }
    )
    spec, limits = catalog.models["Task"], catalog.limits
    assert check_create(spec, {}, limits) == ({"state": "open"}, [])
    assert check_create(spec, {"state": "done"}, limits) == ({"state": "done"}, [])
    _, errors = check_create(spec, {"state": None}, limits)
    assert [error.code for error in errors] == ["REQUIRED_FIELD_MISSING"]


def test_a_locked_list_stored_in_an_earlier_form_may_be_sent_back_unchanged() -> None:
    """List items of datetimes or decimals were stored as sent (an offset, an exponent) before they were
    kept as lone values are: sending such a list back to an immutable or create-only field is no change."""
    catalog = Catalog.from_dict(
        {
            "models": {
                "Slot": {
                    "fields": {
                        "times": {"type": "list", "items": "datetime"},
                        "prices": {"type": "list", "items": "decimal", "writable_on": ["create"]},
                        "note": {"type": "str", "nullable": True},
                    },
                    "immutable": ["times"],
                    "policy": {"create": "allow", "update": "allow"},
                    "grants": {"create": ["*"], "update": ["*"]},
                }
            }
        }
    )
    spec, limits = catalog.models["Slot"], catalog.limits
    stored = {"times": ["2026-03-01T14:00:00+02:00"], "prices": ["1E+3"], "note": None}
    for replace in (False, True):
        payload = {"times": ["2026-03-01T14:00:00+02:00"], "prices": ["1E+3"], "note": "n"}
        _, errors = check_update(spec, stored, payload, limits, replace=replace)
        assert errors == [], replace
        _, errors = check_update(
            spec, stored, {"times": ["2026-03-01T14:00:01+02:00"]}, limits, replace=replace
        )
        assert [error.code for error in errors] == ["IMMUTABLE_FIELD"], replace
        _, errors = check_update(spec, stored, {"prices": ["1001"]}, limits, replace=replace)
        assert [error.code for error in errors] == ["FIELD_NOT_WRITABLE"], replace


@pytest.mark.parametrize(
    ("spec", "fits", "refused"),
    [
        ({"type": "int", "min": 5, "max": 5}, 5, [4, 6]),
        ({"type": "decimal", "min": "2.5", "max": "2.5"}, "2.5", ["2.4", "2.6"]),
        ({"type": "str", "min_length": 2, "max_length": 2}, "ab", ["a", "abc"]),
    ],
)
def test_a_bound_equal_to_its_other_bound_leaves_exactly_one_size(
    spec: dict[str, object], fits: object, refused: list[object]
) -> None:
    """min == max (a fixed-length code, a single allowed amount) is a valid catalog, not 'no value fits'."""
    field = FieldSpec.model_validate(spec)
    assert field.normalize("f", fits) == fits
    for value in refused:
        with pytest.raises(InvalidFieldValueError):
            field.normalize("f", value)


def test_an_immutable_field_written_only_on_create_is_refused_as_immutable_on_update() -> None:
    catalog = Catalog.from_dict(
        {
            "models": {
                "Task": {
                    "fields": {"code": {"type": "str", "writable_on": ["create"]}},
                    "immutable": ["code"],
                    "policy": {"create": "allow", "update": "allow"},
                    "grants": {"create": ["*"], "update": ["*"]},
                }
            }
        }
    )
    spec, limits, stored = catalog.models["Task"], catalog.limits, {"code": "A"}
    _, errors = check_update(spec, stored, {"code": "B"}, limits, replace=False)
    assert [(error.code, error.field) for error in errors] == [("IMMUTABLE_FIELD", "code")]
    assert check_update(spec, stored, {"code": "A"}, limits, replace=False) == ({}, [])

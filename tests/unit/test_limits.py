"""Every limit, at its edge: the value at the limit is accepted, one past it is refused with its code and field."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from domain.catalog import Catalog
from domain.commands import Create
from domain.errors import CatalogError, WritError
from domain.limits import DEFAULT_LIMITS, HARD_LIMITS, INT_MAX, INT_MIN, Limits
from domain.pipeline import decide
from domain.principal import Principal
from tests.catalogs import SHOP_CATALOG

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
THING = """
[models.Thing.fields]
text = { type = "str", nullable = true }
count = { type = "int", nullable = true }
amount = { type = "decimal", nullable = true }
at = { type = "datetime", nullable = true }
doc = { type = "json", nullable = true }
items = { type = "list", nullable = true }
amounts = { type = "list", items = "decimal", nullable = true }

[models.Thing.policy]
create = "allow"

[models.Thing.grants]
create = ["*"]
"""
TIGHT = """
[limits]
value_bytes = 100
record_bytes = 300
items = 5
depth = 3
decimal_digits = 6
decimal_exponent = 4
identifier_length = 8
roles = 2
purpose_length = 10
trace_id_length = 6
audit_attributes = 2
audit_key_length = 3
audit_value_length = 4
"""
DEFAULTS = Catalog.from_toml(THING)
TIGHTENED = Catalog.from_toml(THING + TIGHT)
WHO = {"user_id": "alice", "tenant_id": "acme", "roles": frozenset({"clerk"}), "purpose": "testing"}


def refusal(data: dict[str, Any], catalog: Catalog = DEFAULTS, **who: Any) -> WritError | None:
    """The first error of creating a Thing with ``data``, or None when it would be created."""
    verdict = decide(
        catalog, Create(model="Thing", data=data), Principal(**{**WHO, **who}), None, NOW
    )
    assert verdict.action in ("allow", "deny")
    return verdict.error


def assert_edge(
    at_limit: dict[str, Any],
    past: dict[str, Any],
    code: str,
    field: str | None,
    catalog: Catalog = DEFAULTS,
    **who: Any,
) -> None:
    assert refusal(at_limit, catalog, **who) is None
    error = refusal(past, catalog, **who)
    assert error is not None and (error.code, error.field) == (code, field), error and error.message
    orjson.dumps(error.to_dict())  # every message can be encoded, whatever the input


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("at_limit", "past", "catalog"),
    [
        (
            {"text": "x" * DEFAULT_LIMITS.value_bytes},
            {"text": "x" * (DEFAULT_LIMITS.value_bytes + 1)},
            DEFAULTS,
        ),
        ({"text": "é" * 50}, {"text": "é" * 50 + "x"}, TIGHTENED),  # UTF-8 bytes, not characters
        # encoded JSON: {"k":"..."} is 8 + n
        (
            {"doc": {"k": "x" * 92}},
            {"doc": {"k": "x" * 93}},
            TIGHTENED,
        ),
        ({"items": [1] * 5}, {"items": [1] * 6}, TIGHTENED),
        ({"doc": dict.fromkeys("abcde", 1)}, {"doc": dict.fromkeys("abcdef", 1)}, TIGHTENED),
        ({"doc": nested(3)}, {"doc": nested(4)}, TIGHTENED),
        ({"doc": nested(32)}, {"doc": nested(33)}, DEFAULTS),
        ({"count": INT_MAX}, {"count": INT_MAX + 1}, DEFAULTS),
        ({"count": INT_MIN}, {"count": INT_MIN - 1}, DEFAULTS),
        ({"doc": [INT_MAX]}, {"doc": [INT_MAX + 1]}, DEFAULTS),
        # a Python int is 64-bit, even for a decimal
        (
            {"amount": INT_MAX},
            {"amount": INT_MAX + 1},
            DEFAULTS,
        ),
        ({"amount": "1" * 38}, {"amount": "1" * 39}, DEFAULTS),
        ({"amount": "12.3456"}, {"amount": "123.4567"}, TIGHTENED),  # 6 significant digits, then 7
        ({"amount": "1e3"}, {"amount": "1e4"}, TIGHTENED),  # 4 digits before the point, then 5
        # 4 digits after the point, then 5
        (
            {"amount": "0.0001"},
            {"amount": "0.00001"},
            TIGHTENED,
        ),
        ({"amount": "1e63"}, {"amount": "1e64"}, DEFAULTS),
        # would be a 10-million-character string
        (
            {"amount": "0"},
            {"amount": "1e10000000"},
            DEFAULTS,
        ),
        ({"amount": "0e-64"}, {"amount": "0e-65"}, DEFAULTS),
        ({"amounts": ["1e63"]}, {"amounts": ["1e64"]}, DEFAULTS),
        ({"doc": [1.5, -0.0, 1e308]}, {"doc": [float("nan")]}, DEFAULTS),
        ({"doc": 1.5}, {"doc": float("inf")}, DEFAULTS),
        ({"text": "tab\tand é"}, {"text": "nul\x00"}, DEFAULTS),
        ({"text": "😀"}, {"text": "lone \ud800"}, DEFAULTS),
        ({"doc": {"key": "x"}}, {"doc": {"k\x00": "x"}}, DEFAULTS),
        ({"doc": {"key": "x"}}, {"doc": {"k": ["\udfff"]}}, DEFAULTS),
        ({"doc": {"key": "x"}}, {"doc": {1: "x"}}, DEFAULTS),
        ({"doc": [[1], (2,)]}, {"doc": [{1, 2}]}, DEFAULTS),
        ({"items": ["a", "b"]}, {"items": {"a", "b"}}, DEFAULTS),
        ({"amount": Decimal("1.5")}, {"amount": b"1.5"}, DEFAULTS),
        ({"at": "9999-12-31T23:59:59+00:00"}, {"at": "0001-01-01T00:00:00+14:00"}, DEFAULTS),
        ({"at": "0001-01-01T00:00:00-01:00"}, {"at": "9999-12-31T23:59:59-14:00"}, DEFAULTS),
    ],
)
def test_value_limits(at_limit: dict[str, Any], past: dict[str, Any], catalog: Catalog) -> None:
    (name,) = past
    assert_edge(at_limit, past, "INVALID_FIELD_VALUE", name, catalog)


def test_a_refused_decimal_is_refused_before_it_is_written_out() -> None:
    started = datetime.now(UTC)
    assert refusal({"amount": "1e999999999"}) is not None
    assert (datetime.now(UTC) - started).total_seconds() < 0.5


def test_record_size_is_checked_on_the_record_the_command_leaves() -> None:
    base = len(
        orjson.dumps(
            {
                "text": "",
                "count": None,
                "amount": None,
                "at": None,
                "doc": None,
                "items": None,
                "amounts": None,
                "tenant_id": "acme",
            }
        )
    )
    # the caller's values, their defaults and the tenant
    room = TIGHTENED.limits.record_bytes - base - 100
    # each value fits on its own; together they do not
    assert 0 < room < TIGHTENED.limits.value_bytes - 4
    at_limit = {"text": "x" * 100, "doc": ["y" * room]}
    past = {"text": "x" * 100, "doc": ["y" * (room + 1)]}
    assert_edge(at_limit, past, "INVALID_INPUT", None, TIGHTENED)


@pytest.mark.parametrize(
    ("fits", "breaks"),
    [
        ({"user_id": "u" * 8}, {"user_id": "u" * 9}),
        ({"tenant_id": "t" * 8}, {"tenant_id": "t" * 9}),
        ({"roles": frozenset({"a", "b"})}, {"roles": frozenset({"a", "b", "c"})}),
        ({"roles": frozenset({"r" * 8})}, {"roles": frozenset({"r" * 9})}),
        ({"purpose": "p" * 10}, {"purpose": "p" * 11}),
        ({"correlation_id": "c" * 6}, {"correlation_id": "c" * 7}),
        ({"causation_id": "c" * 6}, {"causation_id": "c" * 7}),
        (
            {"audit_attributes": {"a": "1", "b": "2"}},
            {"audit_attributes": {"a": "1", "b": "2", "c": "3"}},
        ),
        ({"audit_attributes": {"kkk": "1"}}, {"audit_attributes": {"kkkk": "1"}}),
        ({"audit_attributes": {"k": "vvvv"}}, {"audit_attributes": {"k": "vvvvv"}}),
    ],
)
def test_a_catalog_tightens_the_principal_limits(
    fits: dict[str, Any], breaks: dict[str, Any]
) -> None:
    assert refusal({}, TIGHTENED, **fits) is None
    error = refusal({}, TIGHTENED, **breaks)
    assert (
        error is not None
        and error.code == "INVALID_INPUT"
        and error.message.startswith("principal: ")
    )
    assert refusal({}, DEFAULTS, **breaks) is None  # the defaults allow it


@pytest.mark.parametrize(
    ("fits", "breaks"),
    [
        ({"user_id": "u" * 128}, {"user_id": "u" * 129}),
        ({"tenant_id": "acme.x"}, {"tenant_id": "T1\x1falice"}),
        ({"tenant_id": "acme_x"}, {"tenant_id": "acme x"}),
        ({"tenant_id": "a:b@c+d-e"}, {"tenant_id": "-acme"}),
        ({"user_id": "x1"}, {"user_id": ""}),
        ({"user_id": "bob"}, {"user_id": "bøb"}),
        ({"roles": frozenset({"clerk"})}, {"roles": frozenset({"*"})}),
        (
            {"roles": frozenset(f"r{n}" for n in range(256))},
            {"roles": frozenset(f"r{n}" for n in range(257))},
        ),
        ({"purpose": "why\nbecause é"}, {"purpose": "why\x00"}),
        ({"purpose": "p" * 10_000}, {"purpose": "p" * 10_001}),
        ({"correlation_id": "c" * 255}, {"correlation_id": "c" * 256}),
        ({"correlation_id": "trace-1"}, {"correlation_id": "tråce"}),
        ({"causation_id": "cause-1"}, {"causation_id": "cause\n"}),
        ({"audit_attributes": {"ticket": "é"}}, {"audit_attributes": {"ticket": "\ud800"}}),
        ({"audit_attributes": {"ticket": "v"}}, {"audit_attributes": {"tic\tket": "v"}}),
        (
            {"audit_attributes": {f"k{n}": "v" for n in range(64)}},
            {"audit_attributes": {f"k{n}": "v" for n in range(65)}},
        ),
        ({"user_id": "alice"}, {"user_id": 7}),
        ({"roles": frozenset({"clerk"})}, {"roles": "clerk"}),
        ({"attributes": {"region": "eu"}}, {"attributes": {3: "eu"}}),
        ({"purpose": "ok"}, {"unknown": "field"}),
    ],
)
def test_a_principal_is_checked_against_the_hard_limits_when_built(
    fits: dict[str, Any], breaks: dict[str, Any]
) -> None:
    Principal(**{**WHO, **fits})
    with pytest.raises(WritError) as caught:
        Principal(**{**WHO, **breaks})
    assert caught.value.code == "INVALID_INPUT" and isinstance(caught.value, ValueError)
    assert len(caught.value.message) < 400
    orjson.dumps(caught.value.to_dict())


def test_for_purpose_checks_like_a_new_principal() -> None:
    with pytest.raises(WritError) as caught:
        Principal(**WHO).for_purpose("erasure", correlation_id="\x00")
    assert caught.value.code == "INVALID_INPUT"


@pytest.mark.parametrize(
    "arguments",
    [
        {"model": 7},
        {"model": ""},
        {"model": "Or\x00der"},
        {"model": "M" * 201},
        {"model": "Order\n"},
        {"model": "Order", "data": ["not", "a", "dict"]},
        {"model": "Order", "data": {1: "x"}},
        {"model": "Order", "expected_version": "1"},
        {"model": "Order", "expected_version": 0},
        {"model": "Order", "expected_version": True},
        {"model": "Order", "expected_version": INT_MAX + 1},
        {"model": "Order", "idempotency_key": ""},
        {"model": "Order", "idempotency_key": "k" * 1001},
        {"model": "Order", "idempotency_key": "x\x1fy"},
        {"model": "Order", "idempotency_key": 5},
    ],
)
def test_a_command_with_bad_arguments_cannot_be_built(arguments: dict[str, Any]) -> None:
    with pytest.raises(WritError) as caught:
        Create(**arguments)
    assert caught.value.code == "INVALID_INPUT"
    orjson.dumps(caught.value.to_dict())


def test_pydantic_input_text_is_never_echoed() -> None:
    with pytest.raises(WritError) as caught:
        Create(model="Order", data={"k": 1}, idempotency_key=["secret" * 10_000])
    assert "secret" not in caught.value.message and len(caught.value.message) < 200


def test_limits_are_configured_in_the_catalog_within_their_hard_caps() -> None:
    caps = Limits.caps()
    assert Limits(**caps) == HARD_LIMITS
    assert TIGHTENED.limits.value_bytes == 100 and DEFAULTS.limits == Limits()
    assert TIGHTENED.version != DEFAULTS.version
    for name, cap in caps.items():
        with pytest.raises(CatalogError, match=re.escape(f"limits.{name}")):
            Catalog.from_toml(f"{SHOP_CATALOG}\n[limits]\n{name} = {cap + 1}\n")
    with pytest.raises(
        CatalogError, match=re.escape("value_bytes <= record_bytes <= command_bytes")
    ):
        Catalog.from_toml(f"{SHOP_CATALOG}\n[limits]\nrecord_bytes = 1000\n")
    with pytest.raises(CatalogError, match=re.escape("limits.depth")):
        Catalog.from_toml(f"{SHOP_CATALOG}\n[limits]\ndepth = true\n")


def test_the_hard_caps_are_storable_and_publishable() -> None:
    """Values at every cap still encode (orjson nests 255 deep at most) and fit one RabbitMQ 4.x message."""
    assert HARD_LIMITS.depth < 255 and HARD_LIMITS.record_bytes <= 8 * 1024 * 1024
    meta = (
        HARD_LIMITS.purpose_length * 6
        + HARD_LIMITS.audit_attributes
        * (HARD_LIMITS.audit_key_length + HARD_LIMITS.audit_value_length)
        * 6
    )
    assert HARD_LIMITS.record_bytes + meta < 16 * 1024 * 1024
    catalog = Catalog.from_toml(
        THING + "\n[limits]\n" + "\n".join(f"{k} = {v}" for k, v in Limits.caps().items())
    )
    assert refusal({"doc": nested(HARD_LIMITS.depth)}, catalog) is None
    assert refusal({"amount": "9" * 1000}, catalog) is None


def test_nesting_is_measured_without_recursing() -> None:
    """A layer at a time: a hundred thousand levels, or a list that holds itself, exhaust no stack."""
    from domain.limits import nested_deeper_than

    assert (
        not nested_deeper_than(1, 0) and nested_deeper_than([], 0) and not nested_deeper_than([], 1)
    )
    assert not nested_deeper_than(nested(64), 64) and nested_deeper_than(nested(65), 64)
    assert nested_deeper_than({"a": [{"b": (1, {2})}]}, 4) and not nested_deeper_than(
        {"a": [{"b": (1, {2})}]}, 5
    )
    assert nested_deeper_than(nested(100_000), 64)
    itself: list[Any] = []
    itself.append(itself)
    assert nested_deeper_than(itself, 200)


def test_nesting_leaves_room_above_a_value() -> None:
    assert Limits().nesting >= Limits().depth + 16 and HARD_LIMITS.nesting >= HARD_LIMITS.depth + 16
    with pytest.raises(CatalogError, match=re.escape("depth + 16 <= nesting")):
        Catalog.from_toml(f"{SHOP_CATALOG}\n[limits]\ndepth = 60\n")
    assert (
        Catalog.from_toml(f"{SHOP_CATALOG}\n[limits]\ndepth = 60\nnesting = 76\n").limits.nesting
        == 76
    )


def test_filters_are_bounded_in_count_values_and_nesting() -> None:
    from domain.filters import filters_of

    tight = Limits(filters=3, filter_values=5)
    assert len(filters_of([("a", "eq", 1)] * 3, tight)) == 3
    assert len(filters_of([("a", "in", [1, 2, 3]), ("b", "eq", 1), ("c", "is_null")], tight)) == 3
    for past in (
        [("a", "eq", 1)] * 4,
        [("a", "in", [1, 2, 3, 4, 5]), ("b", "eq", 1)],
        [("a", "eq", nested(Limits().nesting))],
        [nested(100_000)],
    ):
        with pytest.raises(WritError) as caught:
            filters_of(past, tight)
        assert caught.value.code == "INVALID_INPUT"

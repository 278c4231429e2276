"""What the door checks before a query or a bulk update reaches a database, on both databases alike.

Every operand of a view query is checked as a value of its field is (NUL, lone surrogates, integers past
64 bits, objects where one item is meant), the filters as a whole against the catalog's ``filters``,
``filter_values`` and ``nesting`` limits, and a bulk update names its records (filters, or
``all_records=True``). Each refusal is the same code on SQLite and PostgreSQL, and a refused bulk update
is recorded. JSON numbers read back as they were sent, and a rule that cannot read a stored value fails
closed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import Runtime, open_writ
from infrastructure.sql import SQL, P
from tests.application.refusals import refusal
from tests.catalogs import DOCS_CATALOG, SHOP_CATALOG, principal

MANAGER = principal("maria", "acme", "manager")
CLERK = principal("carol", "acme", "clerk")


def nest(levels: int, inner: Any = 1) -> Any:
    value = inner
    for _ in range(levels):
        value = [value]
    return value


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    with Runtime(Catalog.from_toml(SHOP_CATALOG + DOCS_CATALOG), database_url) as opened:
        yield opened


def code_of(action: Any) -> str:
    with pytest.raises(WritError) as caught:
        action()
    orjson.dumps(caught.value.to_dict())  # whatever the operand, the error can be sent
    return caught.value.code


OPERANDS: dict[str, tuple[Any, str]] = {
    "contains NUL": (("name", "contains", "a\x00"), "INVALID_FIELD_VALUE"),
    "contains a lone surrogate": (("name", "contains", "a\ud800"), "INVALID_FIELD_VALUE"),
    "eq NUL": (("name", "eq", "a\x00"), "INVALID_FIELD_VALUE"),
    "system text with NUL": (("_created_by", "eq", "\x00"), "INVALID_FIELD_VALUE"),
    "list contains an object": (("l", "contains", {"a": 1}), "INVALID_FIELD_VALUE"),
    "list contains a list": (("l", "contains", [1]), "INVALID_FIELD_VALUE"),
    "list contains null": (("l", "contains", None), "INVALID_FIELD_VALUE"),
    "list contains an int past 64 bits": (("l", "contains", 2**70), "INVALID_FIELD_VALUE"),
    "list contains NaN": (("l", "contains", math.nan), "INVALID_FIELD_VALUE"),
    "list contains NUL": (("l", "contains", "\x00"), "INVALID_FIELD_VALUE"),
    "int list contains text": (("counts", "contains", "x"), "INVALID_FIELD_VALUE"),
    "json contains": (("meta", "contains", "x"), "INVALID_FIELD_VALUE"),
    "json eq": (("meta", "eq", 1), "INVALID_FIELD_VALUE"),
    "int in text": (("size", "in", ["1"]), "INVALID_FIELD_VALUE"),
    "int past 64 bits": (("size", "eq", 2**64), "INVALID_FIELD_VALUE"),
    "in not a list": (("size", "in", 5), "INVALID_FIELD_VALUE"),
    "decimal of 10,000 digits": (("amount", "gt", "9" * 10_000), "INVALID_FIELD_VALUE"),
    "time out of range in UTC": (("at", "lt", "0001-01-01T00:00:00+14:00"), "INVALID_FIELD_VALUE"),
    "id not a uuid": (("id", "eq", "x\x00"), "INVALID_FIELD_VALUE"),
    "version text": (("_version", "gt", "x"), "INVALID_FIELD_VALUE"),
    "is_null text": (("name", "is_null", "x"), "INVALID_FIELD_VALUE"),
    "field with NUL": (("na\x00me", "eq", 1), "UNKNOWN_FIELD"),
    "field with a surrogate": (("\udc80", "eq", 1), "UNKNOWN_FIELD"),
    "no operator": (("name",), "INVALID_FIELD_VALUE"),
    "operator changed": (("name", "changed"), "INVALID_FIELD_VALUE"),
    "a filter nested 100,000 deep": (nest(100_000), "INVALID_INPUT"),
}


@pytest.mark.parametrize("case", list(OPERANDS))
def test_every_operand_is_checked_before_the_database(runtime: Runtime, case: str) -> None:
    item, code = OPERANDS[case]
    runtime.writ.create(CLERK, "Doc", {"name": "abc", "l": ["x"], "size": 1})
    runtime.catch_up()
    assert code_of(lambda: runtime.views.list(CLERK, "Doc", filters=[item])) == code


def test_filters_sort_keys_and_values_are_bounded(runtime: Runtime) -> None:
    runtime.writ.create(CLERK, "Doc", {"name": "abc"})
    runtime.catch_up()
    views, limits = runtime.views, runtime.catalog.limits
    most = [("name", "ne", str(n)) for n in range(limits.filters)]
    # at the limits
    assert len(views.list(CLERK, "Doc", filters=most, order_by=["-name"] * 8).rows) == 1
    assert (
        code_of(lambda: views.list(CLERK, "Doc", filters=[*most, ("size", "is_null")]))
        == "INVALID_INPUT"
    )
    assert (
        code_of(lambda: views.list(CLERK, "Doc", filters=[("name", "ne", "x")] * 999))
        == "INVALID_INPUT"
    )
    assert code_of(lambda: views.list(CLERK, "Doc", order_by=["name"] * 9)) == "INVALID_INPUT"
    listed = [("size", "in", list(range(limits.filter_values)))]
    assert views.list(CLERK, "Doc", filters=listed).rows == []
    assert (
        code_of(lambda: views.list(CLERK, "Doc", filters=[*listed, ("name", "eq", "abc")]))
        == "INVALID_INPUT"
    )
    assert code_of(lambda: views.ids(CLERK, "Doc", filters=most + most)) == "INVALID_INPUT"


def test_a_list_contains_an_item_of_the_same_json_type_on_both_databases(runtime: Runtime) -> None:
    """SQLite's json_each gives true as 1: without comparing types, contains 1 matched [true]."""
    writ = runtime.writ
    for name, items in (
        ("one", [1]),
        ("true", [True]),
        ("text", ["1"]),
        ("half", [2.5, "x"]),
        ("float", [1.0]),
    ):
        writ.create(CLERK, "Doc", {"name": name, "l": items})
    runtime.catch_up()

    def found(item: Any) -> list[str]:
        return sorted(
            row["name"]
            for row in runtime.views.list(CLERK, "Doc", filters=[("l", "contains", item)]).rows
        )

    assert found(1) == ["float", "one"] and found(True) == ["true"] and found("1") == ["text"]
    assert (
        found(2.5) == ["half"] and found("x") == ["half"] and found(False) == [] and found(0) == []
    )


def test_decisions_and_approvals_refuse_text_no_store_takes(runtime: Runtime) -> None:
    views = runtime.views
    runtime.writ.create(CLERK, "Doc", {"name": "abc"})
    runtime.catch_up()
    for name in ("actor", "model", "outcome"):
        for text in ("\x00", "a\ud800"):
            assert code_of(lambda: views.decisions(MANAGER, **{name: text})) == "INVALID_INPUT"  # noqa: B023
    for name in ("status", "after"):
        for text in ("\x00", "\udfff"):
            assert code_of(lambda: views.approvals(MANAGER, **{name: text})) == "INVALID_INPUT"  # noqa: B023
    assert views.decisions(MANAGER, actor="nobody", outcome="strange") == []
    assert views.approvals(MANAGER, status="strange", after="junk") == []


NUMBERS = [1e300, -1e300, 1e18, 1.5e20, 2.0, 1.5, 0.1, 1e-300, 2**63 - 1, -(2**63), 0]


def test_json_numbers_read_back_as_they_were_sent(runtime: Runtime) -> None:
    """PostgreSQL's JSONB keeps 1e+300 as the integer 10**300 (which orjson cannot send: every read was a 500)."""
    made = runtime.writ.create(CLERK, "Doc", {"meta": {"n": NUMBERS}, "l": NUMBERS})
    runtime.catch_up()
    row = runtime.views.get(CLERK, "Doc", made.id)
    expected = [(type(n).__name__, n) for n in NUMBERS]
    assert [(type(n).__name__, n) for n in row["meta"]["n"]] == expected
    assert [(type(n).__name__, n) for n in row["l"]] == expected
    assert orjson.loads(orjson.dumps(runtime.views.list(CLERK, "Doc").rows))[0]["l"] == NUMBERS
    assert [
        r["name"] for r in runtime.views.list(CLERK, "Doc", filters=[("l", "contains", 1e18)]).rows
    ] == [None]


def test_a_view_row_stored_with_a_wide_integer_reads_as_its_float(
    runtime: Runtime, database_url: str
) -> None:
    """A row projected before floats were written in full holds 10**300 where 1e300 was sent: reads convert it."""
    made = runtime.writ.create(CLERK, "Doc", {"meta": [1e300], "l": [1e300]})
    runtime.catch_up()
    store = runtime.views.store
    layout = store.layout("Doc")
    wide = "[1" + "0" * 300 + "]"
    cast = "CAST({} AS jsonb)" if database_url.startswith("postgresql") else "{}"
    with store.transaction() as tx:
        tx.execute(
            SQL(f"UPDATE {{}} SET meta = {cast}, l = {cast} WHERE id = {{}}").format(
                layout.ident, P, P, P
            ),
            [wide, wide, layout.encoders[0](made.id)],
        )
    row = runtime.views.get(CLERK, "Doc", made.id)
    assert row["meta"] == row["l"] == [1e300] and isinstance(row["meta"][0], float)
    orjson.dumps(row)


# -- bulk updates -------------------------------------------------------------------------------------------


def test_a_bulk_update_names_its_records(runtime: Runtime) -> None:
    writ = runtime.writ
    ids = [writ.create(CLERK, "Doc", {"name": name}).id for name in ("a", "b")]
    runtime.catch_up()
    error = refusal(writ, lambda: writ.bulk_update(MANAGER, "Doc", [], {"size": 1}), writes=True)
    assert error.code == "INVALID_INPUT" and "all_records=True" in error.message
    assert [writ.get(CLERK, "Doc", rid)["_version"] for rid in ids] == [1, 1]
    both = refusal(
        writ,
        lambda: writ.bulk_update(
            MANAGER, "Doc", [("name", "eq", "a")], {"size": 1}, all_records=True
        ),
        writes=True,
    )
    assert both.code == "INVALID_INPUT" and "takes no filters" in both.message
    assert (
        refusal(
            writ,
            lambda: writ.bulk_update(MANAGER, "Doc", [], {"size": 1}, all_records="yes"),  # type: ignore[arg-type]
            writes=True,
        ).code
        == "INVALID_INPUT"
    )
    done = writ.bulk_update(MANAGER, "Doc", [], {"size": 2}, all_records=True)
    assert done.updated_count == 2 and {writ.get(CLERK, "Doc", rid)["size"] for rid in ids} == {2}


def test_a_bulk_update_past_the_filter_limits_is_invalid_input(runtime: Runtime) -> None:
    """999 filters made SQLite's expression tree too deep: a 503 on SQLite, fine on PostgreSQL."""
    writ = runtime.writ
    writ.create(CLERK, "Doc", {"name": "a"})
    runtime.catch_up()
    for filters in (
        [("name", "ne", str(n)) for n in range(999)],
        [("size", "in", list(range(10_001)))],
        [("l", "contains", nest(300))],
        [nest(300)],
    ):
        error = refusal(
            writ,
            lambda: writ.bulk_update(MANAGER, "Doc", filters, {"size": 1}),  # noqa: B023
            writes=True,
        )
        assert error.code == "INVALID_INPUT", error.message
    deep = refusal(
        writ,
        lambda: writ.bulk_update(MANAGER, "Doc", [("name", "eq", "a")], {"meta": nest(300)}),
        writes=True,
    )
    assert deep.code == "INVALID_INPUT" and "nest" in deep.message
    assert (
        writ.bulk_update(
            MANAGER, "Doc", [("name", "ne", str(n)) for n in range(100)], {"size": 1}
        ).updated_count
        == 1
    )


# -- a rule over a stored value that no longer fits --------------------------------------------------------

THING = """
[models.Thing.fields]
a = {{ type = "{kind}", nullable = true }}
b = {{ type = "str", nullable = true }}
[models.Thing.policy]
create = "allow"
update = [{{ action = "deny", when = {{ field = "before.a", op = "gt", value = {bound} }} }}, "allow"]
[models.Thing.grants]
create = ["*"]
update = ["*"]
"""


def test_a_deny_over_a_value_written_under_another_type_fails_closed(database_url: str) -> None:
    """Written when ``a`` was text, read when it is an int: the deny cannot compare 'seven' > 5, so it denies
    (it used to skip, and the allow below it applied)."""
    earlier: Writ = open_writ(
        Catalog.from_toml(THING.format(kind="str", bound='"5"')), database_url
    )
    try:
        stale = earlier.create(CLERK, "Thing", {"a": "seven"}).id
        fitting = earlier.create(CLERK, "Thing", {"a": "3"}).id
    finally:
        earlier.close()
    writ = open_writ(Catalog.from_toml(THING.format(kind="int", bound="5")), database_url)
    try:
        error = refusal(writ, lambda: writ.patch(CLERK, "Thing", stale, {"b": "y"}), writes=True)
        assert (error.code, error.field) == ("WRITE_DENIED", "a") and "before.a" in error.message
        (decision,) = writ.decisions(CLERK, outcome="refused")
        assert any(
            "before.a" in reason and "fail closed" in reason for reason in decision["reasons"]
        )
        # the reason names the field, never its value
        assert "seven" not in orjson.dumps(decision).decode()
        assert writ.get(CLERK, "Thing", stale)["_version"] == 1
        mending = refusal(writ, lambda: writ.patch(CLERK, "Thing", stale, {"a": 2}), writes=True)
        assert mending.field == "a"  # the rule reads before.a, which still cannot be compared
        error = refusal(writ, lambda: writ.patch(CLERK, "Thing", fitting, {"b": "y"}), writes=True)
        # "3" (text) is no int either: a value that no longer fits, whatever it says
        assert error.field == "a"
    finally:
        writ.close()


# -- what is checked though nothing is written yet ---------------------------------------------------------


def test_a_create_parked_for_approval_checks_its_nested_children_first(sales: Writ) -> None:
    """A Sale over 5,000 parks; its items used to park unchecked (``"sku": false`` failed only when approved)."""
    for items, field in (
        ([{"sku": False}], "sku"),
        ([{"sku": "A", "notes": [{"text": 5}]}], "text"),
        ([{"sku": "A", "sale_id": "00000000-0000-4000-8000-000000000000"}], "sale_id"),
    ):
        sale = {"title": "Desk", "total": "6000", "items": items}
        error = refusal(sales, lambda: sales.create(CLERK, "Sale", sale), writes=True)  # noqa: B023
        assert (error.code, error.field) == ("INVALID_FIELD_VALUE", field), error.message
    # a child that needs approval itself parks too
    parked = sales.create(
        CLERK,
        "Sale",
        {
            "title": "Desk",
            "total": "6000",
            "items": [{"sku": "A", "qty": 500, "notes": [{"text": "fragile"}]}],
        },
    )
    assert parked.status == "pending_approval"


def test_a_bulk_update_that_matches_nothing_still_checks_its_changes(runtime: Runtime) -> None:
    writ = runtime.writ
    runtime.writ.create(CLERK, "Doc", {"name": "a"})
    runtime.catch_up()
    nothing = [("name", "eq", "nobody")]
    error = refusal(
        writ, lambda: writ.bulk_update(MANAGER, "Doc", nothing, {"size": "big"}), writes=True
    )
    assert (error.code, error.field) == ("INVALID_FIELD_VALUE", "size")
    assert (
        refusal(
            writ, lambda: writ.bulk_update(MANAGER, "Doc", nothing, {"colour": 1}), writes=True
        ).code
        == "UNKNOWN_FIELD"
    )
    assert writ.bulk_update(MANAGER, "Doc", nothing, {"size": 1}).updated_count == 0


def test_a_bulk_updates_changes_may_nest_to_the_limit_and_no_deeper(runtime: Runtime) -> None:
    """64 levels (the catalog's ``nesting``) reach the field's own rule; 65 are refused at the door."""
    writ = runtime.writ
    writ.create(CLERK, "Doc", {"name": "deep"})
    runtime.catch_up()
    for levels, code in ((63, "INVALID_FIELD_VALUE"), (64, "INVALID_INPUT")):
        changes = {"meta": nest(levels)}  # the object itself is one level
        assert (
            code_of(lambda: writ.bulk_update(MANAGER, "Doc", [("name", "eq", "deep")], changes))  # noqa: B023
            == code
        ), levels


def test_a_decision_time_range_needs_an_offset_and_compares_instants(runtime: Runtime) -> None:
    runtime.writ.create(CLERK, "Doc", {"name": "timed"})
    runtime.catch_up()
    auditor, views = principal("ann", "acme", "auditor"), runtime.views
    assert code_of(lambda: views.decisions(auditor, since="2026-01-01T00:00:00")) == "INVALID_INPUT"
    # an hour ago, written in UTC+14: as text it sorts after now in UTC, as a time it is before
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=14)))
    assert len(views.decisions(auditor, since=hour_ago.isoformat())) == 1
    assert len(views.decisions(auditor, until=hour_ago.isoformat())) == 0
    assert len(views.decisions(auditor, limit=1000)) == 1, "the largest page is taken"

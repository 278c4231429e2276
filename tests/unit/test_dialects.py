"""The view dialects' rendering, without a database: where NULLs sort, how decimals and list items compare,
and JSON numbers written so PostgreSQL's NUMERIC gives them back as they were sent."""

from __future__ import annotations

import orjson
import pytest

from infrastructure.sql import POSTGRES, SQLITE, Identifier, P
from projections.dialects import PostgresViews, SQLiteViews

SQLITE_VIEWS, POSTGRES_VIEWS = SQLiteViews(), PostgresViews()
TOTAL, TAGS = Identifier("total"), Identifier("tags")


@pytest.mark.parametrize(
    ("descending", "nullable", "expected"),
    [
        (False, True, "`total` ASC NULLS LAST"),
        (True, True, "`total` DESC NULLS FIRST"),
        (False, False, "`total` ASC"),  # no NULL to place: the primary key's order as it is
    ],
)
def test_sqlite_places_nulls_where_postgresql_does(
    descending: bool, nullable: bool, expected: str
) -> None:
    term = SQLITE_VIEWS.order_term(TOTAL, descending, nullable=nullable)
    assert term.render(SQLITE) == expected
    assert POSTGRES_VIEWS.order_term(TOTAL, descending, nullable=nullable).render(POSTGRES) == (
        '"total" DESC' if descending else '"total" ASC'
    )


def test_sqlite_compares_decimals_on_both_sides_as_numbers() -> None:
    column = SQLITE_VIEWS.comparable(TOTAL, "decimal")
    clause, params = SQLITE_VIEWS.in_list(column, SQLITE_VIEWS.comparable(P, "decimal"), ["1", "2"])
    assert clause.render(SQLITE) == "CAST(`total` AS REAL) IN (CAST(? AS REAL), CAST(? AS REAL))"
    assert params == ["1", "2"]
    assert SQLITE_VIEWS.comparable(TOTAL, "int").render(SQLITE) == "`total`"


@pytest.mark.parametrize(
    ("item", "types", "param"),
    [
        (True, "type = ?", "true"),  # json_each gives true as 1: the JSON type tells them apart
        (1, "type IN ('integer', 'real') AND value = ?", 1),
        ("1", "type IN ('text') AND value = ?", "1"),
    ],
)
def test_sqlite_matches_a_list_item_of_the_same_json_type(
    item: object, types: str, param: object
) -> None:
    clause, params = SQLITE_VIEWS.contains_element(TAGS, item)
    assert clause.render(SQLITE) == f"EXISTS (SELECT 1 FROM json_each(`tags`) WHERE {types})"
    assert params == [param]


def test_postgresql_sends_an_in_list_as_one_array_and_an_item_as_a_json_list() -> None:
    clause, params = POSTGRES_VIEWS.in_list(TOTAL, P, [1, 2])
    assert (clause.render(POSTGRES), params) == ('"total" = ANY(%s)', [[1, 2]])
    clause, params = POSTGRES_VIEWS.contains_element(TAGS, "red")
    assert (clause.render(POSTGRES), params) == ('"tags" @> %s::jsonb', ['["red"]'])


def test_postgresql_json_keeps_a_big_float_a_float() -> None:
    encode = POSTGRES_VIEWS.row_encoder("json")
    assert encode is not None
    text = encode([1e18, {"a": 1.5e20}, 3, None])
    assert text == '[1000000000000000000.0,{"a":150000000000000000000.0},3,null]'
    assert orjson.loads(text) == [1e18, {"a": 1.5e20}, 3, None]
    assert encode(None) is None
    # an integer past 64 bits, as rows written before held them, reads as a float
    assert POSTGRES_VIEWS.decoder("json")(10**19) == 1e19

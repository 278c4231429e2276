"""Properties of the read side under random input, on both databases.

``views.list`` and ``views.get``: any arguments, plausible or hostile (unknown fields and operators,
values of every type and size, 64-bit overflows, NUL and lone surrogates, forged cursors, huge ``in``
lists, wrong Python types) either answer a page or raise a ``WritError`` with a code. Records accepted by
random valid writes are projected equal to what the command side reads, and published, one message per
event. Examples are bounded and derandomized, so CI sees the same cases on every run.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from projections import open_views, open_worker
from tests.application.test_properties import VALID, hostile_text, values
from tests.catalogs import principal
from tests.integration.conftest import BusTap, bus_written_ids
from tests.integration.test_projection import expected_row

PROPERTIES = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
MANAGER = principal("maria", "acme", "manager")
FIELDS = [
    "sku",
    "total",
    "quantity",
    "status",
    "note",
    "placed_on",
    "tags",
    "updated_at",
    "counter",
    "id",
    "_state",
    "_version",
    "_updated_at",
    "tenant_id",
]
OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "is_null"]

field_names = st.one_of(st.sampled_from(FIELDS), hostile_text, st.sampled_from([None, 3]))
filter_values = st.one_of(
    values,
    st.lists(values, max_size=4),
    st.sampled_from(
        [
            2**64,
            -(2**64),
            "1e999999",
            "-1e999999",
            "2026-13-45",
            "0001-01-01T00:00:00+14:00",
            ["draft"] * 40_000,
        ]
    ),
)
filters = st.one_of(
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(OPS), filter_values),
    st.tuples(field_names, st.one_of(st.sampled_from(OPS), hostile_text), filter_values),
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(OPS)),
    st.sampled_from(
        [None, 42, "status", {"field": "status", "op": "eq", "value": "draft"}, {"field": 1}]
    ),
)
orders = st.one_of(
    st.sampled_from(FIELDS).map(lambda name: f"-{name}"),
    st.sampled_from(FIELDS),
    st.tuples(st.sampled_from(FIELDS), st.sampled_from(["asc", "desc", "up"])),
    st.sampled_from([None, 5, ("total",), b"total"]),
    hostile_text,
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "filters": st.one_of(st.lists(filters, max_size=3), st.sampled_from(["status", None, {}])),
        "order_by": st.one_of(st.lists(orders, max_size=3), st.sampled_from(["total", None])),
        "limit": st.one_of(st.integers(-5, 2000), st.sampled_from([2**64, "10", None, 1.5])),
        "after": st.one_of(hostile_text, st.sampled_from([None, 5, "eyJvIjpbXSwidiI6W119"])),
        "include_deleted": st.sampled_from([False, True, "yes", None]),
    },
)
subjects = st.one_of(
    st.just((MANAGER, "Order")),
    st.tuples(
        st.sampled_from([MANAGER, principal(), None, "maria", principal("eve", "globex")]),
        st.one_of(st.sampled_from(["Order", "Customer", "Nope", None, 7]), hostile_text),
    ),
)


@pytest.fixture
def projected(catalog: Catalog, database_url: str, writ: Writ) -> Any:
    for n in range(12):
        writ.create(
            MANAGER,
            "Order",
            {
                "sku": f"V-{n}",
                "total": f"{n}.5",
                "note": None if n % 3 else "x",
                "tags": ["a", "b"][: n % 3],
            },
        )
    worker = open_worker(catalog, database_url)
    worker.run(until_caught_up=True)
    worker.close()
    views = open_views(catalog, database_url)
    yield views
    views.close()


@PROPERTIES
@given(subject=subjects, query=queries)
def test_any_query_answers_a_page_or_a_coded_refusal(
    projected: Any, subject: tuple[Any, Any], query: dict[str, Any]
) -> None:
    who, model = subject
    try:
        page = projected.list(who, model, **query)
    except WritError as error:
        event(f"refused {error.code}")
        assert error.code and error.code != "WRIT_ERROR"
        assert len(orjson.dumps(error.to_dict())) < 4_000
        return
    event("answered")
    assert len(page.rows) <= (query.get("limit") if isinstance(query.get("limit"), int) else 50)
    assert all(row["tenant_id"] == who.tenant_id for row in page.rows)


@PROPERTIES
@given(
    record_id=st.one_of(
        st.uuids(), st.uuids().map(str), hostile_text, st.sampled_from([None, 42, b"x"])
    )
)
def test_any_get_answers_a_row_or_a_coded_refusal(projected: Any, record_id: Any) -> None:
    try:
        projected.get(MANAGER, "Order", record_id)
    except WritError as error:
        assert error.code in ("NOT_FOUND", "INVALID_INPUT"), error.code


storable = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
records = st.fixed_dictionaries(
    {"sku": VALID["sku"], "total": VALID["total"]},
    optional={
        **{name: VALID[name] for name in ("quantity", "status", "placed_on", "counter")},
        "note": storable,
        "tags": st.lists(storable, max_size=3),
    },
)


@pytest.mark.rabbitmq
def test_accepted_records_are_projected_equal_and_published(
    catalog: Catalog,
    database_url: str,
    writ: Writ,
    amqp_url: str,
    bus_exchange: str,
    bus_relay: Any,
) -> None:
    accepted: list[str] = []

    @settings(
        max_examples=40,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=records)
    def write(data: dict[str, Any]) -> None:
        accepted.append(writ.create(MANAGER, "Order", data).id)

    tap = BusTap(amqp_url, bus_exchange).start()
    try:
        write()
        worker = open_worker(catalog, database_url)
        worker.run(until_caught_up=True)
        worker.close()
        views = open_views(catalog, database_url)
        try:
            for record_id in accepted:
                assert views.get(MANAGER, "Order", record_id) == expected_row(
                    writ.get(MANAGER, "Order", record_id)
                )
        finally:
            views.close()
        written = bus_written_ids(writ)
        bus_relay()
        assert [m.message_id for m in tap.wait_for(len(written))] == written
        bodies = {m.message_id: orjson.loads(m.body) for m in tap.messages}
        for record_id in accepted:
            assert bodies[f"{record_id}:1"]["data"] == {
                k: v
                for k, v in writ.get(MANAGER, "Order", record_id).items()
                if not k.startswith("_") and k != "id"
            }
    finally:
        tap.stop()

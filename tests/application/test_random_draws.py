"""Every id, key and nonce a write makes is drawn from ``domain.ids``, none from ``os.urandom``.

``os.urandom`` (and ``uuid.uuid4``, which calls it) lets go of the GIL for its system call, and under
concurrent writers each draw cost context switches (``domain/ids.py``). ruff bans both names outside the tests;
this shows no write still reaches them through a library: with ``os.urandom`` made to fail, every kind of
write succeeds, on both databases.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from domain.catalog import Catalog
from domain.errors import InvalidFieldValueError
from entrypoints.bootstrap import Runtime
from tests.catalogs import SALES_CATALOG, principal

CLERK = principal("carol", "acme", "clerk")
MANAGER = principal("maria", "acme", "manager")


@pytest.fixture
def runtime(catalog: Catalog, database_url: str) -> Iterator[Runtime]:
    with Runtime(catalog, database_url) as opened:
        yield opened


@pytest.fixture
def no_urandom(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """``os.urandom`` refuses, and notes each size asked for (an assertion raised inside a write could be
    caught and recorded as a refusal: the list tells)."""
    asked: list[int] = []

    def refuse(size: int) -> bytes:
        asked.append(size)
        raise AssertionError(f"os.urandom({size}) drawn by a write")

    monkeypatch.setattr(os, "urandom", refuse)
    return asked


def test_no_write_draws_from_os_urandom(runtime: Runtime, no_urandom: list[int]) -> None:
    writ = runtime.writ
    order = writ.create(CLERK, "Order", {"sku": "R-1", "total": "5"}, idempotency_key="r-1")
    assert writ.create(CLERK, "Order", {"sku": "R-1", "total": "5"}, idempotency_key="r-1").replayed
    writ.patch(CLERK, "Order", order.id, {"note": "n"})
    parked = writ.patch(CLERK, "Order", order.id, {"total": "20000"})
    assert parked.status == "pending_approval"
    writ.approve(MANAGER, parked.approval_id, reason="checked")
    writ.delete(MANAGER, "Order", order.id)
    writ.restore(MANAGER, "Order", order.id)
    many = writ.create_many(CLERK, "Order", [{"sku": f"R-{n}", "total": "1"} for n in range(3)])
    runtime.catch_up()
    bulk = writ.bulk_update(MANAGER, "Order", [("total", "eq", "1")], {"note": "bulk"})
    assert bulk.updated_count == len(many)
    writ.purge(MANAGER, "Order", order.id)
    with pytest.raises(InvalidFieldValueError):  # a refusal is recorded too
        writ.create(CLERK, "Order", {"sku": "lower case", "total": "5"})
    assert writ.get(MANAGER, "Order", many[0].id)["note"] == "bulk"
    assert no_urandom == []


def test_a_generated_uuid_and_nested_children_draw_nothing_from_os_urandom(
    database_url: str, no_urandom: list[int]
) -> None:
    with Runtime(Catalog.from_toml(SALES_CATALOG, source="tests"), database_url) as runtime:
        sale = runtime.writ.create(
            CLERK, "Sale", {"title": "Desk", "total": "10", "items": [{"sku": "A"}, {"sku": "B"}]}
        )
        assert len(sale.children) == 2
        assert runtime.writ.get(CLERK, "Sale", sale.id)["ref"]
    assert no_urandom == []

"""Every id, key and nonce a write makes is drawn from ``domain.ids``, none from ``os.urandom``.

``os.urandom`` (and ``uuid.uuid4`` and ``secrets``, which call it) lets go of the GIL for its system call, and
under concurrent writers each draw cost context switches (``domain/ids.py``). ruff bans ``os.urandom`` and
``uuid.uuid4`` outside the tests; this shows no write still reaches the system's generator through another
name or a library: with ``os.urandom`` and the ``random`` module's handle on it (``secrets`` and
``SystemRandom`` draw through that) made to fail, every kind of write succeeds, on both databases.
"""

from __future__ import annotations

import os
import random

import pytest

from domain.catalog import Catalog
from domain.commands import Create, Patch
from domain.errors import InvalidFieldValueError
from entrypoints.bootstrap import Runtime
from tests.catalogs import SALES_CATALOG, principal

CLERK = principal("carol", "acme", "clerk")
MANAGER = principal("maria", "acme", "manager")


@pytest.fixture
def no_urandom(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The system's generator refuses, and notes each size asked for (an assertion raised inside a write could
    be caught and recorded as a refusal: the list tells)."""
    asked: list[int] = []

    def refuse(size: int) -> bytes:
        asked.append(size)
        raise AssertionError(f"os.urandom({size}) drawn by a write")

    monkeypatch.setattr(os, "urandom", refuse)
    monkeypatch.setattr(random, "_urandom", refuse)
    return asked


def test_no_write_draws_from_the_systems_generator(runtime: Runtime, no_urandom: list[int]) -> None:
    writ = runtime.writ
    order = writ.create(CLERK, "Order", {"sku": "R-1", "total": "5"}, idempotency_key="r-1")
    assert writ.create(CLERK, "Order", {"sku": "R-1", "total": "5"}, idempotency_key="r-1").replayed
    writ.replace(CLERK, "Order", order.id, {"sku": "R-1", "total": "6"})
    writ.patch(CLERK, "Order", order.id, {"note": "n"})
    for settle in (
        lambda i: writ.reject(MANAGER, i, "no"),
        lambda i: writ.cancel(CLERK, i),
        lambda i: writ.approve(MANAGER, i, reason="checked"),
    ):
        parked = writ.patch(CLERK, "Order", order.id, {"total": "20000"})
        assert parked.status == "pending_approval"
        settle(parked.approval_id)
    assert writ.get(CLERK, "Order", order.id)["total"] == "20000"
    writ.delete(MANAGER, "Order", order.id)
    writ.restore(MANAGER, "Order", order.id)
    many = writ.create_many(CLERK, "Order", [{"sku": f"R-{n}", "total": "1"} for n in range(3)])
    writ.execute_many(
        CLERK,
        [
            Create(model="Order", data={"sku": "R-9", "total": "1"}),
            Patch(model="Order", id=many[0].id, changes={"quantity": 2}),
        ],
    )
    assert writ.evaluate(CLERK, Create(model="Order", data={"sku": "R-8", "total": "1"}))
    runtime.catch_up()
    bulk = writ.bulk_update(MANAGER, "Order", [("total", "eq", "1")], {"note": "bulk"})
    assert bulk.updated_count == len(many) + 1
    writ.purge(MANAGER, "Order", order.id)
    with pytest.raises(InvalidFieldValueError):  # a refusal is recorded too
        writ.create(CLERK, "Order", {"sku": "lower case", "total": "5"})
    assert writ.get(MANAGER, "Order", many[0].id)["note"] == "bulk"
    assert no_urandom == []


def test_generated_ids_children_units_and_approved_creates_draw_nothing_from_it(
    database_url: str, no_urandom: list[int]
) -> None:
    with Runtime(Catalog.from_toml(SALES_CATALOG, source="tests"), database_url) as runtime:
        writ = runtime.writ
        sale = writ.create(
            CLERK, "Sale", {"title": "Desk", "total": "10", "items": [{"sku": "A"}, {"sku": "B"}]}
        )
        assert len(sale.children) == 2
        assert writ.get(CLERK, "Sale", sale.id)["ref"]
        parked = writ.create(
            CLERK, "Sale", {"title": "Big", "total": "6000", "items": [{"sku": "C"}]}
        )
        assert parked.status == "pending_approval"
        approved = writ.approve(MANAGER, parked.approval_id, reason="checked")
        assert approved.status == "executed"
        with writ.transaction(CLERK) as unit:
            made = unit.create("Sale", {"title": "Lamp", "total": "20"})
            unit.create("SaleItem", {"sale_id": made.id, "sku": "BULB"})
        assert writ.get(CLERK, "Sale", made.id)["title"] == "Lamp"
    assert no_urandom == []

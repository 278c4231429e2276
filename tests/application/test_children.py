"""Master-detail: nested creates in one save, cascades of delete, restore and purge, tenant boundaries."""

from __future__ import annotations

import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import (
    ApprovalRequiredError,
    GrantMissingError,
    ImmutableFieldError,
    InvalidFieldValueError,
    InvalidInputError,
    RecordNotFoundError,
    RequiredFieldMissingError,
    UniqueViolationError,
)
from entrypoints.bootstrap import Runtime, open_writ
from tests.catalogs import SALES_CATALOG, principal
from tests.integration.insider import Insider
from tests.support import saves, stored_rows

CLERK, MANAGER = principal("carol", "acme", "clerk"), principal("maria", "acme", "manager")
NOTE_TAKER = principal("nick", "acme", "guest")


def state(writ: Writ, model: str, record_id: str) -> str:
    return writ.get(MANAGER, model, record_id, include_deleted=True)["_state"]


def order_with_items(writ: Writ) -> tuple[str, list[str]]:
    sale = writ.create(
        CLERK,
        "Sale",
        {
            "title": "Desk",
            "total": "100",
            "items": [{"sku": "LEG", "qty": 4}, {"sku": "TOP"}, {"sku": "SCREW", "qty": 16}],
        },
    )
    return sale.id, sale.children


def test_a_create_with_nested_children_is_one_save(sales: Writ, database_url: str) -> None:
    sale_id, items = order_with_items(sales)
    assert len(items) == 3
    first, last = saves(database_url)[-1]
    created = [
        row
        for row in stored_rows(database_url)
        if first <= row.id <= last and row.topic == "writ.record:Created"
    ]
    assert {str(row.originator_id) for row in created} == {sale_id, *items}, (
        "parent and children in one save"
    )
    assert [sales.get(CLERK, "SaleItem", i)["sale_id"] for i in items] == [sale_id] * 3
    assert sales.get(CLERK, "SaleItem", items[2])["qty"] == 16


def test_a_nested_row_whose_parent_field_is_null_joins_the_record_it_is_nested_in(
    sales: Writ,
) -> None:
    sale = sales.create(
        CLERK, "Sale", {"title": "Lamp", "total": "1", "items": [{"sku": "BULB", "sale_id": None}]}
    )
    assert sales.get(CLERK, "SaleItem", sale.children[0])["sale_id"] == sale.id


def test_a_refused_child_refuses_the_whole_create(sales: Writ, database_url: str) -> None:
    before = len(stored_rows(database_url))
    with pytest.raises(InvalidFieldValueError):
        sales.create(
            CLERK,
            "Sale",
            {"title": "Desk", "total": "1", "items": [{"sku": "OK"}, {"sku": "X", "qty": 0}]},
        )
    with pytest.raises(InvalidInputError, match="list of objects"):
        sales.create(CLERK, "Sale", {"title": "Desk", "total": "1", "items": {"sku": "not a list"}})
    with pytest.raises(InvalidFieldValueError, match="belongs to the record it is nested in"):
        sales.create(
            CLERK,
            "Sale",
            {
                "title": "Desk",
                "total": "1",
                "items": [{"sku": "X", "sale_id": "7f0c2f59-9b5e-4b43-9d80-6a5e0f8f3b51"}],
            },
        )
    created = [r for r in stored_rows(database_url)[before:] if r.topic.startswith("writ.record")]
    assert created == [], "nothing of the parent or the other children was written"
    assert (
        sales.create(CLERK, "Sale", {"title": "next", "total": "1"})
        .data["number"]
        .endswith("-0001")
    )


def test_a_create_nests_children_up_to_the_rows_limit(database_url: str) -> None:
    """With ``rows = 3`` a sale takes three nested items; a fourth refuses the create."""
    app = open_writ(Catalog.from_toml(SALES_CATALOG + "\n[limits]\nrows = 3\n"), database_url)
    try:
        items = [{"sku": f"S-{n}"} for n in range(4)]
        three = app.create(CLERK, "Sale", {"title": "three", "total": "1", "items": items[:3]})
        assert len(three.children) == 3
        with pytest.raises(InvalidInputError, match="At most 3 nested children"):
            app.create(CLERK, "Sale", {"title": "four", "total": "1", "items": items})
    finally:
        app.close()


def test_a_child_needs_its_own_grant(sales: Writ) -> None:
    with pytest.raises(GrantMissingError):
        sales.create(
            NOTE_TAKER, "SaleItem", {"sale_id": "7f0c2f59-9b5e-4b43-9d80-6a5e0f8f3b51", "sku": "X"}
        )


def test_a_child_points_at_a_live_parent_of_its_own_tenant(sales: Writ) -> None:
    sale_id, items = order_with_items(sales)
    stranger = principal("olga", "globex", "clerk")
    with pytest.raises(RecordNotFoundError) as caught:
        sales.create(stranger, "SaleItem", {"sale_id": sale_id, "sku": "X"})
    assert caught.value.field == "sale_id"
    with pytest.raises(RecordNotFoundError):
        sales.create(CLERK, "SaleItem", {"sale_id": items[0], "sku": "X"})  # an item is no Sale
    with pytest.raises(RequiredFieldMissingError):
        sales.create(CLERK, "ItemNote", {"text": "orphan"})
    with pytest.raises(ImmutableFieldError):
        other = sales.create(CLERK, "Sale", {"title": "Other", "total": "1"}).id
        sales.patch(CLERK, "SaleItem", items[0], {"sale_id": other})
    sales.delete(MANAGER, "Sale", sale_id)
    with pytest.raises(RecordNotFoundError):
        sales.create(CLERK, "SaleItem", {"sale_id": sale_id, "sku": "late"})


def test_delete_and_restore_cascade_to_grandchildren_and_only_back(sales: Writ) -> None:
    sale_id, items = order_with_items(sales)
    note = sales.create(NOTE_TAKER, "ItemNote", {"item_id": items[0], "text": "fragile"}).id
    sales.delete(MANAGER, "SaleItem", items[1])  # deleted on its own, before the parent
    sales.delete(MANAGER, "Sale", sale_id)
    assert [state(sales, "SaleItem", i) for i in items] == ["deleted"] * 3
    assert state(sales, "ItemNote", note) == "deleted"
    deleted = sales.history(MANAGER, "SaleItem", items[0])[-1]
    assert (
        deleted.event == "Deleted"
        and deleted.decision_id == sales.history(MANAGER, "Sale", sale_id)[-1].decision_id
    )
    sales.restore(MANAGER, "Sale", sale_id)
    assert [state(sales, "SaleItem", i) for i in items] == ["modified", "deleted", "modified"], (
        "a child deleted on its own stays deleted"
    )
    assert state(sales, "ItemNote", note) == "modified"


def test_a_child_cannot_be_restored_under_a_deleted_parent(sales: Writ) -> None:
    """A child deleted on its own, then its parent: the child's own restore finds no live parent."""
    sale_id, items = order_with_items(sales)
    sales.delete(MANAGER, "SaleItem", items[0])
    sales.delete(MANAGER, "Sale", sale_id)
    with pytest.raises(RecordNotFoundError) as caught:
        sales.restore(MANAGER, "SaleItem", items[0])
    assert caught.value.field == "sale_id"
    assert state(sales, "SaleItem", items[0]) == "deleted"


def test_purge_cascades_and_erases_the_children(sales: Writ, database_url: str) -> None:
    sale_id, items = order_with_items(sales)
    note = sales.create(NOTE_TAKER, "ItemNote", {"item_id": items[0], "text": "secret"}).id
    sales.purge(MANAGER, "Sale", sale_id)
    for model, record_id in [("SaleItem", i) for i in items] + [("ItemNote", note)]:
        with pytest.raises(RecordNotFoundError):
            sales.get(MANAGER, model, record_id, include_deleted=True)
        assert sales.history(MANAGER, model, record_id)[-1].event == "Purged"
    # one save purges them all: each one's data key is destroyed with it, not the first's alone
    insider = Insider(database_url)
    with insider.connection() as conn:
        kept = [
            record_id
            for record_id in [sale_id, *items, note]
            for (wrapped,) in conn.execute(
                f"SELECT wrapped FROM {insider.table('writ_keys')} WHERE id = {insider.mark}",
                (insider.key(record_id),),
            ).fetchall()
            if wrapped is not None
        ]
        counted = conn.execute(
            f"SELECT COUNT(*) FROM {insider.table('writ_keys')} WHERE wrapped IS NULL"
        ).fetchone()
    assert kept == [], "the data keys of purged records are still stored"
    assert counted[0] >= len(items) + 2, "every purged record had a key row, now destroyed"


def test_a_parent_purge_passes_over_a_child_purged_before(sales: Writ) -> None:
    sale_id, items = order_with_items(sales)
    sales.purge(MANAGER, "SaleItem", items[0])
    sales.purge(MANAGER, "Sale", sale_id)
    assert [e.event for e in sales.history(MANAGER, "SaleItem", items[0])] == ["Created", "Purged"]
    assert [e.event for e in sales.history(MANAGER, "SaleItem", items[1])][-1] == "Purged"


def test_a_cascaded_restore_whose_unique_value_was_taken_restores_nothing(sales: Writ) -> None:
    first = sales.create(
        CLERK, "Sale", {"title": "A", "total": "1", "items": [{"sku": "X", "serial": "SN-1"}]}
    )
    sales.delete(MANAGER, "Sale", first.id)  # the item's serial is free again
    sales.create(
        CLERK, "Sale", {"title": "B", "total": "1", "items": [{"sku": "X", "serial": "SN-1"}]}
    )
    with pytest.raises(UniqueViolationError) as caught:
        sales.restore(MANAGER, "Sale", first.id)
    assert caught.value.field == "serial"
    assert (
        state(sales, "Sale", first.id) == "deleted"
        and state(sales, "SaleItem", first.children[0]) == "deleted"
    )


def test_an_approved_create_makes_its_children_and_takes_its_number_when_it_executes(
    sales: Writ,
) -> None:
    parked = sales.create(
        CLERK, "Sale", {"title": "Big", "total": "6000", "items": [{"sku": "A"}, {"sku": "B"}]}
    )
    assert parked.status == "pending_approval" and parked.children == []
    sales.create(CLERK, "Sale", {"title": "meanwhile", "total": "1"})  # takes ORD-…-0001
    done = sales.approve(MANAGER, str(parked.approval_id))
    (result,) = done.results
    assert result.data is not None and result.data["number"].endswith("-0002"), (
        "numbered when it executed"
    )
    assert len(result.children) == 2 and result.id == parked.id
    assert sorted(sales.get(CLERK, "SaleItem", child)["sku"] for child in result.children) == [
        "A",
        "B",
    ]
    assert sales.history(CLERK, "SaleItem", result.children[0])[0].approval is not None, (
        "carries the approval"
    )


def test_a_nested_child_that_needs_approval_refuses_the_create(
    sales: Writ, database_url: str
) -> None:
    before = len(stored_rows(database_url))
    with pytest.raises(ApprovalRequiredError, match="nested child cannot wait"):
        sales.create(
            CLERK,
            "Sale",
            {"title": "x", "total": "1", "items": [{"sku": "A"}, {"sku": "B", "qty": 500}]},
        )
    written = [row.topic for row in stored_rows(database_url)[before:]]
    assert written == ["writ.decision:Created"], "recorded as a refusal; nothing else written"


def test_a_parent_deleted_while_a_unit_adds_its_child_wins_or_cascades(
    sales: Writ, sales_catalog: Catalog, database_url: str
) -> None:
    sale = sales.create(
        CLERK, "Sale", {"title": "contested", "total": "1", "items": [{"sku": "FIRST"}]}
    )
    other = open_writ(sales_catalog, database_url)
    try:
        with pytest.raises(RecordNotFoundError), sales.transaction(CLERK) as tx:
            tx.create("SaleItem", {"sale_id": sale.id, "sku": "LATE"})
            # commits first; the unit's commit conflicts on the family
            other.delete(MANAGER, "Sale", sale.id)
    finally:
        other.close()
    assert state(sales, "Sale", sale.id) == "deleted"
    adopted = [row for row in stored_rows(database_url) if row.topic == "writ.family:Adopted"]
    assert len(adopted) == 1 and state(sales, "SaleItem", sale.children[0]) == "deleted", (
        "no live orphan"
    )


def test_a_retried_unit_keeps_its_nested_childrens_ids(
    sales: Writ, sales_catalog: Catalog, database_url: str
) -> None:
    other = open_writ(sales_catalog, database_url)
    try:
        with sales.transaction(CLERK) as tx:
            sale = tx.create("Sale", {"title": "Desk", "total": "1", "items": [{"sku": "LEG"}]})
            tx.patch("SaleItem", sale.children[0], {"qty": 4})
            # the unit must retry
            other.create(CLERK, "Sale", {"title": "takes the number", "total": "1"})
    finally:
        other.close()
    assert tx.results[0].children == sale.children
    assert sales.get(CLERK, "SaleItem", sale.children[0])["qty"] == 4
    assert sales.get(CLERK, "Sale", sale.id)["number"].endswith("-0002"), (
        "decided again: the next number"
    )


def test_a_bulk_update_cannot_move_children(sales_catalog: Catalog, database_url: str) -> None:
    with Runtime(sales_catalog, database_url) as runtime:
        runtime.writ.create(CLERK, "Sale", {"title": "A", "total": "1", "items": [{"sku": "X"}]})
        runtime.catch_up()
        with pytest.raises(ImmutableFieldError) as caught:
            runtime.writ.bulk_update(
                MANAGER,
                "SaleItem",
                [("sku", "eq", "X")],
                {"sale_id": "7f0c2f59-9b5e-4b43-9d80-6a5e0f8f3b51"},
            )
        assert caught.value.field == "sale_id"

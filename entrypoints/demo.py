"""``writ demo``: a short, readable story on the embedded default, printed as tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.bootstrap import Runtime
from entrypoints.demo_tables import (
    catalog_table,
    decisions,
    history,
    refusal,
    result,
    rows,
    step,
)
from entrypoints.examples import example_catalog_text
from entrypoints.terminal import console
from infrastructure.verification import verify


def demo_catalog_text() -> str:
    return example_catalog_text("demo")


def run_demo(database_url: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="writ-demo-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'writ.db'}"
        catalog = Catalog.from_toml(demo_catalog_text(), source="demo_catalog.toml")
        with Runtime(catalog, url) as runtime:
            _story(runtime, url)


def _story(runtime: Runtime, url: str) -> None:
    writ, catalog = runtime.writ, runtime.catalog
    clerk = Principal(
        user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="take phone order"
    )
    manager = Principal(
        user_id="maria", tenant_id="acme", roles=frozenset({"manager"}), purpose="tidy up"
    )
    console.rule(f"[bold]Writ demo[/] — catalog version {catalog.version} on {url}")
    catalog_table(catalog)
    step("1. A clerk creates an order (allowed)")
    created = writ.create(clerk, "Order", {"sku": "LAMP-42", "total": "89.90", "quantity": 2})
    result(created.to_dict())
    step("2. The clerk tries to force-delete it (denied: no grant)")
    refusal(lambda: writ.purge(clerk.for_purpose("remove a duplicate"), "Order", created.id))
    step("3. The clerk tries to change the immutable sku")
    refusal(
        lambda: writ.patch(
            clerk.for_purpose("fix the sku"), "Order", created.id, {"sku": "LAMP-43"}
        )
    )
    step("4. The clerk patches the quantity")
    result(
        writ.patch(
            clerk.for_purpose("customer called back"), "Order", created.id, {"quantity": 3}
        ).to_dict()
    )
    _approval(writ, clerk, manager, created.id)
    step("7. The manager soft-deletes the order, then restores it")
    result(writ.delete(manager, "Order", created.id).to_dict())
    result(writ.restore(manager.for_purpose("deleted by mistake"), "Order", created.id).to_dict())
    step("8. The record's history: who changed what, why, and who approved it")
    history(writ, clerk, created.id)
    step("9. The manager purges it (force delete): the data is gone, a tombstone remains")
    result(
        writ.purge(manager.for_purpose("customer erasure request"), "Order", created.id).to_dict()
    )
    refusal(lambda: writ.get(clerk, "Order", created.id))
    history(writ, clerk, created.id)
    step(
        "10. Every decision, allowed, refused or parked, with the catalog version it was made under"
    )
    runtime.catch_up()
    auditor = Principal(user_id="ada", tenant_id="acme", roles=frozenset({"auditor"}))
    console.print(
        "  writ decisions -r auditor   (the decisions read model, oldest first: the clerk sees only "
        "their own, an auditor every one about the models they audit)"
    )
    decisions(runtime.views.decisions(auditor))
    step("11. The projection: current rows per model, filtered and sorted, deleted rows hidden")
    _projection(runtime, clerk, manager)


def _approval(writ: Writ, clerk: Principal, manager: Principal, record_id: str) -> None:
    step(
        "5. The clerk raises the total to 25,000: policy requires approval, the write parks, nothing changes"
    )
    parked = writ.patch(
        clerk.for_purpose("fit out the new office"), "Order", record_id, {"total": "25000"}
    )
    request = writ.approval(manager, str(parked.approval_id))
    console.print(f"  [yellow]{parked.status}[/]: approval {parked.approval_id}")
    console.print(f"  reasons: {'; '.join(request['reasons'])}")
    console.print(
        f"  preview: total {request['preview']['before']['total']} → {request['preview']['after']['total']}"
        f"; still {writ.get(clerk, 'Order', record_id)['total']} in the record"
    )
    step(
        "6. A second person decides: the clerk may not approve, the manager does, and the change executes"
    )
    refusal(
        lambda: writ.approve(clerk.for_purpose("approve my own change"), str(parked.approval_id))
    )
    approved = writ.approve(
        manager.for_purpose("checked with the customer"),
        str(parked.approval_id),
        reason="customer confirmed by phone",
    )
    console.print(f"  [green]{approved.status}[/] by {', '.join(approved.approvals)}")
    result(approved.results[0].to_dict())


def _projection(runtime: Runtime, clerk: Principal, manager: Principal) -> None:
    writ = runtime.writ
    orders = [
        ("DESK-1", "420.00", "placed"),
        ("CHAIR-7", "89.00", "draft"),
        ("SHELF-3", "150.00", "placed"),
        ("RUG-9", "240.00", "placed"),
    ]
    ids = [
        writ.create(clerk, "Order", {"sku": sku, "total": total, "status": status}).id
        for sku, total, status in orders
    ]
    last = writ.delete(manager, "Order", ids[-1])
    views = runtime.views
    runtime.catch_up()
    views.wait(last.position)
    console.print("  writ list Order -w status:eq:placed --sort -total   (RUG-9 is soft-deleted)")
    page = views.list(clerk, "Order", filters=[("status", "eq", "placed")], order_by=["-total"])
    rows(page.rows)
    console.print("  the same for the manager, with --include-deleted")
    rows(
        views.list(
            manager,
            "Order",
            filters=[("status", "eq", "placed")],
            order_by=["-total"],
            include_deleted=True,
        ).rows
    )
    step(
        "12. The manager bulk-updates every placed order: each gets its own governed event, in one save"
    )
    done = writ.bulk_update(
        manager.for_purpose("courier strike"),
        "Order",
        [("status", "eq", "placed")],
        {"note": "ships monday"},
    )
    console.print(f"  {done.status}: {done.updated_count} records, one decision {done.decision_id}")
    runtime.catch_up()
    rows(views.list(clerk, "Order", filters=[("status", "eq", "placed")], order_by=["-total"]).rows)
    step(
        "13. An auditor verifies the whole store: every record's chain and the log's, the purge included"
    )
    report = verify(runtime.backend)
    console.print(
        f"  writ verify: [green]{'verified' if report.ok else 'BROKEN'}[/] — {report.events} events of "
        f"{report.records} records in {report.saves} saves, {len(report.findings)} findings"
    )
    _units(writ, clerk)


def _units(writ: Writ, clerk: Principal) -> None:
    step("14. An order with its items, created at once and numbered by a counter: one atomic save")
    desk = writ.create(
        clerk.for_purpose("office fit-out"),
        "Order",
        {"sku": "DESK-9", "total": "640", "items": [{"sku": "LEG", "quantity": 4}, {"sku": "TOP"}]},
    )
    assert desk.data is not None
    console.print(f"  {desk.data['number']}: order {desk.id} with {len(desk.children)} items")
    step(
        "15. A unit of work: commands over several records commit together; a failing savepoint is discarded"
    )
    with writ.transaction(clerk.for_purpose("phone order with extras")) as tx:
        order = tx.create("Order", {"sku": "LAMP-7", "total": "35"})
        tx.create("OrderItem", {"order_id": order.id, "sku": "BULB", "quantity": 2})
        try:
            with tx.savepoint():
                tx.create("OrderItem", {"order_id": order.id, "sku": "SHADE"})
                # one line per sku: refused
                tx.create("OrderItem", {"order_id": order.id, "sku": "BULB"})
        except WritError as error:
            console.print(
                f"  savepoint discarded: [red]{error.code}[/] (the SHADE line went with it)"
            )
        tx.patch("Order", desk.id, {"note": "deliver with the lamp"})
    for done in tx.results:
        number = f" {done.data['number']}" if done.data and done.data.get("number") else ""
        console.print(
            f"  {done.model}{number} {done.id} version {done.version} at position {done.position}"
        )
    lines = [row["sku"] for row in (writ.get(clerk, "OrderItem", child) for child in desk.children)]
    console.print(
        f"  the desk's lines: {', '.join(lines)}; the lamp order is the next number, no gap"
    )

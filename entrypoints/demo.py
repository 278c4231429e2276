"""``writ demo``: a short, readable story on the embedded default, printed as tables."""

from __future__ import annotations

import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Patch
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.bootstrap import Runtime

console = Console()


def demo_catalog_text() -> str:
    return resources.files("entrypoints").joinpath("demo_catalog.toml").read_text()


def run_demo(database_url: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="writ-demo-") as tmp:
        url = database_url or f"sqlite:///{Path(tmp) / 'writ.db'}"
        catalog = Catalog.from_toml(demo_catalog_text(), source="demo_catalog.toml")
        with Runtime(catalog, url) as runtime:
            _story(runtime, url)


def _story(runtime: Runtime, url: str) -> None:
    writ, catalog = runtime.writ, runtime.catalog
    clerk = Principal(user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="take phone order")
    manager = Principal(user_id="maria", tenant_id="acme", roles=frozenset({"manager"}), purpose="tidy up")
    console.rule(f"[bold]Writ demo[/] — catalog version {catalog.version} on {url}")
    _catalog_table(catalog)
    _step("1. A clerk creates an order (allowed)")
    created = writ.create(clerk, "Order", {"sku": "LAMP-42", "total": "89.90", "quantity": 2})
    _result(created.to_dict())
    _step("2. The clerk tries to force-delete it (denied: no grant)")
    _refusal(lambda: writ.purge(clerk, "Order", created.id))
    _step("3. The clerk tries to change the immutable sku")
    _refusal(lambda: writ.patch(clerk, "Order", created.id, {"sku": "LAMP-43"}))
    _step("4. The clerk patches the quantity")
    _result(writ.patch(clerk.for_purpose("customer called back"), "Order", created.id, {"quantity": 3}).to_dict())
    _step("5. A dry run of a big total: policy requires approval, nothing is written")
    evaluation = writ.evaluate(clerk, Patch(model="Order", id=created.id, changes={"total": "25000"}))
    console.print(f"  outcome [yellow]{evaluation.outcome}[/] ({evaluation.code}): {'; '.join(evaluation.reasons)}")
    console.print(f"  would change total: {(evaluation.before or {}).get('total')} → "
                  f"{(evaluation.after or {}).get('total')}")
    _step("6. The manager soft-deletes the order, then restores it")
    _result(writ.delete(manager, "Order", created.id).to_dict())
    _result(writ.restore(manager.for_purpose("deleted by mistake"), "Order", created.id).to_dict())
    _step("7. The record's history, with before/after values")
    _history(writ, clerk, created.id)
    _step("8. The manager purges it (force delete): the data is gone, a tombstone remains")
    _result(writ.purge(manager.for_purpose("customer erasure request"), "Order", created.id).to_dict())
    _refusal(lambda: writ.get(clerk, "Order", created.id))
    _history(writ, clerk, created.id)
    _step("9. Every decision, allowed or refused, with the catalog version it was made under")
    _decisions(writ, clerk)
    _step("10. The projection: current rows per model, filtered and sorted, deleted rows hidden")
    _projection(runtime, clerk, manager)


def _projection(runtime: Runtime, clerk: Principal, manager: Principal) -> None:
    writ = runtime.writ
    orders = [("DESK-1", "420.00", "placed"), ("CHAIR-7", "89.00", "draft"), ("SHELF-3", "150.00", "placed"),
              ("RUG-9", "240.00", "placed")]
    ids = [writ.create(clerk, "Order", {"sku": sku, "total": total, "status": status}).id
           for sku, total, status in orders]
    last = writ.delete(manager, "Order", ids[-1])
    views = runtime.views
    runtime.worker().run(until_caught_up=True)
    views.wait(last.position)
    console.print("  writ list Order -w status:eq:placed --sort -total   (RUG-9 is soft-deleted)")
    page = views.list(clerk, "Order", filters=[("status", "eq", "placed")], order_by=["-total"])
    _rows(page.rows)
    console.print("  the same for the manager, with --include-deleted")
    _rows(views.list(manager, "Order", filters=[("status", "eq", "placed")], order_by=["-total"],
                     include_deleted=True).rows)


def _rows(rows: list[dict[str, Any]]) -> None:
    table = Table("id", "sku", "total", "status", "_state", "_version")
    for row in rows:
        table.add_row(row["id"][:8] + "…", row["sku"], row["total"], row["status"], row["_state"],
                      str(row["_version"]))
    console.print(table)


def _step(title: str) -> None:
    console.print(f"\n[bold cyan]{title}[/]")


def _catalog_table(catalog: Catalog) -> None:
    table = Table("model", "field", "type", "rules", title="Catalog")
    for name, spec in catalog.models.items():
        for field_name, field in spec.fields.items():
            rules = [r for r, on in (("required", field_name in spec.required),
                                     ("immutable", field_name in spec.immutable),
                                     (f"auto: {spec.auto_set[field_name].value}" if field_name in spec.auto_set
                                      else "", field_name in spec.auto_set)) if on]
            table.add_row(name, field_name, field.type, ", ".join(rules))
        policy = ", ".join(f"{op}: {'; '.join(r.describe() for r in spec.policy.rules_for(op)) or 'deny'}"
                           for op in ("create", "update", "delete", "force_delete"))
        table.add_row(name, "[dim]policy[/]", "", policy)
    console.print(table)


def _result(values: dict[str, Any]) -> None:
    shown = ("status", "version", "state", "position")
    table = Table("id", *shown)
    table.add_row(str(values["id"])[:8] + "…", *(str(values[key]) for key in shown))
    console.print(table)
    data = values.get("data")
    if isinstance(data, dict):
        console.print("  data: " + ", ".join(f"{k}={v}" for k, v in data.items()
                                             if not k.startswith("_") and k not in ("id", "updated_at")))


def _refusal(action: Any) -> None:
    try:
        action()
    except WritError as exc:
        console.print(f"  [red]refused[/] {exc.code}: {exc.message}")
    else:
        raise AssertionError("the demo expected a refusal")


def _history(writ: Writ, principal: Principal, record_id: str) -> None:
    table = Table("v", "event", "at", "actor", "purpose", "changes")
    for entry in writ.history(principal, "Order", record_id):
        changes = "(new record)" if entry.event == "Created" and entry.after else ", ".join(
            f"{k}: {c['before']} → {c['after']}" for k, c in entry.changes.items() if k != "updated_at")
        table.add_row(str(entry.version), entry.event, entry.at[11:19], entry.actor or "",
                      entry.purpose or "", changes or "—")
    console.print(table)


def _decisions(writ: Writ, principal: Principal) -> None:
    table = Table("#", "outcome", "operation", "actor", "code", "purpose", "catalog")
    for decision in writ.decisions(principal):
        table.add_row(str(decision["position"]), decision["outcome"], decision["operation"],
                      decision["actor"] or "", decision["code"] or "", decision["purpose"] or "",
                      decision["policy_version"][:8])
    console.print(table)

"""How ``writ demo`` shows what happens: rich tables of results, refusals, histories, decisions, rows.

Ids are shown whole: a reader copies them into the next command.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.diffs import change_lines
from entrypoints.terminal import console


def id_table(*columns: str, **options: Any) -> Table:
    """A table whose first column is an id, never cut off (a reader copies it into the next command)."""
    table = Table(**options)
    table.add_column(columns[0], no_wrap=True, min_width=36)
    for column in columns[1:]:
        table.add_column(column)
    return table


def rows(rows: list[dict[str, Any]]) -> None:
    table = id_table("id", "sku", "total", "status", "_state", "_version", "note")
    for row in rows:
        table.add_row(
            row["id"],
            row["sku"],
            row["total"],
            row["status"],
            row["_state"],
            str(row["_version"]),
            row.get("note") or "",
        )
    console.print(table)


def step(title: str) -> None:
    console.print(f"\n[bold cyan]{title}[/]")


def catalog_table(catalog: Catalog) -> None:
    table = Table("model", "field", "type", "rules", title="Catalog")
    for name, spec in catalog.models.items():
        for field_name, field in spec.fields.items():
            rules = [
                r
                for r, on in (
                    ("required", field_name in spec.required),
                    ("immutable", field_name in spec.immutable),
                    (
                        f"auto: {spec.auto_set[field_name].value}"
                        if field_name in spec.auto_set
                        else "",
                        field_name in spec.auto_set,
                    ),
                    (
                        f"generated: {spec.generators.get(field_name)}",
                        field_name in spec.generators,
                    ),
                    *(
                        ("unique " + " + ".join(group), True)
                        for group in spec.unique
                        if field_name in group
                    ),
                )
                if on
            ]
            table.add_row(name, field_name, field.type, ", ".join(rules))
        policy = ", ".join(
            f"{op}: {'; '.join(r.description for r in spec.policy.rules_for(op)) or 'deny'}"
            for op in ("create", "update", "delete", "force_delete", "bulk_update")
        )
        table.add_row(name, "[dim]policy[/]", "", policy)
    console.print(table)


def result(values: dict[str, Any]) -> None:
    shown = ("status", "version", "state", "position")
    table = id_table("id", *shown)
    table.add_row(str(values["id"]), *(str(values[key]) for key in shown))
    console.print(table)
    data = values.get("data")
    if isinstance(data, dict):
        console.print(
            "  data: "
            + ", ".join(
                f"{k}={v}"
                for k, v in data.items()
                if not k.startswith("_") and k not in ("id", "updated_at")
            )
        )


def refusal(action: Any) -> None:
    try:
        action()
    except WritError as exc:
        console.print(f"  [red]refused[/] {exc.code}: {exc.message}")
    else:
        raise AssertionError("the demo expected a refusal")


def history(writ: Writ, principal: Principal, record_id: str) -> None:
    table = Table("v", "event", "at", "actor", "purpose", "approved by", "changes")
    for entry in writ.history(principal, "Order", record_id):
        changes = (
            "(new record)"
            if entry.event == "Created" and entry.after
            else ", ".join(change_lines(entry.changes, skip=("updated_at",)))
        )
        approvers = ", ".join((entry.approval or {}).get("approvers", []))
        table.add_row(
            str(entry.version),
            entry.event,
            entry.at[11:19],
            entry.actor or "",
            entry.purpose or "",
            approvers,
            changes or "—",
        )
    console.print(table)


def decisions(found: list[dict[str, Any]]) -> None:
    table = Table("#", "outcome", "operation", "actor", "code", "purpose", "catalog")
    for decision in found:
        table.add_row(
            str(decision["position"]),
            decision["outcome"],
            decision["operation"],
            decision["actor"] or "",
            decision["code"] or "",
            decision["purpose"] or "",
            decision["policy_version"][:8],
        )
    console.print(table)

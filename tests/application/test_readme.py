"""The README's catalog and Python snippets, run as written, on both databases."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from domain.catalog import Catalog
from domain.commands import Patch
from tests.support import writ_command

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.S)


def test_the_readme_catalog_loads_and_decides_as_it_says() -> None:
    catalog = Catalog.from_toml(blocks("toml")[0], source="README.md")
    order = catalog.model("Order")
    assert order.approvals.required_for("update") == 2 and order.policy.max_affected == 1000
    assert catalog.limits.value_bytes == 65536


def test_the_readme_python_snippets_run_as_written(database_url: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WRIT_DATABASE_URL", database_url)
    (tmp_path / "writ.toml").write_text(blocks("toml")[0])
    api, runtime, units, views, audit = (b for b in blocks("python") if "Subscriber(" not in b)
    names: dict[str, Any] = {}
    exec(compile(api, "README.md (Python API)", "exec"), names)
    writ, clerk, created, made = names["writ"], names["clerk"], names["created"], names["made"]
    assert names["parked"].status == "pending_approval"
    executed = writ.approval(names["manager"], names["parked"].approval_id)
    assert executed["status"] == "executed" and executed["approvals"] == ["maria", "dan"]
    assert (executed["results"], executed["preview"], executed["command"]) == ([], {}, {}), \
        "the purge at the end erased the request's copy of the record's data too"
    history = writ.history(clerk, "Order", created.id)
    (approved,) = [entry for entry in history if entry.approval]
    assert sorted(approved.approval["approvers"]) == ["dan", "maria"], "two approvers, as the catalog asks"
    rejected = writ.approval(names["manager"], names["other"].approval_id)
    assert rejected["status"] == "rejected" and writ.get(clerk, "Order", made[0].id)["total"] == "1"
    assert writ.history(clerk, "Order", created.id)[-1].event == "Purged"

    if not database_url.startswith("sqlite"):  # PostgreSQL: a worker runs beside the service, as the README says
        writ_command("project", "--once", "--catalog", str(tmp_path / "writ.toml"),
                     env={"WRIT_DATABASE_URL": database_url})
    exec(compile(runtime, "README.md (Runtime)", "exec"), names)
    assert names["done"].updated_count == 2, "the two draft orders left; the purged one is gone"
    exec(compile(views, "README.md (views)", "exec"), names)
    assert names["row"]["sku"] == "A-1" and names["row"]["note"] == "ships monday"
    assert [r["sku"] for r in names["page"].rows] == ["A-2"] and [r["sku"] for r in names["more"].rows] == ["A-1"]
    names["views"].close()

    exec(compile(units, "README.md (units of work)", "exec"), names)
    committed = names["tx"].results
    assert [r.model for r in committed] == ["Order", "OrderItem"], "the savepoint's duplicate line was discarded"
    year = datetime.now(UTC).year
    assert names["numbered"] == f"ORD-{year}-0004", "three orders before it (the README's creates)"
    assert len(names["desk"].children) == 1 and names["desk"].data["number"] == f"ORD-{year}-0005"
    assert len(names["job"].steps) == 1

    exec(compile(audit, "README.md (audit)", "exec"), names)
    assert names["report"].ok and names["report"].events > 0 and names["report"].findings == []
    assert names["first"]["note"] == "ships monday"
    assert names["changed"]["note"] == {"before": None, "after": "ships monday"}, "the bulk update's patch"
    assert set(names["changed"]) == {"note", "updated_at"}, "and the auto-set time; nothing else differs"
    purged = [line for line in names["lines"] if line["id"] == str(created.id)]
    assert purged[-1]["type"] == "writ.record:Purged", purged
    payloads = [line for line in purged if "data" in line or "changes" in line]
    assert len(payloads) >= 3 and all(line["redacted"] for line in payloads)
    assert all(line.get("data") is None and line.get("changes") is None for line in payloads), \
        "the export keeps no erased data"
    writ.close()


def test_the_readme_policy_reason_is_what_a_decision_says(database_url: str) -> None:
    from infrastructure.settings import open_writ

    catalog = Catalog.from_toml(blocks("toml")[0], source="README.md")
    quoted = re.search(r"e\.g\. `(policy update: deny when\s+before\.status.*?)`", README.read_text(), flags=re.S)
    assert quoted is not None
    from domain.principal import Principal

    clerk = Principal(user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="readme")
    writ = open_writ(catalog, database_url)
    try:
        shipped = writ.create(clerk, "Order", {"sku": "A-1", "total": "5", "status": "shipped"})
        evaluation = writ.evaluate(clerk, Patch(model="Order", id=shipped.id, changes={"status": "draft"}))
        assert " ".join(quoted.group(1).split()) in evaluation.reasons
    finally:
        writ.close()

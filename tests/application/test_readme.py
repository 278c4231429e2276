"""The docs' catalog and Python examples (the blocks marked to run), run as written, on both databases."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.catalog import Catalog
from domain.commands import Patch
from entrypoints.examples import example_catalog_text
from tests.docs import ROOT, Walkthrough, blocks, reader_env
from tests.support import CliProcess

CATALOG_PAGE = ROOT / "docs" / "catalog.md"


def catalog_block() -> str:
    """The docs' catalog: the block docs/catalog.md says is the file `writ init --example readme` writes."""
    (block,) = [
        b.text for b in blocks(CATALOG_PAGE) if b.kind == "same-as" and b.argument == "writ.toml"
    ]
    return block


def test_the_docs_catalog_is_the_one_writ_init_writes_and_decides_as_it_says() -> None:
    assert catalog_block() == example_catalog_text("readme")
    catalog = Catalog.from_toml(catalog_block(), source="docs/catalog.md")
    order = catalog.model("Order")
    assert order.approvals.required_for("update") == 2 and order.policy.max_affected == 1000
    assert catalog.limits.value_bytes == 65536


@contextmanager
def python_blocks_run(page: Path, database_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A page's Python blocks marked to run, in order, in one session, on ``database_url`` (the whole page, shell
    included, runs on the embedded default in ``tests/e2e/test_readme_walkthrough.py``); yields the session's
    names, then closes what it opened. On PostgreSQL a ``writ project`` worker runs beside them, as
    docs/projections.md says."""
    (tmp_path / "writ.toml").write_text(catalog_block())
    keys = (
        {}
        if database_url.startswith("sqlite")
        else {  # PostgreSQL is configured with its keys (operations.md)
            "WRIT_MASTER_KEY": os.environ["WRIT_MASTER_KEY"],
            "WRIT_WRITER_KEY": os.environ["WRIT_WRITER_KEY"],
            "WRIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        }
    )
    walk = Walkthrough(tmp_path, reader_env(database_url, **keys))
    worker = None
    try:
        for block in (b for b in blocks(page) if b.kind == "run" and b.language == "python"):
            walk.step(block)
            # the schema exists now: start one
            if worker is None and not database_url.startswith("sqlite"):
                worker = CliProcess(
                    "project",
                    "--catalog",
                    str(tmp_path / "writ.toml"),
                    env={"WRIT_DATABASE_URL": database_url},
                )
        yield walk.namespace
    finally:
        if worker is not None:
            worker.stop()
        if "writ" in walk.namespace:
            walk.namespace["writ"].close()


def test_the_readme_python_example_runs_as_written(database_url: str, tmp_path: Path) -> None:
    with python_blocks_run(ROOT / "README.md", database_url, tmp_path) as names:
        row, history = names["row"], names["history"]
    assert (row["total"], row["quantity"]) == ("25000", 3), (
        "the big change ran once two managers approved it"
    )
    assert [entry.event for entry in history] == ["Created", "Patched", "Patched"]
    assert sorted(history[-1].approval["approvers"]) == ["dan", "maria"]


def test_the_python_api_examples_run_as_written(database_url: str, tmp_path: Path) -> None:
    with python_blocks_run(ROOT / "docs" / "python-api.md", database_url, tmp_path) as names:
        writ, clerk, manager, created, made = (
            names[n] for n in ("writ", "clerk", "manager", "created", "made")
        )
        assert names["parked"].status == "pending_approval"
        executed = writ.approval(manager, names["parked"].approval_id)
        assert executed["status"] == "executed" and executed["approvals"] == ["maria", "dan"]
        assert (executed["results"], executed["preview"], executed["command"]) == ([], {}, {}), (
            "the purge at the end erased the request's copy of the record's data too"
        )
        history = writ.history(manager, "Order", created.id)
        (approved,) = [entry for entry in history if entry.approval]
        assert sorted(approved.approval["approvers"]) == ["dan", "maria"], (
            "two approvers, as the catalog asks"
        )
        assert approved.changed == ["total", "updated_at"] and approved.redacted, (
            "names kept, values erased"
        )
        rejected = writ.approval(manager, names["other"].approval_id)
        assert rejected["status"] == "rejected" and rejected["outcome"]["reason"] == "no budget"
        assert writ.get(clerk, "Order", made[0].id)["total"] == "1"
        assert history[-1].event == "Purged"
    assert names["done"].updated_count == 2, "the two draft orders left; the purged one is gone"
    committed = names["tx"].results
    assert [r.model for r in committed] == ["Order", "OrderItem"], (
        "the savepoint's duplicate line was discarded"
    )
    year = datetime.now(UTC).year
    assert names["numbered"] == f"ORD-{year}-0006", "five orders before it (the page's creates)"
    assert len(names["desk"].children) == 1 and names["desk"].data["number"] == f"ORD-{year}-0007"
    assert len(names["job"].steps) == 1


def test_the_projection_examples_run_as_written(database_url: str, tmp_path: Path) -> None:
    with python_blocks_run(ROOT / "docs" / "projections.md", database_url, tmp_path) as names:
        row, page, more = names["row"], names["page"], names["more"]
    assert row["sku"] == "VASE-3" and row["note"] is None
    assert [r["total"] for r in page.rows] == ["35"], "the highest draft total first: the one order"
    assert all(float(r["total"]) <= 35 for r in more.rows), "sorted by total, highest first"


def test_the_audit_examples_run_as_written(database_url: str, tmp_path: Path) -> None:
    with python_blocks_run(ROOT / "docs" / "audit-and-erasure.md", database_url, tmp_path) as names:
        report, first, changed, made, lines = (
            names[n] for n in ("report", "first", "changed", "made", "lines")
        )
    assert report.ok and report.events > 0 and report.findings == []
    assert first["note"] == "ships monday"
    assert changed["note"] == {"before": None, "after": "ships monday"}, "the patch"
    assert set(changed) == {"note", "updated_at"}, "and the auto-set time; nothing else differs"
    purged = [line for line in lines if line["id"] == str(made.id)]
    assert purged[-1]["type"] == "writ.record:Purged", purged
    payloads = [line for line in purged if "data" in line or "changes" in line]
    assert len(payloads) >= 2 and all(line["redacted"] for line in payloads)
    assert all(line.get("data") is None and line.get("changes") is None for line in payloads), (
        "the export keeps no erased data"
    )


def test_the_policy_reason_the_catalog_page_quotes_is_what_a_decision_says(
    database_url: str,
) -> None:
    from domain.principal import Principal
    from entrypoints.bootstrap import open_writ

    catalog = Catalog.from_toml(catalog_block(), source="docs/catalog.md")
    quoted = re.search(
        r"e\.g\. `(policy update: deny when\s+before\.status.*?)`",
        CATALOG_PAGE.read_text(),
        flags=re.S,
    )
    assert quoted is not None
    clerk = Principal(
        user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="readme"
    )
    writ = open_writ(catalog, database_url)
    try:
        shipped = writ.create(clerk, "Order", {"sku": "A-1", "total": "5", "status": "shipped"})
        evaluation = writ.evaluate(
            clerk, Patch(model="Order", id=shipped.id, changes={"status": "draft"})
        )
        assert " ".join(quoted.group(1).split()) in evaluation.reasons
    finally:
        writ.close()

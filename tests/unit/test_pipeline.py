"""The pure decision pipeline: stage order and previews (the hash chain: ``test_chain``)."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.catalog import Catalog
from domain.commands import Create, Patch
from domain.pipeline import decide
from domain.record import Record
from tests.catalogs import SHOP_CATALOG, principal

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CATALOG = Catalog.from_toml(SHOP_CATALOG)


def test_first_failing_stage_wins() -> None:
    bad = Create(model="Order", data={"colour": "red"})
    assert decide(CATALOG, bad, principal(purpose=None), None, NOW).errors[0].code == "PURPOSE_REQUIRED"
    assert decide(CATALOG, bad, principal("x", "acme", "guest"), None, NOW).errors[0].code == "GRANT_MISSING"
    assert decide(CATALOG, bad, principal(), None, NOW).errors[0].code == "UNKNOWN_FIELD"


def test_field_stage_reports_every_violation_of_that_stage() -> None:
    command = Create(model="Order", data={"sku": "a b", "total": "x", "quantity": 0})
    verdict = decide(CATALOG, command, principal(), None, NOW)
    assert verdict.action == "deny"
    assert sorted(e.field or "" for e in verdict.errors) == ["quantity", "sku", "total"]


def test_create_payload_is_stamped() -> None:
    verdict = decide(CATALOG, Create(model="Order", data={"sku": "A", "total": 1}), principal("bob"), None, NOW)
    assert verdict.action == "allow"
    assert verdict.payload["created_by"] == "bob" and verdict.payload["tenant_id"] == "acme"
    assert verdict.payload["updated_at"] == "2026-01-02T03:04:05Z"


def test_patch_preview_and_tenant_isolation() -> None:
    record = Record.create("Order", "acme", {"sku": "A", "total": "1", "quantity": 1}, {"actor": "a"}, NOW)
    command = Patch(model="Order", id=record.id, changes={"quantity": 2})
    verdict = decide(CATALOG, command, principal(), record, NOW)
    assert verdict.before and verdict.after and (verdict.before["quantity"], verdict.after["quantity"]) == (1, 2)
    assert decide(CATALOG, command, principal("eve", "globex"), record, NOW).errors[0].code == "NOT_FOUND"

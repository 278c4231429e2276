"""Every error code the command side raises, each with its decision recorded, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from application.service import Writ
from domain.errors import WritError
from tests.catalogs import principal

CLERK = principal()
MANAGER = principal("maria", "acme", "manager")

Case = Callable[[Writ, str], Any]

CASES: dict[str, tuple[str, Case, str | None]] = {
    "no principal": ("UNAUTHENTICATED", lambda w, _: w.create(None, "Order", {}), None),
    "no purpose": (
        "PURPOSE_REQUIRED",
        lambda w, _: w.create(principal(purpose=" "), "Order", {}),
        None,
    ),
    "role lacks grant": ("GRANT_MISSING", lambda w, r: w.purge(CLERK, "Order", r), None),
    "policy denies": ("WRITE_DENIED", lambda w, _: w.create(CLERK, "Ledger", {"amount": 1}), None),
    "conditional deny": (
        "WRITE_DENIED",
        lambda w, r: (
            w.patch(CLERK, "Order", r, {"status": "shipped"}),
            w.patch(CLERK, "Order", r, {"quantity": 3}),
        ),
        None,
    ),
    "unknown model": ("MODEL_UNKNOWN", lambda w, _: w.create(CLERK, "Nope", {}), None),
    "unknown field": (
        "UNKNOWN_FIELD",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "colour": 1}),
        "colour",
    ),
    "auto-set field sent": (
        "FIELD_NOT_WRITABLE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "total": 1, "created_by": "x"}),
        "created_by",
    ),
    "id sent on create": (
        "FIELD_NOT_WRITABLE",
        lambda w, _: w.create(
            CLERK, "Order", {"id": "00000000-0000-4000-8000-000000000000", "sku": "A", "total": 1}
        ),
        "id",
    ),
    "auto-set field patched": (
        "FIELD_NOT_WRITABLE",
        lambda w, r: w.patch(CLERK, "Order", r, {"created_by": "mallory"}),
        "created_by",
    ),
    "system field sent": (
        "FIELD_NOT_WRITABLE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "total": 1, "tenant_id": "x"}),
        "tenant_id",
    ),
    "state field sent": (
        "FIELD_NOT_WRITABLE",
        lambda w, r: w.patch(CLERK, "Order", r, {"_state": "new"}),
        "_state",
    ),
    "create-only field updated": (
        "FIELD_NOT_WRITABLE",
        lambda w, r: w.patch(CLERK, "Order", r, {"placed_on": "2026-03-01"}),
        "placed_on",
    ),
    "immutable field patched": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.patch(CLERK, "Order", r, {"sku": "B"}),
        "sku",
    ),
    "tenant moved": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.patch(CLERK, "Order", r, {"tenant_id": "evil"}),
        "tenant_id",
    ),
    "id changed by PATCH": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.patch(
            CLERK, "Order", r, {"id": "00000000-0000-4000-8000-000000000000", "quantity": 2}
        ),
        "id",
    ),
    "id changed by PUT": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.replace(
            CLERK,
            "Order",
            r,
            {"id": "00000000-0000-4000-8000-000000000000", "sku": "A-1", "total": 1},
        ),
        "id",
    ),
    "PUT moves tenant": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.replace(CLERK, "Order", r, {"tenant_id": "evil", "sku": "A-1", "total": 1}),
        "tenant_id",
    ),
    "PUT smuggles immutable": (
        "IMMUTABLE_FIELD",
        lambda w, r: w.replace(CLERK, "Order", r, {"sku": "OTHER", "total": 1}),
        "sku",
    ),
    "required missing": (
        "REQUIRED_FIELD_MISSING",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A"}),
        "total",
    ),
    "required cleared by PUT": (
        "REQUIRED_FIELD_MISSING",
        lambda w, r: w.replace(CLERK, "Order", r, {"sku": "A-1"}),
        "total",
    ),
    "required cleared by PATCH": (
        "REQUIRED_FIELD_MISSING",
        lambda w, r: w.patch(CLERK, "Order", r, {"total": None}),
        "total",
    ),
    "wrong type": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "total": "ten"}),
        "total",
    ),
    "date as seconds since 1970": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "total": 1, "placed_on": 1_728_000_000}),
        "placed_on",
    ),
    "date-time as a date": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(
            CLERK, "Order", {"sku": "A", "total": 1, "placed_on": "2026-01-31T00:00:00Z"}
        ),
        "placed_on",
    ),
    "below bound": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"quantity": 0}),
        "quantity",
    ),
    "not a choice": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"status": "lost"}),
        "status",
    ),
    "pattern": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "a b", "total": 1}),
        "sku",
    ),
    "null not allowed": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.patch(CLERK, "Order", r, {"quantity": None}),
        "quantity",
    ),
    "null sent on create": (
        "INVALID_FIELD_VALUE",
        lambda w, _: w.create(CLERK, "Order", {"sku": "A", "total": 1, "quantity": None}),
        "quantity",
    ),
    "null sent by PUT": (
        "INVALID_FIELD_VALUE",
        lambda w, r: w.replace(CLERK, "Order", r, {"sku": "A-1", "total": 1, "status": None}),
        "status",
    ),
    "record missing": (
        "NOT_FOUND",
        lambda w, _: w.patch(
            CLERK, "Order", "00000000-0000-4000-8000-000000000000", {"quantity": 2}
        ),
        None,
    ),
    "other tenant": (
        "NOT_FOUND",
        lambda w, r: w.patch(principal("eve", "globex"), "Order", r, {"quantity": 2}),
        None,
    ),
    "record deleted": (
        "RECORD_DELETED",
        lambda w, r: (w.delete(MANAGER, "Order", r), w.patch(CLERK, "Order", r, {"quantity": 2})),
        None,
    ),
    "stale version": (
        "VERSION_CONFLICT",
        lambda w, r: (
            w.patch(CLERK, "Order", r, {"quantity": 2}),
            w.patch(CLERK, "Order", r, {"quantity": 3}, expected_version=1),
        ),
        None,
    ),
    "key reused": (
        "IDEMPOTENCY_KEY_REUSED",
        lambda w, r: (
            w.patch(CLERK, "Order", r, {"quantity": 2}, idempotency_key="k"),
            w.patch(CLERK, "Order", r, {"quantity": 3}, idempotency_key="k"),
        ),
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_error_code(writ: Writ, case: str) -> None:
    code, attempt, field = CASES[case]
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    before = writ.get(CLERK, "Order", record_id)
    with pytest.raises(WritError) as caught:
        attempt(writ, record_id)
    assert caught.value.code == code, caught.value.message
    assert caught.value.field == field
    assert caught.value.to_dict()["code"] == code
    refused = [d for d in writ.decisions(CLERK) if d["code"] == code]
    if code not in ("UNAUTHENTICATED", "NOT_FOUND"):
        assert refused, f"no decision recorded for {code}"
    if code != "RECORD_DELETED":
        assert writ.get(CLERK, "Order", record_id)["total"] == before["total"]


def test_required_message_lists_every_missing_field(writ: Writ) -> None:
    with pytest.raises(WritError) as caught:
        writ.create(CLERK, "Order", {"quantity": 2})
    assert (
        caught.value.message == "Missing required fields: sku, total" and caught.value.field is None
    )


def test_immutable_message_names_the_field(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    with pytest.raises(WritError) as caught:
        writ.patch(CLERK, "Order", record_id, {"tenant_id": "other"})
    assert caught.value.message == "Cannot modify immutable field: tenant_id"
    assert caught.value.to_dict() == {
        "error": "ValidationError",
        "message": "Cannot modify immutable field: tenant_id",
        "code": "IMMUTABLE_FIELD",
        "field": "tenant_id",
    }


def test_a_write_that_needs_approval_is_parked_not_executed(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    parked = writ.patch(CLERK, "Order", record_id, {"total": "50000"})
    assert (parked.status, parked.id, parked.version) == ("pending_approval", record_id, None)
    assert parked.approval_id and parked.position
    assert writ.get(CLERK, "Order", record_id)["_version"] == 1
    assert [(d["outcome"], d["code"]) for d in writ.decisions(CLERK)][-1] == (
        "parked",
        "APPROVAL_REQUIRED",
    )


def test_same_value_for_immutable_field_is_accepted(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    result = writ.replace(
        CLERK,
        "Order",
        record_id,
        {"id": record_id, "sku": "A-1", "tenant_id": "acme", "total": "11"},
    )
    assert result.version == 2


def test_a_refusal_says_where_its_decision_is_in_the_log(writ: Writ) -> None:
    with pytest.raises(WritError) as caught:
        writ.create(principal("vic", "acme", "visitor"), "Order", {"sku": "A-1", "total": "1"})
    refusal = caught.value
    assert refusal.code == "GRANT_MISSING"
    assert refusal.position == writ._core.store.recorder.max_notification_id(), (
        "the log's last event"
    )
    auditor = principal("ada", "acme", "auditor")
    found = [
        d for d in writ.decisions(auditor, outcome="refused") if d["position"] == refusal.position
    ]
    assert [d["code"] for d in found] == ["GRANT_MISSING"]

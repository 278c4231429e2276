"""Every command of the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.service import Writ
from domain.commands import Create, Delete, Patch, Purge, Replace, Restore
from domain.errors import (
    GrantMissingError,
    RecordDeletedError,
    RecordNotDeletedError,
    RecordNotFoundError,
    RequiredFieldMissingError,
    WritError,
)
from domain.record import Record
from tests.catalogs import principal

CLERK = principal()
MANAGER = principal("maria", "acme", "manager")
AUDITOR = principal("audrey", "acme", "auditor")


def record_events(writ: Writ) -> list[str]:
    topics = [
        cls.TOPIC
        for cls in (
            Record.Created,
            Record.Replaced,
            Record.Patched,
            Record.Deleted,
            Record.Restored,
            Record.Purged,
        )
    ]
    return [
        n.topic for n in writ._core.store.recorder.select_notifications(1, 10_000, topics=topics)
    ]


def new_order(writ: Writ, **data: object) -> str:
    return writ.create(CLERK, "Order", {"sku": "A-1", "total": "10.50", **data}).id


def test_create_returns_result_with_defaults_auto_set_and_position(writ: Writ) -> None:
    result = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10.50", "tags": ["x"]})
    assert (result.status, result.version, result.state, result.model) == (
        "executed",
        1,
        "new",
        "Order",
    )
    assert result.position is not None and result.position >= 1
    data = result.data or {}
    assert data["quantity"] == 1 and data["status"] == "draft" and data["note"] is None
    assert data["created_by"] == "alice" and data["tenant_id"] == "acme"
    assert data["updated_at"].endswith("Z") and data["total"] == "10.50"
    assert writ.get(CLERK, "Order", result.id)["sku"] == "A-1"


def test_create_many_is_all_or_nothing(writ: Writ) -> None:
    results = writ.create_many(CLERK, "Order", [{"sku": f"S-{i}", "total": i} for i in range(3)])
    assert [r.version for r in results] == [1, 1, 1] and len({r.id for r in results}) == 3
    before = record_events(writ)
    with pytest.raises(RequiredFieldMissingError):
        writ.create_many(CLERK, "Order", [{"sku": "OK-1", "total": 1}, {"sku": "NO-TOTAL"}])
    assert record_events(writ) == before


def test_replace_clears_omitted_fields_and_keeps_protected_ones(writ: Writ) -> None:
    record_id = new_order(writ, note="fragile", quantity=3, placed_on="2026-01-02")
    result = writ.replace(CLERK, "Order", record_id, {"sku": "A-1", "total": "99"})
    replaced = writ.history(CLERK, "Order", record_id)[-1]
    data = writ.get(CLERK, "Order", record_id)
    assert (result.version, result.state) == (2, "modified")
    assert data["note"] is None and data["quantity"] == 1 and data["total"] == "99"
    assert data["placed_on"] == "2026-01-02" and data["created_by"] == "alice"
    # auto-set on create only: another user's update does not restamp it
    writ.patch(MANAGER, "Order", record_id, {"note": "checked"})
    patched = writ.get(CLERK, "Order", record_id)
    assert patched["created_by"] == "alice"
    # auto-set on update: stamped with the time of the update itself
    last = writ.history(CLERK, "Order", record_id)[-1]
    assert patched["updated_at"] == last.at.replace("+00:00", "Z") != data["updated_at"]
    # the tenant is kept too: a replace never drops the record out of its tenant
    assert data["tenant_id"] == result.data["tenant_id"] == "acme"
    # an immutable field the replace leaves out is kept as stored, not cleared (nor "missing")
    writ.replace(CLERK, "Order", record_id, {"total": "7"})
    assert writ.get(CLERK, "Order", record_id)["sku"] == "A-1"
    assert replaced.event == "Replaced", replaced
    assert replaced.after["tenant_id"] == "acme" and "tenant_id" not in replaced.changes


def test_fields_sent_back_unchanged_are_not_writes(writ: Writ) -> None:
    """A create-only or immutable field sent back as stored (a client echoing what it read) is no change."""
    record_id = new_order(writ, placed_on="2026-01-02")
    echoed = {"sku": "A-1", "placed_on": "2026-01-02", "quantity": 4}
    assert writ.patch(CLERK, "Order", record_id, echoed).version == 2
    patched = writ.history(CLERK, "Order", record_id)[-1]
    assert set(patched.changes) == {"quantity", "updated_at"}, "the echoed fields are no change"
    assert writ.replace(CLERK, "Order", record_id, {**echoed, "total": "3"}).version == 3
    data = writ.get(CLERK, "Order", record_id)
    assert (data["placed_on"], data["quantity"], data["total"]) == ("2026-01-02", 4, "3")


def test_patch_changes_only_given_fields(writ: Writ) -> None:
    record_id = new_order(writ, note="keep")
    result = writ.patch(CLERK, "Order", record_id, {"quantity": 5})
    data = writ.get(CLERK, "Order", record_id)
    assert (result.version, result.state, data["quantity"], data["note"]) == (
        2,
        "modified",
        5,
        "keep",
    )


def test_soft_delete_hides_and_restore_brings_back(writ: Writ) -> None:
    record_id = new_order(writ)
    assert writ.delete(MANAGER, "Order", record_id).state == "deleted"
    with pytest.raises(RecordDeletedError):
        writ.patch(CLERK, "Order", record_id, {"quantity": 2})
    with pytest.raises(RecordDeletedError):
        writ.get(CLERK, "Order", record_id)
    with pytest.raises(GrantMissingError):
        writ.get(CLERK, "Order", record_id, include_deleted=True)
    assert writ.get(AUDITOR, "Order", record_id, include_deleted=True)["_state"] == "deleted"
    assert writ.restore(MANAGER, "Order", record_id).state == "modified"
    with pytest.raises(RecordNotDeletedError):
        writ.restore(MANAGER, "Order", record_id)
    assert writ.get(CLERK, "Order", record_id)["_version"] == 3


def test_purge_leaves_a_tombstone_without_data(writ: Writ) -> None:
    record_id = new_order(writ, note="secret")
    result = writ.purge(MANAGER.for_purpose("GDPR erasure request"), "Order", record_id)
    assert (result.state, result.version, result.data) == ("purged", 2, None)
    for attempt in (
        lambda: writ.get(CLERK, "Order", record_id),
        lambda: writ.patch(CLERK, "Order", record_id, {"quantity": 2}),
        lambda: writ.get(CLERK, "Order", record_id, version=1),
    ):
        with pytest.raises(RecordNotFoundError):
            attempt()
    history = writ.history(CLERK, "Order", record_id)
    assert [h.event for h in history] == ["Created", "Purged"]
    assert (history[1].actor, history[1].purpose) == ("maria", "GDPR erasure request")
    assert all(h.before == {} and h.after == {} for h in history)


def test_a_soft_deleted_record_can_be_purged(writ: Writ) -> None:
    record_id = new_order(writ)
    writ.delete(MANAGER, "Order", record_id)
    assert writ.purge(MANAGER, "Order", record_id).version == 3
    with pytest.raises(RecordNotFoundError):
        writ.restore(MANAGER, "Order", record_id)


def test_delete_restore_and_purge_each_need_their_own_grant(writ: Writ) -> None:
    """Payment grants delete to managers and neither restore nor force_delete to anyone, and update (not delete)
    to clerks: each operation is decided under its own grant, never another's."""
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    with pytest.raises(GrantMissingError):
        writ.delete(CLERK, "Payment", payment)
    assert writ.delete(MANAGER, "Payment", payment).state == "deleted"
    with pytest.raises(GrantMissingError):
        writ.restore(MANAGER, "Payment", payment)
    with pytest.raises(GrantMissingError):
        writ.purge(MANAGER, "Payment", payment)
    assert record_events(writ) == [Record.Created.TOPIC, Record.Deleted.TOPIC]


def test_get_as_of_version(writ: Writ) -> None:
    record_id = new_order(writ)
    writ.patch(CLERK, "Order", record_id, {"quantity": 7})
    assert writ.get(CLERK, "Order", record_id, version=1)["quantity"] == 1
    assert writ.get(CLERK, "Order", record_id)["quantity"] == 7
    with pytest.raises(RecordNotFoundError):
        writ.get(CLERK, "Order", record_id, version=3)


def test_history_lists_every_event_with_before_and_after(writ: Writ) -> None:
    record_id = new_order(writ)
    writ.patch(principal("bob", purpose="fix quantity"), "Order", record_id, {"quantity": 4})
    writ.delete(MANAGER, "Order", record_id)
    writ.restore(MANAGER, "Order", record_id)
    history = writ.history(CLERK, "Order", record_id)
    assert [(h.version, h.event, h.state) for h in history] == [
        (1, "Created", "new"),
        (2, "Patched", "modified"),
        (3, "Deleted", "deleted"),
        (4, "Restored", "modified"),
    ]
    patched = history[1]
    assert (patched.actor, patched.purpose) == ("bob", "fix quantity")
    assert patched.changes["quantity"] == {"before": 1, "after": 4}
    assert patched.before["quantity"] == 1 and patched.after["quantity"] == 4
    assert history[0].decision_id and len({h.hash for h in history}) == 4


def test_evaluate_previews_and_writes_nothing(writ: Writ) -> None:
    record_id = new_order(writ)
    position = writ._core.store.recorder.max_notification_id()
    allowed = writ.evaluate(CLERK, Patch(model="Order", id=record_id, changes={"quantity": 9}))
    assert (allowed.outcome, allowed.code) == ("allow", None)
    assert allowed.before and allowed.before["quantity"] == 1
    assert allowed.after and allowed.after["quantity"] == 9
    parked = writ.evaluate(CLERK, Patch(model="Order", id=record_id, changes={"total": "20000"}))
    assert parked.outcome == "require_approval" and "total gt" in parked.reasons[0]
    refused = writ.evaluate(CLERK, Create(model="Order", data={"sku": "x y", "bogus": 1}))
    assert (refused.outcome, refused.code) == ("deny", "UNKNOWN_FIELD")
    assert writ._core.store.recorder.max_notification_id() == position


def test_a_dry_run_on_a_deleted_record_answers_as_the_write_does(writ: Writ) -> None:
    """The pipeline refuses a write on a deleted record before policy (the aggregate would refuse it too, but a
    dry run never reaches the aggregate): ``evaluate`` says ``RECORD_DELETED``, as the write does."""
    record_id = new_order(writ)
    writ.delete(MANAGER, "Order", record_id)
    for command in (
        Patch(model="Order", id=record_id, changes={"quantity": 2}),
        Replace(model="Order", id=record_id, data={"sku": "A-1", "total": "1"}),
        Delete(model="Order", id=record_id),
    ):
        verdict = writ.evaluate(MANAGER, command)
        assert (verdict.outcome, verdict.code, verdict.after) == ("deny", "RECORD_DELETED", None)
    with pytest.raises(RecordDeletedError):
        writ.patch(MANAGER, "Order", record_id, {"quantity": 2})
    purged = writ.evaluate(MANAGER, Purge(model="Order", id=record_id))
    assert (purged.outcome, purged.code) == ("allow", None), "a deleted record may still be purged"
    live = new_order(writ)
    restored = writ.evaluate(MANAGER, Restore(model="Order", id=live))
    assert (restored.outcome, restored.code) == ("deny", "RECORD_NOT_DELETED"), (
        "as the restore says"
    )


def test_decisions_are_recorded_for_allowed_and_refused_commands(writ: Writ) -> None:
    record_id = new_order(writ)
    with pytest.raises(GrantMissingError):
        writ.delete(CLERK, "Order", record_id)
    decisions = writ.decisions(CLERK)
    assert [(d["outcome"], d["code"], d["operation"]) for d in decisions] == [
        ("allowed", None, "create"),
        ("refused", "GRANT_MISSING", "delete"),
    ]
    assert decisions[0]["record_id"] == record_id and decisions[1]["purpose"] == "testing"
    assert all(d["policy_version"] == writ.catalog.version for d in decisions)
    assert writ.decisions(principal(tenant="other")) == []
    assert [d["code"] for d in writ.decisions(CLERK, outcome="refused")] == ["GRANT_MISSING"]
    assert (
        writ.decisions(CLERK, actor="nobody") == []
        and len(writ.decisions(CLERK, model="Order")) == 2
    )
    assert writ.decisions(CLERK, after=decisions[0]["position"]) == decisions[1:]


def test_unknown_record_id_is_not_found(writ: Writ) -> None:
    with pytest.raises(RecordNotFoundError):
        writ.patch(CLERK, "Order", uuid4(), {"quantity": 2})


def test_a_record_named_under_another_model_is_not_found_by_any_write(writ: Writ) -> None:
    """A Customer's id sent as an Order's: not found, so Order's grants, field rules and policy (which lets a
    manager delete an Order, where Customer's policy denies every delete) never apply to the Customer."""
    customer = writ.create(MANAGER, "Customer", {"email": "a@b.c"}).id
    for write in (
        lambda: writ.patch(MANAGER, "Order", customer, {"quantity": 2}),
        lambda: writ.replace(MANAGER, "Order", customer, {"sku": "A-1", "total": "1"}),
        lambda: writ.delete(MANAGER, "Order", customer),
        lambda: writ.purge(MANAGER, "Order", customer),
    ):
        with pytest.raises(RecordNotFoundError):
            write()
    stored = writ.get(MANAGER, "Customer", customer)
    assert (stored["email"], stored["region"], "quantity" in stored) == ("a@b.c", "eu", False)
    assert writ.history(MANAGER, "Customer", customer)[-1].version == 1


def test_audit_context_is_stamped_on_the_events(writ: Writ) -> None:
    caller = CLERK.for_purpose(
        "import",
        correlation_id="corr-1",
        causation_id="cause-9",
        audit_attributes={"ticket": "OPS-12", "agent": "assistant-7"},
    )
    record_id = writ.create(
        caller, "Order", {"sku": "A-1", "total": "1"}, idempotency_key="imp-1"
    ).id
    (entry,) = writ.history(CLERK, "Order", record_id)
    assert (entry.purpose, entry.correlation_id, entry.causation_id) == (
        "import",
        "corr-1",
        "cause-9",
    )
    assert entry.audit == {"ticket": "OPS-12", "agent": "assistant-7"}
    assert entry.idempotency_key == "imp-1" and entry.actor == "alice"


def test_a_deny_on_the_stored_state_cannot_be_sidestepped_and_shipping_still_works(
    writ: Writ,
) -> None:
    """The catalog denies updates ``when before.status eq shipped``: changing the status in the same patch
    no longer escapes it, and setting the status to shipped by an update is still allowed."""
    clerk = principal()
    shipped = writ.create(clerk, "Order", {"sku": "A-1", "total": "5", "status": "shipped"}).id
    for changes in ({"note": "x"}, {"status": "draft", "note": "edited after shipping"}):
        with pytest.raises(WritError) as caught:
            writ.patch(clerk, "Order", shipped, changes)
        assert caught.value.code == "WRITE_DENIED"
    assert writ.get(clerk, "Order", shipped)["_version"] == 1
    reasons = [d["reasons"] for d in writ.decisions(clerk) if d["outcome"] == "refused"]
    assert (
        reasons[-1][0] == "policy update: deny when before.status eq 'shipped' (read before.status)"
    )
    placed = writ.create(clerk, "Order", {"sku": "A-2", "total": "5", "status": "placed"}).id
    assert writ.patch(clerk, "Order", placed, {"status": "shipped"}).version == 2
    allowed = [d["reasons"] for d in writ.decisions(clerk) if d["outcome"] == "allowed"][-1]
    assert allowed == ["policy update: allow"]
    with pytest.raises(WritError):
        writ.patch(clerk, "Order", placed, {"note": "too late"})

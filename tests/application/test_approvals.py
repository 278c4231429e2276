"""Approvals on both databases: a risky write parks, people decide, it executes exactly once or not at all.

The test catalog's ``Order`` needs approval for an update to a total above 10,000 (one approver with the
``approve`` grant: managers); ``Payment`` needs it for a create above 1,000 (one) and for every update (two
distinct approvers), and its requests expire after a day.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from application.retry import Retry
from application.service import Writ
from domain.errors import WritError
from entrypoints.bootstrap import open_writ
from tests.application.test_concurrency import race
from tests.application.test_tampering import RawStore
from tests.catalogs import principal

CLERK = principal("carol", "acme", "clerk")
MANAGER = principal("maria", "acme", "manager")
DIRECTOR = principal("dora", "acme", "director")
BOSS = principal("bob", "acme", "manager")
OUTSIDER = principal("olga", "globex", "manager")
AUDITOR = principal("ada", "acme", "auditor")


def refused(code: str, action: Any) -> WritError:
    with pytest.raises(WritError) as caught:
        action()
    assert caught.value.code == code, caught.value.message
    return caught.value


def parked_order(writ: Writ, total: str = "50000") -> tuple[str, str]:
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    parked = writ.patch(CLERK, "Order", record_id, {"total": total})
    assert parked.status == "pending_approval" and parked.approval_id
    return record_id, parked.approval_id


def test_a_parked_write_shows_what_it_would_do_and_writes_nothing(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    shown = writ.approval(MANAGER, approval_id)
    assert (shown["status"], shown["requester"], shown["purpose"], shown["required"]) == (
        "pending",
        "carol",
        "testing",
        1,
    )
    assert "total gt" in shown["reasons"][0]
    assert (shown["preview"]["before"]["total"], shown["preview"]["after"]["total"]) == (
        "10",
        "50000",
    )
    assert writ.get(CLERK, "Order", record_id)["total"] == "10"
    refused("NOT_FOUND", lambda: writ.approval(OUTSIDER, approval_id))


def test_an_approval_executes_the_change_and_the_history_says_who_approved(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    done = writ.approve(MANAGER, approval_id, reason="checked with the customer")
    assert (done.status, done.approvals, [r.version for r in done.results]) == (
        "executed",
        ["maria"],
        [2],
    )
    record = writ.get(CLERK, "Order", record_id)
    assert (record["total"], record["_version"], record["_updated_by"]) == ("50000", 2, "carol")
    last = writ.history(CLERK, "Order", record_id)[-1]
    assert last.actor == "carol" and last.approval == {"id": approval_id, "approvers": ["maria"]}
    refused("APPROVAL_NOT_PENDING", lambda: writ.approve(BOSS, approval_id))


def test_each_decision_says_where_its_last_event_is_in_the_log(
    writ: Writ, database_url: str
) -> None:
    """An approve, reject or cancel gives its position, to read the views with it (``Writ-Wait-Position``)."""
    raw = RawStore(database_url)
    payment = writ.create(CLERK, "Payment", {"amount": "500"}).id
    two = writ.patch(CLERK, "Payment", payment, {"amount": "900"}).approval_id
    first = writ.approve(MANAGER, two)
    assert first.status == "pending" and first.position == raw.last_position(two)
    executed = writ.approve(DIRECTOR, two)
    assert executed.status == "executed" and executed.position == max(
        raw.last_position(two), raw.last_position(payment)
    )
    assert executed.position > first.position
    _, rejected = parked_order(writ)
    assert writ.reject(MANAGER, rejected, "no").position == raw.last_position(rejected)
    _, cancelled = parked_order(writ)
    assert writ.cancel(CLERK, cancelled).position == raw.last_position(cancelled)


def test_who_may_decide(writ: Writ) -> None:
    _, approval_id = parked_order(writ)
    refused("GRANT_MISSING", lambda: writ.approve(principal("cid", "acme", "clerk"), approval_id))
    refused("NOT_FOUND", lambda: writ.approve(OUTSIDER, approval_id))
    own = writ.patch(
        MANAGER,
        "Order",
        writ.create(MANAGER, "Order", {"sku": "B-1", "total": "1"}).id,
        {"total": "90000"},
    )
    refused("SELF_APPROVAL_FORBIDDEN", lambda: writ.approve(MANAGER, own.approval_id))
    withdrawn = refused("GRANT_MISSING", lambda: writ.cancel(BOSS, approval_id))
    assert CLERK.user_id not in withdrawn.message, "who asked is not told to another"
    assert writ.cancel(CLERK, approval_id, reason="typo").status == "cancelled"
    refused("APPROVAL_NOT_PENDING", lambda: writ.approve(MANAGER, approval_id))
    refusals = [d["code"] for d in writ.decisions(AUDITOR) if d["outcome"] == "refused"]
    assert refusals == [
        "GRANT_MISSING",
        "SELF_APPROVAL_FORBIDDEN",
        "GRANT_MISSING",
        "APPROVAL_NOT_PENDING",
    ]


def test_a_rejection_needs_a_reason_and_ends_the_request(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    refused("INVALID_INPUT", lambda: writ.reject(MANAGER, approval_id, " "))
    assert writ.reject(MANAGER, approval_id, "not this month").status == "rejected"
    refused("APPROVAL_NOT_PENDING", lambda: writ.approve(BOSS, approval_id))
    assert writ.get(CLERK, "Order", record_id)["_version"] == 1


def test_four_eyes_need_two_distinct_approvers(writ: Writ) -> None:
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    approval_id = writ.patch(CLERK, "Payment", payment, {"note": "rent"}).approval_id
    assert approval_id and writ.approval(MANAGER, approval_id)["required"] == 2
    first = writ.approve(MANAGER, approval_id)
    assert (first.status, first.approvals, first.results) == ("pending", ["maria"], [])
    refused("ALREADY_APPROVED", lambda: writ.approve(MANAGER, approval_id))
    assert writ.get(CLERK, "Payment", payment)["note"] is None
    second = writ.approve(DIRECTOR, approval_id)
    assert (second.status, second.approvals) == ("executed", ["maria", "dora"])
    assert writ.get(CLERK, "Payment", payment)["note"] == "rent"


def test_a_create_that_needs_approval_makes_its_record_on_approval(writ: Writ) -> None:
    parked = writ.create(CLERK, "Payment", {"amount": "5000"})
    assert parked.status == "pending_approval" and parked.id
    refused("NOT_FOUND", lambda: writ.get(CLERK, "Payment", parked.id))
    done = writ.approve(MANAGER, str(parked.approval_id))
    assert [(r.id, r.version, r.state) for r in done.results] == [(parked.id, 1, "new")]
    assert writ.get(CLERK, "Payment", parked.id)["amount"] == "5000"


def test_an_expired_request_cannot_be_approved(writ: Writ) -> None:
    _, approval_id = parked_order(writ)
    writ._core.clock = lambda: datetime.now(UTC) + timedelta(days=8)
    refused("APPROVAL_NOT_PENDING", lambda: writ.approve(MANAGER, approval_id))
    assert writ.approval(MANAGER, approval_id)["status"] == "expired"


def test_a_request_past_its_expiry_reads_as_expired_before_anyone_acts_on_it(writ: Writ) -> None:
    _, approval_id = parked_order(writ)
    writ._core.clock = lambda: datetime.now(UTC) + timedelta(days=8)
    shown = writ.approval(MANAGER, approval_id)
    assert (shown["status"], shown["outcome"]["status"], shown["decided_by"]) == (
        "expired",
        "expired",
        None,
    )


def test_a_record_changed_since_the_request_makes_the_approval_stale(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    writ.patch(CLERK, "Order", record_id, {"quantity": 2})
    stale = refused("APPROVAL_STALE", lambda: writ.approve(MANAGER, approval_id))
    record = writ.get(CLERK, "Order", record_id)
    assert (record["total"], record["_version"]) == ("10", 2)
    assert writ.approval(MANAGER, approval_id)["status"] == "failed"
    failed = [d for d in writ.decisions(AUDITOR) if d["outcome"] == "failed"]
    assert [(d["code"], d["position"]) for d in failed] == [("APPROVAL_STALE", stale.position)], (
        "the failure says where its decision is"
    )


def test_a_command_altered_after_the_request_cannot_run(writ: Writ, database_url: str) -> None:
    record_id, approval_id = parked_order(writ)

    def raise_it(body: dict[str, Any]) -> None:
        body["command"]["commands"][0]["changes"]["total"] = "99999999"

    RawStore(database_url).edit(approval_id, 1, raise_it)
    fresh = open_writ(writ.catalog, database_url)  # no cached aggregate: read from the store
    try:
        refused("APPROVAL_STALE", lambda: fresh.approve(MANAGER, approval_id))
    finally:
        fresh.close()
    assert writ.get(CLERK, "Order", record_id)["total"] == "10"


def test_an_approver_approves_only_the_command_shown_to_them(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    shown = writ.approval(MANAGER, approval_id)["fingerprint"]
    refused(
        "APPROVAL_STALE", lambda: writ.approve(MANAGER, approval_id, fingerprint="0" * len(shown))
    )
    assert writ.approval(MANAGER, approval_id)["approvals"] == [], (
        "a mismatched approval is not counted"
    )
    assert writ.get(CLERK, "Order", record_id)["total"] == "10"
    assert writ.approve(MANAGER, approval_id, fingerprint=shown).status == "executed"


def test_two_approvers_racing_the_final_approval_execute_it_once(writ: Writ) -> None:
    record_id, approval_id = parked_order(writ)
    outcomes = race(2, lambda i: writ.approve([MANAGER, BOSS][i], approval_id))
    executed = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(executed) == 1 and executed[0].status == "executed", outcomes
    assert [o.code for o in outcomes if isinstance(o, WritError)] == ["APPROVAL_NOT_PENDING"]
    history = writ.history(CLERK, "Order", record_id)
    assert [h.event for h in history] == ["Created", "Patched"]


def test_an_approval_that_keeps_losing_its_race_fails_with_conflict(writ: Writ) -> None:
    """Every attempt reads the request as it was before another approver saved: each save loses, and after the
    last attempt the approval is a recorded VERSION_CONFLICT, not a raw store error; the request still waits."""
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    approval_id = writ.patch(CLERK, "Payment", payment, {"note": "rent"}).approval_id
    assert approval_id
    stale = writ._approvals._request(MANAGER, approval_id)
    writ.approve(DIRECTOR, approval_id)
    writ._approvals._request = lambda *_: copy.deepcopy(stale)  # type: ignore[method-assign]
    writ._core.retry = Retry(writ._core.record_refusal, attempts=3)
    try:
        error = refused("VERSION_CONFLICT", lambda: writ.approve(MANAGER, approval_id))
    finally:
        del writ._approvals._request
    assert "nothing was written" in error.message
    shown = writ.approval(MANAGER, approval_id)
    assert (shown["status"], shown["approvals"]) == ("pending", ["dora"])
    failed = [
        (d["operation"], d["code"]) for d in writ.decisions(MANAGER) if d["outcome"] == "failed"
    ]
    assert failed == [("approve", "VERSION_CONFLICT")]
    assert writ.approve(MANAGER, approval_id).status == "executed"


def test_a_repeated_parked_write_returns_the_same_request(writ: Writ) -> None:
    record_id = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    first = writ.patch(CLERK, "Order", record_id, {"total": "70000"}, idempotency_key="big-1")
    again = writ.patch(CLERK, "Order", record_id, {"total": "70000"}, idempotency_key="big-1")
    assert again.replayed and (again.approval_id, again.status) == (
        first.approval_id,
        "pending_approval",
    )
    assert again.position == first.position

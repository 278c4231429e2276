"""Approvals held to the catalog in force and to the record, on both databases: how many approvers the catalog
asks for now (raised or lowered after the park), every refused decision recorded (an id of another tenant or of
nothing, alike), reasons within the purpose's limits, the agent named on approvals, rejections and cancellations,
and rejecting needs the approve grant as approving does.

The test catalog's ``Payment`` update needs two approvers (managers and directors); ``Order`` one (managers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.service import Writ
from domain.approval import ApprovalRequest
from domain.catalog import Catalog
from domain.commands import Create, Patch
from domain.decision import Decision
from entrypoints.bootstrap import open_writ
from tests.application.refusals import refusal, topics_since
from tests.catalogs import SHOP_CATALOG, principal

CLERK, CLERK2 = principal("carol", "acme", "clerk"), principal("cid", "acme", "clerk")
MANAGER, BOSS, DIRECTOR = (
    principal("maria", "acme", "manager"),
    principal("bob", "acme", "manager"),
    principal("dora", "acme", "director"),
)
OUTSIDER = principal("olga", "globex", "manager")
AGENT = {"agent": "approve-bot"}


@pytest.fixture
def reopen(database_url: str) -> Iterator[Any]:
    """Writ on the same database under the test catalog with Payment's update needing ``count`` approvers."""
    opened: list[Writ] = []

    def open_with(count: int) -> Writ:
        text = SHOP_CATALOG.replace(
            "required = { update = 2 }", f"required = {{ update = {count} }}"
        )
        assert text != SHOP_CATALOG or count == 2
        opened.append(open_writ(Catalog.from_toml(text), database_url))
        return opened[-1]

    yield open_with
    for app in opened:
        app.close()


def parked_payment(writ: Writ) -> tuple[str, str]:
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    approval_id = writ.patch(CLERK, "Payment", payment, {"note": "rent"}).approval_id
    assert approval_id
    return payment, approval_id


def parked_order(writ: Writ) -> str:
    order = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    approval_id = writ.patch(CLERK, "Order", order, {"total": "50000"}).approval_id
    assert approval_id
    return approval_id


def test_a_request_whose_model_left_the_catalog_is_refused_and_recorded_yet_can_be_withdrawn(
    writ: Writ, database_url: str
) -> None:
    """Approving or rejecting a request of a model the catalog no longer declares is ``MODEL_UNKNOWN``, recorded as
    a refused decision like any refusal (it was raised before the recording); its requester may still cancel."""
    approval_id = parked_order(writ)
    renamed = SHOP_CATALOG.replace("[models.Order", "[models.Purchase").replace(
        '"Order"', '"Purchase"'
    )
    assert "[models.Order" not in renamed
    later = open_writ(Catalog.from_toml(renamed), database_url)
    try:
        for act in (
            lambda: later.approve(MANAGER, approval_id),
            lambda: later.reject(MANAGER, approval_id, "no"),
        ):
            error = refusal(later, act, writes=True)
            assert error.code == "MODEL_UNKNOWN" and "no longer in the catalog" in error.message
        assert later.cancel(CLERK, approval_id, reason="model retired").status == "cancelled"
    finally:
        later.close()


def test_raising_the_number_of_approvers_reaches_a_waiting_request(writ: Writ, reopen: Any) -> None:
    payment, approval_id = parked_payment(writ)
    assert writ.approve(MANAGER, approval_id).status == "pending", "1 of 2"
    raised = reopen(3)
    second = raised.approve(DIRECTOR, approval_id)
    assert (second.status, second.approvals, second.required) == ("pending", ["maria", "dora"], 3)
    assert raised.approval(MANAGER, approval_id)["required"] == 3
    assert raised.get(CLERK, "Payment", payment)["note"] is None, (
        "two approvals do not execute under 3"
    )
    assert raised.approve(BOSS, approval_id).status == "executed"
    assert raised.get(CLERK, "Payment", payment)["note"] == "rent"


def test_lowering_it_executes_a_request_with_enough_at_its_next_approval(
    writ: Writ, reopen: Any
) -> None:
    payment, approval_id = parked_payment(writ)
    writ.approve(MANAGER, approval_id)
    lowered = reopen(1)
    shown = lowered.approval(MANAGER, approval_id)
    assert (shown["status"], shown["required"], shown["approvals"]) == ("pending", 1, ["maria"]), (
        "nothing runs by itself when the catalog changes"
    )
    done = lowered.approve(MANAGER, approval_id)
    assert (done.status, done.approvals, done.required) == ("executed", ["maria"], 1), (
        "no second approval by maria"
    )
    assert lowered.get(CLERK, "Payment", payment)["note"] == "rent"
    refused = refusal(lowered, lambda: lowered.approve(DIRECTOR, approval_id), writes=True)
    assert refused.code == "APPROVAL_NOT_PENDING"


def test_lowering_it_below_the_approvals_given_executes_at_the_next_approval(reopen: Any) -> None:
    """Parked under 3, approved twice, then 1 is asked for: more approvals than needed is enough, not a debt."""
    three = reopen(3)
    payment, approval_id = parked_payment(three)
    three.approve(MANAGER, approval_id)
    three.approve(DIRECTOR, approval_id)
    lowered = reopen(1)
    done = lowered.approve(MANAGER, approval_id)
    assert (done.status, done.approvals, done.required) == ("executed", ["maria", "dora"], 1)
    assert lowered.get(CLERK, "Payment", payment)["note"] == "rent"


def test_a_request_of_several_commands_needs_the_most_approvers_any_of_them_needs(
    writ: Writ,
) -> None:
    """A big Payment create (one approver) parked with a Payment update (two) in one request waits for two."""
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    parked = writ.execute_many(
        CLERK,
        [
            Create(model="Payment", data={"amount": "5000"}),
            Patch(model="Payment", id=UUID(payment), changes={"note": "rent"}),
        ],
    )
    approval_id = parked[0].approval_id
    assert approval_id and {r.approval_id for r in parked} == {approval_id}
    assert writ.approval(MANAGER, approval_id)["required"] == 2
    first = writ.approve(MANAGER, approval_id)
    assert (first.status, first.required) == ("pending", 2), "one of the two the update needs"
    assert writ.get(CLERK, "Payment", payment)["note"] is None
    assert writ.approve(DIRECTOR, approval_id).status == "executed"
    assert writ.get(CLERK, "Payment", payment)["note"] == "rent"


def test_an_approver_who_already_approved_is_refused_while_more_are_needed(
    writ: Writ, reopen: Any
) -> None:
    _, approval_id = parked_payment(writ)
    writ.approve(MANAGER, approval_id)
    assert (
        refusal(writ, lambda: writ.approve(MANAGER, approval_id), writes=True).code
        == "ALREADY_APPROVED"
    )


@pytest.mark.parametrize("action", ["approve", "reject", "cancel"])
def test_another_tenants_or_an_unknown_approval_id_is_refused_and_recorded_alike(
    writ: Writ, action: str
) -> None:
    theirs = parked_order(writ)
    attempt = {
        "approve": lambda w, i: w.approve(OUTSIDER, i, reason="mine now"),
        "reject": lambda w, i: w.reject(OUTSIDER, i, "not yours"),
        "cancel": lambda w, i: w.cancel(OUTSIDER, i),
    }[action]
    recorded = []
    for approval_id in (theirs, str(uuid4())):
        error = refusal(writ, lambda i=approval_id: attempt(writ, i), writes=True)
        assert error.code == "NOT_FOUND" and error.message == f"Approval {approval_id} not found"
        (decision,) = [d for d in writ.decisions(OUTSIDER) if d["record_id"] == approval_id]
        kept = {k: v for k, v in decision.items() if k not in ("id", "position", "at", "record_id")}
        recorded.append(
            {**kept, "reasons": [r.replace(approval_id, "<id>") for r in kept["reasons"]]}
        )
    assert recorded[0] == recorded[1], (
        "another tenant's request is refused exactly as one that does not exist"
    )
    assert (
        recorded[0]["operation"],
        recorded[0]["model"],
        recorded[0]["tenant"],
        recorded[0]["outcome"],
    ) == (action, "Approval", "globex", "refused")
    assert "Order" not in repr(recorded) and "acme" not in repr(recorded)
    assert refusal(writ, lambda: attempt(writ, "not-an-id"), writes=True).code == "NOT_FOUND"
    assert writ.approval(CLERK, theirs)["status"] == "pending"


@pytest.mark.parametrize(
    "reason, why",
    [
        ("ok\x00then", "NUL"),
        ("x" * 5_000_000, "longer than 1,000"),
        ("caf\udce9", "lone surrogate"),
        ("x" * 1_001, "longer than 1,000"),
    ],
)
def test_a_reason_has_the_purposes_limits(writ: Writ, reason: str, why: str) -> None:
    approval_id = parked_order(writ)
    attempts = [
        lambda: writ.approve(MANAGER, approval_id, reason=reason),
        lambda: writ.reject(MANAGER, approval_id, reason),
        lambda: writ.cancel(CLERK, approval_id, reason=reason),
    ]
    for attempt in attempts:
        error = refusal(writ, attempt, writes=True)
        assert error.code == "INVALID_INPUT" and why in error.message and "reason" in error.message
    shown = writ.approval(MANAGER, approval_id)
    assert (shown["status"], shown["approvals"]) == ("pending", [])
    assert writ.reject(MANAGER, approval_id, "x" * 1_000).status == "rejected", "at the limit: fine"


def test_approvals_rejections_and_cancellations_name_the_agent(writ: Writ) -> None:
    by_bot = MANAGER.for_purpose("sign-off", audit_attributes=AGENT)
    order = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10"}).id
    approved = writ.patch(CLERK, "Order", order, {"total": "50000"}).approval_id
    assert approved and writ.approve(by_bot, approved, reason="checked").status == "executed"
    assert writ.history(CLERK, "Order", order)[-1].approval == {
        "id": approved,
        "approvers": ["maria"],
        "audit": {"maria": AGENT},
    }
    shown = writ.approval(CLERK, approved)
    assert (shown["approvals"], shown["audit"]) == (["maria"], {"maria": AGENT})

    rejected, cancelled = parked_order(writ), parked_order(writ)
    writ.reject(by_bot, rejected, "no budget")
    writ.cancel(
        CLERK.for_purpose("changed my mind", audit_attributes={"agent": "order-bot"}), cancelled
    )
    assert {k: writ.approval(MANAGER, rejected)[k] for k in ("decided_by", "audit")} == {
        "decided_by": "maria",
        "audit": {"maria": AGENT},
    }
    assert writ.approval(MANAGER, cancelled)["audit"] == {"carol": {"agent": "order-bot"}}
    store = writ._core.store
    stored = [
        store.events.mapper.to_domain_event(n) for n in store.recorder.select_notifications(0, 1000)
    ]
    acts = [
        (type(e).__name__, e.audit)
        for e in stored
        if isinstance(
            e, ApprovalRequest.Approved | ApprovalRequest.Rejected | ApprovalRequest.Cancelled
        )
    ]
    assert acts == [("Approved", AGENT), ("Rejected", AGENT), ("Cancelled", {"agent": "order-bot"})]


def test_rejecting_needs_the_approve_grant(writ: Writ) -> None:
    approval_id = parked_order(writ)
    # another clerk, the requester, an approver of Payment only
    for who in (
        CLERK2,
        CLERK,
        DIRECTOR,
    ):
        position = writ._core.store.recorder.max_notification_id()
        error = refusal(writ, lambda w=who: writ.reject(w, approval_id, "veto"), writes=True)
        assert error.code == "GRANT_MISSING" and "approve" in error.message
        (stored,) = writ._core.store.recorder.select_notifications(
            position, 1, inclusive_of_start=False
        )
        decision = writ._core.store.events.mapper.to_domain_event(stored)
        assert decision.operation == "reject", "recorded as what was refused"
    assert writ.approval(MANAGER, approval_id)["status"] == "pending", (
        "nobody without the grant vetoed it"
    )
    position = writ._core.store.recorder.max_notification_id()
    assert writ.reject(MANAGER, approval_id, "no budget").status == "rejected"
    assert Decision.Created.TOPIC not in topics_since(writ, position), (
        "an allowed rejection is the request's event"
    )


def test_an_approved_write_runs_as_the_requester_with_their_agent_and_attributes(
    database_url: str,
) -> None:
    """The parked command is decided again as the person who asked: the agent they acted through is on the
    executed events, and a ``principal.<attribute>`` auto-set takes their value, not the approver's."""
    catalog = Catalog.from_dict(
        {
            "models": {
                "Task": {
                    "fields": {"title": {"type": "str"}, "desk": {"type": "str"}},
                    "auto_set": {"desk": "principal.desk"},
                    "policy": {"create": "require_approval"},
                    "grants": {"create": ["clerk"], "approve": ["manager"], "read": ["clerk"]},
                }
            }
        }
    )
    writ = open_writ(catalog, database_url)
    try:
        asker = CLERK.for_purpose(
            "new task", audit_attributes={"agent": "task-bot"}, attributes={"desk": "d7"}
        )
        parked = writ.create(asker, "Task", {"title": "t"})
        approver = MANAGER.for_purpose("sign-off", attributes={"desk": "d1"})
        assert writ.approve(approver, str(parked.approval_id)).status == "executed"
        assert writ.get(CLERK, "Task", parked.id)["desk"] == "d7"
        (created,) = writ.history(CLERK, "Task", parked.id)
        assert (created.actor, created.audit) == ("carol", {"agent": "task-bot"})
    finally:
        writ.close()

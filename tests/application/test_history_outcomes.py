"""What a history keeps after a purge, why a record failed, how an approval request ended and whom it waits for:
on both databases.

A purge erases values, never metadata: each data event's changed field names are metadata (unsealed in the
stored event, covered by its hash link), so the history still names them, flagged ``redacted``. An approval's
outcome has one shape wherever it is read: the Python API, its results, the approvals view.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import Runtime
from tests.catalogs import SHOP_CATALOG, principal

CLERK, MANAGER = principal("carol"), principal("maria", "acme", "manager")
MARKER = "MARKER-7f3a"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta) if delta else timedelta(minutes=1)
        return self.now


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    with Runtime(Catalog.from_toml(SHOP_CATALOG), database_url) as opened:
        yield opened


@pytest.fixture
def clock(runtime: Runtime) -> Clock:
    ticking = Clock()
    runtime.writ._core.clock = ticking
    return ticking


def diff_names(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(name for name in {*before, *after} if before.get(name) != after.get(name))


def test_a_purged_history_names_the_fields_each_event_changed_and_keeps_no_value(
    runtime: Runtime, clock: Clock
) -> None:
    writ = runtime.writ
    record = writ.create(CLERK, "Order", {"sku": "A-1", "total": "10", "note": f"{MARKER} made"}).id
    clock.tick()
    writ.patch(CLERK, "Order", record, {"quantity": 2, "note": f"{MARKER} patched"})
    clock.tick()
    writ.replace(CLERK, "Order", record, {"sku": "A-1", "total": "12"})
    clock.tick()
    # a compound's cascade failing
    writ._commands.fail(CLERK, "Order", record, f"the import broke at {MARKER} row 7")
    live = writ.history(MANAGER, "Order", record)
    for entry in live:  # the names recorded at write time are the names the values differ in
        assert entry.changed == diff_names(entry.before, entry.after), entry.event
        assert not entry.redacted
    assert [(e.event, e.reason) for e in live][-1] == (
        "Failed",
        f"the import broke at {MARKER} row 7",
    )
    assert live[1].changed == ["note", "quantity", "updated_at"]
    assert live[2].changed == ["note", "quantity", "total", "updated_at"], (
        "replace cleared note, reset quantity"
    )

    clock.tick()
    writ.purge(MANAGER, "Order", record)
    purged = writ.history(MANAGER, "Order", record)
    assert [(e.event, e.changed) for e in purged] == [(e.event, e.changed) for e in live] + [
        ("Purged", [])
    ]
    assert [e.redacted for e in purged] == [True, True, True, True, False], (
        "every event that held values"
    )
    for entry in purged:
        assert (entry.before, entry.after, entry.changes, entry.reason) == ({}, {}, {}, None), (
            entry.event
        )
    assert purged[0].to_dict()["redacted"] is True, "the flag travels to every door's JSON"

    stored = [
        (n.topic, bytes(n.state))
        for n in writ._core.store.recorder.select_notifications(1, 1000)
        if str(n.originator_id) == record
    ]
    assert stored and all(MARKER.encode() not in state for _, state in stored), (
        "no value is left in the store"
    )
    metas = [
        orjson.loads(state).get("meta", {})
        for topic, state in stored
        if topic != "writ.record:Purged"
    ]
    assert [meta.get("changed") for meta in metas[:3]] == [
        live[0].changed,
        live[1].changed,
        live[2].changed,
    ], "the names are stored as metadata, in the clear"


def test_an_approvals_outcome_has_one_shape_in_the_api_its_results_and_the_view(
    runtime: Runtime, clock: Clock
) -> None:
    writ = runtime.writ
    record = writ.create(CLERK, "Order", {"sku": "B-1", "total": "10"}).id

    def park(total: str) -> str:
        clock.tick()
        parked = writ.patch(CLERK, "Order", record, {"total": total})
        assert parked.approval_id is not None
        return parked.approval_id

    def at() -> str:
        return clock.now.astimezone(UTC).isoformat(timespec="microseconds")

    expected: dict[str, dict[str, Any]] = {}
    rejected = park("20000")
    clock.tick()
    returned = {rejected: writ.reject(MANAGER, rejected, "no budget").outcome}
    expected[rejected] = {
        "status": "rejected",
        "by": "maria",
        "reason": "no budget",
        "code": None,
        "at": at(),
        "audit": {},
    }
    cancelled = park("21000")
    clock.tick()
    returned[cancelled] = writ.cancel(CLERK, cancelled, reason="typo").outcome
    expected[cancelled] = {
        "status": "cancelled",
        "by": "carol",
        "reason": "typo",
        "code": None,
        "at": at(),
        "audit": {},
    }
    expired = park("22000")
    clock.tick(days=8)
    with pytest.raises(WritError) as late:
        writ.approve(MANAGER, expired)
    assert late.value.code == "APPROVAL_NOT_PENDING"
    expected[expired] = {
        "status": "expired",
        "by": None,
        "reason": None,
        "code": None,
        "at": at(),
        "audit": {},
    }
    stale = park("23000")
    clock.tick()
    writ.patch(CLERK, "Order", record, {"note": "changed meanwhile"})
    with pytest.raises(WritError) as stale_error:
        writ.approve(MANAGER, stale)
    assert stale_error.value.code == "APPROVAL_STALE"
    expected[stale] = {
        "status": "failed",
        "by": None,
        "reason": stale_error.value.message,
        "code": "APPROVAL_STALE",
        "at": at(),
        "audit": {},
    }
    executed = park("24000")
    clock.tick()
    returned[executed] = writ.approve(MANAGER, executed).outcome
    expected[executed] = {
        "status": "executed",
        "by": None,
        "reason": None,
        "code": None,
        "at": at(),
        "audit": {},
    }

    runtime.catch_up()
    for approval_id, outcome in expected.items():
        assert writ.approval(MANAGER, approval_id)["outcome"] == outcome, outcome["status"]
        assert runtime.views.approval(MANAGER, approval_id)["outcome"] == outcome, outcome["status"]
        assert returned.get(approval_id, outcome) == outcome, outcome["status"]
    listed = {row["id"]: row for row in runtime.views.approvals(MANAGER, status=None)}
    assert {approval_id: listed[approval_id]["outcome"] for approval_id in expected} == expected
    assert [r["version"] for r in listed[executed]["results"]] == [3], (
        "the executed write, beside the outcome"
    )
    assert writ.approval(MANAGER, executed)["results"] == listed[executed]["results"]


def test_the_requests_waiting_for_me_are_those_i_may_approve_did_not_ask_for_and_did_not_approve_yet(
    runtime: Runtime, clock: Clock
) -> None:
    writ, director = runtime.writ, principal("dan", "acme", "director")
    order = writ.create(CLERK, "Order", {"sku": "C-1", "total": "10"}).id
    asked_by_carol = writ.patch(CLERK, "Order", order, {"total": "20000"}).approval_id
    clock.tick()
    asked_by_maria = writ.create(MANAGER, "Payment", {"amount": "5000"}).approval_id
    clock.tick()
    payment = writ.create(CLERK, "Payment", {"amount": "10"}).id
    approved_by_maria = writ.patch(CLERK, "Payment", payment, {"note": "split"}).approval_id
    writ.approve(MANAGER, str(approved_by_maria))  # 1 of the 2 a Payment update needs
    rejected = writ.patch(CLERK, "Order", order, {"total": "30000"}).approval_id
    writ.reject(MANAGER, str(rejected), "no")
    other_tenant = writ.create(principal("gus", "globex"), "Order", {"sku": "G-1", "total": "1"}).id
    writ.patch(principal("gus", "globex"), "Order", other_tenant, {"total": "40000"})
    runtime.catch_up()

    def waiting(who: Any, status: str | None = "pending") -> list[str]:
        rows = runtime.views.approvals(who, status=status, waiting_for_me=True)
        return [row["id"] for row in rows]

    assert waiting(MANAGER) == [asked_by_carol], (
        "not hers, not one she approved, not another tenant's"
    )
    assert waiting(MANAGER, None) == waiting(MANAGER, "rejected") == [asked_by_carol], (
        "pending only, whatever status is asked"
    )
    assert waiting(director) == [asked_by_maria, approved_by_maria], (
        "a director may approve payments only"
    )
    assert waiting(CLERK) == [], "a clerk approves nothing"
    assert len(runtime.views.approvals(MANAGER)) == 3, (
        "all pending in the tenant, without the filter"
    )


def test_an_auditor_reads_every_request_of_its_models_yet_none_waits_for_it(
    runtime: Runtime,
) -> None:
    """Waiting for me means the models whose ``approve`` grant I hold, not those whose requests I may read: an
    auditor reads an order's request but approves none, so nothing waits for it."""
    writ, auditor = runtime.writ, principal("ada", "acme", "auditor")
    order = writ.create(CLERK, "Order", {"sku": "C-1", "total": "10"}).id
    asked = writ.patch(CLERK, "Order", order, {"total": "20000"}).approval_id
    paying = writ.create(CLERK, "Payment", {"amount": "5000"}).approval_id
    runtime.catch_up()
    assert [row["id"] for row in runtime.views.approvals(auditor)] == [asked], "it reads it"
    assert runtime.views.approvals(auditor, waiting_for_me=True) == []
    assert [row["id"] for row in runtime.views.approvals(MANAGER, waiting_for_me=True)] == [
        asked,
        paying,
    ]
    both = principal("dee", "acme", "director", "auditor")  # approves payments, audits orders
    assert [row["id"] for row in runtime.views.approvals(both)] == [asked, paying]
    assert [row["id"] for row in runtime.views.approvals(both, waiting_for_me=True)] == [paying], (
        "the order it audits waits for its approvers, not for it"
    )


def test_a_cursor_pages_on_within_the_tenant_and_the_status_asked_for(
    runtime: Runtime, clock: Clock
) -> None:
    """``after`` is the caller's text (``<requested_at>|<id>``): a cursor at the moment several requests share,
    with the lowest id, pages on to those of the caller's tenant and status only."""
    writ, gus = runtime.writ, principal("gus", "globex")
    order = writ.create(CLERK, "Order", {"sku": "C-1", "total": "10"}).id
    ours = writ.patch(CLERK, "Order", order, {"total": "20000"}).approval_id
    rejected = writ.patch(CLERK, "Order", order, {"total": "30000"}).approval_id
    writ.reject(MANAGER, str(rejected), "no")
    theirs = writ.create(gus, "Order", {"sku": "G-1", "total": "1"}).id
    writ.patch(gus, "Order", theirs, {"total": "40000"})
    runtime.catch_up()
    (row,) = runtime.views.approvals(MANAGER)
    assert row["id"] == ours
    lowest = f"{row['requested_at']}|00000000-0000-0000-0000-000000000000"
    assert [r["id"] for r in runtime.views.approvals(MANAGER, after=lowest)] == [ours]
    assert [r["id"] for r in runtime.views.approvals(MANAGER, status=None, after=lowest)] == sorted(
        [ours, rejected]
    )
    assert runtime.views.approvals(MANAGER, after=row["cursor"]) == []


def test_a_request_past_its_expiry_is_no_longer_listed_as_pending(
    runtime: Runtime, clock: Clock
) -> None:
    """A request whose ``expires_at`` has passed is expired, though no event marked it so yet: the pending
    list leaves it out (and the waiting-for-me list too); ``status=None`` still shows it."""
    writ = runtime.writ
    clock.tick(days=-2)  # a Payment waits 1 day
    stale = writ.create(CLERK, "Payment", {"amount": "5000"}).approval_id
    clock.tick(days=2)
    fresh = writ.create(CLERK, "Payment", {"amount": "6000"}).approval_id
    runtime.catch_up()
    assert [row["id"] for row in runtime.views.approvals(MANAGER)] == [fresh]
    assert [row["id"] for row in runtime.views.approvals(MANAGER, waiting_for_me=True)] == [fresh]
    assert [row["id"] for row in runtime.views.approvals(MANAGER, status=None)] == [stale, fresh]


def test_a_request_is_expired_at_its_very_expiry_and_a_late_reject_or_cancel_records_it(
    runtime: Runtime, clock: Clock
) -> None:
    """``expires_at`` is the first moment a request can no longer be approved. An approve, reject or cancel that
    comes after it is refused ``APPROVAL_NOT_PENDING`` and records the expiry itself: the view lists the request
    as expired, an event saying so, not only a pending row past its time."""
    writ = runtime.writ
    parked_at = clock.now
    payments = [writ.create(CLERK, "Payment", {"amount": str(5000 + n)}) for n in range(3)]
    asked = [str(p.approval_id) for p in payments]
    clock.now = parked_at + timedelta(days=1)  # a Payment waits exactly 1 day
    for act in (
        lambda: writ.approve(MANAGER, asked[0]),
        lambda: writ.reject(MANAGER, asked[1], "too late anyway"),
        lambda: writ.cancel(CLERK, asked[2], reason="never mind"),
    ):
        with pytest.raises(WritError) as late:
            act()
        assert late.value.code == "APPROVAL_NOT_PENDING", late.value.message
    runtime.catch_up()
    expired = [row["id"] for row in runtime.views.approvals(MANAGER, status="expired")]
    assert sorted(expired) == sorted(asked), "each late act recorded the expiry"
    for approval_id in asked:
        assert writ.approval(MANAGER, approval_id)["outcome"]["status"] == "expired"
    assert all(p.status == "pending_approval" for p in payments)

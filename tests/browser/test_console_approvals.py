"""Approvers in the console, in headless Chromium against a real ``writ serve``, on both databases.

Signing in with the API's tokens; the inbox listing exactly the requests waiting for the signed-in person
(not their own, not another tenant's, not a model they cannot approve, not one they approved already); the
per-field diff of a change and of a bulk; approving a 2-of-N request with two people, after which the
record shows the change; rejecting with a reason; cancelling one's own request; and a request whose record
changed after the page was shown refused ``APPROVAL_STALE``, writing nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.console import Visitor, api, facts, fresh_tenant, person, settle, visit
from tests.http_support import Server
from tests.support import wait_until

pytestmark = pytest.mark.browser


def parked(
    server: Server, bearer: str, model: str, record_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    result = api(server, "PATCH", f"/v1/{model}/{record_id}", bearer, changes, expect=(202,))
    settle(server, result["position"])
    return result  # type: ignore[no-any-return]


def order(server: Server, bearer: str, sku: str, total: str = "89.90") -> dict[str, Any]:
    return api(server, "POST", "/v1/Order", bearer, {"sku": sku, "total": total})  # type: ignore[no-any-return]


def now(visitor: Visitor, path: str) -> dict[str, str]:
    """The record page's current row ("Now"), freshly loaded."""
    visitor.open(path)
    found = visitor.page.locator("h2:text-is('Now') + dl")
    return facts(found) if found.count() else {}


def inbox_ids(visitor: Visitor) -> set[str]:
    """The requests the inbox lists as waiting for the visitor."""
    visitor.open("/console/")
    cards = visitor.page.locator("#waiting > li.card")
    return {card.get_attribute("id").removeprefix("request-") for card in cards.all()}


def test_sign_in_with_a_token_and_out(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    maria = visit(browser, server, visitors)
    maria.open("/console/records")
    assert "/console/sign-in" in maria.page.url, (
        "a page asked for without a session goes to the sign-in page"
    )
    maria.page.get_by_label("Your token").fill(person("maria", tenant, "manager") + "x")
    maria.page.get_by_role("button", name="Sign in", exact=True).click()
    assert "UNAUTHENTICATED" in maria.page.content() and "Signed in as" not in maria.page.content()

    forged = person("maria", tenant, "manager")[:-4] + "AAAA"
    maria.context.add_cookies([{"name": "writ_session", "value": forged, "url": server.url}])
    maria.open("/console/")
    assert "/console/sign-in" in maria.page.url, (
        "a session cookie is checked on every request, as a bearer token"
    )

    maria.sign_in(person("maria", tenant, "manager"))
    assert f"Signed in as maria in {tenant} (manager)" in " ".join(
        maria.page.locator("header").inner_text().split()
    )
    cookies = {cookie["name"]: cookie for cookie in maria.context.cookies()}
    assert {"writ_session", "writ_csrf"} <= set(cookies)
    assert all(
        cookies[name]["httpOnly"] and cookies[name]["sameSite"] == "Strict" for name in cookies
    )

    maria.page.get_by_role("button", name="Sign out").click()
    maria.page.wait_for_url("**/console/sign-in")
    maria.open("/console/")
    assert "/console/sign-in" in maria.page.url, "signed out: the session is gone"


def test_the_inbox_lists_only_what_waits_for_me(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, other = fresh_tenant(), fresh_tenant()
    carol, maria, dan = (
        person("carol", tenant, "clerk"),
        person("maria", tenant, "manager"),
        person("dan", tenant, "director"),
    )
    for_managers = parked(
        server, carol, "Order", order(server, carol, "INBOX-1")["id"], {"total": "20000"}
    )
    own = parked(server, maria, "Order", order(server, maria, "INBOX-2")["id"], {"total": "30000"})
    payment = api(server, "POST", "/v1/Payment", carol, {"amount": "500"})
    two_of_n = parked(server, carol, "Payment", payment["id"], {"amount": "900"})
    elsewhere_clerk = person("carol", other, "clerk")
    parked(
        server,
        elsewhere_clerk,
        "Order",
        order(server, elsewhere_clerk, "INBOX-3")["id"],
        {"total": "40000"},
    )

    manager = visit(browser, server, visitors)
    manager.sign_in(maria)
    assert inbox_ids(manager) == {for_managers["approval_id"], two_of_n["approval_id"]}, (
        "not their own request, not another tenant's"
    )
    mine = manager.page.locator("#yours > li.card")
    assert [card.get_attribute("id") for card in mine.all()] == [f"request-{own['approval_id']}"]

    director = visit(browser, server, visitors)
    director.sign_in(dan)
    assert inbox_ids(director) == {two_of_n["approval_id"]}, (
        "Order's approve grant is the managers' only"
    )

    manager.open("/console/")
    manager.card(two_of_n["approval_id"]).get_by_role("button", name="Approve").click()
    manager.page.wait_for_url(f"**/approvals/{two_of_n['approval_id']}?done=approve")
    assert inbox_ids(manager) == {for_managers["approval_id"]}, (
        "approved by me already: no longer waiting for me"
    )
    assert inbox_ids(director) == {two_of_n["approval_id"]}, "still waiting for a second approver"


def test_the_diff_shows_the_changed_fields_before_and_after(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol, maria = person("carol", tenant, "clerk"), person("maria", tenant, "manager")
    made = order(server, carol, "DIFF-1", "95")
    request = parked(server, carol, "Order", made["id"], {"total": "26000", "note": "rush"})
    manager = visit(browser, server, visitors)
    manager.sign_in(maria)
    card = manager.card(request["approval_id"])
    rows = {
        row.locator("th").inner_text(): (
            row.locator("td.before").inner_text(),
            row.locator("td.after").inner_text(),
        )
        for row in card.locator("table.diff tbody tr").all()
    }
    assert rows.pop("total") == ("95", "26000")
    assert rows.pop("note") == ("—", "rush")
    assert set(rows) == {"updated_at"}, (
        "changed fields only (updated_at is stamped by every update)"
    )
    shown = facts(card.locator("dl.facts"))
    assert shown["Record"] == f"Order {made['id']} (version 1)"
    assert (shown["Asked by"], shown["Why"], shown["Approvals"]) == ("carol", "http test", "0 of 1")
    assert shown["Expires"].endswith(" UTC") and "after.total gt" in shown["Needs approval because"]

    bulk = api(
        server,
        "POST",
        "/v1/Order/bulk-update",
        maria,
        {"filters": [["sku", "in", ["DIFF-1", "DIFF-2"]]], "changes": {"total": "50000"}},
        expect=(202,),
    )
    order(server, carol, "DIFF-2", "10")
    settle(server, bulk["position"])
    carlos = person("carlos", tenant, "manager")
    second = visit(browser, server, visitors)
    second.sign_in(carlos)
    table = second.card(bulk["approval_id"]).locator("table.diff")
    assert "1 record would change, a sample of 1" in table.locator("caption").inner_text()
    assert (
        table.locator("tbody tr").filter(has_text="total").locator("td.after").inner_text()
        == "50000"
    )


def test_two_approvers_for_a_two_of_n_rule_then_the_record_shows_the_change(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    payment = api(server, "POST", "/v1/Payment", carol, {"amount": "500"})
    request = parked(server, carol, "Payment", payment["id"], {"amount": "900"})
    for user, roles, outcome in (
        ("maria", "manager", "pending, 1 of 2 approvals"),
        ("dan", "director", "executed"),
    ):
        approver = visit(browser, server, visitors)
        approver.sign_in(person(user, tenant, roles))
        approver.card(request["approval_id"]).get_by_label("Note with your approval").fill(
            f"ok by {user}"
        )
        approver.card(request["approval_id"]).get_by_role("button", name="Approve").click()
        approver.page.wait_for_url("**?done=approve")
        assert f"You approved this request. It is now {outcome}" in " ".join(
            approver.page.get_by_role("status").inner_text().split()
        )
    assert api(server, "GET", f"/v1/Payment/{payment['id']}/history", carol)["events"][-1][
        "changes"
    ]["amount"] == {"before": "500", "after": "900"}, "the API agrees: executed"
    last = visitors[-1]
    last.page.get_by_role("link", name=f"Payment {payment['id']}").first.click()
    timeline = last.page.locator("ol.timeline > li").last
    assert timeline.locator("h3").inner_text().startswith("Patched")
    assert facts(timeline.locator("dl"))["Approved by"] == "maria, dan"
    assert (
        timeline.locator("tr").filter(has_text="amount").locator("td.after").inner_text() == "900"
    )
    wait_until(
        lambda: now(last, f"/console/records/Payment/{payment['id']}").get("amount") == "900",
        20,
        "the record's row to show the approved amount",
    )


def test_reject_with_a_reason(browser: Any, server: Server, visitors: list[Visitor]) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    made = order(server, carol, "REJECT-1")
    request = parked(server, carol, "Order", made["id"], {"total": "99999"})
    manager = visit(browser, server, visitors)
    manager.sign_in(person("maria", tenant, "manager"))
    card = manager.card(request["approval_id"])
    card.get_by_role("button", name="Reject").click()
    assert manager.page.url.endswith("/console/"), (
        "the browser asks for the reason first (required field)"
    )
    card.get_by_label("Reason for rejecting").fill("no budget this quarter")
    card.get_by_role("button", name="Reject").click()
    manager.page.wait_for_url("**?done=reject")
    assert "rejected" in manager.page.locator("h1").inner_text()
    assert "no budget this quarter" in manager.page.locator(".outcome").inner_text()
    shown = api(server, "GET", f"/v1/approvals/{request['approval_id']}", carol)
    assert shown["status"] == "rejected" and shown["outcome"]["reason"] == "no budget this quarter"
    assert (
        api(server, "GET", f"/v1/Order/{made['id']}/history", carol)["events"][-1]["version"] == 1
    ), "nothing written"

    again = parked(server, carol, "Order", made["id"], {"total": "88888"})
    manager.open("/console/")
    refused = manager.post(
        f"/console/approvals/{again['approval_id']}/reject",
        {"csrf": manager.csrf(), "reason": " "},
        origin=server.url,
    )
    assert refused.status == 400 and "INVALID_INPUT" in refused.text(), (
        "the server asks for a reason too"
    )


def test_the_requester_cancels_their_own_request(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    request = parked(
        server, carol, "Order", order(server, carol, "CANCEL-1")["id"], {"total": "12345"}
    )
    clerk = visit(browser, server, visitors)
    clerk.sign_in(carol)
    assert inbox_ids(clerk) == set(), "a clerk approves nothing"
    clerk.card(request["approval_id"]).get_by_label("Why you withdraw it").fill("typo")
    clerk.card(request["approval_id"]).get_by_role("button", name="Cancel request").click()
    clerk.page.wait_for_url("**?done=cancel")
    assert (
        api(server, "GET", f"/v1/approvals/{request['approval_id']}", carol)["status"]
        == "cancelled"
    )


def test_a_request_whose_record_changed_since_it_was_shown_is_refused_stale(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    made = order(server, carol, "STALE-1")
    request = parked(server, carol, "Order", made["id"], {"total": "20000"})
    manager = visit(browser, server, visitors)
    manager.sign_in(person("maria", tenant, "manager"))
    card = manager.card(request["approval_id"])
    assert card.is_visible()
    api(server, "PATCH", f"/v1/Order/{made['id']}", carol, {"note": "changed meanwhile"})
    card.get_by_role("button", name="Approve").click()
    assert "APPROVAL_STALE" in manager.page.get_by_role("alert").inner_text()
    assert "failed" in manager.page.locator("h1").inner_text()
    history = api(server, "GET", f"/v1/Order/{made['id']}/history", carol)["events"]
    assert history[-1]["after"]["total"] == "89.90", (
        "the total the approver never saw was not written"
    )

    other = parked(
        server, carol, "Order", order(server, carol, "STALE-2")["id"], {"total": "20000"}
    )
    manager.open("/console/")
    wrong = manager.post(
        f"/console/approvals/{other['approval_id']}/approve",
        {"csrf": manager.csrf(), "fingerprint": "0" * 64},
        origin=server.url,
    )
    assert wrong.status == 409 and "APPROVAL_STALE" in wrong.text(), (
        "approval is bound to the fingerprint shown"
    )
    unbound = manager.post(
        f"/console/approvals/{other['approval_id']}/approve",
        {"csrf": manager.csrf()},
        origin=server.url,
    )
    assert unbound.status == 400 and "INVALID_INPUT" in unbound.text(), (
        "no fingerprint, no approval"
    )
    assert api(server, "GET", f"/v1/approvals/{other['approval_id']}", carol)["status"] == "pending"

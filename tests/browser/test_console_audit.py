"""Auditors in the console, in headless Chromium against a real ``writ serve``, on both databases.

A record's history as a timeline after a purge (the tombstone, who did what and why, a refusal about the
record in its place, and none of the erased values); a clerk who cannot see another tenant's record nor a
deleted one, while an auditor can see the deleted one; rows with filters, sorting and pages; the decisions
feed with its filters; the log page with the latest signed checkpoint.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from tests.browser.console import Visitor, api, facts, fresh_tenant, person, visit, wait_for_text
from tests.http_support import Server, token
from tests.support import writ_command

pytestmark = pytest.mark.browser

MARKERS = ("PURGE-SKU-7", "marker-of-erased-note")


def test_the_history_timeline_after_a_purge(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol, maria = person("carol", tenant, "clerk"), person("maria", tenant, "manager")
    made = api(
        server, "POST", "/v1/Order", carol, {"sku": MARKERS[0], "total": "40", "note": MARKERS[1]}
    )
    path = f"/v1/Order/{made['id']}"
    # an agent acting for carol
    agent = token("carol", tenant, "clerk", lifetime=3600, act={"sub": "order-bot"})
    api(server, "PATCH", path, agent, {"quantity": 3}, **{"Writ-Purpose": "customer called"})
    # immutable: a refusal about the record
    api(server, "PATCH", path, carol, {"sku": "RENAMED"}, expect=(422,))
    api(server, "DELETE", path, maria, **{"Writ-Purpose": "order cancelled"})
    api(server, "DELETE", f"{path}?force=true", maria, **{"Writ-Purpose": "erasure request 7"})

    auditor = visit(browser, server, visitors)
    auditor.sign_in(person("ann", tenant, "auditor"))
    page_path = f"/console/records/Order/{made['id']}"
    # the refusal comes from the decisions view
    wait_for_text(auditor, page_path, "IMMUTABLE_FIELD")
    page = auditor.page
    assert "purged" in page.locator("h1").inner_text()
    assert "its data is erased everywhere" in page.locator("p.erased").first.inner_text()
    items = page.locator("ol.timeline > li")
    headings = [" ".join(text.split()) for text in items.locator("h3").all_inner_texts()]
    assert [heading.split(" ")[0] for heading in headings] == [
        "Created",
        "Patched",
        "Refused:",
        "Deleted",
        "Purged",
    ], headings
    assert "IMMUTABLE_FIELD" in headings[2]
    by_kind = {
        heading.split(" ")[0]: facts(items.nth(index).locator("dl"))
        for index, heading in enumerate(headings)
    }
    assert [by_kind["Patched"][name] for name in ("By", "Agent", "Why")] == [
        "carol",
        "order-bot",
        "customer called",
    ]
    assert "Agent" not in by_kind["Created"]
    assert (by_kind["Purged"]["By"], by_kind["Purged"]["Why"]) == ("maria", "erasure request 7")
    assert by_kind["Refused:"]["By"] == "carol"
    assert all("Data erased by the purge" in items.nth(i).inner_text() for i in (0, 1)), (
        "the values are gone"
    )
    assert "Tombstone" in items.nth(4).inner_text()
    content = page.content()
    assert not any(marker in content for marker in MARKERS), "no erased value reaches the page"


def test_a_clerk_sees_neither_another_tenants_record_nor_a_deleted_one(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, other = fresh_tenant(), fresh_tenant()
    carol, maria = person("carol", tenant, "clerk"), person("maria", tenant, "manager")
    theirs = api(
        server,
        "POST",
        "/v1/Order",
        person("ursula", other, "clerk"),
        {"sku": "OTHER-TENANT", "total": "1"},
    )
    mine = api(server, "POST", "/v1/Order", carol, {"sku": "MINE-LIVE", "total": "2"})
    gone = api(server, "POST", "/v1/Order", carol, {"sku": "MINE-DELETED", "total": "3"})
    deleted = api(server, "DELETE", f"/v1/Order/{gone['id']}", maria)
    api(server, "GET", "/v1/Order", carol, **{"Writ-Wait-Position": str(deleted["position"])})

    clerk = visit(browser, server, visitors)
    clerk.sign_in(carol)
    clerk.open("/console/records/Order")
    listed = clerk.page.locator("table.rows tbody").inner_text()
    assert "MINE-LIVE" in listed and "OTHER-TENANT" not in listed and "MINE-DELETED" not in listed

    response = clerk.page.goto(f"/console/records/Order/{theirs['id']}")
    assert response.status == 404 and "NOT_FOUND" in clerk.page.get_by_role("alert").inner_text()
    assert "OTHER-TENANT" not in clerk.page.content()
    response = clerk.page.goto(f"/console/records/Order/{gone['id']}")
    assert (
        response.status == 403 and "GRANT_MISSING" in clerk.page.get_by_role("alert").inner_text()
    )
    assert "MINE-DELETED" not in clerk.page.content()
    response = clerk.page.goto("/console/records/Order?deleted=1")
    assert response.status == 403 and "MINE-DELETED" not in clerk.page.content()
    assert clerk.page.goto(f"/console/records/Order/{mine['id']}").status == 200

    auditor = visit(browser, server, visitors)
    auditor.sign_in(person("ann", tenant, "auditor"))
    assert auditor.page.goto(f"/console/records/Order/{gone['id']}").status == 200
    assert "deleted" in auditor.page.locator("h1").inner_text()
    assert facts(auditor.page.locator("h2:text-is('Now') + dl"))["sku"] == "MINE-DELETED"


def test_rows_filter_sort_and_page(browser: Any, server: Server, visitors: list[Visitor]) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    made = api(
        server,
        "POST",
        "/v1/Order",
        carol,
        [{"sku": f"ROW-{n}", "total": str(n), "status": "placed"} for n in range(1, 56)]
        + [{"sku": "DRAFT-1", "total": "99"}],
    )
    api(server, "GET", "/v1/Order", carol, **{"Writ-Wait-Position": str(made[-1]["position"])})
    clerk = visit(browser, server, visitors)
    clerk.sign_in(carol)
    clerk.open("/console/records/Order")
    clerk.page.get_by_label("Field").first.select_option("status")
    clerk.page.get_by_label("Operator").first.select_option("eq")
    clerk.page.get_by_label("Value").first.fill("placed")
    clerk.page.get_by_label("Sort by").select_option("total")
    clerk.page.get_by_label("Order", exact=True).select_option("desc")
    clerk.page.get_by_role("button", name="Show").click()
    first = clerk.page.locator("table.rows tbody tr")
    skus = [first.nth(n).locator("td").nth(0).inner_text() for n in range(first.count())]
    assert skus[:3] == ["ROW-55", "ROW-54", "ROW-53"] and len(skus) == 50 and "DRAFT-1" not in skus
    clerk.page.get_by_role("link", name="Next page").click()
    rest = clerk.page.locator("table.rows tbody tr")
    assert [rest.nth(n).locator("td").nth(0).inner_text() for n in range(rest.count())] == [
        "ROW-5",
        "ROW-4",
        "ROW-3",
        "ROW-2",
        "ROW-1",
    ]
    assert clerk.page.get_by_label("Value").first.input_value() == "placed", (
        "the filters stay on the next page"
    )


def test_the_decisions_feed(browser: Any, server: Server, visitors: list[Visitor]) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    api(server, "POST", "/v1/Order", carol, {"sku": "FEED-1", "total": "5"})
    api(
        server,
        "POST",
        "/v1/Order",
        carol,
        {"sku": "FEED-2", "total": "5", "colour": "red"},
        expect=(422,),
    )
    clerk = visit(browser, server, visitors)
    clerk.sign_in(carol)
    wait_for_text(clerk, "/console/decisions?outcome=refused", "UNKNOWN_FIELD")
    rows = clerk.page.locator("table.rows tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("th, td").all_inner_texts()
    assert (
        cells[1:3] == ["refused", "create Order"]
        and cells[4] == "carol"
        and cells[7] == "UNKNOWN_FIELD"
    )
    clerk.page.get_by_label("Outcome").select_option("allowed")
    clerk.page.get_by_role("button", name="Show").click()
    assert [
        row.locator("th").inner_text() for row in clerk.page.locator("table.rows tbody tr").all()
    ] == ["allowed"]


def test_the_log_page_shows_the_latest_signed_checkpoint(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    api(server, "POST", "/v1/Order", carol, {"sku": "LOG-1", "total": "5"})
    # PostgreSQL: the server holds no key
    key = (
        {}
        if server.database_url.startswith("sqlite")
        else {"WRIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode()}
    )
    signed = writ_command(
        "checkpoint", "--json", env={"WRIT_DATABASE_URL": server.database_url, **key}
    )
    position = int(signed.stdout.split('"position":')[1].split(",")[0])
    clerk = visit(browser, server, visitors)
    clerk.sign_in(carol)
    clerk.open("/console/log")
    shown = facts(clerk.page.locator("dl.facts"))
    assert shown["Verified and signed up to"].startswith(f"position {position}, ")
    assert shown["Signature"] == "valid"
    ours = (
        "(this server's signing key)"
        if not key
        else "(this server has no signing key to compare with)"
    )
    assert shown["Signing key"].endswith(ours)
    assert int(shown["Head"].removeprefix("position ")) >= position

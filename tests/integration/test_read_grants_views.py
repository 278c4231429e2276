"""Reads are governed on the read models, on both databases, with the command side's rules: rows need the read
grant, decisions go to their actor and the model's auditors, approval requests to their requester, approvers and
auditors, and never past the tenant. The expectations are written out by hand (``tests.read_grants``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from domain.catalog import Catalog
from domain.errors import WritError
from entrypoints.bootstrap import Runtime
from projections import Views
from tests.catalogs import SHOP_CATALOG, principal
from tests.read_grants import (
    ACME_ORDER_DECISIONS,
    AUDITOR,
    CAROLS_DECISIONS,
    CLERK,
    CLERK2,
    DIRECTOR,
    INTERN,
    MANAGER,
    OUTSIDER,
    PACKER,
    READS_CATALOG,
    VIEWER,
    Scene,
    decided,
    scenario,
)


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    with Runtime(
        Catalog.from_toml(READS_CATALOG, source="tests/read_grants.py"), database_url
    ) as opened:
        yield opened


@pytest.fixture
def views(runtime: Runtime) -> tuple[Views, Scene]:
    scene = scenario(runtime.writ)
    runtime.catch_up()
    return runtime.views, scene


def code_of(attempt: Callable[[], Any]) -> str:
    with pytest.raises(WritError) as caught:
        attempt()
    return caught.value.code


def test_rows_need_the_read_grant(views: tuple[Views, Scene]) -> None:
    rows, scene = views
    for reader in (CLERK, MANAGER, VIEWER, AUDITOR):
        assert [r["sku"] for r in rows.list(reader, "Order", order_by=["sku"]).rows] == [
            "CID",
            "LIVE",
        ]
        assert rows.get(reader, "Order", scene.live)["sku"] == "LIVE"
    assert [r["text"] for r in rows.list(DIRECTOR, "Note").rows] == ["hello"], (
        "Note declares no read: approvers"
    )
    for reader, model in (
        (PACKER, "Order"),
        (INTERN, "Order"),
        (DIRECTOR, "Order"),
        (AUDITOR, "Note"),
    ):
        assert code_of(lambda r=reader, m=model: rows.list(r, m)) == "GRANT_MISSING", (
            reader.user_id,
            model,
        )
        assert code_of(lambda r=reader, m=model: rows.get(r, m, scene.live)) == "GRANT_MISSING"
    assert [
        r["sku"] for r in rows.list(AUDITOR, "Order", include_deleted=True, order_by=["sku"]).rows
    ] == ["CID", "GONE", "LIVE"]
    assert code_of(lambda: rows.list(MANAGER, "Order", include_deleted=True)) == "GRANT_MISSING"
    assert rows.list(OUTSIDER, "Order").rows[0]["sku"] == "THEIRS"


def test_decisions_in_the_read_model_follow_the_same_rules(
    runtime: Runtime, views: tuple[Views, Scene]
) -> None:
    rows, _ = views
    assert decided(rows.decisions(CLERK)) == CAROLS_DECISIONS
    assert decided(rows.decisions(AUDITOR)) == ACME_ORDER_DECISIONS
    assert decided(rows.decisions(MANAGER)) == [("allowed", "delete", "Order")]
    assert decided(rows.decisions(DIRECTOR)) == decided(rows.decisions(INTERN)) == []
    assert decided(rows.decisions(CLERK, limit=2)) == CAROLS_DECISIONS[:2], (
        "filtered in the query: a full page"
    )
    assert (
        rows.decisions(CLERK, actor="cid") == [] and len(rows.decisions(AUDITOR, actor="cid")) == 2
    )
    assert {d["tenant"] for d in rows.decisions(OUTSIDER)} == {"globex"}
    for reader in (CLERK, CLERK2, AUDITOR, MANAGER, DIRECTOR, OUTSIDER):
        assert rows.decisions(reader, limit=1000) == runtime.writ.decisions(reader, limit=1000), (
            reader.user_id
        )


def test_approval_requests_go_to_requester_approvers_and_auditors_of_the_tenant(
    views: tuple[Views, Scene],
) -> None:
    rows, scene = views

    def listed(reader: Any) -> list[str]:
        return [row["id"] for row in rows.approvals(reader, status=None)]

    assert listed(CLERK) == [scene.carols_request]
    assert listed(CLERK2) == [scene.cids_request, scene.notes_request]
    assert listed(MANAGER) == listed(AUDITOR) == [scene.carols_request, scene.cids_request]
    assert listed(DIRECTOR) == [scene.notes_request]
    assert listed(VIEWER) == listed(INTERN) == []
    assert listed(OUTSIDER) == [scene.their_request], (
        "another tenant's manager sees none of acme's previews"
    )
    assert [row["id"] for row in rows.approvals(MANAGER, limit=1)] == [scene.carols_request], (
        "a full page"
    )
    assert rows.approval(MANAGER, scene.carols_request)["preview"]["after"]["total"] == "500"
    assert rows.approval(CLERK, scene.carols_request)["requester"] == "carol"
    for reader in (CLERK2, VIEWER, DIRECTOR):
        assert code_of(lambda r=reader: rows.approval(r, scene.carols_request)) == "GRANT_MISSING"
    assert code_of(lambda: rows.approval(OUTSIDER, scene.carols_request)) == "NOT_FOUND"


def test_the_views_show_how_many_approvers_the_catalog_in_force_asks_and_who_acted_for_whom(
    database_url: str,
) -> None:
    clerk, manager = principal("carol"), principal("maria", "acme", "manager")
    with Runtime(Catalog.from_toml(SHOP_CATALOG), database_url) as runtime:
        payment = runtime.writ.create(clerk, "Payment", {"amount": "10"}).id
        approval_id = runtime.writ.patch(clerk, "Payment", payment, {"note": "rent"}).approval_id
        runtime.writ.approve(
            manager.for_purpose("sign-off", audit_attributes={"agent": "approve-bot"}),
            str(approval_id),
        )
        runtime.catch_up()
        (row,) = runtime.views.approvals(manager)
        assert (row["required"], [(a["approver"], a["audit"]) for a in row["approvals"]]) == (
            2,
            [("maria", {"agent": "approve-bot"})],
        )
    raised = Catalog.from_toml(
        SHOP_CATALOG.replace("required = { update = 2 }", "required = { update = 3 }")
    )
    with Runtime(raised, database_url) as runtime:
        runtime.catch_up()
        assert runtime.views.approval(manager, str(approval_id))["required"] == 3

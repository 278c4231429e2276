"""Reads over HTTP are governed as everywhere, against a real ``writ serve`` on both databases: a token's roles
decide which rows, histories, decisions and approval requests it reads; and an agent approving through a token's
``act`` claim is named on the request and on the history of the change it approved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.http_support import Server, database, start, token
from tests.read_grants import READS_CATALOG

ROLES = {"carol": "clerk", "maria": "manager", "ada": "auditor", "ian": "intern"}


def as_(user: str) -> str:
    """A fresh token for ``user`` (made at use: one made at import could expire before a long run reaches it)."""
    return token(user, "acme", ROLES[user])


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("http-reads")
    catalog = directory / "writ.toml"
    catalog.write_text(READS_CATALOG)
    for url in database(request.param, directory):
        yield from start(url, catalog)


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def refused(response: Any, status: int, code: str) -> None:
    assert (response.status_code, response.json()["code"]) == (status, code), response.text


def test_a_token_reads_what_its_roles_may_read(server: Server) -> None:
    live = ok(
        server.call("POST", "/v1/Order", json={"sku": "LIVE", "total": "10"}, bearer=as_("carol")),
        201,
    )
    gone = ok(
        server.call("POST", "/v1/Order", json={"sku": "GONE", "total": "10"}, bearer=as_("carol")),
        201,
    )
    deleted = ok(server.call("DELETE", f"/v1/Order/{gone['id']}", bearer=as_("maria")))
    parked = ok(
        server.call("PATCH", f"/v1/Order/{live['id']}", json={"total": "500"}, bearer=as_("carol")),
        202,
    )
    wait = {"Writ-Wait-Position": str(parked["position"])}
    rows = ok(server.call("GET", "/v1/Order", bearer=as_("carol"), headers=wait))["rows"]
    assert [r["sku"] for r in rows] == ["LIVE"]
    for path in (
        "/v1/Order",
        f"/v1/Order/{live['id']}",
        f"/v1/Order/{live['id']}/history",
        f"/v1/approvals/{parked['approval_id']}",
    ):
        refused(server.call("GET", path, bearer=as_("ian"), headers=wait), 403, "GRANT_MISSING")
    assert ok(server.call("GET", "/v1/decisions", bearer=as_("ian"), headers=wait)) == []
    assert ok(server.call("GET", "/v1/approvals", bearer=as_("ian"), headers=wait)) == []
    mine = ok(
        server.call(
            "GET", "/v1/decisions", bearer=as_("carol"), params={"limit": 1000}, headers=wait
        )
    )
    assert {d["actor"] for d in mine} == {"carol"}, "the clerk reads her own decisions"
    every = ok(
        server.call("GET", "/v1/decisions", bearer=as_("ada"), params={"limit": 1000}, headers=wait)
    )
    assert {d["actor"] for d in every} == {"carol", "maria"} and len(every) == len(mine) + 1
    assert [
        r["id"] for r in ok(server.call("GET", "/v1/approvals", bearer=as_("maria"), headers=wait))
    ] == [parked["approval_id"]]
    refused(
        server.call("GET", f"/v1/Order/{gone['id']}/history", bearer=as_("carol")),
        403,
        "GRANT_MISSING",
    )
    history = ok(server.call("GET", f"/v1/Order/{gone['id']}/history", bearer=as_("ada")))["events"]
    assert [entry["event"] for entry in history] == ["Created", "Deleted"] and deleted[
        "state"
    ] == "deleted"


def conforms(server: Server, schema: str, body: Any) -> None:
    """``body`` is what the served OpenAPI document says a ``schema`` is."""
    document = ok(server.call("GET", "/openapi.json"))
    jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    ).validate(body)


def test_an_agent_approving_is_named_beside_the_approver(server: Server) -> None:
    order = ok(
        server.call("POST", "/v1/Order", json={"sku": "BOT", "total": "10"}, bearer=as_("carol")),
        201,
    )
    parked = ok(
        server.call(
            "PATCH", f"/v1/Order/{order['id']}", json={"total": "900"}, bearer=as_("carol")
        ),
        202,
    )
    bot = token("maria", "acme", "manager", act={"sub": "approve-bot"})
    done = ok(
        server.call(
            "POST",
            f"/v1/approvals/{parked['approval_id']}/approve",
            json={"reason": "ok"},
            bearer=bot,
        )
    )
    assert done["status"] == "executed"
    conforms(server, "ApprovalResult", done)
    shown = ok(server.call("GET", f"/v1/approvals/{parked['approval_id']}", bearer=as_("carol")))
    assert shown["audit"] == {"maria": {"agent": "approve-bot"}}
    last = ok(server.call("GET", f"/v1/Order/{order['id']}/history", bearer=as_("carol")))[
        "events"
    ][-1]
    assert (
        last["approval"]["audit"] == {"maria": {"agent": "approve-bot"}}
        and last["actor"] == "carol"
    )
    assert done["position"] >= done["results"][0]["position"], "the approval's own event is last"
    wait = {"Writ-Wait-Position": str(done["position"])}
    (row,) = [
        r
        for r in ok(
            server.call(
                "GET", "/v1/approvals", bearer=as_("carol"), params={"status": "all"}, headers=wait
            )
        )
        if r["id"] == parked["approval_id"]
    ]
    assert row["approvals"][0]["audit"] == {"agent": "approve-bot"}
    rejected = ok(
        server.call(
            "PATCH", f"/v1/Order/{order['id']}", json={"total": "950"}, bearer=as_("carol")
        ),
        202,
    )
    refusal = ok(
        server.call(
            "POST",
            f"/v1/approvals/{rejected['approval_id']}/reject",
            json={"reason": "no"},
            bearer=bot,
        )
    )
    conforms(server, "ApprovalResult", refusal)
    wait = {"Writ-Wait-Position": str(refusal["position"])}
    rows = ok(server.call("GET", "/v1/approvals", bearer=as_("carol"), headers=wait))
    assert rejected["approval_id"] not in {r["id"] for r in rows}, (
        "read with the rejection's position: no longer pending"
    )
    assert ok(server.call("GET", f"/v1/approvals/{rejected['approval_id']}", bearer=as_("carol")))[
        "audit"
    ] == {"maria": {"agent": "approve-bot"}}

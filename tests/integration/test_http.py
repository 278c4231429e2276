"""The HTTP API against a real ``writ serve`` on loopback, on both databases: every route and status,
and tokens forged every way we know → 401."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import time
import uuid
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

import domain.errors
import infrastructure.config
import infrastructure.log_proofs
import infrastructure.verification
import projections.errors
from entrypoints.http.errors import STATUS, error_response
from tests.http_support import (
    AUDIENCE,
    PRIVATE_KEY,
    PUBLIC_PEM,
    SECRET,
    Server,
    headers,
    server,
    token,
)
from tests.support import stored_rows

__all__ = ["server"]  # the fixture

MANAGER = token("maria", "acme", "manager")


def created(server: Server, model: str, body: Any) -> dict[str, Any]:
    response = server.call("POST", f"/v1/{model}", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def read(server: Server, path: str, position: int | None, **options: Any) -> Any:
    wait = {"Writ-Wait-Position": str(position)} if position is not None else {}
    return server.call("GET", path, headers=wait, **options)


def test_create_read_update_delete_restore_purge(server: Server) -> None:
    response = server.call("POST", "/v1/Order", json={"sku": "HTTP-1", "total": "10"})
    assert response.status_code == 201
    order = response.json()
    assert (
        response.headers["location"] == f"/v1/Order/{order['id']}"
        and response.headers["etag"] == '"1"'
    )
    row = read(server, f"/v1/Order/{order['id']}", order["position"])
    assert row.status_code == 200 and row.json()["sku"] == "HTTP-1" and row.headers["etag"] == '"1"'
    patched = server.call(
        "PATCH", f"/v1/Order/{order['id']}", json={"quantity": 3}, headers={"If-Match": '"1"'}
    )
    assert (
        patched.status_code == 200
        and patched.json()["version"] == 2
        and patched.headers["etag"] == '"2"'
    )
    stale = server.call(
        "PATCH", f"/v1/Order/{order['id']}", json={"quantity": 4}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "VERSION_CONFLICT"
    replaced = server.call("PUT", f"/v1/Order/{order['id']}", json={"sku": "HTTP-1", "total": "12"})
    assert replaced.status_code == 200 and replaced.json()["data"]["quantity"] == 1, (
        "PUT clears omitted fields"
    )
    assert (
        server.call("DELETE", f"/v1/Order/{order['id']}", bearer=MANAGER).json()["state"]
        == "deleted"
    )
    gone = read(server, f"/v1/Order/{order['id']}", None)
    assert gone.status_code in (200, 404)  # the projection may lag; the command side says:
    assert (
        server.call("PATCH", f"/v1/Order/{order['id']}", json={"quantity": 2}).json()["code"]
        == "RECORD_DELETED"
    )
    restored = server.call("POST", f"/v1/Order/{order['id']}/restore", bearer=MANAGER)
    assert restored.status_code == 200 and restored.json()["state"] == "modified"
    purged = server.call("DELETE", f"/v1/Order/{order['id']}?force=true", bearer=MANAGER)
    assert purged.status_code == 200 and purged.json()["state"] == "purged"
    assert read(server, f"/v1/Order/{order['id']}", purged.json()["position"]).status_code == 404
    history = server.call("GET", f"/v1/Order/{order['id']}/history").json()["events"]
    assert [entry["event"] for entry in history] == [
        "Created",
        "Patched",
        "Replaced",
        "Deleted",
        "Restored",
        "Purged",
    ]


def test_many_at_once_query_and_pages(server: Server) -> None:
    response = server.call(
        "POST",
        "/v1/Order",
        json=[{"sku": f"PG-{n}", "total": str(n), "status": "placed"} for n in range(5)],
    )
    assert response.status_code == 201 and len(response.json()) == 5
    last = response.json()[-1]["position"]
    first = read(
        server,
        "/v1/Order",
        last,
        params={
            "where": ["status:eq:placed", "sku:in:PG-1,PG-2,PG-3"],
            "sort": "-total",
            "limit": 2,
        },
    )
    assert first.status_code == 200
    page = first.json()
    assert [r["sku"] for r in page["rows"]] == ["PG-3", "PG-2"] and page["next_cursor"]
    rest = read(
        server,
        "/v1/Order",
        None,
        params={
            "where": ["status:eq:placed", "sku:in:PG-1,PG-2,PG-3"],
            "sort": "-total",
            "limit": 2,
            "after": page["next_cursor"],
        },
    )
    assert [r["sku"] for r in rest.json()["rows"]] == ["PG-1"] and rest.json()[
        "next_cursor"
    ] is None
    bad = server.call("GET", "/v1/Order", params={"where": "nope:eq:1"})
    assert bad.status_code == 422 and bad.json()["code"] == "UNKNOWN_FIELD"


def test_approval_round_trip(server: Server) -> None:
    order = created(server, "Order", {"sku": "HTTP-BIG", "total": "10"})
    parked = server.call("PATCH", f"/v1/Order/{order['id']}", json={"total": "25000"})
    assert parked.status_code == 202
    approval = parked.json()["approval_id"]
    assert (
        parked.headers["location"] == f"/v1/approvals/{approval}" == parked.json()["approval_url"]
    )
    pending = read(server, "/v1/approvals", parked.json()["position"], bearer=MANAGER).json()
    assert approval in [row["id"] for row in pending]
    mine = server.call("POST", f"/v1/approvals/{approval}/approve", json={})
    assert mine.status_code == 403 and mine.json()["code"] in (
        "GRANT_MISSING",
        "SELF_APPROVAL_FORBIDDEN",
    )
    first = server.call(
        "POST", f"/v1/approvals/{approval}/approve", json={"reason": "ok"}, bearer=MANAGER
    )
    assert first.status_code == 200 and first.json()["status"] == "executed", (
        "one approver for Order"
    )
    assert (
        server.call("GET", f"/v1/approvals/{approval}", bearer=MANAGER).json()["status"]
        == "executed"
    )
    again = server.call(
        "POST",
        f"/v1/approvals/{approval}/approve",
        json={},
        bearer=token("dora", "acme", "manager"),
    )
    assert (again.status_code, again.json()["code"]) == (409, "APPROVAL_NOT_PENDING")
    history = server.call("GET", f"/v1/Order/{order['id']}/history").json()["events"]
    assert history[-1]["approval"]["approvers"] == ["maria"]


def test_bulk_update_evaluate_and_transactions(server: Server) -> None:
    made = server.call(
        "POST",
        "/v1/Order",
        json=[{"sku": f"BU-{n}", "total": "5", "note": "bulk-me"} for n in range(3)],
    ).json()
    read(server, "/v1/Order", made[-1]["position"])
    bulk = server.call(
        "POST",
        "/v1/Order/bulk-update",
        bearer=MANAGER,
        json={"filters": [["note", "eq", "bulk-me"]], "changes": {"status": "placed"}},
    )
    assert bulk.status_code == 200 and bulk.json()["updated_count"] == 3
    evaluation = server.call(
        "POST",
        "/v1/evaluate",
        json={
            "kind": "patch",
            "model": "Order",
            "id": made[0]["id"],
            "changes": {"total": "25000"},
        },
    )
    assert evaluation.status_code == 200 and evaluation.json()["outcome"] == "require_approval"
    unit = server.call(
        "POST",
        "/v1/transactions",
        json=[
            {
                "kind": "create",
                "model": "Sale",
                "as": "s",
                "data": {"title": "Desk", "total": "100"},
            },
            {
                "kind": "create",
                "model": "SaleItem",
                "data": {"sale_id": {"$ref": "s"}, "sku": "LEG"},
            },
            {
                "savepoint": [
                    {"kind": "create", "model": "Sale", "data": {"title": "x", "total": "13"}}
                ]
            },
        ],
    )
    assert unit.status_code == 201
    body = unit.json()
    assert [r["model"] for r in body["results"]] == ["Sale", "SaleItem"] and body["discarded"][0][
        "code"
    ] == "WRITE_DENIED"
    refused = server.call(
        "POST",
        "/v1/transactions",
        json=[{"kind": "create", "model": "Sale", "data": {"title": "x", "total": "13"}}],
    )
    assert refused.status_code == 403 and refused.json()["code"] == "WRITE_DENIED"


@pytest.mark.parametrize(
    "request_args, status, code",
    [
        ({"method": "POST", "path": "/v1/Nope", "json": {}}, 404, "MODEL_UNKNOWN"),
        ({"method": "GET", "path": f"/v1/Order/{uuid.uuid4()}"}, 404, "NOT_FOUND"),
        ({"method": "GET", "path": "/v1/Order/not-a-uuid"}, 404, "NOT_FOUND"),
        ({"method": "GET", "path": "/v1/Order/a/b/c"}, 404, "NOT_FOUND"),  # no route at all
        ({"method": "GET", "path": "/nowhere"}, 404, "NOT_FOUND"),
        ({"method": "DELETE", "path": "/healthz"}, 405, "METHOD_NOT_ALLOWED"),
        (
            {
                "method": "POST",
                "path": "/v1/Order",
                "json": {"sku": "X", "total": "1"},
                "purpose": None,
            },
            400,
            "PURPOSE_REQUIRED",
        ),
        ({"method": "POST", "path": "/v1/Order", "content": b"{not json"}, 400, "INVALID_INPUT"),
        (
            {"method": "POST", "path": "/v1/Order", "json": {"sku": "X", "total": "1", "bogus": 1}},
            422,
            "UNKNOWN_FIELD",
        ),
        (
            {"method": "POST", "path": "/v1/Order", "json": {"sku": "lower", "total": "1"}},
            422,
            "INVALID_FIELD_VALUE",
        ),
        (
            {
                "method": "POST",
                "path": "/v1/Sale",
                "json": {"title": "x", "total": "1", "discount": "5"},
            },
            422,
            "VALIDATION_FAILED",
        ),
        (
            {"method": "DELETE", "path": f"/v1/Order/{uuid.uuid4()}?force=true"},
            403,
            "GRANT_MISSING",
        ),
        (
            {
                "method": "PATCH",
                "path": f"/v1/Order/{uuid.uuid4()}",
                "json": {"quantity": 1},
                "headers": {"If-Match": "yesterday"},
            },
            400,
            "INVALID_INPUT",
        ),
        (
            {"method": "POST", "path": "/v1/Order", "content": b"[" + b"1," * 600_000 + b"1]"},
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            {"method": "GET", "path": "/v1/Order", "headers": {"Writ-Wait-Position": "999999999"}},
            400,
            "INVALID_INPUT",
        ),
    ],
)
def test_each_refusal_has_its_status_and_code(
    server: Server, request_args: dict[str, Any], status: int, code: str
) -> None:
    args = dict(request_args)
    response = server.call(
        args.pop("method"), args.pop("path"), purpose=args.pop("purpose", "http test"), **args
    )
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert set(response.json()) >= {"error", "message", "code", "field"}


def test_a_unique_violation_is_409_and_a_body_that_is_not_json_is_recorded(server: Server) -> None:
    created(server, "Member", {"email": "http@x"})
    taken = server.call("POST", "/v1/Member", json={"email": "http@x"})
    assert (taken.status_code, taken.json()["code"], taken.json()["field"]) == (
        409,
        "UNIQUE_VIOLATION",
        "email",
    )
    before = len(stored_rows(server.database_url))
    assert server.call("POST", "/v1/Member", content=b"nope").status_code == 400
    written = [row.topic for row in stored_rows(server.database_url)[before:]]
    assert written == ["writ.decision:Created"], "the refusal at the door is a decision too"


def test_a_chunked_body_past_the_limit_is_413(server: Server) -> None:
    def chunks() -> Any:  # no Content-Length: the server must count as it reads
        yield b"["
        for _ in range(300):
            yield b"1," * 5_000
        yield b"1]"

    response = server.call("POST", "/v1/Order", content=chunks())
    assert "content-length" not in response.request.headers
    assert (response.status_code, response.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")


def test_health_and_openapi(server: Server) -> None:
    order = created(server, "Order", {"sku": "HEALTH-1", "total": "1"})
    # projected
    assert read(server, f"/v1/Order/{order['id']}", order["position"]).status_code == 200
    # without a token (a load balancer): the status alone, no figure of the deployment's writes
    for bearer in ({}, {"Authorization": "Bearer not-a-token"}):
        bare = server.client.get("/healthz", headers=bearer)
        assert (bare.status_code, bare.json()) == (200, {"status": "ok", "database": "ok"})
    health = server.client.get("/healthz", headers=headers()).json()
    assert health["status"] == "ok" and health["head"] >= order["position"]
    projection = health["followers"]["projection:current_rows"]
    assert projection["position"] >= order["position"] and projection["behind"] >= 0, health
    # the answering worker's batching: the create above was saved by this server's processes
    batching = health["group_commit"]
    assert batching["process"] == server.pid  # one worker: the server's own process answers
    assert batching["batches"] >= 1 and batching["saves"] >= batching["batches"], batching
    assert batching["mean_batch"] == round(batching["saves"] / batching["batches"], 2)
    assert batching["max_saves"] == 64 and batching["queued"] >= 0
    spec = server.client.get("/openapi.json").json()
    assert {"/v1/Order", "/v1/Order/{id}", "/v1/Sale/bulk-update", "/v1/transactions"} <= set(
        spec["paths"]
    )
    create = spec["components"]["schemas"]["OrderCreate"]
    assert "created_by" not in create["properties"] and create["required"] == ["sku", "total"]
    assert "sku" not in spec["components"]["schemas"]["OrderPatch"]["properties"], (
        "immutable: not patchable"
    )
    assert "placed_on" not in spec["components"]["schemas"]["OrderPatch"]["properties"], (
        "writable on create only"
    )
    assert "items" in spec["components"]["schemas"]["SaleCreate"]["properties"], "nested children"
    assert "number" not in spec["components"]["schemas"]["SaleCreate"]["properties"], "generated"
    docs = server.client.get("/docs")
    assert (
        "Writ HTTP API" in docs.text
        and 'id="post-v1-Order"' in docs.text
        and "schema-OrderCreate" in docs.text
    )
    assert re.findall(r'(?:src|href)="(?:[a-z]+:)?//', docs.text) == [], (
        "nothing loaded from another origin"
    )
    assert "default-src 'self'" in docs.headers["content-security-policy"], (
        "served from the package, nothing else"
    )


def forged() -> dict[str, str]:
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unsigned = jwt.encode(
        {
            "sub": "carol",
            "tenant": "acme",
            "roles": ["clerk"],
            "aud": AUDIENCE,
            "exp": int(time.time()) + 600,
        },
        None,
        algorithm="none",
    )
    return {
        "no token": "",
        "wrong secret": token(key="another-secret-that-is-32-bytes-long!!"),
        "wrong RSA key": token(key=other_rsa, algorithm="RS256"),
        "expired": token(lifetime=-120),
        "not yet valid": token(nbf=int(time.time()) + 600),
        "alg none": unsigned,
        "HS256 keyed with the RSA public key": _hs_with_public_key(),
        "wrong audience": token(aud="someone-else"),
        "wrong issuer": token(iss="https://evil.example"),
        "no exp": token(lifetime=0, exp=None),
        "no tenant claim": token(tenant=None),
        "garbage": "abc.def.ghi",
    }


def _hs_with_public_key() -> str:
    header = {"alg": "HS256", "typ": "JWT"}
    body = {
        "sub": "carol",
        "tenant": "acme",
        "roles": ["clerk"],
        "aud": AUDIENCE,
        "iss": "https://id.example",
        "exp": int(time.time()) + 600,
    }
    import base64
    import hashlib
    import hmac

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(value)).rstrip(b"=").decode()

    signing = f"{part(header)}.{part(body)}"
    signature = hmac.new(PUBLIC_PEM.encode(), signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize("how", list(forged()))
def test_a_forged_token_is_401_every_time(server: Server, how: str) -> None:
    bearer = forged()[how]
    for method, path, body in (
        ("GET", "/v1/Order", None),
        ("POST", "/v1/Order", {"sku": "F-1", "total": "1"}),
        ("POST", "/v1/evaluate", {"kind": "create", "model": "Order", "data": {}}),
    ):
        auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        response = server.client.request(
            method, path, json=body, headers={**auth, "Writ-Purpose": "x"}
        )
        assert response.status_code == 401, (how, response.text)
        assert (
            response.json()["code"] == "UNAUTHENTICATED"
            and "bearer" in response.headers["www-authenticate"].lower()
        )
    auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    health = server.client.get("/healthz", headers=auth)
    assert health.json() == {"status": "ok", "database": "ok"}, "no figures for a forged token"


def test_an_rs256_token_and_an_agent_acting_for_a_person(server: Server) -> None:
    bearer = token(
        "carol", "acme", "clerk", key=PRIVATE_KEY, algorithm="RS256", act={"sub": "shopping-agent"}
    )
    order = server.call(
        "POST",
        "/v1/Order",
        json={"sku": "AGENT-1", "total": "3"},
        bearer=bearer,
        headers={"Writ-Correlation-Id": "corr-7", "Writ-Causation-Id": "cause-3"},
    ).json()
    history = server.call("GET", f"/v1/Order/{order['id']}/history", bearer=bearer).json()["events"]
    assert (history[0]["actor"], history[0]["audit"]) == ("carol", {"agent": "shopping-agent"})
    assert (history[0]["correlation_id"], history[0]["causation_id"]) == ("corr-7", "cause-3")


def test_every_code_has_a_status() -> None:
    modules = (
        domain.errors,
        projections.errors,
        infrastructure.config,
        infrastructure.verification,
        infrastructure.log_proofs,
    )
    codes = {
        value.code
        for module in modules
        for value in vars(module).values()
        if isinstance(value, type) and isinstance(getattr(value, "code", None), str)
    }
    assert codes - {"WRIT_ERROR"} <= set(STATUS), codes - set(STATUS)
    assert SECRET  # the server under test was started with it


def test_an_idempotency_key_reused_for_another_write_is_409(server: Server) -> None:
    key = {"Idempotency-Key": f"http-{uuid.uuid4()}"}
    first = server.call("POST", "/v1/Order", json={"sku": "IDEM-1", "total": "1"}, headers=key)
    again = server.call("POST", "/v1/Order", json={"sku": "IDEM-1", "total": "1"}, headers=key)
    assert (first.status_code, again.status_code, again.json()["id"]) == (
        201,
        201,
        first.json()["id"],
    )
    other = server.call("POST", "/v1/Order", json={"sku": "IDEM-2", "total": "1"}, headers=key)
    assert (other.status_code, other.json()["code"]) == (409, "IDEMPOTENCY_KEY_REUSED"), other.text


SERVER_SIDE = {
    "UNAVAILABLE",
    "CHAIN_BROKEN",
    "KEY_INVALID",
    "CONFIGURATION_INVALID",
    "CHECKPOINT_REFUSED",
    "PROJECTION_NOT_READY",
    "PROJECTION_TIMEOUT",
    "PROJECTION_BUSY",
    "PROJECTION_HALTED",
    "PROJECTION_LOG_CHANGED",
}
"""503: a part the call needs is down, not ready or not right; every other error is the caller's (4xx)."""


def every_error_class() -> set[type[domain.errors.WritError]]:
    """Every ``WritError`` subclass in the code base (every module imported first)."""
    for package in ("domain", "application", "infrastructure", "projections", "entrypoints"):
        for found in pkgutil.walk_packages(
            importlib.import_module(package).__path__, f"{package}."
        ):
            importlib.import_module(found.name)
    classes, unseen = set(), [domain.errors.WritError]
    while unseen:
        for subclass in unseen.pop().__subclasses__():
            classes.add(subclass)
            unseen.append(subclass)
    return classes


def probe(cls: type[domain.errors.WritError]) -> domain.errors.WritError:
    """An instance of ``cls``, its required keyword arguments filled with placeholders of their type."""
    required = [
        p
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.kind is p.KEYWORD_ONLY and p.default is p.empty
    ]
    return cls("probe", **{p.name: 1 if p.annotation in (int, "int") else "x" for p in required})


def test_no_error_is_a_500() -> None:
    classes = every_error_class()
    assert len(classes) >= 35, "the walk found the error tree"
    for cls in classes:
        error = probe(cls)
        if error.code == "WRIT_ERROR":
            continue  # the root's families (AccessError, ConflictError...): never raised as such
        for if_match in (False, True):
            status = error_response(error, if_match=if_match).status_code
            assert status == 503 if error.code in SERVER_SIDE else 400 <= status < 500, (
                cls.__name__,
                status,
            )


def test_reject_cancel_and_the_decisions(server: Server) -> None:
    order = created(server, "Order", {"sku": "HTTP-RC", "total": "10"})
    first = server.call("PATCH", f"/v1/Order/{order['id']}", json={"total": "30000"}).json()
    rejected = server.call(
        "POST",
        f"/v1/approvals/{first['approval_id']}/reject",
        json={"reason": "too much"},
        bearer=MANAGER,
    )
    assert (rejected.status_code, rejected.json()["status"]) == (200, "rejected")
    second = server.call("PATCH", f"/v1/Order/{order['id']}", json={"total": "40000"}).json()
    cancelled = server.call("POST", f"/v1/approvals/{second['approval_id']}/cancel", json={})
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    no_reason = server.call(
        "POST", f"/v1/approvals/{second['approval_id']}/reject", json={}, bearer=MANAGER
    )
    assert no_reason.status_code in (400, 409), no_reason.text
    refusal = no_reason.json()  # recorded: where its decision is, to read the decisions with it
    seen = read(  # maria's own refusal, read by her, from its position on
        server,
        "/v1/decisions",
        refusal["position"],
        params={"outcome": "refused", "by": "maria", "after": refusal["position"] - 1},
        bearer=MANAGER,
    )
    assert [r["code"] for r in seen.json() if r["position"] == refusal["position"]] == [
        refusal["code"]
    ]
    decided = read(
        server, "/v1/decisions", second["position"], params={"outcome": "parked", "model": "Order"}
    )
    assert decided.status_code == 200
    parked = [row for row in decided.json() if row["record_id"] == order["id"]]
    assert len(parked) == 2 and all(row["code"] == "APPROVAL_REQUIRED" for row in parked)
    # one shape wherever it is read: the POST's result, the request, the list
    outcome = rejected.json()["outcome"]
    assert {k: outcome[k] for k in ("status", "by", "reason", "code")} == {
        "status": "rejected",
        "by": "maria",
        "reason": "too much",
        "code": None,
    }
    assert (
        server.call("GET", f"/v1/approvals/{first['approval_id']}", bearer=MANAGER).json()[
            "outcome"
        ]
        == outcome
    )
    listed = read(
        server, "/v1/approvals", second["position"], params={"status": "rejected"}, bearer=MANAGER
    ).json()
    assert [row["outcome"] for row in listed if row["id"] == first["approval_id"]] == [outcome]


def test_an_approval_action_is_one_of_three_and_its_body_is_optional(server: Server) -> None:
    order = created(server, "Order", {"sku": "HTTP-ACT", "total": "10"})
    parked = server.call("PATCH", f"/v1/Order/{order['id']}", json={"total": "30000"}).json()
    typo = server.call("POST", f"/v1/approvals/{parked['approval_id']}/approved", bearer=MANAGER)
    assert typo.status_code in (404, 405)
    assert (
        server.call("GET", f"/v1/approvals/{parked['approval_id']}", bearer=MANAGER).json()[
            "status"
        ]
        == "pending"
    )
    # no body at all
    cancelled = server.call("POST", f"/v1/approvals/{parked['approval_id']}/cancel")
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")


def test_a_malformed_bulk_update_is_refused_by_the_service_and_recorded(server: Server) -> None:
    before = len(stored_rows(server.database_url))
    for body in (
        {"filters": "status", "changes": {"note": "x"}},
        [1],
        {"filters": [["note"]], "changes": {}},
    ):
        refused = server.call("POST", "/v1/Order/bulk-update", json=body, bearer=MANAGER)
        assert refused.status_code in (400, 422) and refused.json()["code"], refused.text
    written = [row.topic for row in stored_rows(server.database_url)[before:]]
    assert written == ["writ.decision:Created"] * 3, "every refusal at the door is a decision"

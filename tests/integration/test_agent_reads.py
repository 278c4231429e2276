"""The agent tools (MCP) read under the same grants as every entry point, on both databases: tool calls run in
process through ``AgentTools`` (the code ``writ mcp`` serves), for people whose roles read more or less."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.agent_calls import AgentIdentity, AgentTools
from entrypoints.bootstrap import Runtime
from entrypoints.http.auth import Identity
from tests.read_grants import READS_CATALOG, Scene, person, scenario


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    with Runtime(Catalog.from_toml(READS_CATALOG), database_url) as opened:
        yield opened


def tools_for(runtime: Runtime, user: str, *roles: str) -> AgentTools:
    person = Principal(user_id=user, tenant_id="acme", roles=frozenset(roles))
    return AgentTools(runtime, AgentIdentity(person, agent="reader-bot"))


def test_the_tools_read_what_the_persons_roles_may_read(runtime: Runtime) -> None:
    scene: Scene = scenario(runtime.writ)
    runtime.catch_up()
    intern, clerk, auditor = (
        tools_for(runtime, "ian", "intern"),
        tools_for(runtime, "carol", "clerk"),
        tools_for(runtime, "ada", "auditor"),
    )
    for name, arguments in (
        ("query_order", {}),
        ("history", {"model": "Order", "id": scene.live}),
        ("approval_status", {"approval_id": scene.carols_request}),
    ):
        refused = intern.call(name, arguments)
        assert refused.is_error and refused.body["code"] == "GRANT_MISSING", (name, refused.body)
    ian = Principal(user_id="ian", tenant_id="acme", roles=frozenset({"intern"}))
    (read,) = [
        d for d in runtime.writ.decisions(ian, outcome="read") if d["operation"] == "history"
    ]
    assert (read["code"], read["reasons"]) == (
        "GRANT_MISSING",
        ["GRANT_MISSING: Roles intern may not read Order records (the read grant)"],
    ), "a refused tool call is accounted for with the refusal's reason"
    assert [
        row["sku"] for row in clerk.call("query_order", {"order_by": ["sku"]}).body["rows"]
    ] == ["CID", "LIVE"]
    assert (
        clerk.call("approval_status", {"approval_id": scene.carols_request}).body["requester"]
        == "carol"
    )
    assert (
        clerk.call("approval_status", {"approval_id": scene.cids_request}).body["code"]
        == "GRANT_MISSING"
    )
    deleted = clerk.call("history", {"model": "Order", "id": scene.deleted})
    assert (
        deleted.is_error
        and deleted.body["code"] == "GRANT_MISSING"
        and "secret" not in deleted.text()
    )
    events = auditor.call("history", {"model": "Order", "id": scene.deleted}).body["events"]
    assert (events[0]["event"], events[0]["after"]["note"]) == ("Created", "secret")


def test_a_token_names_who_reads_whoever_the_launcher_named(runtime: Runtime) -> None:
    """A call that comes with a verified bearer token (``writ mcp --transport http``) acts for the token's
    person and roles, never for a person the tools were started with: an intern's token reads nothing, though
    the launcher named an auditor."""
    scene: Scene = scenario(runtime.writ)
    runtime.catch_up()
    launched_as_auditor = tools_for(runtime, "ada", "auditor")
    intern = Identity("ian", "acme", frozenset({"intern"}))
    for name, arguments in (
        ("query_order", {}),
        ("history", {"model": "Order", "id": scene.deleted}),
    ):
        refused = launched_as_auditor.call(name, arguments, token=intern)
        assert refused.is_error and refused.body["code"] == "GRANT_MISSING", (name, refused.body)
    assert not launched_as_auditor.call("query_order", {}).is_error, "the launcher's person reads"


def test_a_call_missing_an_argument_is_refused_by_name_not_a_crash(runtime: Runtime) -> None:
    clerk = tools_for(runtime, "carol", "clerk")
    for name, arguments, missing in (
        ("patch_order", {"changes": {"note": "x"}, "purpose": "fix"}, "id"),
        ("patch_order", {"id": str(uuid4()), "purpose": "fix"}, "changes"),
        ("history", {"model": "Order"}, "id"),
        ("approval_status", {}, "approval_id"),
    ):
        refused = clerk.call(name, arguments)
        assert refused.is_error and refused.body["code"] == "INVALID_INPUT", (name, refused.body)
        assert refused.body["message"] == f"{name} needs the argument {missing}"


def test_the_name_a_client_gives_itself_is_recorded_without_control_characters(
    runtime: Runtime,
) -> None:
    clerk = tools_for(runtime, "carol", "clerk")
    made = clerk.call(
        "create_order",
        {"data": {"sku": "C-1", "total": "5"}, "purpose": "phone order"},
        client="bot\x1b[2J\n\x00x",
    )
    assert not made.is_error, made.body
    (event,) = runtime.writ.history(person("carol", "clerk"), "Order", made.body["id"])
    assert event.audit == {"agent": "reader-bot", "mcp_client": "bot[2Jx"}


def test_a_write_s_expected_version_and_idempotency_key_reach_the_command(runtime: Runtime) -> None:
    clerk = tools_for(runtime, "carol", "clerk")
    create = {
        "data": {"sku": "K-1", "total": "5"},
        "purpose": "phone order",
        "idempotency_key": "k1",
    }
    made, again = clerk.call("create_order", create), clerk.call("create_order", create)
    assert not made.is_error and again.body["id"] == made.body["id"], (
        "the same key, the same record"
    )
    patch = {
        "id": made.body["id"],
        "changes": {"note": "a"},
        "purpose": "fix",
        "expected_version": 1,
    }
    patched = clerk.call("patch_order", patch)
    assert not patched.is_error and patched.body["version"] == 2, patched.body
    stale = clerk.call("patch_order", {**patch, "changes": {"note": "b"}})
    assert stale.is_error and stale.body["code"] == "VERSION_CONFLICT", stale.body
    assert runtime.writ.get(person("carol", "clerk"), "Order", made.body["id"])["note"] == "a"


def test_without_a_launcher_s_person_a_call_without_a_token_is_unauthenticated(
    runtime: Runtime,
) -> None:
    nobody = AgentTools(runtime)
    for name, arguments in (
        ("query_order", {}),
        ("create_order", {"data": {"sku": "N-1", "total": "1"}, "purpose": "p"}),
    ):
        refused = nobody.call(name, arguments)
        assert refused.is_error and refused.body["code"] == "UNAUTHENTICATED", (name, refused.body)

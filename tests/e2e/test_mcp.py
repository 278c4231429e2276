"""``writ mcp`` in its own process, driven by the ``mcp`` SDK's own client (stdio and streamable HTTP), on both
databases: the tools a catalog makes, the evaluate → write → approval round trip, refusals as results with
their codes, queries, and the person and the agent both on the record."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError
from mcp_types import Implementation

from application.service import Writ
from domain.principal import Principal
from tests.catalogs import SHOP_CATALOG
from tests.integration.test_history_pages import PATCHES, check_pages
from tests.support import ROOT, CliProcess, wait_until, writ_command

CLERK = ["-u", "carol", "-t", "acme", "-r", "clerk"]
MANAGER = Principal(
    user_id="maria", tenant_id="acme", roles=frozenset({"manager"}), purpose="sign-off"
)
AUDITOR = MANAGER.for_purpose("audit", roles=frozenset({"auditor"}))
HOST = Implementation(name="test-host", version="1.0")
MODELS = {
    "Order": "order",
    "Customer": "customer",
    "Tally": "tally",
    "Payment": "payment",
    "Ledger": "ledger",
}
PER_MODEL = ("create", "replace", "patch", "delete", "restore", "purge", "query")
Scenario = Callable[[Client], Awaitable[None]]
HINTS = {  # (readOnlyHint, destructiveHint, idempotentHint, openWorldHint), per kind of tool
    # adds; a repeat without the same idempotency_key adds again
    "create": (False, False, False, False),
    "replace": (False, True, False, False),
    "patch": (False, True, False, False),
    "delete": (False, True, False, False),
    "restore": (False, True, False, False),
    "purge": (False, True, False, False),
    "query": (True, False, True, False),
    "evaluate": (True, False, True, False),
    "history": (True, False, True, False),
    "approval_status": (True, False, True, False),
}


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "writ.toml"
    path.write_text(SHOP_CATALOG)
    return path


@pytest.fixture
def projected(catalog_file: Path, database_url: str) -> Iterator[None]:
    """Views kept current: the embedded default projects inside the tool server itself; on PostgreSQL a
    ``writ project`` worker does, as in production."""
    if database_url.startswith("sqlite"):
        yield
        return
    worker = CliProcess(
        "project", "--catalog", str(catalog_file), env={"WRIT_DATABASE_URL": database_url}
    )
    yield
    worker.stop()


def over_stdio(catalog_file: Path, database_url: str, scenario: Scenario, *options: str) -> None:
    """Run ``scenario`` against ``writ mcp`` started by the SDK's stdio client (as an agent host does)."""
    command = [
        "-c",
        "from entrypoints.cli import main; main()",
        "mcp",
        "--catalog",
        str(catalog_file),
        *CLERK,
        *options,
    ]
    server = StdioServerParameters(
        command=sys.executable,
        args=command,
        cwd=ROOT,
        env={**os.environ, "WRIT_DATABASE_URL": database_url},
    )

    async def run() -> None:
        async with Client(server, client_info=HOST, read_timeout_seconds=60) as client:
            await scenario(client)

    anyio.run(run)


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured result (the same JSON as its text)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.structured_content
    assert orjson.loads(result.content[0].text) == result.structured_content
    return dict(result.structured_content)


async def refused(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must be refused: an error result (never a protocol error) carrying the code."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    body = dict(result.structured_content)
    assert body["code"] in result.content[0].text and body["message"]
    return body


def test_the_tools_are_made_from_the_catalog(catalog_file: Path, database_url: str) -> None:
    async def scenario(client: Client) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        expected = {f"{kind}_{name}" for name in MODELS.values() for kind in PER_MODEL}
        assert set(tools) == expected | {"evaluate", "history", "approval_status"}
        create = tools["create_order"].input_schema
        assert create["required"] == ["data", "purpose"]
        data = create["properties"]["data"]
        assert data["required"] == ["sku", "total"], "required, without a default"
        assert not {"created_by", "updated_at", "id", "tenant_id"} & set(data["properties"]), (
            "stamped: not sent"
        )
        assert data["properties"]["status"]["enum"] == ["draft", "placed", "shipped"]
        assert {"maxLength": 20, "pattern": "^[A-Z0-9-]+$"}.items() <= data["properties"][
            "sku"
        ].items()
        changes = tools["patch_order"].input_schema["properties"]["changes"]
        assert "required" not in changes and "sku" not in changes["properties"], "immutable"
        assert "placed_on" not in changes["properties"], "writable on create only"
        writes = [
            tool
            for name, tool in tools.items()
            if not name.startswith(("query_", "history", "approval"))
        ]
        assert all("purpose" in tool.input_schema["required"] for tool in writes)
        for name, tool in tools.items():
            kind = name if name in HINTS else name.split("_")[0]
            hints = tool.annotations
            assert hints is not None, name
            told = (
                hints.read_only_hint,
                hints.destructive_hint,
                hints.idempotent_hint,
                hints.open_world_hint,
            )
            assert told == HINTS[kind], name
        assert "evaluate" in (client.instructions or "")

    over_stdio(catalog_file, database_url, scenario)


def test_evaluate_then_write_then_approval(
    catalog_file: Path, database_url: str, writ: Writ
) -> None:
    async def scenario(client: Client) -> None:
        made = await call(
            client, "create_order", data={"sku": "LAMP-42", "total": "89.90"}, purpose="phone order"
        )
        assert made["status"] == "executed" and made["data"]["created_by"] == "carol"
        change = {
            "kind": "patch",
            "model": "Order",
            "id": made["id"],
            "changes": {"total": "25000"},
        }
        evaluation = await call(client, "evaluate", **change, purpose="price correction")
        assert (
            evaluation["outcome"] == "require_approval" and evaluation["after"]["total"] == "25000"
        )
        parked = await call(
            client,
            "patch_order",
            id=made["id"],
            changes={"total": "25000"},
            purpose="price correction",
            idempotency_key="fix-1",
        )
        assert (
            parked["status"] == "pending_approval"
            and parked["approval_id"]
            and "approval_id" in parked["next"]
        )
        status = await call(client, "approval_status", approval_id=parked["approval_id"])
        assert status["status"] == "pending" and status["purpose"] == "price correction"

        await anyio.to_thread.run_sync(
            lambda: writ.approve(MANAGER, parked["approval_id"], reason="checked")
        )

        status = await call(client, "approval_status", approval_id=parked["approval_id"])
        assert status["status"] == "executed" and status["approvals"] == ["maria"]
        shown = await anyio.to_thread.run_sync(
            lambda: writ.approval(MANAGER, parked["approval_id"])
        )
        assert (
            status["outcome"] == shown["outcome"] and status["outcome"]["status"] == "executed"
        ), "one shape"
        assert set(status["outcome"]) == {"status", "by", "reason", "code", "at", "audit"}
        events = (await call(client, "history", model="Order", id=made["id"]))["events"]
        assert [e["event"] for e in events] == ["Created", "Patched"]
        assert all(e["actor"] == "carol" for e in events), "the person is the actor"
        assert all(e["audit"] == {"agent": "order-bot", "mcp_client": "test-host"} for e in events)
        assert events[1]["purpose"] == "price correction" and events[1]["approval"][
            "approvers"
        ] == ["maria"]
        assert events[1]["changes"]["total"] == {"before": "89.90", "after": "25000"}

    over_stdio(catalog_file, database_url, scenario, "--agent", "order-bot")


def test_refusals_are_results_with_their_codes(
    catalog_file: Path, database_url: str, writ: Writ
) -> None:
    async def scenario(client: Client) -> None:
        made = await call(
            client, "create_order", data={"sku": "DESK-9", "total": "640"}, purpose="phone order"
        )
        record = made["id"]
        assert (await refused(client, "delete_order", id=record, purpose="tidy up"))[
            "code"
        ] == "GRANT_MISSING"
        immutable = await refused(
            client, "patch_order", id=record, changes={"sku": "DESK-10"}, purpose="typo"
        )
        assert (immutable["code"], immutable["field"]) == ("IMMUTABLE_FIELD", "sku")
        assert (await refused(client, "patch_order", id=record, changes={"note": "x"}))[
            "code"
        ] == "PURPOSE_REQUIRED"
        missing = await refused(client, "create_order", data={"sku": "A-1"}, purpose="phone order")
        assert missing["code"] == "REQUIRED_FIELD_MISSING"
        unknown = await refused(
            client, "patch_order", id=record, changes={}, purpose="x", purpse="typo"
        )
        assert unknown["code"] == "INVALID_INPUT" and "purpse" in unknown["message"]
        not_text = await refused(
            client, "patch_order", id=record, changes={"note": "x"}, purpose=123
        )
        assert not_text["code"] == "INVALID_INPUT"
        denied = await call(
            client, "evaluate", kind="delete", model="Order", id=record, purpose="tidy up"
        )
        assert denied["outcome"] == "deny" and denied["code"] == "GRANT_MISSING"
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool("drop_everything", {})

    over_stdio(catalog_file, database_url, scenario, "--agent", "order-bot")
    refusals = writ.decisions(AUDITOR, outcome="refused")
    assert [d["code"] for d in refusals] == [
        "GRANT_MISSING",
        "IMMUTABLE_FIELD",
        "PURPOSE_REQUIRED",
        "REQUIRED_FIELD_MISSING",
        "INVALID_INPUT",
        "INVALID_INPUT",
    ]
    assert all(
        d["actor"] == "carol" and d["audit"] == {"agent": "order-bot", "mcp_client": "test-host"}
        for d in refusals
    ), "the agent on every refusal, a malformed purpose's too"


def test_queries_read_the_views(catalog_file: Path, database_url: str, projected: None) -> None:
    async def scenario(client: Client) -> None:
        for sku, total in (("A-1", "5"), ("B-2", "50"), ("C-3", "500")):
            made = await call(
                client, "create_order", data={"sku": sku, "total": total}, purpose="import"
            )
        query = {
            "filters": [{"field": "total", "op": "gt", "value": "10"}],
            "order_by": ["-total"],
            "limit": 1,
        }
        first = await call(client, "query_order", **query, wait_for=made["position"])
        assert [row["sku"] for row in first["rows"]] == ["C-3"] and first["next_cursor"]
        second = await call(client, "query_order", **query, after=first["next_cursor"])
        assert [row["sku"] for row in second["rows"]] == ["B-2"] and second["next_cursor"] is None
        changed = await call(
            client, "patch_order", id=made["id"], changes={"note": "rush"}, purpose="customer call"
        )
        rows = (
            await call(
                client,
                "query_order",
                filters=[{"field": "note", "op": "is_null", "value": False}],
                wait_for=changed["position"],
            )
        )["rows"]
        assert [(row["sku"], row["note"], row["_version"]) for row in rows] == [
            ("C-3", "rush", 2)
        ], "read your write"
        wrong = await refused(
            client, "query_order", filters=[{"field": "colour", "op": "eq", "value": "red"}]
        )
        assert wrong["code"] == "UNKNOWN_FIELD"

    over_stdio(catalog_file, database_url, scenario)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        return probe.connect_ex((host, port)) == 0


def test_without_an_agent_vouched_for_the_clients_name_is_only_claimed(
    catalog_file: Path, database_url: str, writ: Writ
) -> None:
    async def scenario(client: Client) -> None:
        made = await call(
            client, "create_order", data={"sku": "CLAIM-1", "total": "5"}, purpose="phone order"
        )
        await refused(client, "delete_order", id=made["id"], purpose=["not", "text"])
        events = (await call(client, "history", model="Order", id=made["id"]))["events"]
        assert events[0]["audit"] == {"mcp_client": "test-host"}, (
            "no audit.agent: nobody vouched for one"
        )

    over_stdio(catalog_file, database_url, scenario)
    assert [d["audit"] for d in writ.decisions(AUDITOR, outcome="refused")] == [
        {"mcp_client": "test-host"}
    ]


def test_an_agents_reads_are_recorded_without_their_values(
    catalog_file: Path, database_url: str, writ: Writ, projected: None
) -> None:
    secrets = ("READ-SECRET-1", "77.70", "25000", "red-secret")
    ids: dict[str, str] = {}

    async def scenario(client: Client) -> None:
        made = await call(
            client,
            "create_order",
            data={"sku": secrets[0], "total": secrets[1]},
            purpose="phone order",
        )
        found = await call(
            client,
            "query_order",
            filters=[{"field": "sku", "op": "eq", "value": secrets[0]}],
            wait_for=made["position"],
        )
        assert len(found["rows"]) == 1
        assert (await call(client, "history", model="Order", id=made["id"], limit=1))[
            "next_cursor"
        ] is None
        dry = await call(
            client,
            "evaluate",
            kind="patch",
            model="Order",
            id=made["id"],
            changes={"total": secrets[2]},
            purpose="price check",
        )
        assert dry["outcome"] == "require_approval"
        parked = await call(
            client, "patch_order", id=made["id"], changes={"total": secrets[2]}, purpose="price fix"
        )
        assert (await call(client, "approval_status", approval_id=parked["approval_id"]))[
            "status"
        ] == "pending"
        await refused(
            client, "query_order", filters=[{"field": "colour", "op": "eq", "value": secrets[3]}]
        )
        ids.update(record=made["id"], approval=parked["approval_id"])

    over_stdio(catalog_file, database_url, scenario, "--agent", "order-bot")
    reads = writ.decisions(AUDITOR, outcome="read")
    assert [(d["operation"], d["model"], d["record_id"], d["code"]) for d in reads] == [
        ("query", "Order", None, None),
        ("history", "Order", ids["record"], None),
        ("evaluate", "Order", ids["record"], None),
        ("approval_status", "Order", ids["approval"], None),
        ("query", "Order", None, "UNKNOWN_FIELD"),
    ]
    assert all(
        d["actor"] == "carol" and d["audit"] == {"agent": "order-bot", "mcp_client": "test-host"}
        for d in reads
    )
    assert [d["purpose"] for d in reads] == [None, None, "price check", None, None]
    assert reads[0]["reasons"] == ["where sku eq", "1 rows"]
    assert reads[1]["reasons"] == ["events after version 0: 1"]
    assert reads[2]["reasons"][0] == "dry run of patch: require_approval (APPROVAL_REQUIRED)"
    assert not [secret for secret in secrets if secret in orjson.dumps(reads).decode()], (
        "no value is kept"
    )

    def listed() -> list[dict[str, Any]]:  # the auditors' read model, as `writ decisions` shows it
        done = writ_command(
            "decisions",
            "--outcome",
            "read",
            "--json",
            "--catalog",
            str(catalog_file),
            "-u",
            "ann",
            "-t",
            "acme",
            "-r",
            "auditor",
            env={"WRIT_DATABASE_URL": database_url},
        )
        rows: list[dict[str, Any]] = orjson.loads(done.stdout)
        return rows

    wait_until(lambda: len(listed()) == len(reads), 30, "the decisions view to hold the reads")
    assert [(row["operation"], row["code"]) for row in listed()] == [
        (d["operation"], d["code"]) for d in reads
    ]


def test_a_long_history_pages_over_the_agent_tools(
    catalog_file: Path, database_url: str, writ: Writ
) -> None:
    clerk = Principal(
        user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="counting"
    )
    made = writ.create(clerk, "Order", {"sku": "LONG-3", "total": "1"})
    for count in range(1, PATCHES + 1):
        writ.patch(clerk, "Order", made.id, {"counter": count})

    async def scenario(client: Client) -> None:
        first = await call(client, "history", model="Order", id=made.id)
        assert (len(first["events"]), first["next_cursor"]) == (100, 100), (
            "100 by default, never the whole history"
        )
        pages = [await call(client, "history", model="Order", id=made.id, limit=80)]
        while pages[-1]["next_cursor"] is not None:
            assert len(pages) < 10, "the cursor moves on"
            pages.append(
                await call(
                    client,
                    "history",
                    model="Order",
                    id=made.id,
                    limit=80,
                    after=pages[-1]["next_cursor"],
                )
            )
        assert [len(page["events"]) for page in pages] == [80, 80, 80, 11]
        check_pages(pages, PATCHES + 1)
        for bad in ({"limit": 1001}, {"limit": 0}, {"after": -1}, {"after": "10"}):
            assert (await refused(client, "history", model="Order", id=made.id, **bad))[
                "code"
            ] == "INVALID_INPUT"

    over_stdio(catalog_file, database_url, scenario)

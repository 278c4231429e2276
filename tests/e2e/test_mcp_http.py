"""``writ mcp --transport http`` in its own process: nobody gets in without a bearer JWT that ``writ serve`` would
accept, a valid token acts as its own person and agent (never the launcher's ``-u/-t/-r``), a session stays
with the credential that opened it, Host and Origin are checked on every address, and a server that could not
check tokens (or host names) does not start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import Implementation
from mcp_types.version import LATEST_HANDSHAKE_VERSION, LATEST_MODERN_VERSION

from application.service import Writ
from tests.catalogs import SHOP_CATALOG
from tests.e2e.test_mcp import AUDITOR, accepts_connections, call, free_port, refused
from tests.http_support import AUDIENCE, ISSUER, PRIVATE_KEY, PUBLIC_PEM, SECRET, token
from tests.integration.test_http import forged
from tests.support import CliProcess, wait_until, writ_command

JWT = {
    "WRIT_JWT_SECRET": SECRET,
    "WRIT_JWT_PUBLIC_KEY": PUBLIC_PEM,
    "WRIT_JWT_ISSUER": ISSUER,
    "WRIT_JWT_AUDIENCE": AUDIENCE,
}
NO_JWT = {
    "WRIT_JWT_SECRET": "",
    "WRIT_JWT_PUBLIC_KEY": "",
    "WRIT_JWT_PUBLIC_KEY_FILE": "",
    "WRIT_JWT_JWKS_FILE": "",
}
LAUNCHER = ["-u", "mallory", "-t", "globex", "-r", "manager", "--agent", "launcher-bot"]
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw-client", "version": "1"},
    },
}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


class McpServer:
    def __init__(self, process: CliProcess, port: int, address: str = "127.0.0.1") -> None:
        self.process, self.port = process, port
        self.url = f"http://{address}:{port}/mcp"

    def post(
        self, body: dict[str, Any], bearer: str | None = None, **headers: str
    ) -> httpx.Response:
        auth = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        return httpx.post(self.url, json=body, headers={**ACCEPT, **auth, **headers}, timeout=30)


def start(
    catalog_file: Path, database_url: str, *options: str, host: str = "127.0.0.1"
) -> McpServer:
    port = free_port()
    process = CliProcess(
        "mcp",
        "--transport",
        "http",
        "--host",
        host,
        "--port",
        str(port),
        "--catalog",
        str(catalog_file),
        *options,
        env={"WRIT_DATABASE_URL": database_url, **JWT},
    )
    address = "127.0.0.1" if host == "0.0.0.0" else host
    wait_until(
        lambda: accepts_connections(port, address) or process.process.poll() is not None,
        30,
        "writ mcp to listen",
    )
    assert process.process.poll() is None, "\n".join(process.lines)
    return McpServer(process, port, address)


@pytest.fixture
def catalog_file(tmp_path: Path) -> Path:
    path = tmp_path / "writ.toml"
    path.write_text(SHOP_CATALOG)
    return path


@pytest.fixture
def mcp_server(catalog_file: Path, database_url: str) -> Iterator[McpServer]:
    server = start(catalog_file, database_url, *LAUNCHER)
    yield server
    server.process.stop()


@asynccontextmanager
async def client(
    server: McpServer, bearer: str, name: str, mode: str = "auto"
) -> AsyncIterator[Client]:
    """The SDK's own client, sending ``bearer`` with every request."""
    async with httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {bearer}"}, timeout=60
    ) as http:
        transport = streamable_http_client(server.url, http_client=http)
        async with Client(
            transport, client_info=Implementation(name=name, version="1.0"), mode=mode
        ) as session:
            yield session


def test_no_token_lists_no_tool_and_writes_nothing(mcp_server: McpServer, writ: Writ) -> None:
    for body in (
        INITIALIZE,
        LIST_TOOLS,
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {
                "name": "create_order",
                "arguments": {"data": {"sku": "ANON-1", "total": "1"}, "purpose": "x"},
            },
        },
    ):
        answer = mcp_server.post(body)
        assert answer.status_code == 401, answer.text
        assert answer.json()["code"] == "UNAUTHENTICATED" and "create_order" not in answer.text
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert (
        httpx.get(mcp_server.url, headers={"Accept": "text/event-stream"}, timeout=30).status_code
        == 401
    )

    listed: list[str] = []

    async def anonymous() -> None:
        async with Client(
            mcp_server.url, client_info=Implementation(name="anon", version="1")
        ) as session:
            listed.extend(tool.name for tool in (await session.list_tools()).tools)

    with pytest.raises(Exception, match="TaskGroup"):  # the SDK's client gives up on the 401
        anyio.run(anonymous)
    assert listed == []
    assert writ.decisions(AUDITOR) == [], "nothing written, not even a refusal: nobody was there"


@pytest.mark.parametrize("how", list(forged()))
def test_a_forged_or_expired_token_is_401(mcp_server: McpServer, how: str) -> None:
    bearer = forged()[how]  # the very tokens `writ serve` refuses (tests/integration/test_http.py)
    for body in (INITIALIZE, LIST_TOOLS):
        answer = mcp_server.post(body, bearer=bearer)
        assert (answer.status_code, answer.json()["code"]) == (401, "UNAUTHENTICATED"), answer.text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_a_token_acts_as_its_own_person_and_agent(
    mcp_server: McpServer, writ: Writ, mode: str
) -> None:
    agent_token = token("carol", "acme", "clerk", act={"sub": "order-bot"})
    plain_token = token("dave", "acme", "clerk", key=PRIVATE_KEY, algorithm="RS256")

    async def run() -> None:
        async with client(mcp_server, agent_token, f"claims-to-be-{mode}", mode) as session:
            era = LATEST_MODERN_VERSION if mode == "auto" else LATEST_HANDSHAKE_VERSION
            assert session.protocol_version == era, (
                "the per-request envelope, or the initialize handshake"
            )
            made = await call(
                session,
                "create_order",
                data={"sku": "TOKEN-1", "total": "5"},
                purpose="phone order",
            )
            assert made["data"]["created_by"] == "carol", "the token's person, not -u mallory"
            refusal = await refused(session, "delete_order", id=made["id"], purpose="tidy up")
            assert refusal["code"] == "GRANT_MISSING", "the token's roles (clerk), not -r manager"
            events = (await call(session, "history", model="Order", id=made["id"]))["events"]
            assert (events[0]["actor"], events[0]["audit"]) == (
                "carol",
                {"agent": "order-bot", "mcp_client": f"claims-to-be-{mode}"},
            )
        async with client(mcp_server, plain_token, "unvouched-agent", mode) as session:
            made = await call(
                session,
                "create_order",
                data={"sku": "TOKEN-2", "total": "5"},
                purpose="phone order",
            )
            events = (await call(session, "history", model="Order", id=made["id"]))["events"]
            assert events[0]["audit"] == {"mcp_client": "unvouched-agent"}, (
                "a name the client claims is no agent"
            )

    anyio.run(run)
    rows = {
        row["audit"].get("mcp_client"): row
        for row in writ.decisions(AUDITOR)
        if row["operation"] == "create"
    }
    assert (rows[f"claims-to-be-{mode}"]["actor"], rows["unvouched-agent"]["actor"]) == (
        "carol",
        "dave",
    )
    assert {row["tenant"] for row in writ.decisions(AUDITOR)} == {"acme"}, (
        "nothing in the launcher's tenant"
    )
    refusal = next(row for row in writ.decisions(AUDITOR, outcome="refused"))
    assert (refusal["actor"], refusal["audit"]["agent"]) == ("carol", "order-bot")


def test_a_session_stays_with_the_credential_that_opened_it(mcp_server: McpServer) -> None:
    carol = token("carol", "acme", "clerk")
    opened = mcp_server.post(INITIALIZE, bearer=carol)
    assert opened.status_code == 200, opened.text
    session = {
        "mcp-session-id": opened.headers["mcp-session-id"],
        "mcp-protocol-version": "2025-06-18",
    }
    done = mcp_server.post(
        {"jsonrpc": "2.0", "method": "notifications/initialized"}, bearer=carol, **session
    )
    assert done.status_code == 202
    other_person = mcp_server.post(LIST_TOOLS, bearer=token("dave", "acme", "clerk"), **session)
    other_tenant = mcp_server.post(LIST_TOOLS, bearer=token("carol", "globex", "clerk"), **session)
    other_agent = mcp_server.post(
        LIST_TOOLS, bearer=token("carol", "acme", "clerk", act={"sub": "x"}), **session
    )
    assert [other_person.status_code, other_tenant.status_code, other_agent.status_code] == [
        404,
        404,
        404,
    ]
    # a new token, same caller
    listed = mcp_server.post(LIST_TOOLS, bearer=token("carol", "acme", "clerk"), **session)
    assert listed.status_code == 200 and "create_order" in listed.text


def test_host_and_origin_are_checked_on_loopback(mcp_server: McpServer) -> None:
    bearer = token()
    assert mcp_server.post(INITIALIZE, bearer=bearer, Host="evil.example").status_code == 421
    assert (
        mcp_server.post(INITIALIZE, bearer=bearer, Origin="http://evil.example").status_code == 403
    )
    local = f"http://localhost:{mcp_server.port}"
    assert mcp_server.post(INITIALIZE, bearer=bearer, Origin=local).status_code == 200


def test_a_loopback_address_of_its_own_is_a_name_clients_use(
    catalog_file: Path, tmp_path: Path
) -> None:
    """127.0.0.2 is loopback too, but not one of the usual names: a server listening there still answers
    requests that name it (they were refused 421), and still refuses other names."""
    server = start(catalog_file, f"sqlite:///{tmp_path}/own.db", *LAUNCHER, host="127.0.0.2")
    try:
        bearer, port = token(), server.port
        assert server.post(INITIALIZE, bearer=bearer).status_code == 200
        own = f"http://127.0.0.2:{port}"
        assert server.post(INITIALIZE, bearer=bearer, Origin=own).status_code == 200
        assert server.post(INITIALIZE, bearer=bearer, Host="evil.example").status_code == 421
        assert server.post(INITIALIZE, bearer=bearer, Host=f"127.0.0.3:{port}").status_code == 421
    finally:
        server.process.stop()


def test_host_and_origin_are_checked_on_every_address(catalog_file: Path, tmp_path: Path) -> None:
    server = start(
        catalog_file,
        f"sqlite:///{tmp_path}/wide.db",
        "--allowed-host",
        "mcp.example.test",
        "--allowed-origin",
        "https://app.example.test",
        host="0.0.0.0",
    )
    try:
        bearer, port = token(), server.port
        for host in ("evil.example", f"evil.example:{port}", "mcp.example.test.evil.example"):
            assert server.post(INITIALIZE, bearer=bearer, Host=host).status_code == 421, host
        for host in ("mcp.example.test", f"mcp.example.test:{port}", f"127.0.0.1:{port}"):
            assert server.post(INITIALIZE, bearer=bearer, Host=host).status_code == 200, host
        assert (
            server.post(INITIALIZE, bearer=bearer, Origin="https://evil.example").status_code == 403
        )
        for origin in ("https://app.example.test", f"https://mcp.example.test:{port}"):
            assert server.post(INITIALIZE, bearer=bearer, Origin=origin).status_code == 200, origin
        assert server.post(INITIALIZE, Host="mcp.example.test").status_code == 401, (
            "and a token all the same"
        )
    finally:
        server.process.stop()


@pytest.mark.parametrize(
    ("host", "extra", "env", "said"),
    [
        ("0.0.0.0", ["--allowed-host", "mcp.example.test"], NO_JWT, "authenticates every caller"),
        ("127.0.0.1", [], NO_JWT, "authenticates every caller"),
        ("0.0.0.0", [], JWT, "--allowed-host"),
        ("127.0.0.1", ["--allowed-host", "http://x/"], JWT, "--allowed-host"),
        ("127.0.0.1", ["--allowed-origin", "app.example.test"], JWT, "--allowed-origin"),
        ("127.0.0.1", [], {**JWT, "WRIT_JWT_SECRET": "short"}, "at least 32 bytes"),
    ],
)
def test_a_server_that_could_not_check_its_callers_does_not_start(
    catalog_file: Path, tmp_path: Path, host: str, extra: list[str], env: dict[str, str], said: str
) -> None:
    done = writ_command(
        "mcp",
        "--transport",
        "http",
        "--host",
        host,
        "--port",
        str(free_port()),
        "--catalog",
        str(catalog_file),
        *LAUNCHER,
        *extra,
        check=False,
        timeout=60,
        env={**env, "WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/never.db"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: CONFIGURATION_INVALID: ") and said in done.stderr, (
        done.stderr
    )
    assert "Traceback" not in done.stderr and not (tmp_path / "never.db").exists(), (
        "refused before opening anything"
    )

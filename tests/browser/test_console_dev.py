"""``writ console``: the console on the embedded default with its development sign-in, in headless Chromium.

The development sign-in mints a token the server then checks like any other (the person is who they
picked, the API accepts the same token); ``writ console`` refuses PostgreSQL and any address but loopback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.catalogs import SHOP_CATALOG
from tests.conftest import PG_URL
from tests.http_support import free_port
from tests.support import CliProcess, writ_command


@pytest.fixture
def console_url(tmp_path: Path) -> Iterator[str]:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    port = free_port()
    process = CliProcess(
        "console",
        "--catalog",
        str(catalog),
        "--port",
        str(port),
        "--no-browser",
        env={"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/writ.db", "WRIT_JWT_SECRET": ""},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_for_line(f"console at {url}/console/", timeout=60)
        yield url
    finally:
        process.stop()


@pytest.mark.browser
def test_the_development_sign_in_of_writ_console(browser: Any, console_url: str) -> None:
    context = browser.new_context(base_url=console_url)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto("/console/")
    assert "Development sign-in" in page.content()
    page.get_by_label("User").fill("maria")
    page.get_by_label("Tenant").fill("acme")
    page.get_by_label("Roles").fill("manager auditor")
    page.get_by_role("button", name="Sign in as them").click()
    page.wait_for_url("**/console/")
    assert "Signed in as maria in acme (auditor, manager)" in " ".join(
        page.locator("header").inner_text().split()
    )
    minted = next(c["value"] for c in context.cookies() if c["name"] == "writ_session")
    context.close()
    assert all(url.startswith(console_url) for url in requests), requests

    created = httpx.post(
        f"{console_url}/v1/Order",
        json={"sku": "DEV-1", "total": "5"},
        headers={"Authorization": f"Bearer {minted}", "Writ-Purpose": "dev"},
    )
    assert created.status_code == 201, (
        "the minted token is the server's own, checked like any other"
    )
    forged = httpx.post(
        f"{console_url}/v1/Order",
        json={"sku": "DEV-2", "total": "5"},
        headers={"Authorization": f"Bearer {minted[:-4]}AAAA", "Writ-Purpose": "dev"},
    )
    assert forged.status_code == 401


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(("--database", f"{PG_URL}?schema=never_made"), id="postgres"),
        pytest.param(("--host", "0.0.0.0"), id="not-loopback"),
    ],
)
def test_writ_console_refuses_postgres_and_other_addresses(
    tmp_path: Path, arguments: tuple[str, ...]
) -> None:
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    done = writ_command(
        "console",
        "--catalog",
        str(catalog),
        "--no-browser",
        "--port",
        "0",
        *arguments,
        check=False,
        env={"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/writ.db"},
        timeout=60,
    )
    assert done.returncode == 2 and "CONFIGURATION_INVALID" in done.stderr, done.stderr


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "named"),
    [
        pytest.param(
            "::1",
            "[::1]",
            marks=pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here"),
        ),
        ("127.0.0.2", "127.0.0.2"),
    ],
)
def test_writ_console_on_another_loopback_address_says_where(
    tmp_path: Path, host: str, named: str
) -> None:
    """The address it prints is one a browser opens (an IPv6 one in brackets), and requests naming it are
    answered."""
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    port = free_port()
    process = CliProcess(
        "console",
        *("--catalog", str(catalog), "--host", host, "--port", str(port), "--no-browser"),
        env={"WRIT_DATABASE_URL": f"sqlite:///{tmp_path}/writ.db", "WRIT_JWT_SECRET": ""},
    )
    try:
        url = f"http://{named}:{port}/console/"
        process.wait_for_line(f"console at {url} ", timeout=60)
        page = httpx.get(url, follow_redirects=True)
        assert page.status_code == 200 and "Development sign-in" in page.text, page.text
    finally:
        process.stop()


def test_writ_console_answers_only_requests_naming_this_machine(console_url: str) -> None:
    """A page on another site can reach ``writ console`` through a name it rebinds to 127.0.0.1 (DNS rebinding):
    its requests then carry that name as ``Host``, and the console's own origin check compares the origin with
    that same ``Host``. Requests naming another host are refused before any route, so its development sign-in
    mints nothing for them; the loopback names still work."""
    port = console_url.rsplit(":", 1)[1]
    rebound = f"attacker.example:{port}"
    with httpx.Client(base_url=console_url, headers={"Host": rebound}) as client:
        page = client.get("/console/sign-in")
        assert page.status_code == 400 and "writ_csrf" not in page.cookies, page.text
        minted = client.post(
            "/console/dev-sign-in",
            data={"csrf": "c" * 43, "user": "mallory", "tenant": "acme", "roles": "manager"},
            headers={"Origin": f"http://{rebound}", "Cookie": f"writ_csrf={'c' * 43}"},
        )
        assert minted.status_code == 400 and "writ_session" not in minted.cookies, minted.text
        assert client.get("/v1/Order").status_code == 400
    for name in ("127.0.0.1", "localhost"):
        own = httpx.get(f"{console_url}/console/sign-in", headers={"Host": f"{name}:{port}"})
        assert own.status_code == 200 and "Development sign-in" in own.text, name

"""The console's pages hold the visitor's own decisions (read-your-writes), on both databases.

After an approve the console remembers its position (the ``writ_seen`` cookie), and the inbox, read from the
views, first waits for the projection to reach it. Here no projection worker runs beside the console on
PostgreSQL, so the inbox cannot hold the approval until the test catches the views up: it must say so rather
than list the request as still waiting. On SQLite every page catches the views up itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from domain.catalog import Catalog
from entrypoints.bootstrap import Runtime
from entrypoints.http.app import create_app
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.console import web
from tests.catalogs import principal
from tests.http_support import AUDIENCE, ISSUER, SECRET, token

CLERK = principal("carol", "acme", "clerk")
ORIGIN = "http://testserver"
CSRF = "c" * 43
BEHIND = "may not show your last decision yet"


@pytest.fixture
def console(
    catalog: Catalog, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Runtime, TestClient]]:
    monkeypatch.setattr(web, "SEEN_WAIT", 0.2)
    verifier = JwtVerifier(secret=SECRET.encode(), issuer=ISSUER, audience=AUDIENCE)
    with (
        Runtime(catalog, database_url) as runtime,
        TestClient(create_app(runtime, verifier), base_url=ORIGIN) as client,
    ):
        yield runtime, client


def signed_in(client: TestClient, user: str, role: str) -> None:
    client.cookies.clear()
    client.cookies.set("writ_session", token(user, "acme", role))
    client.cookies.set("writ_csrf", CSRF)


def waiting(client: TestClient) -> tuple[set[str], bool]:
    """The request ids the inbox lists as waiting, and whether it says the views lack my last decision."""
    page = client.get("/console/")
    assert page.status_code == 200, page.text
    shown = page.text.split('id="yours"')[0]
    return set(re.findall(r'id="request-([0-9a-f-]{36})"', shown)), BEHIND in page.text


def approve(client: TestClient, approval_id: str, fingerprint: str) -> Any:
    return client.post(
        f"/console/approvals/{approval_id}/approve",
        data={"csrf": CSRF, "fingerprint": fingerprint},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


def test_after_approving_the_inbox_no_longer_lists_the_request(
    console: tuple[Runtime, TestClient],
) -> None:
    runtime, client = console
    writ = runtime.writ
    payment = writ.create(CLERK, "Payment", {"amount": "500"}).id
    two = writ.patch(CLERK, "Payment", payment, {"amount": "900"}).approval_id
    assert two is not None
    runtime.catch_up()
    signed_in(client, "maria", "manager")
    assert waiting(client) == ({two}, False)

    fingerprint = writ.approval(principal("maria", "acme", "manager"), two)["fingerprint"]
    answer = approve(client, two, fingerprint)
    assert answer.status_code == 303, answer.text
    seen = int(client.cookies["writ_seen"])
    assert seen == runtime.head(), "the cookie holds the approval's position"

    listed, behind = waiting(client)
    if runtime.backend.embedded:
        assert (listed, behind) == (set(), False), "caught up by the page itself"
    else:
        assert behind and listed == {two}, (
            "no worker ran: the page says it lacks my decision instead of passing it off as current"
        )
        runtime.catch_up()
        assert waiting(client) == (set(), False)

    signed_in(client, "dora", "director")
    assert waiting(client) == ({two}, False), "still waiting for a second approver"

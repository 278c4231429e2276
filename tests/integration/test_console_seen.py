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


def decide(client: TestClient, approval_id: str, action: str, **form: str) -> Any:
    """A console form's post: approve (with the fingerprint shown), reject or cancel."""
    return client.post(
        f"/console/approvals/{approval_id}/{action}",
        data={"csrf": CSRF, **form},
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
    answer = decide(client, two, "approve", fingerprint=fingerprint)
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


def test_reject_and_cancel_are_remembered_and_signing_out_forgets(
    console: tuple[Runtime, TestClient],
) -> None:
    runtime, client = console
    writ = runtime.writ
    first, second = (
        writ.patch(
            CLERK, "Payment", writ.create(CLERK, "Payment", {"amount": "5"}).id, {"amount": "9"}
        ).approval_id
        for _ in range(2)
    )
    assert first is not None and second is not None
    signed_in(client, "maria", "manager")
    assert decide(client, first, "reject", reason="not now").status_code == 303
    assert int(client.cookies["writ_seen"]) == runtime.head()
    signed_in(client, "carol", "clerk")
    assert decide(client, second, "cancel").status_code == 303
    assert int(client.cookies["writ_seen"]) == runtime.head()
    assert client.post("/console/sign-out", data={"csrf": CSRF}, headers={"Origin": ORIGIN})
    assert "writ_seen" not in client.cookies, "signing out forgets the position"


@pytest.mark.parametrize("forged", ["999999999999", "1" * 40, "abc", "-3", ""])
def test_a_forged_position_waits_for_the_log_s_head_at_most(
    console: tuple[Runtime, TestClient], forged: str
) -> None:
    """The cookie is the visitor's to send: a position no decision gave is read as the log's head (the
    views hold it, so the page is current and says nothing), and one that is no number is ignored."""
    runtime, client = console
    runtime.writ.create(CLERK, "Order", {"sku": "F-1", "total": "1"})
    runtime.catch_up()
    signed_in(client, "maria", "manager")
    client.cookies.set("writ_seen", forged)
    assert waiting(client) == (set(), False)


@pytest.mark.parametrize("after", ["²", "٣", "1_0", " 1", "1" * 19])
def test_a_log_position_that_is_no_whole_number_is_refused(
    console: tuple[Runtime, TestClient], after: str
) -> None:
    """``int`` reads some of these, and ``str.isdigit`` admits "²", which ``int`` refuses: a clear refusal each."""
    _, client = console
    signed_in(client, "ada", "auditor")
    page = client.get("/console/decisions", params={"after": after})
    assert page.status_code == 400 and "INVALID_INPUT" in page.text, page.text[:300]


def test_a_refused_decision_is_remembered_too(console: tuple[Runtime, TestClient]) -> None:
    """A refusal is recorded (a failed execution ends its request too): the pages after it wait for it."""
    runtime, client = console
    writ = runtime.writ
    payment = writ.create(CLERK, "Payment", {"amount": "5"}).id
    parked = writ.patch(CLERK, "Payment", payment, {"amount": "9"}).approval_id
    assert parked is not None
    before = runtime.head()
    signed_in(client, "maria", "manager")
    refused = decide(client, parked, "reject", reason=" ")
    assert refused.status_code == 400 and "INVALID_INPUT" in refused.text
    assert int(client.cookies["writ_seen"]) == runtime.head() > before, "the refusal is in the log"

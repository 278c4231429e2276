"""The console's defences, in headless Chromium against a real ``writ serve``, on both databases.

Every page is served with a strict Content-Security-Policy and loads nothing but what the server sends
(the ``visitors`` fixture checks every request of every test; here every page is opened once, ``/docs``
included); a form post without the session's CSRF token, with another's, or from another origin (a page
on another port of the same host: same site, so the SameSite cookies go along, and only the Origin check
stops it) is refused and changes nothing, while the same post from the console's own page goes through;
``writ serve`` offers no development sign-in; the pages work from the keyboard, every control is labelled,
and they fit a phone's width.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.console import Visitor, api, fresh_tenant, person, settle, visit
from tests.http_support import Server

pytestmark = pytest.mark.browser

PAGES = (
    "/console/",
    "/console/approvals/{approval}",
    "/console/records",
    "/console/records/Order",
    "/console/records/Order/{record}",
    "/console/decisions",
    "/console/log",
    "/docs",
)
CONTROLS = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter(control => control.labels.length === 0).map(control => control.name || control.outerHTML)"""


def scene(server: Server) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A tenant with an order waiting for a manager's approval: (tenant, the order, the parked write)."""
    tenant = fresh_tenant()
    carol = person("carol", tenant, "clerk")
    made = api(server, "POST", "/v1/Order", carol, {"sku": "SAFE-1", "total": "5"})
    waiting = api(
        server, "PATCH", f"/v1/Order/{made['id']}", carol, {"total": "50000"}, expect=(202,)
    )
    settle(server, waiting["position"])
    return tenant, made, waiting


def policy(header: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in header.split(";") if part.strip()}


def test_every_page_loads_only_from_the_server_under_a_strict_policy(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, made, waiting = scene(server)
    manager = visit(browser, server, visitors)
    manager.sign_in(person("maria", tenant, "manager"))
    for path in PAGES:
        response = manager.page.goto(
            path.format(approval=waiting["approval_id"], record=made["id"])
        )
        assert response.status == 200, path
        headers = response.all_headers()
        rules = policy(headers["content-security-policy"])
        assert rules["default-src"] == ["'self'"] and rules["script-src"] == ["'none'"]
        assert rules["frame-ancestors"] == ["'none'"] and rules["form-action"] == ["'self'"]
        sources = [source for values in rules.values() for source in values]
        assert not [s for s in sources if s not in ("'self'", "'none'")], (
            "no inline, eval, wildcard or origin"
        )
        assert (
            headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        )
        header = manager.page.locator("header.bar")
        assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(27, 31, 36)", (
            f"{path}: the stylesheet, served by the console, applies"
        )
    assert any(url.endswith("/console/static/console.css") for url in manager.requests)
    assert all(
        r.all_headers().get("cache-control") == "no-store"
        for r in manager.documents
        if "/console/" in r.url
    ), "pages holding records' data are not cached"


def test_the_recorder_sees_a_request_that_leaves_the_server(browser: Any, server: Server) -> None:
    """The oracle of the check above: a page asking another origin for an image is recorded doing so."""
    context = browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.set_content('<img src="http://127.0.0.2:9/elsewhere.png" alt="">')
    context.close()
    assert "http://127.0.0.2:9/elsewhere.png" in seen


@contextmanager
def attacker_page(html: str) -> Iterator[str]:
    """A page on another port of this host (another origin, the same site); its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = html.encode()
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_post_without_the_token_or_from_another_origin_is_refused(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, made, waiting = scene(server)
    manager = visit(browser, server, visitors)
    manager.sign_in(person("maria", tenant, "manager"))
    token, fingerprint = (
        manager.csrf(),
        manager.card(waiting["approval_id"]).locator("input[name=fingerprint]").input_value(),
    )
    approve = f"/console/approvals/{waiting['approval_id']}/approve"
    for form, origin in (
        ({"fingerprint": fingerprint}, server.url),
        ({"fingerprint": fingerprint, "csrf": "x" * 43}, server.url),
        ({"fingerprint": fingerprint, "csrf": token}, "http://127.0.0.1:1"),
        ({"fingerprint": fingerprint, "csrf": token}, None),
    ):
        refused = manager.post(approve, form, origin=origin)
        assert refused.status == 403 and "FORM_REFUSED" in refused.text(), (form, origin)

    form = (
        f'<form method="post" action="{server.url}{approve}"><input type="hidden" name="csrf" value="{token}">'
        f'<input type="hidden" name="fingerprint" value="{fingerprint}"><button>Win a prize</button></form>'
    )
    with attacker_page(form) as elsewhere:
        manager.elsewhere.add(elsewhere)
        manager.page.goto(elsewhere)
        manager.page.get_by_role("button", name="Win a prize").click()
        manager.page.wait_for_load_state()
        assert "FORM_REFUSED" in manager.page.content(), (
            "the Origin check stops a same-site page knowing the token"
        )
    assert (
        api(
            server,
            "GET",
            f"/v1/approvals/{waiting['approval_id']}",
            person("maria", tenant, "manager"),
        )["status"]
        == "pending"
    ), "nothing refused changed anything"

    manager.open("/console/")
    accepted = manager.post(
        approve, {"fingerprint": fingerprint, "csrf": manager.csrf()}, origin=server.url
    )
    assert accepted.status == 303, "the same post from the console's own session goes through"
    assert (
        api(server, "GET", f"/v1/Order/{made['id']}/history", person("carol", tenant, "clerk"))[
            "events"
        ][-1]["after"]["total"]
        == "50000"
    )


def test_writ_serve_offers_no_development_sign_in(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    stranger = visit(browser, server, visitors)
    stranger.open("/console/sign-in")
    assert "Development sign-in" not in stranger.page.content()
    minted = stranger.post(
        "/console/dev-sign-in",
        {"csrf": stranger.csrf(), "user": "maria", "tenant": "acme", "roles": "manager"},
        origin=server.url,
    )
    assert minted.status == 404 and not [
        c for c in stranger.context.cookies() if c["name"] == "writ_session"
    ]


def test_keyboard_and_screen_reader_labels(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, made, waiting = scene(server)
    manager = visit(browser, server, visitors)
    manager.open("/console/sign-in")
    assert manager.page.evaluate(CONTROLS) == []
    manager.sign_in(person("maria", tenant, "manager"))
    for path in PAGES:
        page = manager.open(path.format(approval=waiting["approval_id"], record=made["id"]))
        assert page.evaluate(CONTROLS) == [], f"{path}: every control has a label"
        assert (
            page.locator("html").get_attribute("lang") == "en" and page.locator("h1").count() == 1
        )
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content", path
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main", (
            f"{path}: the skip link moves focus to main"
        )
    manager.open("/console/")
    card = manager.card(waiting["approval_id"])
    card.get_by_label("Note with your approval").focus()
    manager.page.keyboard.type("checked by phone")
    manager.page.keyboard.press("Tab")
    assert manager.page.evaluate("document.activeElement.textContent") == "Approve"
    manager.page.keyboard.press("Enter")
    manager.page.wait_for_url("**?done=approve")
    assert "executed" in manager.page.locator("h1").inner_text(), "approved with the keyboard alone"


def test_the_pages_fit_a_phones_width(
    browser: Any, server: Server, visitors: list[Visitor]
) -> None:
    tenant, made, waiting = scene(server)
    phone = visit(browser, server, visitors, width=390, height=844)
    phone.sign_in(person("maria", tenant, "manager"))
    for path in PAGES:
        page = phone.open(path.format(approval=waiting["approval_id"], record=made["id"]))
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{path} is {overflow}px wider than the phone"

"""Helpers of the browser tests: people signing in to the console, and the API calls that set the scene.

The scene is written through the HTTP API of the same ``writ serve`` (the real door, with real tokens);
what the console shows is read in the browser. Each test works in tenants of its own (``fresh_tenant``),
so tests sharing a server never see each other's requests.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from tests.http_support import Server, token
from tests.support import wait_until


@dataclass
class Visitor:
    """One person's browser context and page; ``requests``: every URL its pages asked for."""

    context: Any
    page: Any
    requests: list[str] = field(default_factory=list)
    documents: list[Any] = field(default_factory=list)
    """Responses to page loads (main frame documents), to check their headers."""
    elsewhere: set[str] = field(default_factory=set)
    """Origins other than the server a test sends this visitor to on purpose (an attacker's page)."""

    def sign_in(self, bearer: str) -> None:
        """Sign in through the sign-in page, pasting ``bearer``; land on the inbox."""
        page = self.page
        page.goto("/console/sign-in")
        page.get_by_label("Your token").fill(bearer)
        page.get_by_role("button", name="Sign in", exact=True).click()
        page.wait_for_url("**/console/")

    def open(self, path: str) -> Any:
        """Load ``path`` and return the page (its response is kept in ``documents``)."""
        self.page.goto(path)
        return self.page

    def csrf(self) -> str:
        """The session's form token, as the current page's forms carry it."""
        found = re.search(r'name="csrf" value="([^"]+)"', self.page.content())
        assert found, "the page carries the CSRF token in its forms"
        return found.group(1)

    def post(self, path: str, form: dict[str, str], *, origin: str | None) -> Any:
        """A form post from this session (its cookies), outside any page, with ``origin`` (None: no header)."""
        headers = {"Origin": origin} if origin is not None else {}
        return self.page.request.post(path, form=form, headers=headers, max_redirects=0)

    def card(self, approval_id: str) -> Any:
        return self.page.locator(f"#request-{approval_id}")


def visit(
    browser: Any, server: Server, visitors: list[Visitor], *, width: int = 1280, height: int = 900
) -> Visitor:
    context = browser.new_context(base_url=server.url, viewport={"width": width, "height": height})
    visitor = Visitor(context, context.new_page())
    context.on("request", lambda request: visitor.requests.append(request.url))
    visitor.page.on(
        "response",
        lambda response: (
            visitor.documents.append(response)
            if response.request.resource_type == "document"
            else None
        ),
    )
    visitors.append(visitor)
    return visitor


def fresh_tenant() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def api(
    server: Server,
    method: str,
    path: str,
    bearer: str,
    body: Any = None,
    *,
    expect: tuple[int, ...] = (200, 201, 202),
    **headers: str,
) -> Any:
    """One API call as ``bearer``; its JSON body (the status must be one of ``expect``)."""
    response = server.call(method, path, bearer=bearer, json=body, headers=headers)
    assert response.status_code in expect, response.text
    return response.json()


def settle(server: Server, position: int | None) -> None:
    """Wait until the views have reached ``position`` (read-your-writes through the API)."""
    if position is None:
        return
    response = server.call("GET", "/v1/approvals", headers={"Writ-Wait-Position": str(position)})
    assert response.status_code == 200, response.text


def person(user: str, tenant: str, *roles: str) -> str:
    return token(user, tenant, *roles, lifetime=3600)


def wait_for_text(visitor: Visitor, path: str, text: str, timeout: float = 20) -> None:
    """Reload ``path`` until it shows ``text`` (PostgreSQL: the projection worker catches up on its own)."""

    def shown() -> bool:
        visitor.open(path)
        return text in visitor.page.content()

    wait_until(shown, timeout, f"{path} to show {text!r}", every=0.2)


def facts(list_: Any) -> dict[str, str]:
    """A ``<dl>`` as {term: description}, whitespace folded."""
    terms = [" ".join(t.split()) for t in list_.locator("dt").all_inner_texts()]
    descriptions = [" ".join(d.split()) for d in list_.locator("dd").all_inner_texts()]
    return dict(zip(terms, descriptions, strict=True))

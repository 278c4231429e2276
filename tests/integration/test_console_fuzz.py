"""Hypothesis against the console's doors, on both databases: every page's query parameters and path, the
decision forms, the sign-in form and the last-seen cookie, with any text (the characters its parsers split on,
decode or refuse, often). No answer is a 5xx, and a refusal is a page that names its code.

``/console/decisions?after=²`` once answered 503: ``str.isdigit`` admits "²", which ``int`` refuses.
``WRIT_FUZZ_EXAMPLES`` (default 4) scales the examples: 25 times it per test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from domain.catalog import Catalog
from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime
from entrypoints.http.app import create_app
from entrypoints.http.auth import JwtVerifier
from tests.catalogs import principal
from tests.http_support import AUDIENCE, ISSUER, SECRET, token

EXAMPLES = 25 * int(os.environ.get("WRIT_FUZZ_EXAMPLES", "4"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
ORIGIN = "http://testserver"
CSRF = "c" * 43
SPECIAL = [
    "\x00",
    "\x7f",
    ":",
    ",",
    "|",
    "%",
    "-",
    "é",
    "²",
    "٣",
    "\u2028",
    "a",
    "1",
    "0",
    " ",
    "_",
]
text = st.text(st.sampled_from(SPECIAL), max_size=8) | st.text(
    st.characters(codec="utf-8"), max_size=30
)
ascii_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=24)
EDGES = [
    "²",
    "1²",
    "٣",
    "-1",
    "9" * 19,
    "1_0",
    " 1",
    "",
    "0",
    "1",
    "desc",
    "2026-01-01T00:00:00Z",
    "x:eq:y",
]
"""Values its parsers have got wrong, or could: digits ``int`` refuses or reads, past 64 bits, empty."""
numbers = st.sampled_from(EDGES) | st.integers(min_value=-5, max_value=2**70).map(str) | text
NAMES = [
    "after",
    "field",
    "op",
    "value",
    "sort",
    "order",
    "deleted",
    "by",
    "model",
    "outcome",
    "since",
    "until",
    "done",
    "next",
]
PAGES = [
    "/console/",
    "/console/records",
    "/console/records/Order",
    "/console/records/{}",
    "/console/records/Order/{}",
    "/console/approvals/{}",
    "/console/decisions",
    "/console/log",
    "/console/sign-in",
]


@pytest.fixture
def console(catalog: Catalog, database_url: str) -> Iterator[tuple[Runtime, TestClient, str]]:
    """The console over a store with an order and a parked change; signed in as one who reads everything."""
    verifier = JwtVerifier(secret=SECRET.encode(), issuer=ISSUER, audience=AUDIENCE)
    with (
        Runtime(catalog, database_url) as runtime,
        TestClient(create_app(runtime, verifier), base_url=ORIGIN) as client,
    ):
        clerk = principal("carol", "acme", "clerk")
        order = runtime.writ.create(clerk, "Order", {"sku": "FUZZ-1", "total": "10"}).id
        parked = runtime.writ.patch(clerk, "Order", order, {"total": "50000"}).approval_id
        assert parked is not None
        runtime.catch_up()
        client.cookies.set("writ_session", token("ann", "acme", "auditor", "manager", "clerk"))
        client.cookies.set("writ_csrf", CSRF)
        yield runtime, client, parked


def answered(response: Any, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        assert re.search(r"<strong>[A-Z_]+</strong>", response.text), f"{what}: no code shown"


@pytest.mark.parametrize("page", PAGES)
@settings(FUZZ, max_examples=max(10, EXAMPLES // 2))
@given(
    part=text,
    params=st.lists(st.tuples(st.sampled_from(NAMES) | text, numbers), max_size=6),
    seen=st.none() | ascii_text | numbers.filter(str.isascii),
)
def test_no_page_answers_a_5xx(
    console: tuple[Runtime, TestClient, str],
    page: str,
    part: str,
    params: list[tuple[str, str]],
    seen: str | None,
) -> None:
    _, client, _ = console
    if seen is None:
        client.cookies.delete("writ_seen")
    else:
        client.cookies.set("writ_seen", seen)
    path = page.format(quote(part, safe=""))
    response = client.get(path, params=params, follow_redirects=False)
    answered(response, f"GET {path} {params!r} seen={seen!r}")


@FUZZ
@given(
    action=st.sampled_from(["approve", "reject", "cancel"]),
    target=st.sampled_from(["parked", "other"]),
    other=text,
    form=st.dictionaries(
        st.sampled_from(["reason", "fingerprint", "csrf"]) | text, text, max_size=4
    ),
)
def test_no_decision_form_answers_a_5xx(
    console: tuple[Runtime, TestClient, str],
    action: str,
    target: str,
    other: str,
    form: dict[str, str],
) -> None:
    runtime, client, _ = console
    if target == "parked":  # a request of its own: an earlier example may have ended the fixture's
        clerk = principal("carol", "acme", "clerk")
        order = runtime.writ.create(clerk, "Order", {"sku": "FUZZ-2", "total": "10"}).id
        approval = str(runtime.writ.patch(clerk, "Order", order, {"total": "50000"}).approval_id)
    else:
        approval = quote(other, safe="")
    sent = {"csrf": CSRF, **{k: v for k, v in form.items() if k != "csrf"}}
    response = client.post(
        f"/console/approvals/{approval}/{action}",
        data=sent,
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )
    answered(response, f"POST {approval}/{action} {sent!r}")


@FUZZ
@given(form=st.dictionaries(st.sampled_from(["token", "next", "csrf"]) | text, text, max_size=4))
def test_no_sign_in_form_answers_a_5xx(
    console: tuple[Runtime, TestClient, str], form: dict[str, str]
) -> None:
    _, client, _ = console
    sent = {"csrf": CSRF, **{k: v for k, v in form.items() if k != "csrf"}}
    response = client.post(
        "/console/sign-in", data=sent, headers={"Origin": ORIGIN}, follow_redirects=False
    )
    answered(response, f"POST sign-in {sent!r}")


@pytest.mark.parametrize(
    ("method", "path", "status", "code", "allow", "page"),
    [
        ("GET", "/console/no/such/page", 404, "NOT_FOUND", None, True),
        ("GET", "/console%0A", 404, "NOT_FOUND", None, True),  # a path the mount does not take
        ("GET", "/console/approvals/x/approve", 405, "METHOD_NOT_ALLOWED", "POST", True),
        ("POST", "/console/static/console.css", 405, "METHOD_NOT_ALLOWED", "GET, HEAD", True),
        ("GET", "/v1/Order/a/b/c", 404, "NOT_FOUND", None, False),
        ("GET", "/consoles", 404, "NOT_FOUND", None, False),  # not the console's
        ("DELETE", "/healthz", 405, "METHOD_NOT_ALLOWED", "GET, HEAD", False),
        # a method no route names
        (
            "QUERY",
            "/v1/Order",
            405,
            "METHOD_NOT_ALLOWED",
            "GET, POST",
            False,
        ),
        ("QUERY", "/console/records", 405, "METHOD_NOT_ALLOWED", "GET, HEAD", True),
    ],
)
def test_a_path_with_no_route_names_its_code(
    console: tuple[Runtime, TestClient, str],
    method: str,
    path: str,
    status: int,
    code: str,
    allow: str | None,
    page: bool,
) -> None:
    """Under /console a console page (the visitor signed in, the security headers once each); elsewhere the
    API's error."""
    _, client, _ = console
    response = client.request(method, path, follow_redirects=False)
    assert (response.status_code, response.headers.get("allow")) == (status, allow)
    if not page:
        assert response.json()["code"] == code
        return
    assert f"<strong>{code}</strong>" in response.text and "Signed in as" in response.text
    named = [k.decode().lower() for k, _ in response.headers.raw]
    for header in ("content-security-policy", "x-frame-options", "cache-control"):
        assert named.count(header) == 1, f"{header} once: {response.headers}"


def _sign_in(client: TestClient, form: dict[str, str]) -> Any:
    """The sign-in form posted as the console's own page would (its CSRF cookie and token, its origin)."""
    client.cookies.clear()
    client.cookies.set("writ_csrf", CSRF)
    return client.post(
        "/console/sign-in",
        data={"csrf": CSRF, **form},
        headers={"Origin": ORIGIN},
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    ("sent", "lands"),
    [
        ("/console/records/Order", "/console/records/Order"),
        ("https://evil.example/console/", "/console/"),
        ("/consoles", "/console/"),
        ("/console//evil.example/", "/console/"),
        ("/console/\\evil.example/", "/console/"),
    ],
)
def test_signing_in_goes_on_to_a_console_page_only(
    console: tuple[Runtime, TestClient, str], sent: str, lands: str
) -> None:
    response = _sign_in(console[1], {"token": token("ann", "acme", "clerk"), "next": sent})
    assert response.status_code == 303 and response.headers["location"] == lands, sent
    assert "writ_session" in response.cookies


@pytest.mark.parametrize(
    ("signed", "why"),
    [
        (token("ann", "acme", "clerk", pad="x" * 4000), "longer than 3,800 bytes"),
        (token("ann", "no such tenant!", "clerk"), "INVALID_INPUT"),
        (token("ann", "acme", "clerk", lifetime=-120), "UNAUTHENTICATED"),
    ],
)
def test_a_token_the_console_cannot_keep_signs_nobody_in(
    console: tuple[Runtime, TestClient, str], signed: str, why: str
) -> None:
    """Too long for a cookie, a tenant no principal can carry, expired: refused, and no session is kept."""
    response = _sign_in(console[1], {"token": signed})
    assert response.status_code in (400, 401) and why in response.text, response.text[:300]
    assert "writ_session" not in response.cookies


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_session_cookies_are_http_only_strict_and_over_https_secure_host_cookies(
    console: tuple[Runtime, TestClient, str], scheme: str
) -> None:
    _, client, _ = console
    origin = f"{scheme}://testserver"
    prefix = "__Host-" if scheme == "https" else ""
    with TestClient(client.app, base_url=origin) as browser:
        browser.cookies.set(f"{prefix}writ_csrf", CSRF)
        response = browser.post(
            "/console/sign-in",
            data={"csrf": CSRF, "token": token("ann", "acme", "clerk")},
            headers={"Origin": origin},
            follow_redirects=False,
        )
    assert response.status_code == 303, response.text[:300]
    made = {
        line.split("=", 1)[0]: [part.strip().lower() for part in line.split(";")[1:]]
        for line in response.headers.get_list("set-cookie")
    }
    assert set(made) == {f"{prefix}writ_session", f"{prefix}writ_csrf"}, made
    for name, flags in made.items():
        assert {"httponly", "path=/", "samesite=strict"} <= set(flags), (name, flags)
        assert ("secure" in flags) == (scheme == "https"), (name, flags)


def test_the_development_sign_in_runs_on_the_embedded_default_with_a_secret_only(
    catalog: Catalog, database_url: str
) -> None:
    """``writ console``'s sign-in mints any identity: the console refuses it on PostgreSQL and without an HS256
    secret, whatever the command in front of it checked."""
    signing = JwtVerifier(secret=SECRET.encode(), issuer=ISSUER, audience=AUDIENCE)
    with Runtime(catalog, database_url) as runtime:
        if not runtime.backend.embedded:
            with pytest.raises(ConfigurationError, match="embedded default only"):
                create_app(runtime, signing, dev_sign_in=True)
            return
        with pytest.raises(ConfigurationError, match="needs an HS256 secret"):
            create_app(runtime, JwtVerifier(audience=AUDIENCE), dev_sign_in=True)
        form = {"csrf": CSRF, "user": "maria", "tenant": "acme", "roles": "manager"}
        for dev, answer in ((False, 404), (True, 303)):
            origin = "http://127.0.0.1"
            app = create_app(runtime, signing, dev_sign_in=dev)
            with TestClient(app, base_url=origin, cookies={"writ_csrf": CSRF}) as client:
                minted = client.post(
                    "/console/dev-sign-in",
                    data=form,
                    headers={"Origin": origin},
                    follow_redirects=False,
                )
            assert minted.status_code == answer, (dev, minted.text[:300])
            assert ("writ_session" in minted.cookies) == dev


@pytest.mark.parametrize(
    ("headers", "form"),
    [
        ({"Origin": "http://evil.example"}, {"csrf": CSRF}),  # another origin
        ({"Referer": "http://evil.example/page"}, {"csrf": CSRF}),
        ({}, {"csrf": CSRF}),  # neither Origin nor Referer
        ({"Origin": ORIGIN}, {}),  # no token
        ({"Origin": ORIGIN}, {"csrf": "d" * 43}),  # another session's token
    ],
)
def test_a_decision_form_not_from_this_consoles_session_changes_nothing(
    console: tuple[Runtime, TestClient, str], headers: dict[str, str], form: dict[str, str]
) -> None:
    runtime, client, parked = console
    response = client.post(
        f"/console/approvals/{parked}/reject",
        data=form,
        headers=headers,
        follow_redirects=False,
    )
    assert response.status_code == 403 and "FORM_REFUSED" in response.text, response.text[:300]
    manager = principal("ann", "acme", "manager")
    assert runtime.writ.approval(manager, parked)["status"] == "pending"

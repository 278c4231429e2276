"""Fixtures of the browser tests: a real ``writ serve`` per database, headless Chromium driven by Playwright.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``, or ``WRIT_TEST_CHROMIUM``), launched by
Playwright with a fresh profile (Playwright makes a new ``--user-data-dir`` for every launch) and without
background networking; Playwright's own browser downloads are never used. Under ``CI=true`` a missing
browser or Playwright fails the tests; locally they are skipped with the reason, like the other services.

Every page a test opens records every request it makes: at the end of the test each must have gone to the
server under test (``Visitor.requests``), so no console page loads anything from elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.console import Visitor
from tests.conftest import service_unavailable
from tests.http_support import CATALOG, Server, database, start

CHROMIUM = os.environ.get("WRIT_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--no-default-browser-check",
]


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for the package's tests (closed before other packages' tests run their own event
    loops)."""
    if not Path(CHROMIUM).is_file():
        service_unavailable(
            "Chromium", FileNotFoundError(f"{CHROMIUM} (apt-get install -y chromium)")
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_unavailable("Playwright", exc)
        raise
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(
    scope="package", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("console")
    catalog = directory / "writ.toml"
    catalog.write_text(CATALOG)
    for url in database(request.param, directory):
        yield from start(url, catalog)


@pytest.fixture
def visitors(browser: Any, server: Server) -> Iterator[list[Visitor]]:
    """Browser contexts of this test (one per person); each request they made is checked at the end."""
    opened: list[Visitor] = []
    yield opened
    origin = server.url
    for visitor in opened:
        strays = [
            url for url in visitor.requests if _origin(url) not in {origin, *visitor.elsewhere}
        ]
        visitor.context.close()
        assert strays == [], f"requests that left the server: {strays}"
        assert visitor.requests, "the visitor opened pages"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"

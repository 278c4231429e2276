"""Screenshots of the console's main pages for docs/console.md: ``python -m tests.browser.screenshots [DIR]``.

It starts ``writ serve`` on a fresh SQLite file with the catalog ``writ init`` writes, tells a short story
through the HTTP API (orders, a change waiting for approval, a bulk update waiting too, a refusal, a record
purged), signs in as a manager in headless Chromium and saves PNGs of the inbox, one request's diff, a
record's timeline, a purged record's timeline, the decisions feed, the log page, the top of ``/docs``, and the
inbox at a phone's width, in DIR (default ``docs/screenshots``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

from entrypoints.demo import demo_catalog_text
from tests.browser.conftest import CHROMIUM, FLAGS
from tests.browser.console import Visitor, api, person, settle, visit
from tests.http_support import Server, start
from tests.support import ROOT, writ_command


def story(server: Server) -> dict[str, str]:
    """The scene the screenshots show; the ids of what they open."""
    carol, maria = person("carol", "acme", "clerk"), person("maria", "acme", "manager")
    lamp = api(
        server,
        "POST",
        "/v1/Order",
        carol,
        {"sku": "LAMP-42", "total": "89.90", "items": [{"sku": "BULB"}]},
        **{"Writ-Purpose": "phone order"},
    )
    api(
        server,
        "PATCH",
        f"/v1/Order/{lamp['id']}",
        carol,
        {"quantity": 3, "note": "gift wrap"},
        **{"Writ-Purpose": "customer called back"},
    )
    desk = api(
        server,
        "POST",
        "/v1/Order",
        carol,
        {"sku": "DESK-9", "total": "640"},
        **{"Writ-Purpose": "web order"},
    )
    api(
        server,
        "POST",
        "/v1/Order",
        carol,
        {"sku": "DESK-9", "total": "1", "colour": "red"},
        expect=(422,),
        **{"Writ-Purpose": "web order"},
    )
    big = api(
        server,
        "PATCH",
        f"/v1/Order/{lamp['id']}",
        carol,
        {"total": "26000", "status": "placed"},
        expect=(202,),
        **{"Writ-Purpose": "trade customer: 290 lamps"},
    )
    bulk = api(
        server,
        "POST",
        "/v1/Order/bulk-update",
        person("dan", "acme", "manager"),
        {"filters": [["status", "eq", "draft"]], "changes": {"total": "12000"}},
        expect=(202,),
        **{"Writ-Purpose": "price list 2027"},
    )
    gone = api(
        server,
        "POST",
        "/v1/Order",
        carol,
        {"sku": "CHAIR-3", "total": "120"},
        **{"Writ-Purpose": "web order"},
    )
    api(
        server, "DELETE", f"/v1/Order/{gone['id']}", maria, **{"Writ-Purpose": "customer cancelled"}
    )
    purged = api(
        server,
        "DELETE",
        f"/v1/Order/{gone['id']}?force=true",
        maria,
        **{"Writ-Purpose": "erasure request 2026-118"},
    )
    settle(server, max(big["position"], bulk["position"], purged["position"]))
    writ_command("checkpoint", env={"WRIT_DATABASE_URL": server.database_url})
    return {
        "lamp": lamp["id"],
        "desk": desk["id"],
        "gone": gone["id"],
        "approval": big["approval_id"],
    }


def shoot(visitor: Visitor, path: str, target: Path) -> None:
    visitor.open(path)
    visitor.page.screenshot(path=str(target), full_page=True)
    print(f"wrote {target}")


def main(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="writ-shots-") as tmp:
        catalog = Path(tmp) / "writ.toml"
        catalog.write_text(demo_catalog_text())
        for server in start(f"sqlite:///{tmp}/writ.db", catalog):
            ids = story(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, args=FLAGS, headless=True
                )
                pictures(browser, server, ids, directory)
                browser.close()


def pictures(browser: Any, server: Server, ids: dict[str, str], directory: Path) -> None:
    opened: list[Visitor] = []
    maria = visit(browser, server, opened, width=1200, height=800)
    maria.sign_in(person("maria", "acme", "manager"))
    shoot(maria, "/console/", directory / "inbox.png")
    shoot(maria, f"/console/approvals/{ids['approval']}", directory / "approval-diff.png")
    shoot(maria, f"/console/records/Order/{ids['lamp']}", directory / "history.png")
    shoot(maria, f"/console/records/Order/{ids['gone']}", directory / "history-purged.png")
    shoot(maria, "/console/decisions", directory / "decisions.png")
    shoot(maria, "/console/log", directory / "log.png")
    maria.open("/docs")
    maria.page.screenshot(path=str(directory / "api-docs.png"))  # the top of a long page
    print(f"wrote {directory / 'api-docs.png'}")
    phone = visit(browser, server, opened, width=390, height=844)
    phone.sign_in(person("maria", "acme", "manager"))
    shoot(phone, "/console/", directory / "inbox-phone.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshots")

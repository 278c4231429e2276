"""A long history a page at a time, on both databases: over a real ``writ serve`` the pages and their cursors
cover every event exactly once, in order, with the right before/after values; in process, one page builds
no more entries (and steps through no more events) than it returns, however deep it starts; a purged
record's pages show its trail without data."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import application.loading
import application.queries
from application.service import Writ
from entrypoints.history_pages import history_page
from tests.catalogs import principal
from tests.http_support import Server, server, token

__all__ = ["server"]  # the fixture

PATCHES = 250
CLERK = principal("carol")
MANAGER = principal("maria", "acme", "manager")


def expected_counter(version: int) -> dict[str, int | None]:
    """The oracle: version 1 creates the order (counter 0), version k + 1 is the k-th patch (counter k)."""
    return (
        {"before": None, "after": 0}
        if version == 1
        else {"before": version - 2, "after": version - 1}
    )


def check_pages(pages: list[dict[str, Any]], last_version: int) -> None:
    versions = [event["version"] for page in pages for event in page["events"]]
    assert versions == list(range(1, last_version + 1)), "every event once, in order"
    for page in pages:
        for event in page["events"]:
            assert event["changes"].get("counter") == expected_counter(event["version"]), event[
                "version"
            ]
    cursors = [page["next_cursor"] for page in pages]
    assert cursors[-1] is None and all(
        cursor == page["events"][-1]["version"]
        for cursor, page in zip(cursors[:-1], pages[:-1], strict=True)
    )


def test_a_long_history_pages_over_http(server: Server) -> None:
    made = server.call("POST", "/v1/Order", json={"sku": "LONG-1", "total": "1"}).json()
    for count in range(1, PATCHES + 1):
        answer = server.call("PATCH", f"/v1/Order/{made['id']}", json={"counter": count})
        assert answer.status_code == 200, answer.text
    path = f"/v1/Order/{made['id']}/history"
    first = server.call("GET", path).json()
    assert (len(first["events"]), first["next_cursor"]) == (100, 100), (
        "100 by default, never the whole history"
    )
    pages, after = [], 0
    while after is not None:
        page = server.call("GET", path, params={"after": after, "limit": 70}).json()
        assert len(page["events"]) <= 70 and (page["model"], page["id"]) == ("Order", made["id"])
        pages.append(page)
        assert page["next_cursor"] is None or page["next_cursor"] > after, "the cursor moves on"
        after = page["next_cursor"]
    assert len(pages) == 4
    check_pages(pages, PATCHES + 1)
    whole = server.call("GET", path, params={"limit": 1000}).json()
    assert len(whole["events"]) == PATCHES + 1 and whole["next_cursor"] is None
    past = server.call("GET", path, params={"after": 5000}).json()
    assert (past["events"], past["next_cursor"]) == ([], None)
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": "-1"}, {"limit": "ten"}):
        refused = server.call("GET", path, params=bad)
        assert (refused.status_code, refused.json()["code"]) == (400, "INVALID_INPUT"), bad
    other_tenant = server.call("GET", path, params={"after": 100}, bearer=token("eve", "globex"))
    assert other_tenant.status_code == 404


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many history entries are built and how many events the history stream steps through."""
    counts = {"entries": 0, "steps": 0}

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        application.queries, "_entry", counting("entries", application.queries._entry)
    )
    monkeypatch.setattr(application.loading, "step", counting("steps", application.loading.step))
    return counts


@pytest.fixture
def long_order(writ: Writ) -> Iterator[str]:
    made = writ.create(CLERK, "Order", {"sku": "LONG-2", "total": "1"})
    for count in range(1, PATCHES + 1):
        writ.patch(CLERK, "Order", made.id, {"counter": count})
    yield made.id


def test_a_page_builds_only_itself(writ: Writ, long_order: str, counted: dict[str, int]) -> None:
    deep = history_page(writ, CLERK, "Order", long_order, after=200, limit=20)
    assert [event["version"] for event in deep["events"]] == list(range(201, 221)) and deep[
        "next_cursor"
    ] == 220
    assert deep["events"][0]["changes"]["counter"] == expected_counter(201), (
        "before: the state at version 200"
    )
    assert counted == {"entries": 21, "steps": 21}, (
        "the page and the one entry that says more follow"
    )
    counted.update(entries=0, steps=0)
    first = history_page(writ, CLERK, "Order", long_order)
    assert len(first["events"]) == 100 and counted["entries"] == 101
    counted.update(entries=0, steps=0)
    last = history_page(writ, CLERK, "Order", long_order, after=240, limit=1000)
    assert [event["version"] for event in last["events"]] == list(range(241, PATCHES + 2))
    assert last["next_cursor"] is None and counted == {"entries": 11, "steps": 11}
    exact = history_page(writ, CLERK, "Order", long_order, after=240, limit=11)
    assert (len(exact["events"]), exact["next_cursor"]) == (11, None), "the page holds the rest"
    short = history_page(writ, CLERK, "Order", long_order, after=240, limit=10)
    assert (len(short["events"]), short["next_cursor"]) == (10, 250), "one more follows"


def test_a_purged_records_pages_show_its_trail_without_data(writ: Writ, long_order: str) -> None:
    writ.purge(MANAGER.for_purpose("erasure request"), "Order", long_order)
    pages, after = [], 0
    while after is not None:
        pages.append(history_page(writ, CLERK, "Order", long_order, after=after, limit=90))
        after = pages[-1]["next_cursor"]
    events = [event for page in pages for event in page["events"]]
    assert [event["version"] for event in events] == list(range(1, PATCHES + 3))
    assert events[-1]["event"] == "Purged" and all(event["after"] == {} for event in events)
    assert all(event["actor"] in ("carol", "maria") for event in events), "who did what stays"

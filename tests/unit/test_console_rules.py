"""The console's pure parts: who a request waits for, the per-field diffs, how values read.

The expected answers are written out by hand (no code shared with what is checked); the browser tests
check the same rules end to end.
"""

from __future__ import annotations

import pytest
from starlette.requests import Request

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.http.console import diffs
from entrypoints.http.console.inbox import waiting_for
from entrypoints.http.console.session import FormRefusedError, check_post
from entrypoints.http.console.showing import value, when
from tests.catalogs import SHOP_CATALOG

CATALOG = Catalog.from_toml(SHOP_CATALOG, source="tests/catalogs.py")
MARIA = Principal(user_id="maria", tenant_id="acme", roles=frozenset({"manager"}))
DAN = Principal(user_id="dan", tenant_id="acme", roles=frozenset({"director"}))
CAROL = Principal(user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}))


def request(
    model: str = "Order",
    requester: str = "carol",
    status: str = "pending",
    approvals: list[object] | None = None,
) -> dict[str, object]:
    return {"model": model, "requester": requester, "status": status, "approvals": approvals or []}


@pytest.mark.parametrize(
    ("who", "shown", "waits"),
    [
        (MARIA, request(), True),
        (MARIA, request(requester="maria"), False),  # my own
        (MARIA, request(status="executed"), False),  # no longer pending
        (MARIA, request(status="expired"), False),
        # approved already: as the views hold it, then as the command side does
        (MARIA, request(approvals=[{"approver": "maria", "at": "", "reason": None}]), False),
        (MARIA, request(approvals=["maria"]), False),
        (MARIA, request(approvals=["dan"]), True),  # someone else approved
        (DAN, request(), False),  # Order: managers approve
        (DAN, request(model="Payment"), True),  # Payment: managers, directors
        (CAROL, request(model="Payment", requester="maria"), False),  # a clerk approves nothing
        (MARIA, request(model="Gone"), False),  # a model no longer declared
    ],
)
def test_who_a_request_waits_for(who: Principal, shown: dict[str, object], waits: bool) -> None:
    assert waiting_for(who, CATALOG, shown) is waits


def test_a_preview_lists_the_changed_fields_only_by_name() -> None:
    diff = diffs.of_preview(
        {
            "before": {"sku": "A", "total": "95", "note": None, "_version": 1},
            "after": {"sku": "A", "total": "26000", "note": "rush", "_version": 2},
            "count": 1,
        }
    )
    assert [(c.name, c.before, c.after) for c in diff.changes] == [
        ("note", None, "rush"),
        ("total", "95", "26000"),
    ]
    assert not diff.bulk and not diff.erased


def test_a_create_lists_what_it_sets_and_a_bulk_its_count_and_sample() -> None:
    created = diffs.of_preview({"before": None, "after": {"sku": "A", "note": None}, "count": 1})
    assert [(c.name, c.before, c.after) for c in created.changes] == [("sku", None, "A")]
    bulk = diffs.of_preview(
        {"count": 40, "sample": [{"id": "r1", "before": {"total": "1"}, "after": {"total": "2"}}]}
    )
    assert bulk.bulk and bulk.count == 40
    assert [(rid, [(c.name, c.before, c.after) for c in cs]) for rid, cs in bulk.sample] == [
        ("r1", [("total", "1", "2")])
    ]


def test_an_erased_preview_and_a_redacted_history_entry_show_no_values() -> None:
    assert (
        diffs.of_preview(None).erased
        and diffs.of_preview({"before": {}, "after": {}}, shredded=True).erased
    )
    changes, redacted = diffs.of_entry({"redacted": True, "changes": {"total": {}, "note": {}}})
    assert redacted and [(c.name, c.shown) for c in changes] == [("note", False), ("total", False)]
    changes, redacted = diffs.of_entry({"changes": {"total": {"before": "1", "after": "2"}}})
    assert not redacted and [(c.name, c.before, c.after) for c in changes] == [("total", "1", "2")]


@pytest.mark.parametrize(
    ("shown", "text"),
    [
        (None, "—"),
        (True, "true"),
        (False, "false"),
        ("10.50", "10.50"),
        (3, "3"),
        (["a", 1], '["a",1]'),
        ({"k": None}, '{"k":null}'),
    ],
)
def test_values_read_as_text(shown: object, text: str) -> None:
    assert value(shown) == text


def test_times_read_in_utc_to_the_second() -> None:
    assert when("2026-12-06T15:54:48.123456+02:00") == "2026-12-06 13:54:48 UTC"
    assert when("2026-12-06T13:54:48Z") == "2026-12-06 13:54:48 UTC"
    assert when("not a time") == "not a time"


CSRF_TOKEN = "t" * 43


def posted(origin: str | None, cookie: str | None, *, referer: str | None = None) -> Request:
    """A console form post to http://127.0.0.1:8000 with these headers (the cookie: writ_csrf's value)."""
    headers = [(b"host", b"127.0.0.1:8000")]
    headers += [(b"origin", origin.encode())] if origin is not None else []
    headers += [(b"referer", referer.encode())] if referer is not None else []
    headers += [(b"cookie", f"writ_csrf={cookie}".encode())] if cookie is not None else []
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "path": "/console/approvals/x",
            "query_string": b"",
            "server": ("127.0.0.1", 8000),
            "headers": headers,
        }
    )


@pytest.mark.parametrize(
    ("origin", "referer", "cookie", "sent", "passes"),
    [
        ("http://127.0.0.1:8000", None, CSRF_TOKEN, CSRF_TOKEN, True),
        (None, "http://127.0.0.1:8000/console/inbox", CSRF_TOKEN, CSRF_TOKEN, True),
        ("https://evil.example", None, CSRF_TOKEN, CSRF_TOKEN, False),  # another origin
        ("http://127.0.0.1:8001", None, CSRF_TOKEN, CSRF_TOKEN, False),  # another port
        ("https://127.0.0.1:8000", None, CSRF_TOKEN, CSRF_TOKEN, False),  # another scheme
        (None, "https://evil.example/page", CSRF_TOKEN, CSRF_TOKEN, False),
        (None, None, CSRF_TOKEN, CSRF_TOKEN, False),  # neither Origin nor Referer
        ("http://127.0.0.1:8000", None, CSRF_TOKEN, "u" * 43, False),  # another token
        ("http://127.0.0.1:8000", None, CSRF_TOKEN, "", False),  # no token in the form
        ("http://127.0.0.1:8000", None, None, "", False),  # no token anywhere
        ("http://127.0.0.1:8000", None, None, CSRF_TOKEN, False),  # no cookie to match
    ],
)
def test_a_form_post_passes_only_from_this_origin_with_the_sessions_token(
    origin: str | None, referer: str | None, cookie: str | None, sent: str, passes: bool
) -> None:
    request = posted(origin, cookie, referer=referer)
    if passes:
        check_post(request, {"csrf": sent})
    else:
        with pytest.raises(FormRefusedError):
            check_post(request, {"csrf": sent})

"""The read routes: current rows from the projections, history, decisions and the list of approval requests.

``GET /v1/{model}`` takes the CLI's filters as repeated ``where=FIELD:OP[:VALUE]`` parameters, ``sort``
(``-total``, repeatable), ``limit``, ``after`` (the previous page's ``next_cursor``) and
``include_deleted``. ``Writ-Wait-Position: N`` first waits until the projection has reached log
position N (a write's ``position``): read-your-writes. Rows carry their version as ``ETag``. A record's
history comes a page at a time (``limit``, ``after`` = the previous page's ``next_cursor``, a version).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from domain.errors import InvalidInputError
from entrypoints.filter_text import parse_filter
from entrypoints.history_pages import PAGE, history_page
from entrypoints.http.context import Call
from entrypoints.http.errors import json_response
from entrypoints.whole_numbers import whole_number

WAIT_SECONDS = 5.0


def list_rows(call: Call) -> Response:
    model, query = call.param("model"), call.request.query_params
    views = _views(call)
    filters = [parse_filter(text, call.writ.catalog, model) for text in query.getlist("where")]
    page = views.list(
        call.principal,
        model,
        filters=filters,
        order_by=query.getlist("sort"),
        limit=_int(query.get("limit"), 50),
        after=query.get("after"),
        include_deleted=call.query_flag("include_deleted"),
    )
    return json_response({"rows": page.rows, "next_cursor": page.next_cursor})


def get_row(call: Call) -> Response:
    row = _views(call).get(
        call.principal,
        call.param("model"),
        call.param("id"),
        include_deleted=call.query_flag("include_deleted"),
    )
    return json_response(row, headers={"ETag": f'"{row["_version"]}"'})


def history(call: Call) -> Response:
    query = call.request.query_params
    return json_response(
        history_page(
            call.writ,
            call.principal,
            call.param("model"),
            call.param("id"),
            after=_int(query.get("after"), 0),
            limit=_int(query.get("limit"), PAGE),
        )
    )


def decisions(call: Call) -> Response:
    query = call.request.query_params
    rows = _views(call).decisions(
        call.principal,
        actor=query.get("by"),
        model=query.get("model"),
        outcome=query.get("outcome"),
        since=query.get("since"),
        until=query.get("until"),
        after=_int(query.get("after"), 0),
        limit=_int(query.get("limit"), 100),
    )
    return json_response(rows)


def approvals(call: Call) -> Response:
    query = call.request.query_params
    status = query.get("status", "pending")
    rows = _views(call).approvals(
        call.principal,
        status=None if status == "all" else status,
        after=query.get("after"),
        limit=_int(query.get("limit"), 100),
    )
    return json_response(rows)


def _views(call: Call) -> Any:
    wait = call.request.headers.get("writ-wait-position")
    position = None if wait is None else _int(wait, 0, name="Writ-Wait-Position")
    return call.api.views_holding(position, WAIT_SECONDS)


def _int(text: str | None, default: int, *, name: str = "a number") -> int:
    if text is None:
        return default
    number = whole_number(text)
    if number is None:
        raise InvalidInputError(f"{name}: {text[:40]!r} is not a whole number")
    return number

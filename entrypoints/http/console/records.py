"""The auditors' record pages: a model's current rows with filters, and one record's history as a timeline.

Rows come from ``Views.list`` (the projection, tenant-confined, as ``GET /v1/{model}``), filtered with the
API's ``FIELD:OP[:VALUE]`` filters (``entrypoints.filter_text``), sorted and paged by cursor; deleted rows
only when asked for, which needs the model's ``read_deleted`` grant. A record's page reads its history
(``Writ.iter_history``: every event, its actor, agent, purpose, decision and approvers, the per-field
changes; a purge keeps the tombstone and who did what, never the values) and its row as the API would
answer ``GET /v1/{model}/{id}``: a deleted record's row is read with ``include_deleted``, so a deleted
record shows only to those who may read deleted records. The decisions about the record that changed
nothing (refused, parked, failed) are merged into the timeline from ``Views.decisions``.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.responses import Response

from domain.errors import RecordNotFoundError
from domain.principal import Principal
from entrypoints.filter_text import OPERATORS, parse_filter
from entrypoints.http.console import diffs
from entrypoints.http.console.showing import moment_of
from entrypoints.http.console.web import Visit

PAGE = 50
TIMELINE = 500
"""Events shown on a record's page: the latest this many (the CLI's ``writ history`` streams them all)."""
UNCHANGED = ("refused", "parked", "failed")
SYSTEM = ("_state", "_version", "_updated_at", "_updated_by")
DATA_EVENTS = ("Created", "Replaced", "Patched")
"""Events that carry a record's values (the others change its state only)."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def models(visit: Visit) -> Response:
    return visit.render(
        "models.html",
        described={name: spec.description for name, spec in sorted(visit.catalog.models.items())},
    )


def rows(visit: Visit) -> Response:
    model = visit.request.path_params["model"]
    spec = visit.catalog.model(model)
    query = visit.request.query_params
    asked = [
        (f, o, v)
        for f, o, v in zip(
            query.getlist("field"), query.getlist("op"), query.getlist("value"), strict=False
        )
        if f
    ]
    sort, descending = query.get("sort", ""), query.get("order") == "desc"
    deleted = query.get("deleted") == "1"
    filters = [parse_filter(f"{f}:{o}:{v}", visit.catalog, model) for f, o, v in asked]
    page = visit.views().list(
        visit.principal,
        model,
        filters=filters,
        limit=PAGE,
        after=query.get("after") or None,
        order_by=[f"{'-' if descending else ''}{sort}"] if sort else [],
        include_deleted=deleted,
    )
    kept = [pair for f, o, v in asked for pair in (("field", f), ("op", o), ("value", v))]
    kept += [("sort", sort), ("order", "desc" if descending else "asc")] + (
        [("deleted", "1")] if deleted else []
    )
    more = urlencode([*kept, ("after", page.next_cursor)]) if page.next_cursor else None
    return visit.render(
        "rows.html",
        model=model,
        fields=list(spec.fields),
        columns=["id", *spec.fields, *SYSTEM],
        rows=page.rows,
        asked=asked,
        operators=OPERATORS,
        sort=sort,
        descending=descending,
        deleted=deleted,
        more=more,
    )


def record(visit: Visit) -> Response:
    model, record_id = visit.request.path_params["model"], visit.request.path_params["id"]
    principal = visit.principal
    kept: deque[dict[str, Any]] = deque(maxlen=TIMELINE)
    total = 0
    for entry in visit.writ.iter_history(principal, model, record_id):
        kept.append(entry.to_dict())
        total += 1
    state = kept[-1]["state"] if kept else None
    views = visit.views()
    row = _row(views, principal, model, record_id, state)
    refusals = [
        decision
        for outcome in UNCHANGED
        for decision in views.decisions(
            principal, model=model, record_id=str(record_id), outcome=outcome, limit=200
        )
    ]
    timeline = sorted(
        [*(_event(entry, state == "purged") for entry in kept), *(_decision(d) for d in refusals)],
        key=lambda item: (moment_of(item["at"]) or EPOCH, item["order"]),
    )
    return visit.render(
        "record.html",
        model=model,
        record_id=record_id,
        row=row,
        state=state,
        total=total,
        shown=len(kept),
        timeline=timeline,
        fields=list(visit.catalog.model(model).fields),
    )


def _row(
    views: Any, principal: Principal, model: str, record_id: str, state: str | None
) -> dict[str, Any] | None:
    """The record's row as ``GET /v1/{model}/{id}`` answers it; None once purged or not projected yet."""
    if state == "purged":
        return None
    try:
        row: dict[str, Any] = views.get(
            principal, model, record_id, include_deleted=state == "deleted"
        )
    except RecordNotFoundError:
        return None  # the projection has not reached the record yet (PostgreSQL: the worker lags)
    return row


def _event(entry: dict[str, Any], purged: bool) -> dict[str, Any]:
    """A history entry on the timeline; ``erased``: it held values the purge erased."""
    changes, redacted = diffs.of_entry(entry)
    erased = (redacted or purged) and (bool(changes) or entry["event"] in DATA_EVENTS)
    return {
        "kind": "event",
        "at": entry["at"],
        "order": entry["version"],
        "entry": entry,
        "changes": changes,
        "erased": erased,
        "agent": (entry.get("audit") or {}).get("agent"),
    }


def _decision(decision: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "decision",
        "at": decision["at"],
        "order": decision["position"],
        "decision": decision,
        "agent": (decision.get("audit") or {}).get("agent"),
    }

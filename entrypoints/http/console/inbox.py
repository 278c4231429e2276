"""The approvers' pages: the inbox of requests waiting for me, one request, and approve / reject / cancel.

The inbox lists what ``Views.approvals`` gives the signed-in principal (its tenant's pending requests it may
read, as ``GET /v1/approvals`` does) and keeps those waiting for *this* person (``waiting_for``): still
pending, of a model whose ``approve`` grant one of its roles holds, asked by someone else, and not approved
by it already. Its own pending requests are listed apart, to cancel. Each shows the record, who asked, why,
when it expires and the diff of the change. An approval is sent with the fingerprint of the request as it
was shown, so a request that is not the one on the page is refused ``APPROVAL_STALE``; and on the last
approval Writ decides the command again on the record as it is now, so a record that changed since the
request was made fails ``APPROVAL_STALE`` too, writing nothing. Deciding calls ``Writ.approve``,
``reject`` and ``cancel``, whose grants and rules are the API's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import Response

from domain.approval import PENDING
from domain.catalog import Catalog
from domain.errors import InvalidInputError, ModelUnknownError, WritError
from domain.principal import Principal
from entrypoints.http.console import diffs, session
from entrypoints.http.console.showing import people
from entrypoints.http.console.web import Visit, redirect

PAGE = 100
DONE = {
    "approve": "You approved this request.",
    "reject": "You rejected this request.",
    "cancel": "You cancelled this request.",
}


def waiting_for(principal: Principal, catalog: Catalog, request: Mapping[str, Any]) -> bool:
    """The request waits for ``principal``: pending, approvable by its roles, not its own, not approved by it."""
    if request.get("status") != PENDING or request.get("requester") == principal.user_id:
        return False
    if principal.user_id in people(request.get("approvals")):
        return False
    try:
        return catalog.model(str(request.get("model"))).grants.allows("approve", principal.roles)
    except ModelUnknownError:
        # a model the catalog in force no longer declares: nobody can approve it
        return False


def inbox(visit: Visit) -> Response:
    principal = visit.principal
    rows = visit.views().approvals(
        principal, status=PENDING, after=visit.query("after") or None, limit=PAGE
    )
    waiting = [_shown(row) for row in rows if waiting_for(principal, visit.catalog, row)]
    mine = [_shown(row) for row in rows if row.get("requester") == principal.user_id]
    more = rows[-1]["cursor"] if len(rows) == PAGE else None
    return visit.render("inbox.html", waiting=waiting, mine=mine, more=more)


def approval(visit: Visit, problem: WritError | None = None) -> Response:
    """One request as the command side has it now, with the forms this person may use on it."""
    principal = visit.principal
    request = visit.writ.approval(principal, visit.request.path_params["id"])
    context: dict[str, Any] = {
        "request": _shown(request),
        "eligible": waiting_for(principal, visit.catalog, request),
        "own": request.get("requester") == principal.user_id and request.get("status") == PENDING,
        "done": DONE.get(visit.query("done")),
    }
    if problem is not None:
        return visit.failed(problem, "approval.html", **context)
    return visit.render("approval.html", **context)


def decide(visit: Visit, action: str) -> Response:
    """Approve (bound to the fingerprint shown), reject with a reason, or cancel; then show the request."""
    approval_id = visit.request.path_params["id"]
    reason = visit.form.get("reason", "").strip() or None
    try:
        if action == "approve":
            fingerprint = visit.form.get("fingerprint", "")
            # Writ takes no fingerprint as "whatever the request is now": the page's is required
            if not fingerprint:
                raise InvalidInputError(
                    "An approval is bound to the request shown: the form's fingerprint is missing"
                )
            result = visit.writ.approve(
                visit.principal, approval_id, reason=reason, fingerprint=fingerprint
            )
        elif action == "reject":
            result = visit.writ.reject(visit.principal, approval_id, reason or "")
        else:
            result = visit.writ.cancel(visit.principal, approval_id, reason=reason)
    except WritError as error:
        # refused or failed, it is recorded (a failed execution ends the request too)
        shown = approval(visit, problem=error)
        session.keep_seen(shown, visit.request, error.position)
        return shown
    response = redirect(f"/approvals/{approval_id}?done={action}")
    session.keep_seen(response, visit.request, result.position)
    return response


def _shown(request: Mapping[str, Any]) -> dict[str, Any]:
    """A request with its diff, as the templates read it, from the views' row or the command side's answer
    (which names the record only in its command)."""
    record_id, record_version = request.get("record_id"), request.get("record_version")
    if record_id is None and request.get("operation") not in ("create", "bulk_update"):
        commands = (request.get("command") or {}).get("commands") or [{}]
        record_id = commands[0].get("id")
    return {
        **request,
        "record_id": record_id,
        "record_version": record_version,
        "requested_at": request.get("requested_at"),
        "approvers": people(request.get("approvals")),
        "diff": diffs.of_preview(request.get("preview"), bool(request.get("shredded"))),
    }

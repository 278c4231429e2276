"""The approval routes of one request: read it, approve, reject or cancel it (the list is a read of the
projections, in ``reads``).

A decision's body is optional: an object of ``reason`` and ``fingerprint`` (``POST
/v1/approvals/{id}/approve`` with a fingerprint approves only the change that was shown).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from domain.errors import InvalidInputError
from entrypoints.http.context import Call
from entrypoints.http.errors import json_response


def approval(call: Call) -> Response:
    return json_response(call.writ.approval(call.principal, call.param("id")))


def _decision(call: Call, action: str) -> dict[str, Any]:
    """The body of an approval's decision: an object of ``reason`` and ``fingerprint``, each text or null (a key
    it does not know, or a number, is refused, and recorded, rather than ignored)."""
    body = call.body
    if not isinstance(body, dict) or any(
        key not in ("reason", "fingerprint") or not isinstance(value, str | None)
        for key, value in body.items()
    ):
        call.writ.refuse(
            call.principal,
            action,
            "",
            InvalidInputError(
                'The body is an object: {"reason": "...", "fingerprint": "..."} (both optional, text)'
            ),
            record_id=call.param("id"),
        )
    decided: dict[str, Any] = body
    return decided


def approve(call: Call) -> Response:
    body = _decision(call, "approve")
    return json_response(
        call.writ.approve(
            call.principal,
            call.param("id"),
            reason=body.get("reason"),
            fingerprint=body.get("fingerprint"),
        ).to_dict()
    )


def reject(call: Call) -> Response:
    # whatever was sent: the service's door checks it
    reason: Any = _decision(call, "reject").get("reason")
    return json_response(call.writ.reject(call.principal, call.param("id"), reason).to_dict())


def cancel(call: Call) -> Response:
    return json_response(
        call.writ.cancel(
            call.principal, call.param("id"), reason=_decision(call, "cancel").get("reason")
        ).to_dict()
    )


ACTIONS = {"approve": approve, "reject": reject, "cancel": cancel}

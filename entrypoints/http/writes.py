"""The write routes: every one calls the same command service as the CLI and the Python API.

201 for a create (``Location`` and ``ETag`` of the record), 200 for the other writes, 202 when the
write waits for approval (``Location`` of the approval). ``Idempotency-Key`` and ``If-Match`` (the
record version the write expects) are honoured on every write that takes them.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from application.results import WriteResult
from domain.commands import parse_command
from domain.errors import InvalidInputError
from domain.limits import shown
from entrypoints.command_items import run_items
from entrypoints.http.context import Call
from entrypoints.http.errors import json_response

PENDING = "pending_approval"


def create(call: Call) -> Response:
    model, body = call.param("model"), call.body
    if isinstance(body, list):
        results = call.writ.create_many(
            call.principal, model, body, idempotency_key=call.idempotency_key
        )
        pending = any(r.status == PENDING for r in results)
        return json_response(
            [_shown(r) for r in results],
            202 if pending else 201,
            _approval_location(results[0]) if pending and results else None,
        )
    result = call.writ.create(call.principal, model, body, idempotency_key=call.idempotency_key)
    return _written(result, created=True)


def replace(call: Call) -> Response:
    return _written(
        call.writ.replace(
            call.principal,
            call.param("model"),
            call.param("id"),
            call.body,
            expected_version=call.expected_version,
            idempotency_key=call.idempotency_key,
        )
    )


def patch(call: Call) -> Response:
    return _written(
        call.writ.patch(
            call.principal,
            call.param("model"),
            call.param("id"),
            call.body,
            expected_version=call.expected_version,
            idempotency_key=call.idempotency_key,
        )
    )


def delete(call: Call) -> Response:
    action = call.writ.purge if call.query_flag("force") else call.writ.delete
    return _written(
        action(
            call.principal,
            call.param("model"),
            call.param("id"),
            expected_version=call.expected_version,
            idempotency_key=call.idempotency_key,
        )
    )


def restore(call: Call) -> Response:
    return _written(
        call.writ.restore(
            call.principal,
            call.param("model"),
            call.param("id"),
            expected_version=call.expected_version,
            idempotency_key=call.idempotency_key,
        )
    )


BULK_KEYS = frozenset({"filters", "changes", "all"})


def bulk_update(call: Call) -> Response:
    # the service refuses, recorded
    body = call.body if isinstance(call.body, dict) else {"changes": call.body}
    # a key it does not know ("filter", "dry_run") is never ignored
    if unknown := sorted(set(body) - BULK_KEYS):
        call.writ.refuse(
            call.principal,
            "bulk_update",
            call.param("model"),
            InvalidInputError(
                f"A bulk update's body has filters, changes and all; not {', '.join(map(shown, unknown[:5]))}"
            ),
            idempotency_key=call.idempotency_key,
        )
    filters = body.get("filters", [])
    # [field, op, value] lists arrive as JSON arrays; the service reads tuples
    if isinstance(filters, list):
        filters = [tuple(f) if isinstance(f, list) else f for f in filters]
    changes: Any = body.get("changes")  # whatever was sent: the service's door checks it
    done = call.writ.bulk_update(
        call.principal,
        call.param("model"),
        filters,
        changes,
        idempotency_key=call.idempotency_key,
        all_records=body.get("all", False),
    )
    body = done.to_dict()
    if done.status == PENDING:
        return json_response(
            {**body, "approval_url": f"/v1/approvals/{done.approval_id}"},
            202,
            {"Location": f"/v1/approvals/{done.approval_id}"},
        )
    return json_response(body)


def evaluate(call: Call) -> Response:
    return json_response(call.writ.evaluate(call.principal, parse_command(call.body)).to_dict())


def transaction(call: Call) -> Response:
    with call.writ.transaction(call.principal, idempotency_key=call.idempotency_key) as tx:
        discarded = run_items(call.writ, tx, call.body)
    return json_response({"results": [_shown(r) for r in tx.results], "discarded": discarded}, 201)


def _written(result: WriteResult, *, created: bool = False) -> Response:
    if result.status == PENDING:
        return json_response(_shown(result), 202, _approval_location(result))
    headers = {"ETag": f'"{result.version}"'}
    if created:
        headers["Location"] = f"/v1/{result.model}/{result.id}"
    return json_response(_shown(result), 201 if created else 200, headers)


def _shown(result: WriteResult) -> dict[str, Any]:
    body = result.to_dict()
    if result.approval_id:
        body["approval_url"] = f"/v1/approvals/{result.approval_id}"
    return body


def _approval_location(result: WriteResult) -> dict[str, str]:
    return {"Location": f"/v1/approvals/{result.approval_id}"}

"""How errors travel over HTTP: one table from code to status, one body shape.

Every error body is ``{"error", "message", "code", "field"}`` (``field`` when it concerns one; a dry
run's ``errors`` and a validator's ``problems`` too). A ``VERSION_CONFLICT`` is 412 when the request
named the version it expected with ``If-Match``, 409 otherwise. A body is encoded with orjson; one that
holds an integer past 64 bits (storage written before such values were read back as floats) is sent with
it as the float it was, never a 500.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response

from domain.errors import WritError
from domain.values import narrowed

STATUS: dict[str, int] = {
    "UNAUTHENTICATED": 401,
    "PURPOSE_REQUIRED": 400,
    "INVALID_INPUT": 400,
    "CATALOG_INVALID": 400,
    "GRANT_MISSING": 403,
    "WRITE_DENIED": 403,
    "SELF_APPROVAL_FORBIDDEN": 403,
    "MODEL_UNKNOWN": 404,
    "NOT_FOUND": 404,
    "RECORD_DELETED": 409,
    "RECORD_NOT_DELETED": 409,
    "VERSION_CONFLICT": 409,
    "IDEMPOTENCY_KEY_REUSED": 409,
    "APPROVAL_NOT_PENDING": 409,
    "ALREADY_APPROVED": 409,
    "APPROVAL_STALE": 409,
    "APPROVAL_REQUIRED": 409,
    "UNIQUE_VIOLATION": 409,
    "NOT_CHECKPOINTED": 409,
    "METHOD_NOT_ALLOWED": 405,
    "PAYLOAD_TOO_LARGE": 413,
    "UNKNOWN_FIELD": 422,
    "FIELD_NOT_WRITABLE": 422,
    "IMMUTABLE_FIELD": 422,
    "REQUIRED_FIELD_MISSING": 422,
    "INVALID_FIELD_VALUE": 422,
    "VALIDATION_FAILED": 422,
    "BULK_LIMIT_EXCEEDED": 422,
    "CHAIN_BROKEN": 503,
    "KEY_INVALID": 503,
    "UNAVAILABLE": 503,
    "CONFIGURATION_INVALID": 503,
    "CHECKPOINT_REFUSED": 503,
    "PROJECTION_NOT_READY": 503,
    "PROJECTION_TIMEOUT": 503,
    "PROJECTION_BUSY": 503,
    "PROJECTION_HALTED": 503,
    "PROJECTION_LOG_CHANGED": 503,
}
"""Every code's status (``tests/integration/test_http.py`` checks that every code Writ raises is here)."""
STATUSES = sorted({*STATUS.values(), 412})
"""Every status an error may have: the table's, and 412 (``VERSION_CONFLICT`` under ``If-Match``)."""


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        content = orjson.dumps(body)
    except TypeError:
        # an integer past 64 bits read from storage is the float it was (domain.values.narrowed)
        content = orjson.dumps(narrowed(body))
    return Response(content, status_code=status, headers=headers, media_type="application/json")


def error_body(code: str, message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "error": code.title().replace("_", ""),
        "message": message,
        "code": code,
        "field": field,
        **extra,
    }


def error_response(error: WritError, *, if_match: bool = False) -> Response:
    status = STATUS.get(error.code, 400)
    if error.code == "VERSION_CONFLICT" and if_match:
        status = 412
    body = {"field": None, **error.to_dict()}
    if error.position is not None:  # the refusal is recorded: where its decision is in the log
        body["position"] = error.position
    headers = {"WWW-Authenticate": 'Bearer realm="writ"'} if status == 401 else None
    return json_response(body, status, headers)


class RouteRefusal(NamedTuple):
    """A request no route takes (404 ``NOT_FOUND``) or a method its route does not (405
    ``METHOD_NOT_ALLOWED``, with the framework's ``Allow``), as the API and the console both answer it."""

    status: int
    code: str
    message: str
    headers: dict[str, str] | None

    @classmethod
    def of(cls, request: Request, exc: Exception) -> RouteRefusal:
        headers = getattr(exc, "headers", None)
        if headers and "Allow" in headers:  # the framework's, from a set: in a steady order
            headers = {**headers, "Allow": ", ".join(sorted(headers["Allow"].split(", ")))}
        if getattr(exc, "status_code", 404) == 405:
            return cls(
                405,
                "METHOD_NOT_ALLOWED",
                f"{request.url.path} does not take {request.method}",
                headers,
            )
        return cls(404, "NOT_FOUND", f"Nothing is at {request.url.path}", headers)


def plain_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An error the HTTP layer itself answers (a body past the limit, a method a path does not take), in the
    same shape."""
    return json_response(error_body(code, message), status, headers)

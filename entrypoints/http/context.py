"""What every route shares: the runtime, the caller's principal, the request's body and headers, errors.

``route`` turns a plain function ``(call: Call) -> Response`` into a Starlette endpoint: it checks the
bearer token, reads the body within the size limit, runs the function in a worker thread (Writ's calls
block on the database), and turns a ``WritError`` into its status and body. A request whose body cannot
be read as JSON, or nests deeper than the catalog's ``nesting`` (measured before anything recursive reads
it; orjson itself stops at 1,024 levels), is refused as ``INVALID_INPUT``; so is a write whose principal
cannot be built (a token's tenant that is no identifier, a correlation id that is not ASCII). A write's
refusal is recorded as a refused decision, under the token's user and tenant when they are sound.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import orjson
from eventsourcing.persistence import PersistenceError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from application.service import Writ
from domain.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnauthenticatedError,
    WritError,
)
from domain.principal import Principal
from entrypoints import json_text
from entrypoints.bootstrap import Runtime
from entrypoints.http.auth import Identity, JwtVerifier
from entrypoints.http.errors import error_response, plain_error
from entrypoints.whole_numbers import whole_number
from infrastructure.database import privilege_refused

log = logging.getLogger("writ.http")

PRIVILEGE_MISSING = (
    "The database refused this service a privilege the request needs; the operator's log names it"
)
DEFAULT_MAX_BODY = 16 * 1024 * 1024


class BodyTooLargeError(Exception):
    pass


@dataclass
class Api:
    runtime: Runtime
    verifier: JwtVerifier
    max_body: int = DEFAULT_MAX_BODY

    def fresh_views(self) -> Any:
        """The views, caught up first on the embedded default (no worker runs beside the server there)."""
        return self.runtime.fresh_views(log.debug)

    def views_holding(self, position: int | None, timeout: float) -> Any:
        """The views once they hold ``position``, a ``Writ-Wait-Position`` (``Runtime.views_holding``: past the
        head is refused)."""
        return self.runtime.views_holding(log.debug, position, timeout, named="Writ-Wait-Position")


@dataclass
class Call:
    api: Api
    request: Request
    identity: Identity
    body: Any

    @property
    def writ(self) -> Writ:
        return self.api.runtime.writ

    @cached_property
    def principal(self) -> Principal:
        headers = self.request.headers
        audit = {"agent": self.identity.agent} if self.identity.agent else {}
        return Principal(
            user_id=self.identity.user_id,
            tenant_id=self.identity.tenant_id,
            roles=self.identity.roles,
            purpose=headers.get("writ-purpose"),
            correlation_id=headers.get("writ-correlation-id"),
            causation_id=headers.get("writ-causation-id"),
            audit_attributes=audit,
        )

    def accountable(self) -> Principal | None:
        """The principal a refusal is recorded under: the whole one, else the token's user, tenant and roles
        alone (a header it cannot take left out), else None."""
        try:
            return self.principal
        except WritError:
            pass
        try:
            return Principal(
                user_id=self.identity.user_id,
                tenant_id=self.identity.tenant_id,
                roles=self.identity.roles,
            )
        except WritError:
            return None

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    @property
    def idempotency_key(self) -> str | None:
        return self.request.headers.get("idempotency-key")

    @property
    def expected_version(self) -> int | None:
        """The version ``If-Match`` names (``"3"`` or ``W/"3"``), or None."""
        raw = self.request.headers.get("if-match")
        if raw is None:
            return None
        version = whole_number(raw.strip().removeprefix("W/").strip('"'))
        if version is None:
            raise InvalidInputError(
                f'If-Match must be a record version as an ETag, e.g. "3", not {raw[:40]!r}'
            )
        return version

    def query_flag(self, name: str) -> bool:
        value = self.request.query_params.get(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise InvalidInputError(f"?{name} is true or false")
        return value in ("true", "1")


Handler = Callable[[Call], Response]


def route(
    api: Api,
    handler: Handler,
    *,
    body: bool = False,
    refuse: tuple[str, str] | None = None,
    optional_body: bool = False,
) -> Callable[[Request], Awaitable[Response]]:
    """An endpoint running ``handler``; ``refuse``: (operation, model path param) of a write, under which a
    refusal at the door (a body that is not JSON or nests too deep, a principal that cannot be built) is
    recorded as a refused decision; ``optional_body``: an empty body reads as ``{}``."""

    async def endpoint(request: Request) -> Response:
        try:
            identity = api.verifier.identify(request.headers.get("authorization"))
        except UnauthenticatedError as error:
            return error_response(error)
        nesting = api.runtime.catalog.limits.nesting
        try:
            content = (
                await _json_body(request, api.max_body, nesting, optional_body) if body else None
            )
            call = Call(api, request, identity, content)
            if refuse is not None:
                call.principal  # noqa: B018 - a write's principal is built (checked) before anything else
        except BodyTooLargeError:
            return plain_error(
                413, "PAYLOAD_TOO_LARGE", f"The request body is larger than {api.max_body:,} bytes"
            )
        except InvalidInputError as error:
            if refuse is not None:
                await run_in_threadpool(_record_refusal, api, request, identity, refuse, error)
            return error_response(error)
        unavailable: tuple[type[BaseException], ...] = (
            PersistenceError,
            *api.runtime.backend.transient,
        )
        try:
            return await run_in_threadpool(handler, call)
        except WritError as error:
            return error_response(error, if_match="if-match" in request.headers)
        except Exception as exc:
            if privilege_refused(exc):
                # the server's role lacks a grant: the operator's to mend; which one goes to the log, not the caller
                log.error("the database refused this server's role a privilege: %s", exc)
                return error_response(ServiceUnavailableError(PRIVILEGE_MISSING))
            if isinstance(exc, unavailable):  # the event store's, or the views' database driver's
                log.warning("database unavailable: %s", exc)
                return error_response(ServiceUnavailableError(f"the database: {exc}"))
            raise

    return endpoint


async def _json_body(request: Request, most: int, nesting: int, optional: bool = False) -> Any:
    declared = request.headers.get("content-length")
    if (whole_number(declared) or 0) > most:  # none, or no number: the body's own count decides
        raise BodyTooLargeError
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > most:
            raise BodyTooLargeError
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        if optional:
            return {}
        raise InvalidInputError("The request needs a JSON body")
    try:
        return json_text.loads(raw, nesting)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"The body is not valid JSON: {exc}") from None


def _record_refusal(
    api: Api, request: Request, identity: Identity, refuse: tuple[str, str], error: WritError
) -> None:
    operation, model_param = refuse
    if operation == "delete" and request.query_params.get("force", "").lower() in ("true", "1"):
        operation = "force_delete"
    principal = Call(api, request, identity, None).accountable()
    # refuse() records the decision, then raises the error it was given
    with contextlib.suppress(WritError):
        api.runtime.writ.refuse(
            principal,
            operation,
            request.path_params.get(model_param, ""),
            error,
            record_id=request.path_params.get("id"),
            idempotency_key=request.headers.get("idempotency-key"),
        )

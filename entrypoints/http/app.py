"""The ASGI application: routes, the OpenAPI document and its reference page, the web console.

``create_app(runtime, verifier)`` wires every route to the command service and the projections of one
``Runtime``; ``writ serve`` runs it under uvicorn. Each path is one route: a method it does not take is 405
with ``Allow`` naming exactly the methods the OpenAPI document lists for it. The web console is mounted at
``/console`` (``entrypoints.http.console``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, request_response
from starlette.types import Receive, Scope, Send

from entrypoints.bootstrap import Runtime
from entrypoints.http import approvals, reads, writes
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.console.api_docs import docs_page
from entrypoints.http.console.app import console_app
from entrypoints.http.context import DEFAULT_MAX_BODY, Api, route
from entrypoints.http.errors import RouteRefusal, json_response, plain_error
from entrypoints.http.health import health
from entrypoints.http.loopback import LOOPBACK_HOSTS, bracketed
from entrypoints.http.openapi import document
from entrypoints.http.proofs import ProofRoutes


def create_app(
    runtime: Runtime,
    verifier: JwtVerifier,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    dev_sign_in: bool = False,
    lifespan: Any = None,
    host: str = "127.0.0.1",
) -> Starlette:
    api = Api(runtime, verifier, max_body)
    spec = document(runtime.catalog)

    def openapi(_: Request) -> Response:
        return json_response(spec)

    def on(handler: Any, **options: Any) -> Endpoint:
        return route(api, handler, **options)

    def write(operation: str, handler: Any, **options: Any) -> Endpoint:
        return route(api, handler, refuse=(operation, "model"), **options)

    proofs = ProofRoutes(runtime)
    console = console_app(runtime, verifier, dev_sign_in=dev_sign_in)
    routes = [
        Route("/healthz", health(api), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs_page(spec), methods=["GET"]),
        Mount(CONSOLE, console.app),
        path("/v1/evaluate", POST=on(writes.evaluate, body=True)),
        path("/v1/transactions", POST=write("transaction", writes.transaction, body=True)),
        path("/v1/log/checkpoint", GET=on(proofs.checkpoint)),  # before /v1/{model}/{id}
        path("/v1/log/proof/inclusion", GET=on(proofs.inclusion)),
        path("/v1/log/proof/consistency", GET=on(proofs.consistency)),
        path("/v1/decisions", GET=on(reads.decisions)),
        path("/v1/approvals", GET=on(reads.approvals)),
        path("/v1/approvals/{id}", GET=on(approvals.approval)),
        *(
            path(
                f"/v1/approvals/{{id}}/{action}",
                POST=write(action, decide, body=True, optional_body=True),
            )
            for action, decide in approvals.ACTIONS.items()
        ),
        path(
            "/v1/{model}", GET=on(reads.list_rows), POST=write("create", writes.create, body=True)
        ),
        path("/v1/{model}/bulk-update", POST=write("bulk_update", writes.bulk_update, body=True)),
        path(
            "/v1/{model}/{id}",
            GET=on(reads.get_row),
            PUT=write("update", writes.replace, body=True),
            PATCH=write("update", writes.patch, body=True),
            DELETE=write("delete", writes.delete),
        ),
        path("/v1/{model}/{id}/restore", POST=write("restore", writes.restore)),
        path("/v1/{model}/{id}/history", GET=on(reads.history)),
    ]

    async def no_route(request: Request, exc: Exception) -> Response:
        """A path no route takes, or a method a route does not: the API's error shape, with a code (a console
        page for a path under /console that the mount did not take: one with a line break in it)."""
        where = request.url.path
        if where == CONSOLE or where.startswith(f"{CONSOLE}/"):
            return await console.no_page(request, exc)
        refused = RouteRefusal.of(request, exc)
        return plain_error(refused.status, refused.code, refused.message, refused.headers)

    # a development sign-in lets anyone in, so only this machine may reach it: a request naming another host
    # (a page elsewhere reaching it through a name rebound to 127.0.0.1) is refused before any route
    trusted = (
        [Middleware(TrustedHostMiddleware, allowed_hosts=[*LOOPBACK_HOSTS, bracketed(host)])]
        if dev_sign_in
        else []
    )
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: no_route, 405: no_route},
        middleware=trusted,
    )


Endpoint = Callable[[Request], Awaitable[Response]]
CONSOLE = "/console"


def path(template: str, **endpoints: Endpoint) -> Route:
    """One route for every method of a path: the documented ones go to their endpoint (HEAD as GET), any other
    is 405 naming exactly those in ``Allow``. One route per path, so a shared path is never read as a model's
    (``POST /v1/approvals`` is no create) and ``bulk-update`` never as a record id."""
    allowed = ", ".join(endpoints)

    async def endpoint(request: Request) -> Response:
        chosen = endpoints.get("GET" if request.method == "HEAD" else request.method)
        if chosen is None:
            return plain_error(
                405, "METHOD_NOT_ALLOWED", f"{template} takes {allowed}", headers={"Allow": allowed}
            )
        return await chosen(request)

    return Route(template, EveryMethod(endpoint))


class EveryMethod:
    """An endpoint as an ASGI app, which Starlette routes every method to (a function it routes only the
    methods listed, answering the others itself): ``path`` names the methods it takes, whatever is sent
    (``QUERY`` too)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

"""The ASGI application: routes, the OpenAPI document and its docs page, the console.

``create_app(runtime, verifier)`` wires every route to the command service and the projections of one
``Runtime``; ``writ serve`` runs it under uvicorn. The web console is mounted at ``/console``
(``entrypoints.http.console``).
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from entrypoints.bootstrap import Runtime
from entrypoints.http import reads, writes
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.console.api_docs import docs_page
from entrypoints.http.console.app import console_app
from entrypoints.http.context import DEFAULT_MAX_BODY, Api, route
from entrypoints.http.errors import json_response
from entrypoints.http.health import health
from entrypoints.http.openapi import document
from entrypoints.http.proofs import ProofRoutes


def create_app(runtime: Runtime, verifier: JwtVerifier, *, max_body: int = DEFAULT_MAX_BODY,
               dev_sign_in: bool = False, lifespan: Any = None) -> Starlette:
    api = Api(runtime, verifier, max_body)
    spec = document(runtime.catalog)

    def openapi(_: Request) -> Response:
        return json_response(spec)

    def on(path: str, handler: Any, methods: list[str], **options: Any) -> Route:
        return Route(path, route(api, handler, **options), methods=methods)

    model_write = {"body": True, "refuse": ("create", "model")}
    proofs = ProofRoutes(runtime)
    routes = [
        Route("/healthz", health(api), methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/docs", docs_page(spec), methods=["GET"]),
        Mount("/console", console_app(runtime, verifier, dev_sign_in=dev_sign_in)),
        on("/v1/evaluate", writes.evaluate, ["POST"], body=True),
        on("/v1/transactions", writes.transaction, ["POST"], body=True, refuse=("transaction", "model")),
        on("/v1/log/checkpoint", proofs.checkpoint, ["GET"]),  # before /v1/{model}/{id}
        on("/v1/log/proof/inclusion", proofs.inclusion, ["GET"]),
        on("/v1/log/proof/consistency", proofs.consistency, ["GET"]),
        on("/v1/decisions", reads.decisions, ["GET"]),
        on("/v1/approvals", reads.approvals, ["GET"]),
        on("/v1/approvals/{id}", reads.approval, ["GET"]),
        *(on(f"/v1/approvals/{{id}}/{action}", decide, ["POST"], body=True, optional_body=True)
          for action, decide in reads.APPROVAL_ACTIONS.items()),
        on("/v1/{model}", writes.create, ["POST"], **model_write),
        on("/v1/{model}", reads.list_rows, ["GET"]),
        on("/v1/{model}/bulk-update", writes.bulk_update, ["POST"], body=True, refuse=("bulk_update", "model")),
        on("/v1/{model}/{id}", reads.get_row, ["GET"]),
        on("/v1/{model}/{id}", writes.replace, ["PUT"], body=True, refuse=("update", "model")),
        on("/v1/{model}/{id}", writes.patch, ["PATCH"], body=True, refuse=("update", "model")),
        on("/v1/{model}/{id}", writes.delete, ["DELETE"]),
        on("/v1/{model}/{id}/restore", writes.restore, ["POST"]),
        on("/v1/{model}/{id}/history", reads.history, ["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)

"""``/docs``: the API reference, rendered on the server from the OpenAPI document, served from the package.

It used to load Swagger UI from a public CDN (a blank page offline, an unpinned version, no integrity
hash). Vendoring swagger-ui-dist (Apache-2.0) would put about 1.5 MB of minified JavaScript in the package,
to be kept up to date for security fixes, and it needs inline script and styles a strict policy forbids.
This page is plain HTML instead: every path and method with its parameters, request body, responses and
the schemas they name (linked), under the console's Content-Security-Policy and stylesheet. Tools that want
an interactive explorer read ``/openapi.json``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from entrypoints.http.console.headers import HEADERS
from entrypoints.http.console.web import environment

METHODS = ("get", "post", "put", "patch", "delete")


def type_of(schema: Any) -> str:
    """A schema as a short type text: ``string (uuid)``, ``array of OrderRow``, ``integer | null``."""
    if not isinstance(schema, dict) or not schema:
        return "any"
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema:
        return " or ".join(type_of(option) for option in schema["oneOf"])
    if "enum" in schema:
        return "one of " + ", ".join(str(item) for item in schema["enum"])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        return " | ".join(kind)
    if kind == "array":
        return f"array of {type_of(schema.get('items'))}"
    return f"{kind} ({schema['format']})" if "format" in schema else str(kind)


def operations(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation of the document, in path order, with what the page shows of it."""
    found = []
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            body = ((operation.get("requestBody") or {}).get("content") or {}).get(
                "application/json", {}
            )
            responses = operation.get("responses", {})
            found.append(
                {
                    "path": path,
                    "method": method.upper(),
                    "anchor": f"{method}-{_slug(path)}",
                    "summary": operation.get("summary", ""),
                    "parameters": operation.get("parameters", []),
                    "body": body.get("schema"),
                    "body_required": (operation.get("requestBody") or {}).get("required", False),
                    "answers": {s: r for s, r in responses.items() if "$ref" not in r},
                    "errors": [s for s, r in responses.items() if "$ref" in r],
                }
            )
    return found


def _slug(path: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in path).strip("-")


def docs_page(spec: dict[str, Any]) -> Any:
    """The ``/docs`` endpoint: the page is rendered once (the document is fixed while the server runs)."""
    templates = environment()
    templates.filters["type_of"] = type_of
    html = templates.get_template("api_docs.html").render(
        identity=None,
        csrf="",
        dev_sign_in=False,
        path="/docs",
        info=spec.get("info", {}),
        operations=operations(spec),
        schemas=spec.get("components", {}).get("schemas", {}),
    )

    def docs(_: Request) -> Response:
        return HTMLResponse(html, headers={**HEADERS, "cache-control": "no-cache"})

    return docs

"""The console's ASGI application, mounted at ``/console`` by ``entrypoints.http.app.create_app``.

Every response it sends (pages, errors, the stylesheet, a 404) carries the same headers: a strict
Content-Security-Policy (everything from this server and nothing inline: the console runs no script at
all, and its pages are plain server-rendered HTML with one stylesheet, served from the package), no
framing, no MIME sniffing, no referrer to other sites and no caching of pages that hold records' data.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.console import auditing, inbox, records, signin
from entrypoints.http.console.headers import SecurityHeaders
from entrypoints.http.console.web import Console, Handler, no_such_page, page

STATIC = Path(__file__).resolve().parent / "static"


def console_app(
    runtime: Runtime, verifier: JwtVerifier, *, dev_sign_in: bool = False
) -> ConsoleParts:
    """The console over ``runtime``, signing people in with ``verifier`` (``dev_sign_in``: ``writ console``'s
    development sign-in, refused on anything but the embedded default)."""
    if dev_sign_in and not runtime.backend.embedded:
        raise ConfigurationError(
            "the development sign-in runs on the embedded default only, never on PostgreSQL"
        )
    if dev_sign_in and verifier.secret is None:
        raise ConfigurationError("the development sign-in needs an HS256 secret (WRIT_JWT_SECRET)")
    console = Console(runtime, verifier, dev_sign_in)

    def at(path: str, handler: Handler, method: str = "GET", *, public: bool = False) -> Route:
        return Route(path, page(console, handler, public=public), methods=[method])

    routes = [
        at("/", inbox.inbox),
        at("/approvals/{id}", inbox.approval),
        *(
            at(f"/approvals/{{id}}/{action}", partial(inbox.decide, action=action), "POST")
            for action in inbox.DONE
        ),
        at("/records", records.models),
        at("/records/{model}", records.rows),
        at("/records/{model}/{id}", records.record),
        at("/decisions", auditing.decisions),
        at("/log", auditing.log),
        at("/sign-in", signin.sign_in_page, public=True),
        at("/sign-in", signin.sign_in, "POST", public=True),
        at("/sign-out", signin.sign_out, "POST", public=True),
        *([at("/dev-sign-in", signin.dev_sign_in, "POST", public=True)] if dev_sign_in else []),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    unknown = no_such_page(console)
    app = SecurityHeaders(Starlette(routes=routes, exception_handlers={404: unknown, 405: unknown}))
    return ConsoleParts(app, unknown)


class ConsoleParts(NamedTuple):
    """The console to mount, and its "no such page" for what the mount does not take (a path with a line
    break in it never reaches it)."""

    app: ASGIApp
    no_page: Callable[[Request, Exception], Awaitable[Response]]

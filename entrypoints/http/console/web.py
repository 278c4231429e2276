"""What every console page shares: the signed-in visit, form posts, rendering and errors.

``page`` turns a plain function ``(visit: Visit) -> Response`` into a Starlette endpoint: it checks the
session (a page asked for without one redirects to the sign-in page), reads and checks a posted form
(``session.check_post``), runs the function in a worker thread (Writ's calls block on the database) and
renders a ``WritError`` as a page with the error's code, at the status the API gives it. Handlers call
the same ``Writ`` and ``Views`` methods the HTTP routes call, with the principal the token proves: the
console has no rule of its own about who may read or decide what.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from eventsourcing.persistence import PersistenceError
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from application.service import Writ
from domain.errors import ServiceUnavailableError, UnauthenticatedError, WritError
from domain.principal import Principal
from entrypoints.bootstrap import Runtime
from entrypoints.http.auth import Identity, JwtVerifier
from entrypoints.http.console import session, showing
from entrypoints.http.console.headers import HEADERS as SECURITY_HEADERS
from entrypoints.http.console.session import FormRefusedError
from entrypoints.http.errors import STATUS, RouteRefusal
from projections.errors import ProjectionNotReadyError, ProjectionTimeoutError

log = logging.getLogger("writ.console")
BASE = "/console"
MAX_FORM_BYTES = 64 * 1024
SEEN_WAIT = 2.0
"""Seconds a page that reads the views waits for them to hold the visitor's last decision (a worker thread is
held meanwhile, as for any page: short, so a stopped projection worker cannot tie the pool up)."""
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Console:
    """The console's parts: the runtime, the API's token verifier, the templates, the development sign-in."""

    runtime: Runtime
    verifier: JwtVerifier
    dev_sign_in: bool = False
    templates: Environment = field(init=False)

    def __post_init__(self) -> None:
        self.templates = environment()
        self.templates.globals["models"] = sorted(self.runtime.catalog.models)


@dataclass
class Visit:
    """One request to the console: who is signed in, the posted form, the session's CSRF token."""

    console: Console
    request: Request
    identity: Identity | None
    csrf: str
    form: dict[str, str] = field(default_factory=dict)
    behind: int | None = None
    """The visitor's last decision's position, when the views shown had not reached it yet."""

    @property
    def principal(self) -> Principal:
        if self.identity is None:
            raise UnauthenticatedError("Sign in with a token to use the console")
        return self.identity.principal()

    @property
    def writ(self) -> Writ:
        return self.console.runtime.writ

    @property
    def catalog(self) -> Any:
        return self.console.runtime.catalog

    def views(self) -> Any:
        """The views, caught up first on the embedded default (no worker runs beside the server there), and
        holding the visitor's last decision (``session.seen``) once the projection has reached it within
        ``SEEN_WAIT`` seconds; past that the page is shown as the views are, saying so (``behind``)."""
        runtime, position = self.console.runtime, session.seen(self.request)
        try:
            # clamped: the cookie is the visitor's to send, so a forged one waits for the head at most
            return runtime.views_holding(log.debug, position, SEEN_WAIT, clamp=True)
        except (ProjectionTimeoutError, ProjectionNotReadyError) as late:
            log.debug("console page shown without the visitor's last decision: %s", late)
            self.behind = position
            return runtime.views

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default)

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        html = self.console.templates.get_template(template).render(
            identity=self.identity,
            csrf=self.csrf,
            dev_sign_in=self.console.dev_sign_in,
            path=self.request.url.path,
            behind=self.behind,
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def failed(self, error: WritError, template: str = "error.html", **context: Any) -> Response:
        """``error`` as a page (or ``template`` with the error above it): its code and message, at the status
        the API answers it with."""
        problem = {"code": error.code, "message": error.message}
        return self.render(template, STATUS.get(error.code, 400), problem=problem, **context)


def environment() -> Environment:
    """The templates, escaping every value they are given (autoescape on for every file)."""
    templates = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters.update(showing.FILTERS)
    templates.globals["base"] = BASE
    return templates


Handler = Callable[[Visit], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(console: Console, handler: Handler, *, public: bool = False) -> Endpoint:
    """An endpoint running ``handler`` for a signed-in visit (``public``: the sign-in pages)."""

    async def endpoint(request: Request) -> Response:
        csrf, fresh = session.csrf_token(request)
        visit = Visit(console, request, None, csrf)
        response = await _answer(visit, handler, public)
        if fresh:
            session.keep_csrf(response, request, csrf)
        return response

    return endpoint


async def _answer(visit: Visit, handler: Handler, public: bool) -> Response:
    request = visit.request
    if not public:
        try:
            visit.identity = session.signed_in(request, visit.console.verifier)
        except UnauthenticatedError as error:
            if request.method == "GET":
                return RedirectResponse(f"{BASE}/sign-in?next={quote(request.url.path)}", 303)
            return visit.failed(error)
    if request.method == "POST":
        try:
            visit.form = await _form(request)
            session.check_post(request, visit.form)
        except FormRefusedError as refused:
            return visit.render(
                "error.html", 403, problem={"code": "FORM_REFUSED", "message": str(refused)}
            )
    unavailable: tuple[type[BaseException], ...] = (
        PersistenceError,
        *visit.console.runtime.backend.transient,
    )
    try:
        return await run_in_threadpool(handler, visit)
    except WritError as error:
        return visit.failed(error)
    except unavailable as exc:  # the event store's, or the views' database driver's
        log.warning("database unavailable: %s", exc)
        return visit.failed(ServiceUnavailableError(f"the database: {exc}"))


async def _form(request: Request) -> dict[str, str]:
    """A posted ``application/x-www-form-urlencoded`` form, read within ``MAX_FORM_BYTES``."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise FormRefusedError(
            "The console takes its own forms only (application/x-www-form-urlencoded)"
        )
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormRefusedError(f"The form is larger than {MAX_FORM_BYTES:,} bytes")
    try:
        return dict(parse_qsl(body.decode(), keep_blank_values=True, max_num_fields=50))
    except (UnicodeDecodeError, ValueError):
        raise FormRefusedError("The form could not be read") from None


def no_such_page(console: Console) -> Callable[[Request, Exception], Awaitable[Response]]:
    """What the console answers a path it has no page at (404) or a method a page does not take (405): a page
    naming the code, as any other refusal, not the framework's bare text."""

    async def answer(request: Request, exc: Exception) -> Response:
        refused = RouteRefusal.of(request, exc)
        try:  # the header as every page shows it: who is signed in, the sign-out form
            identity: Identity | None = session.signed_in(request, console.verifier)
        except UnauthenticatedError:
            identity = None
        html = console.templates.get_template("error.html").render(
            identity=identity,
            csrf=session.csrf_token(request)[0],
            dev_sign_in=console.dev_sign_in,
            path=request.url.path,
            problem={"code": refused.code, "message": refused.message},
        )
        # the security headers here too: a path the mount did not take is answered outside it
        headers = {**(refused.headers or {}), **SECURITY_HEADERS, "cache-control": "no-store"}
        return HTMLResponse(html, status_code=refused.status, headers=headers)

    return answer


def redirect(path: str) -> Response:
    """After a post: see the result at ``path`` (a reload does not send the form again)."""
    return RedirectResponse(f"{BASE}{path}", 303)

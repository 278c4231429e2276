"""The console's session: the signed-in token in a cookie, and the checks every form post passes.

Signing in stores the JWT itself in an HttpOnly cookie (``SameSite=Strict``; ``Secure`` and the ``__Host-``
prefix when the request came over https); every request hands it to the API's own ``JwtVerifier``, exactly
as a bearer token, so expiry, issuer, audience and signature are checked every time and a token the API
would refuse signs nobody in. The API never reads these cookies (it takes ``Authorization`` only), so the
cookie opens no door for cross-site requests to ``/v1``.

Forms are guarded three ways: the session cookies are ``SameSite=Strict`` (a cross-site post carries none);
every POST must come with an ``Origin`` (or, lacking one, a ``Referer``) naming this server; and every form
carries the session's CSRF token, a random value kept in a second HttpOnly cookie, made afresh at each
sign-in and sign-out, and compared in constant time. A page is rendered with the token in its forms, so no
script is needed to send it.

A third cookie, ``writ_seen``, holds the log position of the visitor's last decision through the console, so
the pages read from the views (the inbox, the lists) wait until the views hold it: after approving, the inbox
no longer lists the request (read-your-writes, as ``Writ-Wait-Position`` gives the API). It proves nothing;
a forged value only makes a page wait, never longer than ``web.SEEN_WAIT`` and never past the log's head.
"""

from __future__ import annotations

import hmac
import secrets  # noqa: TID251 - session and CSRF tokens, one per sign-in: not a write
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from domain.errors import UnauthenticatedError
from entrypoints.http.auth import Identity, JwtVerifier
from entrypoints.whole_numbers import whole_number

SESSION, CSRF, SEEN = "writ_session", "writ_csrf", "writ_seen"
MAX_TOKEN_BYTES = 3800
"""A cookie holds about 4 KB; a longer token is refused at sign-in with this limit named."""


class FormRefusedError(Exception):
    """A post that did not come from one of this console's own pages."""


def cookie_name(request: Request, name: str) -> str:
    """``__Host-`` names over https: such a cookie cannot be set by a sibling host or over plain http."""
    return f"__Host-{name}" if request.url.scheme == "https" else name


def signed_in(request: Request, verifier: JwtVerifier) -> Identity:
    """The identity the session cookie's token proves, checked as the API checks a bearer token."""
    token = request.cookies.get(cookie_name(request, SESSION))
    if not token:
        raise UnauthenticatedError("Sign in with a token to use the console")
    return verifier.identify(f"Bearer {token}")


def csrf_token(request: Request) -> tuple[str, bool]:
    """The session's form token, and whether it is new (then ``keep_csrf`` must set it on the response)."""
    known = request.cookies.get(cookie_name(request, CSRF))
    if known and len(known) == 43:
        return known, False
    return secrets.token_urlsafe(32), True


def check_post(request: Request, form: Mapping[str, str]) -> None:
    """Refuse a post from another origin, or without this session's token (``FormRefusedError``)."""
    origin = request.headers.get("origin") or _origin_of(request.headers.get("referer"))
    if origin is None or origin != own_origin(request):
        raise FormRefusedError("The form was not sent from this console's own pages (Origin check)")
    expected = request.cookies.get(cookie_name(request, CSRF)) or ""
    sent = form.get("csrf", "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise FormRefusedError(
            "The form's security token is missing or out of date: reload the page and try again"
        )


def own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', '')}"


def _origin_of(referer: str | None) -> str | None:
    if not referer:
        return None
    parts = urlsplit(referer)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def keep_csrf(response: Response, request: Request, token: str) -> None:
    _set(response, request, CSRF, token, max_age=None)


def start(response: Response, request: Request, token: str, expires_at: float) -> None:
    """Keep ``token`` as the session until it expires, with a fresh CSRF token."""
    _set(response, request, SESSION, token, max_age=max(1, int(expires_at - time.time())))
    keep_csrf(response, request, secrets.token_urlsafe(32))


def seen(request: Request) -> int | None:
    """The log position of this visitor's last decision through the console (None: none, or not a position)."""
    return whole_number(request.cookies.get(cookie_name(request, SEEN)))


def keep_seen(response: Response, request: Request, position: int | None) -> None:
    """Remember ``position`` (a decision's last event) for the pages that read the views next."""
    if position is not None:
        _set(response, request, SEEN, str(position), max_age=None)


def end(response: Response, request: Request) -> None:
    """Forget the session, its CSRF token and the last position seen."""
    for name in (SESSION, CSRF, SEEN):
        response.delete_cookie(
            cookie_name(request, name),
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )


def _set(
    response: Response, request: Request, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        cookie_name(request, name),
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )

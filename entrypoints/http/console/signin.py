"""Signing in and out: a pasted JWT, or, on the embedded default only, a development sign-in.

A pasted token is checked by the API's ``JwtVerifier`` before it is kept (``session.start``), and again on
every later request. The development sign-in (``writ console``) picks a user, a tenant and roles and mints a
short-lived HS256 token with the server's own secret (a fresh random one unless ``WRIT_JWT_SECRET`` is
set), which then goes through the very same checks: there is one way to be signed in. ``writ serve`` never
offers it, and the console refuses it on anything but the embedded default.
"""

from __future__ import annotations

import time

import jwt
from starlette.responses import Response

from domain.errors import InvalidInputError, UnauthenticatedError
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.console import session
from entrypoints.http.console.web import BASE, Console, Visit, redirect

DEV_TOKEN_SECONDS = 8 * 3600


def sign_in_page(visit: Visit) -> Response:
    return visit.render(
        "sign_in.html", next=_next(visit.query("next")), roles=_catalog_roles(visit.console)
    )


def sign_in(visit: Visit) -> Response:
    token = visit.form.get("token", "").strip().removeprefix("Bearer ").strip()
    if len(token.encode()) > session.MAX_TOKEN_BYTES:
        raise InvalidInputError(
            f"The token is longer than {session.MAX_TOKEN_BYTES:,} bytes: a browser cookie "
            "cannot keep it"
        )
    return _keep(visit, token)


def dev_sign_in(visit: Visit) -> Response:
    """Mint a development token for the chosen user, tenant and roles (``writ console`` only)."""
    if not visit.console.dev_sign_in:
        raise UnauthenticatedError(
            "The development sign-in is offered by `writ console` on the embedded default "
            "only: sign in with a token"
        )
    roles = sorted({role for role in visit.form.get("roles", "").replace(",", " ").split() if role})
    minted = mint(
        visit.console.verifier,
        visit.form.get("user", "").strip(),
        visit.form.get("tenant", "").strip(),
        roles,
        lifetime=DEV_TOKEN_SECONDS,
    )
    return _keep(visit, minted)


def sign_out(visit: Visit) -> Response:
    response = redirect("/sign-in")
    session.end(response, visit.request)
    return response


def mint(verifier: JwtVerifier, user: str, tenant: str, roles: list[str], *, lifetime: int) -> str:
    """An HS256 token the verifier accepts, for a development sign-in."""
    if verifier.secret is None:
        raise UnauthenticatedError("No HS256 secret to sign a development token with")
    now = int(time.time())
    claims = {
        verifier.user_claim: user,
        verifier.tenant_claim: tenant,
        verifier.roles_claim: roles,
        "iat": now,
        "exp": now + lifetime,
        "iss": verifier.issuer,
        "aud": verifier.audience,
    }
    return jwt.encode(
        {k: v for k, v in claims.items() if v is not None}, verifier.secret, algorithm="HS256"
    )


def _keep(visit: Visit, token: str) -> Response:
    identity = visit.console.verifier.identify(f"Bearer {token}")
    identity.principal()  # a token whose user or tenant no principal can carry signs nobody in (INVALID_INPUT)
    # verified just above
    expires = float(jwt.decode(token, options={"verify_signature": False})["exp"])
    response = redirect(_next(visit.form.get("next", "")).removeprefix(BASE) or "/")
    session.start(response, visit.request, token, expires)
    return response


def _next(path: str) -> str:
    """Where to go after signing in: a console page, never another site."""
    return (
        path
        if path.startswith(f"{BASE}/") and "//" not in path and "\\" not in path
        else f"{BASE}/"
    )


def _catalog_roles(console: Console) -> list[str]:
    """The roles the catalog's grants name, offered by the development sign-in."""
    named = {
        role
        for spec in console.runtime.catalog.models.values()
        for roles in spec.grants.model_dump().values()
        for role in roles or ()
    }
    return sorted(named - {"*"})

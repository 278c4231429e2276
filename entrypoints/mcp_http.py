"""``writ mcp --transport http``'s door: who may call (a bearer JWT) and by which host names (DNS rebinding).

Every request must carry a bearer JWT that ``writ serve``'s own ``JwtVerifier`` accepts (the same
``WRIT_JWT_*`` settings: keys, issuer, audience, leeway, claim names); a request without one, or with one that
fails, is answered 401 with Writ's error body before the protocol sees it, so an anonymous caller learns not
even the tools' names. The token's identity rides on the request as ``scope["user"]`` (the SDK's own
``AuthenticatedUser``), which the SDK uses to bind each session to the person, tenant and agent that opened
it; the tool call acts as the token's person, with its ``act.sub`` as the agent.

Host and Origin headers are checked whatever the address (the SDK's DNS-rebinding protection): the loopback
names are always accepted, and so is the address the server listens on when it is a specific one; a server
listening on every address (``0.0.0.0``, ``::``) must be told the names clients reach it by
(``--allowed-host``), or it does not start. A request's Origin, when it sends one (browsers do), must be one
of those hosts over http or https, or an ``--allowed-origin``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.transport_security import TransportSecuritySettings
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import ConfigurationError, UnauthenticatedError
from entrypoints.http.auth import Identity, JwtVerifier
from entrypoints.http.errors import error_response
from entrypoints.http.loopback import LOOPBACK_HOSTS, address, bracketed

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?$")
_ORIGIN = re.compile(r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:(\d{1,5}|\*))?$")


class TokenUser(AuthenticatedUser):
    """The caller a verified bearer token names, as the SDK's session binding reads it."""

    def __init__(self, identity: Identity, issuer: str | None) -> None:
        owner = orjson.dumps([identity.tenant_id, identity.agent]).decode()
        super().__init__(
            AccessToken(
                token="",
                client_id=owner,
                scopes=[],
                subject=identity.user_id,
                claims={"iss": issuer},
            )
        )
        self.writ_identity = identity


class BearerGate:
    """ASGI: an HTTP request goes on only with a bearer token the verifier accepts; 401 otherwise."""

    def __init__(self, app: ASGIApp, verifier: JwtVerifier) -> None:
        self.app, self.verifier = app, verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                identity = self.verifier.identify(Headers(scope=scope).get("authorization"))
            except UnauthenticatedError as error:
                await error_response(error)(scope, receive, send)
                return
            scope["user"] = TokenUser(identity, self.verifier.issuer)
        await self.app(scope, receive, send)


def caller(request: object) -> Identity | None:
    """The identity ``BearerGate`` put on ``request`` (None: not a gated HTTP request, e.g. stdio)."""
    user = getattr(request, "scope", {}).get("user")
    return user.writ_identity if isinstance(user, TokenUser) else None


def host_checks(
    host: str,
    allowed_hosts: Sequence[str] = (),
    allowed_origins: Sequence[str] = (),
) -> TransportSecuritySettings:
    """The Host and Origin values a server listening on ``host`` accepts (``CONFIGURATION_INVALID`` for a
    malformed name, or for every address without ``allowed_hosts``)."""
    for name in allowed_hosts:
        if not _HOST.match(name):
            raise ConfigurationError(
                f"--allowed-host {name[:100]!r}: a host name or address, optionally with "
                ":PORT or :*, e.g. mcp.example.com or 10.0.0.5:8765"
            )
    for origin in allowed_origins:
        if not _ORIGIN.match(origin):
            raise ConfigurationError(
                f"--allowed-origin {origin[:100]!r}: scheme://host[:port], e.g. "
                "https://app.example.com"
            )
    if _every_address(host) and not allowed_hosts:
        raise ConfigurationError(
            f"--host {host} listens on every address: name the host clients reach it by "
            "with --allowed-host (repeatable), so the Host header can be checked"
        )
    # the address it listens on is a name clients use (127.0.0.2 is loopback, but not one of LOOPBACK_HOSTS)
    own = [] if _every_address(host) else [bracketed(host)]
    names = list(dict.fromkeys([*LOOPBACK_HOSTS, *own, *allowed_hosts]))
    hosts = [
        variant
        for name in names
        for variant in ((name,) if _has_port(name) else (name, f"{name}:*"))
    ]
    origins = [f"{scheme}://{name}" for name in hosts for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=hosts,
        allowed_origins=[*origins, *allowed_origins],
    )


def _every_address(host: str) -> bool:
    found = address(host)
    return host == "" or (found is not None and found.is_unspecified)


def _has_port(name: str) -> bool:
    return re.search(r":(\d+|\*)$", name) is not None

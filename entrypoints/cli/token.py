"""``writ token``: a bearer token for trying ``writ serve`` (and ``writ mcp --transport http``) during development.

It signs with ``WRIT_JWT_SECRET`` (HS256), the shared secret ``writ serve`` checks tokens with, and names
user, tenant and roles in the claims the server reads (``WRIT_JWT_USER_CLAIM`` etc., read by the same
``JwtVerifier.from_env``), with ``exp`` and, when set, ``WRIT_JWT_ISSUER`` and ``WRIT_JWT_AUDIENCE``.
Without a secret it refuses (``CONFIGURATION_INVALID``). It is for development and tests only: whoever holds
the secret can mint any identity, so production tokens come from an identity provider whose public key
``writ serve`` is given (``WRIT_JWT_PUBLIC_KEY`` or ``WRIT_JWT_JWKS_FILE``), never from this command.
"""

from __future__ import annotations

import os
import time

import click

from domain.errors import ConfigurationError
from entrypoints.cli.options import principal_from

MAX_LIFETIME = 7 * 24 * 3600


@click.command("token")
@click.option("--user", "-u", envvar="WRIT_USER", required=True, help="The user the token names.")
@click.option("--tenant", "-t", envvar="WRIT_TENANT", required=True, help="Their tenant.")
@click.option(
    "--role",
    "-r",
    "roles",
    envvar="WRIT_ROLES",
    multiple=True,
    help="A role (repeatable, or comma-separated).",
)
@click.option(
    "--agent",
    help="An agent acting for the user (the RFC 8693 act claim), recorded on every write.",
)
@click.option(
    "--expires-in",
    type=click.IntRange(1, MAX_LIFETIME),
    default=3600,
    show_default=True,
    metavar="SECONDS",
    help="Lifetime of the token.",
)
def token(
    user: str, tenant: str, roles: tuple[str, ...], agent: str | None, expires_in: int
) -> None:
    """Mint a development bearer token for `writ serve`, signed with WRIT_JWT_SECRET (HS256).

    For development and tests only: anyone holding the secret can mint any identity. In production, tokens
    come from your identity provider and `writ serve` checks them with its public key.

    \b
    Example:
      writ token -u carol -t acme -r clerk    # with WRIT_JWT_SECRET set, as for `writ serve`: prints the token
      writ token -u carol -t acme -r clerk --agent order-bot --expires-in 600
    """
    import jwt

    from entrypoints.http.auth import JwtVerifier

    if not os.environ.get("WRIT_JWT_SECRET"):
        raise ConfigurationError(
            "writ token signs with WRIT_JWT_SECRET, and it is not set: export it (at least 32 "
            "bytes, e.g. $(openssl rand -hex 32)) for both `writ serve` and `writ token`"
        )
    # the claim names, issuer and audience the server checks; the secret's length
    verifier = JwtVerifier.from_env()
    assert verifier.secret is not None
    # the same checks as every other command's principal
    who = principal_from(user, tenant, roles, None)
    now = int(time.time())
    claims = {
        verifier.user_claim: who.user_id,
        verifier.tenant_claim: who.tenant_id,
        verifier.roles_claim: sorted(who.roles),
        "iat": now,
        "exp": now + expires_in,
    }
    if verifier.issuer:
        claims["iss"] = verifier.issuer
    if verifier.audience:
        claims["aud"] = verifier.audience
    if agent:
        claims["act"] = {"sub": agent}
    click.echo(jwt.encode(claims, verifier.secret, algorithm="HS256"))

"""Bearer JWTs: who is calling, for which tenant, with which roles.

Configuration (environment, read once at start):

* ``WRIT_JWT_SECRET`` — an HS256 shared secret (at least 32 bytes); and/or
* ``WRIT_JWT_PUBLIC_KEY`` / ``WRIT_JWT_PUBLIC_KEY_FILE`` (a PEM RSA or EC public key: RS256 or ES256) or
  ``WRIT_JWT_JWKS_FILE`` (a JSON Web Key Set; the token's ``kid`` picks the key);
* ``WRIT_JWT_ISSUER`` and ``WRIT_JWT_AUDIENCE`` — checked when set (a deployment should set both);
* ``WRIT_JWT_LEEWAY_SECONDS`` (30) — clock skew allowed on ``exp``, ``nbf`` and ``iat``;
* ``WRIT_JWT_USER_CLAIM`` (``sub``), ``WRIT_JWT_TENANT_CLAIM`` (``tenant``), ``WRIT_JWT_ROLES_CLAIM``
  (``roles``: a list, or a space-separated string) — the claim names.

Every token needs a valid signature by a configured key, ``exp``, and ``nbf``/``iat`` when present; the
algorithm is the configured key's own (``alg: none`` and HS/RS confusion are refused: a public key is
never used as an HMAC secret, and a token's ``alg`` must be one its key allows). An agent acting for a
person is named by the RFC 8693 ``act`` claim (``{"sub": "agent-name"}``) and recorded with every write.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import orjson
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from domain.errors import ConfigurationError, UnauthenticatedError
from domain.principal import Principal
from entrypoints.whole_numbers import whole_number

LEEWAY_SECONDS = 30
MIN_SECRET_BYTES = 32
CACHED_TOKENS = 10_000
"""Tokens remembered once verified (a client sends the same one with every request): a repeat costs a
lookup and a check of its time window, not a signature check. The configuration is read once at start,
so nothing a restart would not change can make a remembered verdict wrong."""


@dataclass(frozen=True)
class Identity:
    user_id: str
    tenant_id: str
    roles: frozenset[str]
    agent: str | None = None

    def principal(self, **context: str | None) -> Principal:
        """The principal this identity acts as (``context``: purpose, correlation and causation ids); the agent,
        when the token names one, is recorded beside the person as ``audit.agent``."""
        audit = {"agent": self.agent} if self.agent else {}
        return Principal(
            user_id=self.user_id,
            tenant_id=self.tenant_id,
            roles=self.roles,
            audit_attributes=audit,
            **context,
        )


@dataclass
class JwtVerifier:
    secret: bytes | None = None
    public_keys: dict[str | None, tuple[Any, str]] = field(default_factory=dict)
    """kid (None: the one PEM key) -> (key object, its algorithm)."""
    issuer: str | None = None
    audience: str | None = None
    user_claim: str = "sub"
    tenant_claim: str = "tenant"
    roles_claim: str = "roles"
    leeway: int = LEEWAY_SECONDS
    """Seconds of clock skew allowed on exp, nbf and iat."""
    _verified: dict[str, tuple[Identity, float, float]] = field(default_factory=dict, repr=False)
    """token -> (identity, not before, expires), for tokens whose signature and claims checked out."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> JwtVerifier:
        env = dict(os.environ if env is None else env)
        secret = env.get("WRIT_JWT_SECRET") or None
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"WRIT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        keys: dict[str | None, tuple[Any, str]] = {}
        pem = env.get("WRIT_JWT_PUBLIC_KEY") or _read(env.get("WRIT_JWT_PUBLIC_KEY_FILE"))
        if pem:
            keys[None] = _pem_key(pem)
        jwks = _read(env.get("WRIT_JWT_JWKS_FILE"))
        if jwks:
            keys.update(_jwks(jwks))
        if secret is None and not keys:
            raise ConfigurationError(
                "the HTTP API needs WRIT_JWT_SECRET, WRIT_JWT_PUBLIC_KEY[_FILE] or "
                "WRIT_JWT_JWKS_FILE to check bearer tokens"
            )
        if keys and not env.get("WRIT_JWT_AUDIENCE"):
            # an identity provider's key signs the tokens of all its applications: without the audience
            # checked, a token it made for another would be taken here (the secret is Writ's alone)
            raise ConfigurationError(
                "WRIT_JWT_AUDIENCE must be set with WRIT_JWT_PUBLIC_KEY[_FILE] or WRIT_JWT_JWKS_FILE: "
                "the identity provider's key signs tokens for its other applications too; set it to the "
                "audience the provider puts in the tokens it issues for Writ"
            )
        return cls(
            secret=secret.encode() if secret else None,
            public_keys=keys,
            issuer=env.get("WRIT_JWT_ISSUER") or None,
            audience=env.get("WRIT_JWT_AUDIENCE") or None,
            user_claim=env.get("WRIT_JWT_USER_CLAIM", "sub"),
            tenant_claim=env.get("WRIT_JWT_TENANT_CLAIM", "tenant"),
            roles_claim=env.get("WRIT_JWT_ROLES_CLAIM", "roles"),
            leeway=_seconds(env.get("WRIT_JWT_LEEWAY_SECONDS")),
        )

    def identify(self, authorization: str | None) -> Identity:
        """The identity a ``Bearer`` token proves, or ``UNAUTHENTICATED`` saying why not."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise UnauthenticatedError("Send a bearer token: Authorization: Bearer <JWT>")
        known = self._verified.get(token)
        if known is not None and known[1] - self.leeway <= time.time() < known[2] + self.leeway:
            return known[0]
        try:
            header = jwt.get_unverified_header(token)
            key, algorithm = self._key_for(header)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as exc:
            raise UnauthenticatedError(f"The bearer token is not valid: {exc}") from None
        identity = self._identity(claims)
        self._remember(token, identity, claims)
        return identity

    def _remember(self, token: str, identity: Identity, claims: dict[str, Any]) -> None:
        window = (float(claims.get("nbf", 0) or 0), float(claims["exp"]))
        self._verified[token] = (identity, *window)
        while len(self._verified) > CACHED_TOKENS:
            self._verified.pop(next(iter(self._verified)), None)

    def _key_for(self, header: dict[str, Any]) -> tuple[Any, str]:
        algorithm = header.get("alg")
        if algorithm == "HS256" and self.secret is not None:
            return self.secret, "HS256"
        found = self.public_keys.get(header.get("kid")) or (
            self.public_keys.get(None) if self.public_keys else None
        )
        if found is not None and algorithm == found[1]:
            return found
        raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted for this token")

    def _identity(self, claims: dict[str, Any]) -> Identity:
        user, tenant, roles = (
            claims.get(self.user_claim),
            claims.get(self.tenant_claim),
            claims.get(self.roles_claim, []),
        )
        if not isinstance(user, str) or not user or not isinstance(tenant, str) or not tenant:
            raise UnauthenticatedError(
                f"The token must carry the {self.user_claim!r} and {self.tenant_claim!r} "
                "claims as strings"
            )
        if isinstance(roles, str):
            roles = roles.split()
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise UnauthenticatedError(f"The {self.roles_claim!r} claim must be a list of strings")
        actor = claims.get("act")
        agent = (
            actor.get("sub")
            if isinstance(actor, dict) and isinstance(actor.get("sub"), str)
            else None
        )
        return Identity(user, tenant, frozenset(roles), agent)


def _seconds(text: str | None) -> int:
    if not text:
        return LEEWAY_SECONDS
    seconds = whole_number(text)
    if seconds is None or seconds > 3600:
        raise ConfigurationError(
            f"WRIT_JWT_LEEWAY_SECONDS: {text[:20]!r} is not a whole number of seconds up to 3600"
        )
    return seconds


def _read(path: str | None) -> str | None:
    if not path:
        return None
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise ConfigurationError(f"{path}: {exc.strerror or exc}") from None


def _pem_key(pem: str) -> tuple[Any, str]:
    for algorithm, kind in (("RS256", RSAAlgorithm), ("ES256", ECAlgorithm)):
        try:
            return kind(kind.SHA256).prepare_key(pem), algorithm
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue
    raise ConfigurationError("WRIT_JWT_PUBLIC_KEY: not a PEM RSA or EC public key")


def _jwks(text: str) -> dict[str | None, tuple[Any, str]]:
    try:
        keys = orjson.loads(text)["keys"]
        found = {}
        for entry in keys:
            algorithm = entry.get("alg") or {"RSA": "RS256", "EC": "ES256"}[entry["kty"]]
            if algorithm not in ("RS256", "ES256"):
                raise ConfigurationError(
                    f"WRIT_JWT_JWKS_FILE: algorithm {algorithm!r} is not accepted"
                )
            found[entry.get("kid")] = (jwt.PyJWK(entry, algorithm).key, algorithm)
        return found
    except (orjson.JSONDecodeError, KeyError, TypeError, jwt.PyJWTError) as exc:
        raise ConfigurationError(f"WRIT_JWT_JWKS_FILE: not a JSON Web Key Set: {exc}") from None

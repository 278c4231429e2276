"""The bearer-token checks, in process: key kinds, key sets, claims, configuration errors."""

from __future__ import annotations

import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from domain.errors import ConfigurationError, UnauthenticatedError
from entrypoints.http import auth
from entrypoints.http.auth import JwtVerifier
from tests.support import wait_until


def pem(private: Any) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


PUBLIC_KEY = pem(ec.generate_private_key(ec.SECP256R1()))
"""A valid public key, for configurations."""


def signed(key: Any, algorithm: str, **claims: Any) -> str:
    body = {
        "sub": "carol",
        "tenant": "acme",
        "roles": "clerk auditor",
        "exp": int(time.time()) + 60,
        **claims,
    }
    return "Bearer " + jwt.encode(
        body,
        key,
        algorithm=algorithm,
        headers={"kid": claims.pop("kid", None)} if "kid" in claims else None,
    )


def test_an_es256_key_verifies_and_roles_may_be_a_string() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier.from_env(
        {"WRIT_JWT_PUBLIC_KEY": pem(private), "WRIT_JWT_AUDIENCE": "writ"}
    )
    identity = verifier.identify(signed(private, "ES256", aud="writ"))
    assert (identity.user_id, identity.tenant_id, identity.roles) == (
        "carol",
        "acme",
        frozenset({"clerk", "auditor"}),
    )
    with pytest.raises(UnauthenticatedError):
        verifier.identify(signed(ec.generate_private_key(ec.SECP256R1()), "ES256", aud="writ"))
    with pytest.raises(UnauthenticatedError, match=r"[Aa]udience"):
        verifier.identify(
            signed(private, "ES256", aud="another-app")
        )  # the provider's, for another


def test_the_shared_secret_and_a_providers_key_both_verify() -> None:
    private, secret = ec.generate_private_key(ec.SECP256R1()), "s" * 32
    verifier = JwtVerifier.from_env(
        {
            "WRIT_JWT_SECRET": secret,
            "WRIT_JWT_PUBLIC_KEY": pem(private),
            "WRIT_JWT_AUDIENCE": "writ",
        }
    )
    assert verifier.identify(signed(private, "ES256", aud="writ")).user_id == "carol"
    assert verifier.identify(signed(secret, "HS256", aud="writ")).user_id == "carol"


def test_a_key_set_picks_the_key_by_kid(tmp_path: Any) -> None:
    first, second = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)
    )
    keys = [
        {
            **orjson.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
            "kid": kid,
            "alg": "RS256",
        }
        for k, kid in ((first, "one"), (second, "two"))
    ]
    path = tmp_path / "jwks.json"
    path.write_bytes(orjson.dumps({"keys": keys}))
    verifier = JwtVerifier.from_env({"WRIT_JWT_JWKS_FILE": str(path), "WRIT_JWT_AUDIENCE": "writ"})
    assert verifier.identify(signed(second, "RS256", kid="two", aud="writ")).user_id == "carol"
    with pytest.raises(UnauthenticatedError):
        verifier.identify(signed(second, "RS256", kid="one", aud="writ"))
    for kid in ("three", None):  # a key the set does not name: no key of the set stands in for it
        with pytest.raises(UnauthenticatedError):
            verifier.identify(signed(first, "RS256", aud="writ", **({"kid": kid} if kid else {})))
    (tmp_path / "hmac.json").write_bytes(
        orjson.dumps(
            {"keys": [{"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "alg": "HS256"}]}
        )
    )
    with pytest.raises(ConfigurationError, match="algorithm 'HS256' is not accepted"):
        JwtVerifier.from_env(
            {"WRIT_JWT_JWKS_FILE": str(tmp_path / "hmac.json"), "WRIT_JWT_AUDIENCE": "writ"}
        )


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"sub": None}, "[Ss]ubject"),
        ({"sub": ""}, "'sub' and 'tenant'"),
        ({"tenant": 7}, "'sub' and 'tenant'"),
        ({"roles": [1, 2]}, "list of strings"),
    ],
)
def test_claims_of_the_wrong_shape_are_refused(claims: dict[str, Any], why: str) -> None:
    secret = "s" * 32
    verifier = JwtVerifier.from_env({"WRIT_JWT_SECRET": secret})
    with pytest.raises(UnauthenticatedError, match=why):
        verifier.identify(signed(secret, "HS256", **claims))


@pytest.mark.parametrize(
    "env, why",
    [
        ({}, "needs WRIT_JWT_SECRET"),
        ({"WRIT_JWT_SECRET": "short"}, "at least 32 bytes"),
        ({"WRIT_JWT_SECRET": "s" * 31}, "at least 32 bytes"),
        ({"WRIT_JWT_PUBLIC_KEY": "not a key"}, "not a PEM RSA or EC public key"),
        ({"WRIT_JWT_JWKS_FILE": "/nonexistent/jwks.json"}, "/nonexistent/jwks.json"),
        ({"WRIT_JWT_PUBLIC_KEY": PUBLIC_KEY}, "WRIT_JWT_AUDIENCE must be set"),
        ({"WRIT_JWT_SECRET": "s" * 32, "WRIT_JWT_LEEWAY_SECONDS": "3601"}, "up to 3600"),
    ],
)
def test_a_bad_configuration_is_one_clear_error(env: dict[str, str], why: str) -> None:
    with pytest.raises(ConfigurationError, match=why):
        JwtVerifier.from_env(env)


def test_a_remembered_token_is_refused_once_it_expires() -> None:
    secret = "s" * 32
    verifier = JwtVerifier.from_env({"WRIT_JWT_SECRET": secret, "WRIT_JWT_LEEWAY_SECONDS": "0"})
    bearer = signed(secret, "HS256", exp=int(time.time()) + 2)
    assert (
        verifier.identify(bearer).user_id == "carol"
        and verifier.identify(bearer).user_id == "carol"
    )

    def refused() -> bool:
        try:
            verifier.identify(bearer)
        except UnauthenticatedError as error:
            return "expired" in error.message
        return False

    wait_until(refused, 10, "the remembered token to expire")


def test_only_the_bearer_scheme_carries_a_token() -> None:
    secret = "s" * 32
    verifier = JwtVerifier.from_env({"WRIT_JWT_SECRET": secret})
    token = signed(secret, "HS256").removeprefix("Bearer ")
    assert verifier.identify(f"bearer {token}").user_id == "carol"
    for header in (f"Basic {token}", f"Token {token}", token, f"Bearer{token}"):
        with pytest.raises(UnauthenticatedError, match="Send a bearer token"):
            verifier.identify(header)


def test_the_tokens_remembered_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller minting a new token per request must not grow the server's memory without end."""
    monkeypatch.setattr(auth, "CACHED_TOKENS", 3)
    secret = "s" * 32
    verifier = JwtVerifier.from_env({"WRIT_JWT_SECRET": secret})
    for n in range(5):
        assert verifier.identify(signed(secret, "HS256", sub=f"user-{n}")).user_id == f"user-{n}"
    assert len(verifier._verified) == 3

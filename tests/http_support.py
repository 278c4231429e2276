"""A real ``writ serve`` on loopback for HTTP tests, and the tokens to call it with.

The server is its own process (as in production), started with an HS256 secret and an RSA public key,
an issuer and an audience; on PostgreSQL a ``writ project`` worker runs beside it.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.catalogs import DOCS_CATALOG, SALES_CATALOG, SHOP_CATALOG
from tests.conftest import PG_URL, service_unavailable
from tests.support import CliProcess, wait_until

SECRET = "http-test-secret-of-at-least-32-bytes!!"
ISSUER, AUDIENCE = "https://id.example", "writ-api"
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    PRIVATE_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)
CATALOG = SHOP_CATALOG + SALES_CATALOG + DOCS_CATALOG


def token(
    user: str = "carol",
    tenant: str = "acme",
    *roles: str,
    key: Any = SECRET,
    algorithm: str = "HS256",
    lifetime: int = 6 * 3600,
    **claims: Any,
) -> str:
    """A signed test token; it outlives the longest test run (modules make theirs at import, and a run in
    two processes reaches some of them half an hour later)."""
    now = int(time.time())
    body = {
        "sub": user,
        "tenant": tenant,
        "roles": list(roles or ("clerk",)),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + lifetime,
        **claims,
    }
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=algorithm)


def headers(
    bearer: str | None = None, purpose: str | None = "http test", **extra: str
) -> dict[str, str]:
    found = {"Authorization": f"Bearer {bearer or token()}", **extra}
    if purpose is not None:
        found["Writ-Purpose"] = purpose
    return found


@dataclass
class Server:
    url: str
    database_url: str
    client: httpx.Client
    pid: int

    def call(
        self,
        method: str,
        path: str,
        *,
        bearer: str | None = None,
        purpose: str | None = "http test",
        **options: Any,
    ) -> httpx.Response:
        extra = options.pop("headers", {})
        return self.client.request(
            method, path, headers={**headers(bearer, purpose), **extra}, **options
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    database_url: str,
    catalog: Path,
    *,
    max_body: int = 1_000_000,
    workers: int = 1,
    env: dict[str, str] | None = None,
    projection: bool = True,
) -> Iterator[Server]:
    """``writ serve`` (``env`` added to its environment), and on PostgreSQL a ``writ project`` beside it unless
    ``projection`` is off."""
    port = free_port()
    env = {
        **(env or {}),
        "WRIT_DATABASE_URL": database_url,
        "WRIT_JWT_SECRET": SECRET,
        "WRIT_JWT_PUBLIC_KEY": PUBLIC_PEM,
        "WRIT_JWT_ISSUER": ISSUER,
        "WRIT_JWT_AUDIENCE": AUDIENCE,
    }
    server = CliProcess(
        "serve",
        "--catalog",
        str(catalog),
        "--port",
        str(port),
        "--max-body-bytes",
        str(max_body),
        "--workers",
        str(workers),
        env=env,
    )
    worker = None
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=30) as client:
        try:
            wait_until(lambda: _answers(client), 60, "writ serve to answer /healthz")
            # the schema exists now: the worker makes only its views
            if projection and not database_url.startswith("sqlite"):
                worker = CliProcess("project", "--catalog", str(catalog), env=env)
                # its views are made with its position, in one transaction: a first test's read finds them
                wait_until(lambda: _projecting(client), 60, "writ project to make the views")
            yield Server(url, database_url, client, server.process.pid)
        finally:
            server.stop()
            if worker is not None:
                worker.stop()


def _projecting(client: httpx.Client) -> bool:
    followers = client.get("/healthz", headers=headers()).json().get("followers", {})
    return any(name.startswith("projection:") for name in followers)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{directory}/http.db"
        return
    schema = f"h_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        service_unavailable("PostgreSQL", exc)
    yield f"{PG_URL}?schema={schema}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("http")
    catalog = directory / "writ.toml"
    catalog.write_text(CATALOG)
    for url in database(request.param, directory):
        yield from start(url, catalog)

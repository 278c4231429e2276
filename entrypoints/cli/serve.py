"""``writ serve``: the HTTP API under uvicorn (``entrypoints.http``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import click
import orjson
from starlette.applications import Starlette

from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import database_option, load_catalog
from entrypoints.http.app import create_app
from entrypoints.http.auth import JwtVerifier
from entrypoints.http.context import DEFAULT_MAX_BODY


@click.command("serve")
@click.option(
    "--catalog",
    envvar="WRIT_CATALOG",
    default="writ.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file.",
)
@database_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free).",
)
@click.option(
    "--max-body-bytes",
    type=click.IntRange(1),
    default=DEFAULT_MAX_BODY,
    show_default=True,
    help="Refuse larger request bodies with 413.",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request (a line each, on stderr; costs about a tenth of the throughput).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes behind the one port (PostgreSQL only): each saves its own requests in group "
    "commits, PostgreSQL orders them all.",
)
def serve(
    catalog: Path,
    database_url: str | None,
    host: str,
    port: int,
    max_body_bytes: int,
    access_log: bool,
    workers: int,
) -> None:
    """Serve the HTTP API: JWT-authenticated writes, reads from the projections, OpenAPI at /openapi.json.

    Bearer tokens are checked with WRIT_JWT_SECRET (HS256) or WRIT_JWT_PUBLIC_KEY[_FILE] / WRIT_JWT_JWKS_FILE
    (RS256, ES256), and WRIT_JWT_ISSUER / WRIT_JWT_AUDIENCE when set. On PostgreSQL run `writ project`
    beside it; on the embedded default reads catch the views up first.

    \b
    Example:
      writ serve --catalog writ.toml --port 8000        # with WRIT_JWT_SECRET=$(openssl rand -hex 32)
      curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/Order
    """
    import uvicorn

    JwtVerifier.from_env()  # refuses a bad JWT configuration before any worker starts
    # makes the store's tables once, here
    with Runtime(load_catalog(catalog), database_url) as runtime:
        if workers > 1 and runtime.backend.embedded:
            raise ConfigurationError(
                "--workers needs PostgreSQL: the embedded default's views are caught up "
                "by the one process that serves them"
            )
    os.environ[SETTINGS] = orjson.dumps(
        {"catalog": str(catalog), "database_url": database_url, "max_body": max_body_bytes}
    ).decode()
    uvicorn.run(
        f"{__name__}:worker_app",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_level="info",
        access_log=access_log,
        timeout_graceful_shutdown=10,
    )


SETTINGS = "WRIT_SERVE_SETTINGS"
"""How ``writ serve`` hands its options to the worker processes uvicorn starts (each builds its own app)."""


def worker_app() -> Starlette:
    """One server process's app (uvicorn's factory): its own runtime on the store, closed when it stops."""
    settings = orjson.loads(os.environ[SETTINGS])
    runtime = Runtime(load_catalog(Path(settings["catalog"])), settings["database_url"])

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            runtime.close()

    return create_app(
        runtime, JwtVerifier.from_env(), max_body=settings["max_body"], lifespan=lifespan
    )

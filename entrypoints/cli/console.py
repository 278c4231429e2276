"""``writ console``: the web console (and the HTTP API) on the embedded default, with a development sign-in.

It serves what ``writ serve`` serves, on loopback only, and opens the browser at ``/console``. Its sign-in
page also offers a development sign-in (pick a user, a tenant and roles): the server mints a short-lived
token with its HS256 secret (``WRIT_JWT_SECRET``, or a random one for this run) and checks it like any
other. Anyone who can reach the port can sign in as anyone, so it refuses PostgreSQL (use ``writ serve``
and real tokens there) and any address but loopback.
"""

from __future__ import annotations

import os
import secrets  # noqa: TID251 - a dev signing secret, made once per run: not a write
import threading
import time
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog

if TYPE_CHECKING:
    from entrypoints.http.auth import JwtVerifier


@click.command("console")
@click.option(
    "--catalog",
    envvar="WRIT_CATALOG",
    default="writ.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file.",
)
@click.option(
    "--database",
    "database_url",
    default=None,
    help="Database URL (default: WRIT_DATABASE_URL; SQLite only).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Loopback address to listen on."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port (0: any free).",
)
@click.option(
    "--browser/--no-browser",
    default=True,
    show_default=True,
    help="Open the console in the browser.",
)
def console(catalog: Path, database_url: str | None, host: str, port: int, browser: bool) -> None:
    """Serve the web console on the embedded default and open it, with a development sign-in.

    Approvers see the requests waiting for them, auditors the records, their history, the decisions and
    the log's checkpoint. Sign in with a token, or pick a user, tenant and roles (this command only).

    \b
    Example:
      writ console                               # http://127.0.0.1:8000/console/ opens in the browser
      writ console --port 8100 --no-browser
    """
    import uvicorn

    from entrypoints.http.app import create_app
    from entrypoints.http.loopback import is_loopback

    if not is_loopback(host):
        raise ConfigurationError(
            f"writ console listens on loopback only (its development sign-in lets anyone "
            f"sign in as anyone), not {host}: use writ serve with real tokens"
        )
    verifier = _verifier()
    with Runtime(load_catalog(catalog), database_url) as runtime:
        if not runtime.backend.embedded:
            raise ConfigurationError(
                "writ console runs on the embedded default (SQLite) only: on PostgreSQL run "
                "writ serve, whose console signs people in with real tokens"
            )
        app = create_app(runtime, verifier, dev_sign_in=True, host=host)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10
            )
        )
        threading.Thread(target=_announce, args=(server, host, browser), daemon=True).start()
        server.run()


def _verifier() -> JwtVerifier:
    from entrypoints.http.auth import JwtVerifier

    # this run's own, for its dev tokens
    secret = os.environ.get("WRIT_JWT_SECRET") or secrets.token_hex(32)
    return JwtVerifier.from_env({**os.environ, "WRIT_JWT_SECRET": secret})


def _announce(server: Any, host: str, browser: bool) -> None:
    """Once the server listens: say where, and open the browser there."""
    from entrypoints.http.loopback import bracketed

    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    bound = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://{bracketed(host)}:{bound}/console/"
    click.echo(
        f"console at {url} (development sign-in: any user, tenant and roles; Ctrl-C stops it)",
        err=True,
    )
    if browser:
        webbrowser.open(url)

"""``writ mcp``: the catalog's models as agent tools, over the Model Context Protocol (stdio or HTTP).

Over stdio the launcher is trusted: the server acts for the person it names (``--user/--tenant/--role``, or
``WRIT_USER``, ``WRIT_TENANT``, ``WRIT_ROLES``) and records ``--agent`` as the agent. Over HTTP nobody is
trusted: every request needs a bearer JWT, checked with ``writ serve``'s settings (``WRIT_JWT_*``), which names
the person and the agent; without those settings the server does not start, whatever the address. Each
write states its purpose per call, so there is no ``--purpose`` here.
"""

from __future__ import annotations

from pathlib import Path

import click

from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog, principal_from

LAUNCHER_OPTIONS = ("user", "tenant", "roles", "agent")


@click.command("mcp")
@click.option("--user", "-u", envvar="WRIT_USER", help="stdio: the person the agent acts for.")
@click.option("--tenant", "-t", envvar="WRIT_TENANT", help="stdio: their tenant id.")
@click.option(
    "--role",
    "-r",
    "roles",
    envvar="WRIT_ROLES",
    multiple=True,
    help="stdio: their role (repeatable).",
)
@click.option(
    "--catalog",
    envvar="WRIT_CATALOG",
    default="writ.toml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Catalog file.",
)
@click.option(
    "--agent",
    envvar="WRIT_AGENT",
    help="stdio: the agent's name, recorded on every call as audit.agent.",
)
@click.option(
    "--transport",
    type=click.Choice(["stdio", "http"]),
    default="stdio",
    show_default=True,
    help="stdio for a client that starts the server; http for streamable HTTP at /mcp (bearer JWT).",
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="HTTP: the address to listen on."
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="HTTP: the port."
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    envvar="WRIT_MCP_ALLOWED_HOSTS",
    multiple=True,
    help="HTTP: a Host name clients use (NAME, NAME:PORT or NAME:*; repeatable; loopback names and a "
    "specific --host are always allowed).",
)
@click.option(
    "--allowed-origin",
    "allowed_origins",
    envvar="WRIT_MCP_ALLOWED_ORIGINS",
    multiple=True,
    help="HTTP: another browser Origin to accept (https://app.example.com; repeatable).",
)
@click.pass_context
def mcp(
    ctx: click.Context,
    user: str | None,
    tenant: str | None,
    roles: tuple[str, ...],
    catalog: Path,
    agent: str | None,
    transport: str,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
) -> None:
    """Serve the catalog's models as agent tools (Model Context Protocol).

    Per model: create_, replace_, patch_, delete_, restore_, purge_ and query_<model>; and evaluate,
    history and approval_status. Every write takes a purpose and runs through the same policy,
    grants and approvals as any other; a write that needs approval returns its approval_id.

    Over stdio the tools act for -u/-t/-r. Over HTTP every request needs a bearer JWT (checked as
    `writ serve` checks it: WRIT_JWT_SECRET, WRIT_JWT_PUBLIC_KEY[_FILE] or WRIT_JWT_JWKS_FILE), which names
    the person and, in its act claim, the agent.

    \b
    Example:
      writ mcp --catalog writ.toml -u carol -t acme -r clerk --agent order-bot
      writ mcp --transport http --port 8765        # with WRIT_JWT_SECRET set; http://127.0.0.1:8765/mcp
    """
    from entrypoints.agent_calls import AgentIdentity, AgentTools
    from entrypoints.mcp_server import serve_stdio

    if transport == "http":
        _serve_over_http(ctx, catalog, host, port, allowed_hosts, allowed_origins)
        return
    if not user or not tenant:
        raise click.UsageError("stdio: name the person the agent acts for with --user and --tenant")
    identity = AgentIdentity(principal_from(user, tenant, roles, None), agent)
    with Runtime(load_catalog(catalog)) as runtime:
        serve_stdio(AgentTools(runtime, identity))


def _serve_over_http(
    ctx: click.Context,
    catalog: Path,
    host: str,
    port: int,
    allowed_hosts: tuple[str, ...],
    allowed_origins: tuple[str, ...],
) -> None:
    """Check the door's settings before anything opens, then serve until stopped."""
    from entrypoints.agent_calls import AgentTools
    from entrypoints.http.auth import JwtVerifier
    from entrypoints.mcp_http import host_checks
    from entrypoints.mcp_server import serve_http

    try:
        verifier = JwtVerifier.from_env()
    except ConfigurationError as error:
        raise ConfigurationError(
            f"writ mcp --transport http authenticates every caller: {error.message}"
        ) from None
    checks = host_checks(host, allowed_hosts, allowed_origins)
    given = [
        f"--{name}"
        for name in LAUNCHER_OPTIONS
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    ]
    if given:
        click.echo(
            f"writ mcp: {', '.join(given)} ignored over HTTP: each caller's token names the person and the "
            "agent",
            err=True,
        )
    with Runtime(load_catalog(catalog)) as runtime:
        serve_http(AgentTools(runtime), verifier, checks, host, port)

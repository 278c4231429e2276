"""``writ mcp``: the catalog's models as agent tools, over the Model Context Protocol (stdio or HTTP).

The server acts for one person (``--user/--tenant/--role``, or ``WRIT_USER``, ``WRIT_TENANT``,
``WRIT_ROLES``) and records the agent (``--agent``, else the name the client gives itself) on every
write it makes. Each write states its purpose per call, so there is no ``--purpose`` here.
"""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog, principal_from


@click.command("mcp")
@click.option("--user", "-u", envvar="WRIT_USER", required=True, help="The person the agent acts for.")
@click.option("--tenant", "-t", envvar="WRIT_TENANT", required=True, help="Tenant id.")
@click.option("--role", "-r", "roles", envvar="WRIT_ROLES", multiple=True, help="Their role (repeatable).")
@click.option("--catalog", envvar="WRIT_CATALOG", default="writ.toml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="Catalog file.")
@click.option("--agent", envvar="WRIT_AGENT",
              help="The agent's name, recorded on every write (default: the name the client gives itself).")
@click.option("--transport", type=click.Choice(["stdio", "http"]), default="stdio", show_default=True,
              help="stdio for a client that starts the server; http for streamable HTTP at /mcp.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP: the address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True, help="HTTP: the port.")
def mcp(user: str, tenant: str, roles: tuple[str, ...], catalog: Path, agent: str | None, transport: str,
        host: str, port: int) -> None:
    """Serve the catalog's models as agent tools (Model Context Protocol), for one person.

    Per model: create_, replace_, patch_, delete_, restore_, purge_ and query_<model>; and evaluate,
    history and approval_status. Every write takes a purpose and runs through the same policy,
    grants and approvals as any other; a write that needs approval returns its approval_id.

    \b
    Example:
      writ mcp --catalog writ.toml -u carol -t acme -r clerk --agent order-bot
      writ mcp --transport http --port 8765 -u carol -t acme -r clerk   # http://127.0.0.1:8765/mcp
    """
    from entrypoints.agent_calls import AgentIdentity, AgentTools
    from entrypoints.mcp_server import serve

    identity = AgentIdentity(principal_from(user, tenant, roles, None), agent)
    with Runtime(load_catalog(catalog)) as runtime:
        serve(AgentTools(runtime, identity), "http" if transport == "http" else "stdio", host, port)

"""``writ mcp``'s protocol side: the agent tools offered over the Model Context Protocol (the ``mcp`` SDK).

A thin adapter: the low-level SDK ``Server`` lists ``AgentTools``' tools and hands each call to
``AgentTools.call`` (``entrypoints.agent_calls``), with the name the client gave itself at the handshake
(or in the request envelope), and over HTTP the caller its bearer token names. Calls run in a worker
thread, one at a time, so the store's blocking I/O never stalls the event loop. A refusal is a tool result
with ``isError`` (its content the error's code and message); an unknown tool name is a protocol error.
Transports: stdio (the launcher is trusted: the tools act for the person it names), or streamable HTTP
served by uvicorn behind ``entrypoints.mcp_http``'s bearer check and Host/Origin checks.
"""

from __future__ import annotations

from functools import partial
from importlib import metadata
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server, ServerRequestContext
from mcp.server.stdio import stdio_server
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from entrypoints.agent_calls import AgentTools, ToolResult, UnknownToolError
from entrypoints.agent_tools import ToolSpec, instructions
from entrypoints.http.auth import JwtVerifier
from entrypoints.mcp_http import BearerGate, caller

SERVER_NAME = "writ"
HTTP_PATH = "/mcp"


def build_server(tools: AgentTools) -> Server[Any]:
    """The SDK server offering ``tools``."""
    listed = types.ListToolsResult(tools=[_tool(spec) for spec in tools.specs.values()])
    one_at_a_time = anyio.CapacityLimiter(1)

    async def list_tools(
        _: ServerRequestContext[Any],
        __: types.PaginatedRequestParams | None,
    ) -> types.ListToolsResult:
        return listed

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        run = partial(
            tools.call, params.name, params.arguments, _client_name(ctx), caller(ctx.request)
        )
        try:
            result = await anyio.to_thread.run_sync(run, limiter=one_at_a_time)
        except UnknownToolError as exc:
            raise MCPError(types.INVALID_PARAMS, str(exc)) from None
        return _call_result(result)

    return Server(
        SERVER_NAME,
        version=_version(),
        instructions=instructions(tools.runtime.catalog),
        get_tool_input_schema=tools.input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def serve_stdio(tools: AgentTools) -> None:
    """Serve ``tools`` over stdio until the client hangs up."""
    anyio.run(_serve_stdio, build_server(tools))


def serve_http(
    tools: AgentTools,
    verifier: JwtVerifier,
    checks: TransportSecuritySettings,
    host: str = "127.0.0.1",
    port: int = 8765,
) -> None:
    """Serve ``tools`` over streamable HTTP to callers with a bearer token ``verifier`` accepts, from the
    host names ``checks`` allows, until the process is stopped."""
    import uvicorn

    app = build_server(tools).streamable_http_app(
        streamable_http_path=HTTP_PATH, host=host, transport_security=checks
    )
    uvicorn.run(BearerGate(app, verifier), host=host, port=port, log_level="warning")


async def _serve_stdio(server: Server[Any]) -> None:
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def _tool(spec: ToolSpec) -> types.Tool:
    hints = types.ToolAnnotations(
        title=spec.title,
        read_only_hint=spec.read_only,
        destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent,
        open_world_hint=False,
    )
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=spec.description,
        input_schema=spec.input_schema,
        annotations=hints,
    )


def _call_result(result: ToolResult) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=result.text())],
        structured_content=result.body,
        is_error=result.is_error,
    )


def _client_name(ctx: ServerRequestContext[Any]) -> str | None:
    params = ctx.session.client_params
    return params.client_info.name if params is not None else None


def _version() -> str:
    try:
        return metadata.version("writ")
    except metadata.PackageNotFoundError:
        return ""

"""Running an agent tool call through Writ, for one person and one agent (no protocol code here).

Each call acts for one person: over stdio the one the launcher named (a trusted ``AgentIdentity``), over
HTTP the one the call's bearer token names (``entrypoints.mcp_http``). Every write and dry run is issued
as that person, with the call's ``purpose``, and with ``audit_attributes`` Writ stamps on the events:
``agent`` only when someone vouches for it (the launcher's ``--agent``, the token's ``act.sub``), and
``mcp_client``, always, the name the client claims for itself (unchecked: a client names itself). Writes
go through the same service and pipeline as every other entry point: an argument refused before the
command could be built (an unknown argument, a missing one, a malformed purpose) is recorded as a refused
decision, like any refusal, with the agent. Reads (``query``, ``history``, ``approval_status``) and
``evaluate`` are recorded too, as decisions with outcome ``read`` (what was asked, how much was answered,
or the refusal's code; never the values): what an agent saw before it wrote is what its auditor asks.
A refusal is a result, never an exception: ``ToolResult`` with ``is_error`` and the error's ``to_dict()``
(its stable ``code`` and message).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from eventsourcing.persistence import PersistenceError

from application.door import int_arg
from application.results import WriteResult
from domain.commands import parse_command
from domain.errors import (
    InvalidInputError,
    ServiceUnavailableError,
    UnauthenticatedError,
    WritError,
)
from domain.limits import INT_MAX
from domain.principal import Principal
from entrypoints.agent_reads import record_read
from entrypoints.agent_tools import BODIES, OPERATIONS, WRITE_KINDS, ToolSpec, tool_specs
from entrypoints.history_pages import PAGE, history_page
from entrypoints.http.auth import Identity

if TYPE_CHECKING:
    from entrypoints.bootstrap import Runtime

logger = logging.getLogger(__name__)

UNNAMED_CLIENT = "unnamed"
CLIENT_NAME_LENGTH = 200
WAIT_SECONDS = 5.0
AWAITING_APPROVAL = (
    "Nothing is written until people approve this change: tell the person the approval_id, "
    "and check approval_status later. Do not send the write again."
)
COMMAND_ARGUMENTS = ("kind", "model", "id", "data", "changes", "expected_version")


class UnknownToolError(LookupError):
    """No tool has this name (a protocol error, not a tool's refusal)."""


@dataclass(frozen=True)
class ToolResult:
    """What a tool call returns: a JSON object, and whether it is a refusal."""

    body: dict[str, Any]
    is_error: bool = False

    def text(self) -> str:
        return orjson.dumps(self.body).decode()


@dataclass(frozen=True)
class AgentIdentity:
    """The person the tools act for, and the agent acting when someone vouches for it (checked at once: a bad
    name fails at start)."""

    person: Principal
    agent: str | None = None

    def __post_init__(self) -> None:
        self.acting(None, None)

    @classmethod
    def of_token(cls, token: Identity) -> AgentIdentity:
        """The person and agent (``act.sub``) a verified bearer token names (``INVALID_INPUT`` for a name Writ
        does not take)."""
        return cls(
            Principal(user_id=token.user_id, tenant_id=token.tenant_id, roles=token.roles),
            token.agent,
        )

    def acting(self, purpose: object, client: str | None) -> Principal:
        """The person issuing one command for ``purpose``, with the vouched agent and the name the client claims
        in ``audit_attributes``. ``INVALID_INPUT`` when ``purpose`` is not text."""
        audit = {
            **({"agent": self.agent} if self.agent else {}),
            "mcp_client": printable(client) or UNNAMED_CLIENT,
        }
        fields = self.person.model_dump()
        return Principal.model_validate(
            {
                **fields,
                "purpose": purpose,
                "audit_attributes": {**self.person.audit_attributes, **audit},
            }
        )


@dataclass
class AgentTools:
    """The catalog's tools over one runtime, called for the launcher's ``AgentIdentity`` or a token's."""

    runtime: Runtime
    identity: AgentIdentity | None = None
    """The person (and agent) the launcher named; None when every call names its own (HTTP)."""
    specs: dict[str, ToolSpec] = field(init=False)

    def __post_init__(self) -> None:
        self.specs = {spec.name: spec for spec in tool_specs(self.runtime.catalog)}

    def input_schema(self, name: str) -> dict[str, Any] | None:
        spec = self.specs.get(name)
        return spec.input_schema if spec is not None else None

    def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        client: str | None = None,
        token: Identity | None = None,
    ) -> ToolResult:
        """Run tool ``name``; ``client`` is the name the protocol client gave itself, if any; ``token`` the
        caller a verified bearer token names (HTTP)."""
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownToolError(f"Unknown tool: {name[:100]}")
        try:
            identity = self._identity(token)
            return ToolResult(jsonable(self._run(spec, dict(arguments or {}), identity, client)))
        except WritError as error:
            return ToolResult(error.to_dict(), is_error=True)
        except PersistenceError as exc:
            # the database refused or is unreachable: a refusal like the CLI's
            return ToolResult(
                ServiceUnavailableError(f"the database: {exc}").to_dict(), is_error=True
            )

    def _identity(self, token: Identity | None) -> AgentIdentity:
        if token is not None:
            return AgentIdentity.of_token(token)
        if self.identity is None:
            raise UnauthenticatedError("This tool server acts only for callers with a bearer token")
        return self.identity

    def _run(
        self, spec: ToolSpec, arguments: dict[str, Any], identity: AgentIdentity, client: str | None
    ) -> Any:
        if spec.kind in WRITE_KINDS:
            return self._write(spec, arguments, identity, client)
        reader = identity.acting(None, client)
        try:
            check_arguments(spec, arguments)
            if spec.kind == "evaluate":  # the dry run's purpose goes on its record, when it is one
                reader = identity.acting(arguments.get("purpose"), client)
            body = self._read(spec, arguments, reader)
        except WritError as error:
            record_read(self.runtime.writ, reader, spec, arguments, None, error)
            raise
        record_read(self.runtime.writ, reader, spec, arguments, body)
        return body

    def _read(self, spec: ToolSpec, arguments: dict[str, Any], reader: Principal) -> dict[str, Any]:
        writ = self.runtime.writ
        if spec.kind == "query":
            return self._query(spec, arguments, reader)
        if spec.kind == "evaluate":
            command = parse_command({k: arguments[k] for k in COMMAND_ARGUMENTS if k in arguments})
            return writ.evaluate(reader, command).to_dict()
        if spec.kind == "history":
            return history_page(
                writ,
                reader,
                arguments["model"],
                arguments["id"],
                after=arguments.get("after", 0),
                limit=arguments.get("limit", PAGE),
            )
        approval: dict[str, Any] = writ.approval(reader, arguments["approval_id"])
        return approval

    def _write(
        self, spec: ToolSpec, arguments: dict[str, Any], identity: AgentIdentity, client: str | None
    ) -> dict[str, Any]:
        writ, kind = self.runtime.writ, spec.kind
        # on the refusal of a malformed purpose: the agent all the same
        principal = identity.acting(None, client)
        try:
            principal = identity.acting(arguments.get("purpose"), client)
            check_arguments(spec, arguments)
        except InvalidInputError as error:
            # refused before a command could be built: still a decision
            writ.refuse(
                principal,
                OPERATIONS[kind],
                spec.model,
                error,
                record_id=arguments.get("id"),
                idempotency_key=arguments.get("idempotency_key"),
            )
        positional = [
            *([] if kind == "create" else [arguments["id"]]),
            *([arguments[BODIES[kind][0]]] if kind in BODIES else []),
        ]
        keywords = {
            "idempotency_key": arguments.get("idempotency_key"),
            **({} if kind == "create" else {"expected_version": arguments.get("expected_version")}),
        }
        result: WriteResult = getattr(writ, kind)(principal, spec.model, *positional, **keywords)
        body = result.to_dict()
        return {**body, "next": AWAITING_APPROVAL} if result.status == "pending_approval" else body

    def _query(
        self, spec: ToolSpec, arguments: dict[str, Any], reader: Principal
    ) -> dict[str, Any]:
        views = self.runtime.fresh_views(logger.info)
        if arguments.get("wait_for") is not None:
            views.wait(int_arg("wait_for", arguments["wait_for"], 0, INT_MAX), WAIT_SECONDS)
        page = views.list(
            reader,
            spec.model,
            filters=arguments.get("filters", []),
            order_by=arguments.get("order_by", []),
            limit=arguments.get("limit", 50),
            after=arguments.get("after"),
            include_deleted=arguments.get("include_deleted", False),
        )
        return {"rows": page.rows, "next_cursor": page.next_cursor}


def check_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
    """``INVALID_INPUT`` for an argument the tool does not take, or a missing required one (``purpose`` is
    Writ's to refuse: ``PURPOSE_REQUIRED``)."""
    known = spec.input_schema["properties"]
    unknown = sorted(name for name in arguments if name not in known)
    if unknown:
        raise InvalidInputError(
            f"{spec.name} takes no argument {', '.join(map(repr, unknown))[:300]}; it takes: "
            f"{', '.join(known)}"
        )
    missing = [
        name
        for name in spec.input_schema.get("required", ())
        if name != "purpose" and name not in arguments
    ]
    if missing:
        raise InvalidInputError(f"{spec.name} needs the argument {', '.join(missing)}")


def printable(name: str | None) -> str | None:
    """A client's self-given name as audit text: printable characters only, bounded; None when nothing is left."""
    if name is None:
        return None
    kept = "".join(character for character in name if character.isprintable())[
        :CLIENT_NAME_LENGTH
    ].strip()
    return kept or None


def jsonable(value: Any) -> dict[str, Any]:
    """``value`` as plain JSON data (anything orjson cannot encode, as text)."""
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(value, default=str))
    return decoded

"""Running an agent tool call through Writ, for one person and one agent (no protocol code here).

The tool server is started for one person (a ``Principal`` without a purpose) and, optionally, an agent
name. Every write and dry run is issued as that person, with the call's ``purpose``, and with the agent
in the principal's ``audit_attributes`` (``{"agent": ..., "mcp_client": ...}``), which Writ stamps on
the events: ``history`` shows the person as the actor and the agent in ``audit``. Writes go through
the same service and pipeline as every other entry point: an argument refused before the command could
be built (an unknown argument, a missing one, a malformed purpose) is recorded as a refused decision,
like any refusal. A refusal is a result, never an exception: ``ToolResult`` with ``is_error`` and the
error's ``to_dict()`` (its stable ``code`` and message).
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
from domain.errors import InvalidInputError, ServiceUnavailableError, WritError
from domain.limits import INT_MAX
from domain.principal import Principal
from entrypoints.agent_tools import BODIES, OPERATIONS, WRITE_KINDS, ToolSpec, tool_specs

if TYPE_CHECKING:
    from entrypoints.bootstrap import Runtime

logger = logging.getLogger(__name__)

UNNAMED_AGENT = "unnamed-agent"
CLIENT_NAME_LENGTH = 200
WAIT_SECONDS = 5.0
AWAITING_APPROVAL = ("Nothing is written until people approve this change: tell the person the approval_id, "
                     "and check approval_status later. Do not send the write again.")
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
    """The person the tools act for, and the agent acting (checked at once: a bad name fails at start)."""

    person: Principal
    agent: str | None = None

    def __post_init__(self) -> None:
        self.acting("a check of the identity", None)

    def acting(self, purpose: object, client: str | None) -> Principal:
        """The person issuing one command for ``purpose``, with the agent (and the client it names) in
        ``audit_attributes``. ``INVALID_INPUT`` when ``purpose`` is not text."""
        client = printable(client)
        audit = {"agent": self.agent or client or UNNAMED_AGENT, **({"mcp_client": client} if client else {})}
        fields = self.person.model_dump()
        return Principal.model_validate({**fields, "purpose": purpose,
                                         "audit_attributes": {**self.person.audit_attributes, **audit}})


@dataclass
class AgentTools:
    """The catalog's tools over one runtime, called for one ``AgentIdentity``."""

    runtime: Runtime
    identity: AgentIdentity
    specs: dict[str, ToolSpec] = field(init=False)

    def __post_init__(self) -> None:
        self.specs = {spec.name: spec for spec in tool_specs(self.runtime.catalog)}

    def input_schema(self, name: str) -> dict[str, Any] | None:
        spec = self.specs.get(name)
        return spec.input_schema if spec is not None else None

    def call(self, name: str, arguments: Mapping[str, Any] | None, client: str | None = None) -> ToolResult:
        """Run tool ``name``; ``client`` is the name the protocol client gave itself, if any."""
        spec = self.specs.get(name)
        if spec is None:
            raise UnknownToolError(f"Unknown tool: {name[:100]}")
        try:
            return ToolResult(jsonable(self._run(spec, dict(arguments or {}), client)))
        except WritError as error:
            return ToolResult(error.to_dict(), is_error=True)
        except PersistenceError as exc:  # the database refused or is unreachable: a refusal like the CLI's
            return ToolResult(ServiceUnavailableError(f"the database: {exc}").to_dict(), is_error=True)

    def _run(self, spec: ToolSpec, arguments: dict[str, Any], client: str | None) -> Any:
        if spec.kind in WRITE_KINDS:
            return self._write(spec, arguments, client)
        check_arguments(spec, arguments)
        writ, person = self.runtime.writ, self.identity.person
        if spec.kind == "query":
            return self._query(spec, arguments)
        if spec.kind == "evaluate":
            command = parse_command({k: arguments[k] for k in COMMAND_ARGUMENTS if k in arguments})
            return writ.evaluate(self.identity.acting(arguments.get("purpose"), client), command).to_dict()
        if spec.kind == "history":
            events = [entry.to_dict() for entry in writ.history(person, arguments["model"], arguments["id"])]
            return {"model": arguments["model"], "id": arguments["id"], "events": events}
        return writ.approval(person, arguments["approval_id"])

    def _write(self, spec: ToolSpec, arguments: dict[str, Any], client: str | None) -> dict[str, Any]:
        writ, kind, principal = self.runtime.writ, spec.kind, self.identity.person
        try:
            principal = self.identity.acting(arguments.get("purpose"), client)
            check_arguments(spec, arguments)
        except InvalidInputError as error:  # refused before a command could be built: still a decision
            writ.refuse(principal, OPERATIONS[kind], spec.model, error, record_id=arguments.get("id"),
                        idempotency_key=arguments.get("idempotency_key"))
        positional = [*([] if kind == "create" else [arguments["id"]]),
                      *([arguments[BODIES[kind][0]]] if kind in BODIES else [])]
        keywords = {"idempotency_key": arguments.get("idempotency_key"),
                    **({} if kind == "create" else {"expected_version": arguments.get("expected_version")})}
        result: WriteResult = getattr(writ, kind)(principal, spec.model, *positional, **keywords)
        body = result.to_dict()
        return {**body, "next": AWAITING_APPROVAL} if result.status == "pending_approval" else body

    def _query(self, spec: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
        views = self.runtime.fresh_views(logger.info)
        if arguments.get("wait_for") is not None:
            views.wait(int_arg("wait_for", arguments["wait_for"], 0, INT_MAX), WAIT_SECONDS)
        page = views.list(self.identity.person, spec.model, filters=arguments.get("filters", []),
                          order_by=arguments.get("order_by", []), limit=arguments.get("limit", 50),
                          after=arguments.get("after"), include_deleted=arguments.get("include_deleted", False))
        return {"rows": page.rows, "next_cursor": page.next_cursor}


def check_arguments(spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
    """``INVALID_INPUT`` for an argument the tool does not take, or a missing required one (``purpose`` is
    Writ's to refuse: ``PURPOSE_REQUIRED``)."""
    known = spec.input_schema["properties"]
    unknown = sorted(name for name in arguments if name not in known)
    if unknown:
        raise InvalidInputError(f"{spec.name} takes no argument {', '.join(map(repr, unknown))[:300]}; it takes: "
                                f"{', '.join(known)}")
    missing = [name for name in spec.input_schema.get("required", ()) if name != "purpose" and name not in arguments]
    if missing:
        raise InvalidInputError(f"{spec.name} needs the argument {', '.join(missing)}")


def printable(name: str | None) -> str | None:
    """A client's self-given name as audit text: printable characters only, bounded; None when nothing is left."""
    if name is None:
        return None
    kept = "".join(character for character in name if character.isprintable())[:CLIENT_NAME_LENGTH].strip()
    return kept or None


def jsonable(value: Any) -> dict[str, Any]:
    """``value`` as plain JSON data (anything orjson cannot encode, as text)."""
    decoded: dict[str, Any] = orjson.loads(orjson.dumps(value, default=str))
    return decoded

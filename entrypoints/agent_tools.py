"""The agent tools a catalog offers: names, descriptions and argument schemas (no protocol code here).

Each model gets ``create_<model>``, ``replace_<model>``, ``patch_<model>``, ``delete_<model>``,
``restore_<model>``, ``purge_<model>`` and ``query_<model>`` (the model's name in snake case, or as
declared when two models would share one); three tools are generic: ``evaluate`` (a dry run of any
command), ``history`` (a record's events, a page at a time) and ``approval_status``. Every write and
``evaluate`` take a required ``purpose``; writes take an optional ``idempotency_key``. Each tool says
whether it reads, destroys and may be repeated (``ToolSpec``'s hints). ``entrypoints.agent_calls`` runs
them; ``entrypoints.mcp_server`` offers them over the Model Context Protocol.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from domain.catalog import Catalog
from domain.commands import OPERATION_OF_KIND
from domain.policy import PolicyOperation
from entrypoints.catalog_schemas import (
    EXPECTED_VERSION,
    IDEMPOTENCY_KEY,
    PURPOSE,
    RECORD_ID,
    Schema,
    Shape,
    arguments,
    data_schema,
    query_properties,
)
from entrypoints.history_pages import MOST_PER_PAGE, PAGE

WriteKind = Literal["create", "replace", "patch", "delete", "restore", "purge"]
ToolKind = WriteKind | Literal["query", "evaluate", "history", "approval_status"]
WRITE_KINDS: tuple[WriteKind, ...] = ("create", "replace", "patch", "delete", "restore", "purge")
MODEL_KINDS: tuple[ToolKind, ...] = (*WRITE_KINDS, "query")
BODIES: dict[str, tuple[Literal["data", "changes"], Shape]] = {
    "create": ("data", "create"),
    "replace": ("data", "replace"),
    "patch": ("changes", "patch"),
}
"""The argument holding a write's field values, and their schema's shape, for the writes that carry any."""
OPERATIONS = OPERATION_OF_KIND

GOVERNED = (
    "Governed: state `purpose`. Call `evaluate` first to learn whether policy allows the write. The result's "
    'status is "executed", or "pending_approval" with an `approval_id`: then nothing is written until '
    "people approve it; report the id and poll `approval_status`, never resend the write. A refused write "
    "is an error result carrying a stable code (GRANT_MISSING, VALIDATION_FAILED, ...)."
)
_ABOUT: dict[ToolKind, str] = {
    "create": "Create one {model} record from `data`.",
    "replace": "Replace one {model} record (PUT): every writable field is set from `data`; omitted optional fields "
    "are cleared.",
    "patch": "Patch one {model} record: change only the fields in `changes`.",
    "delete": "Soft-delete one {model} record: hidden from queries, kept in the store, restorable.",
    "restore": "Restore one soft-deleted {model} record.",
    "purge": "Purge one {model} record: its data is erased for good (the audit trail remains). Irreversible.",
    "query": "Query the current {model} records (the read model): filter, sort, and page with `after`.",
}

INSTRUCTIONS = """\
Writ governs writes to the catalog's models: {models}. You act for one person; every write records them as
the actor and you as the agent. For each change:
1. Call `evaluate` with the command to learn whether policy allows it, refuses it (and why), or needs approval.
2. Call the write tool with `purpose` (why, in the person's terms) and an `idempotency_key` if you may retry.
3. If the status is "pending_approval", nothing is written yet: tell the person the `approval_id` and check
   `approval_status` later; do not resend the write. A refused write is an error result with a stable code:
   do not retry it unchanged.
Read with `query_<model>` (pass a write's `position` as `wait_for` to see your own write) and `history`."""


@dataclass(frozen=True)
class ToolSpec:
    """One tool: what it is called, what it says about itself, and the arguments it takes."""

    name: str
    title: str
    description: str
    input_schema: Schema
    kind: ToolKind
    model: str = ""
    """The model of a per-model tool; empty for the generic ones."""

    @property
    def read_only(self) -> bool:
        """Reads and ``evaluate`` change no record (each is still recorded as a read: ``agent_calls``)."""
        return self.kind not in WRITE_KINDS

    @property
    def destructive(self) -> bool:
        """Every write but a create changes or hides what is there (a restore too: it undoes a delete)."""
        return self.kind in WRITE_KINDS and self.kind != "create"

    @property
    def idempotent(self) -> bool:
        """Only the reads: a write sent again without its ``idempotency_key`` may write again (another
        record, another event, another approval request); with the same key it returns the first result,
        but the key is the caller's choice, so the hint cannot promise it."""
        return self.read_only


def tool_specs(catalog: Catalog) -> list[ToolSpec]:
    """Every tool of ``catalog``: the per-model tools, model by model, then the generic ones."""
    names = model_tool_names(catalog)
    per_model = [
        _model_tool(catalog, model, names[model], kind)
        for model in catalog.models
        for kind in MODEL_KINDS
    ]
    return [*per_model, _evaluate(catalog), _history(catalog), _approval_status()]


def instructions(catalog: Catalog) -> str:
    return INSTRUCTIONS.format(models=", ".join(catalog.models))


def model_tool_names(catalog: Catalog) -> dict[str, str]:
    """Each model's name in its tools: snake case (``OrderItem`` → ``order_item``), or the model's own name
    where two models would share a snake-case name."""
    snake = {model: snake_case(model) for model in catalog.models}
    taken = Counter(snake.values())
    return {model: name if taken[name] == 1 else model for model, name in snake.items()}


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _model_tool(catalog: Catalog, model: str, name: str, kind: ToolKind) -> ToolSpec:
    spec = catalog.model(model)
    about = [
        _ABOUT[kind].format(model=model),
        *([f"{model}: {spec.description.rstrip('.')}."] if spec.description else []),
    ]
    if kind in WRITE_KINDS:
        about += [_who_may(catalog, model, OPERATIONS[kind]), GOVERNED]
    if kind in ("replace", "patch") and (fixed := [f for f in spec.fields if spec.is_immutable(f)]):
        about.append(f"Immutable (never changed): {', '.join(fixed)}.")
    title = f"{kind.capitalize()} {model}"
    return ToolSpec(
        f"{kind}_{name}",
        title,
        " ".join(about),
        _model_arguments(catalog, model, kind),
        kind,
        model,
    )


def _model_arguments(catalog: Catalog, model: str, kind: ToolKind) -> Schema:
    if kind == "query":
        return arguments(query_properties(catalog, model), [])
    properties: Schema = {} if kind == "create" else {"id": RECORD_ID}
    if kind in BODIES:
        body, shape = BODIES[kind]
        properties[body] = data_schema(catalog, model, shape)
    if kind != "create":
        properties["expected_version"] = EXPECTED_VERSION
    required = [name for name in properties if name != "expected_version"]
    properties |= {"purpose": PURPOSE, "idempotency_key": IDEMPOTENCY_KEY}
    return arguments(properties, [*required, "purpose"])


def _who_may(catalog: Catalog, model: str, operation: PolicyOperation) -> str:
    spec = catalog.model(model)
    roles: tuple[str, ...] = getattr(spec.grants, operation)
    if not roles or spec.policy.always_denies(operation):
        return "Every call is refused: " + (
            "no role holds the grant." if not roles else "the policy denies it."
        )
    return "Any role may call it." if "*" in roles else f"Roles allowed: {', '.join(roles)}."


def _evaluate(catalog: Catalog) -> ToolSpec:
    properties: Schema = {
        "kind": {"type": "string", "enum": list(WRITE_KINDS)},
        "model": {"type": "string", "enum": list(catalog.models)},
        "id": {**RECORD_ID, "description": "The record's id (every kind but create)."},
        "data": {"type": "object", "description": "The fields of a create or replace."},
        "changes": {"type": "object", "description": "The fields a patch changes."},
        "expected_version": EXPECTED_VERSION,
        "purpose": PURPOSE,
    }
    about = (
        "Dry-run a write: the decision (allow, deny or require_approval), its code, reasons and the "
        "before/after preview. Writes nothing; call it before a write."
    )
    return ToolSpec(
        "evaluate",
        "Evaluate a write",
        about,
        arguments(properties, ["kind", "model", "purpose"]),
        "evaluate",
    )


def _history(catalog: Catalog) -> ToolSpec:
    properties = {
        "model": {"type": "string", "enum": list(catalog.models)},
        "id": RECORD_ID,
        "after": {
            "type": "integer",
            "minimum": 0,
            "default": 0,
            "description": "Start after this version: the previous page's next_cursor.",
        },
        "limit": {
            "type": "integer",
            "minimum": 1,
            "maximum": MOST_PER_PAGE,
            "default": PAGE,
            "description": "Events on the page.",
        },
    }
    about = (
        "The events of a record, oldest first, a page at a time: what changed, when, the person (actor) and "
        "agent (audit), the purpose, the decision and who approved. next_cursor, when not null, is the "
        "`after` of the next page."
    )
    return ToolSpec(
        "history", "Record history", about, arguments(properties, ["model", "id"]), "history"
    )


def _approval_status() -> ToolSpec:
    properties = {
        "approval_id": {
            "type": "string",
            "format": "uuid",
            "description": "The approval_id a pending_approval write returned.",
        }
    }
    about = (
        "Where an approval request stands: pending, approved, rejected, cancelled, expired, executed or "
        "failed; who approved so far, how many must, and once executed the results."
    )
    return ToolSpec(
        "approval_status",
        "Approval status",
        about,
        arguments(properties, ["approval_id"]),
        "approval_status",
    )

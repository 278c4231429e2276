"""The OpenAPI document, generated from the catalog: one set of paths and schemas per model.

Create, replace and patch bodies differ as the field rules do: a create takes the fields writable on
create (``required`` ones without a default required, nested children under their names), a replace and
a patch the fields writable on update that are not immutable (a replace keeps those as stored), required
as on create for a replace and never for a patch; auto-set, generated and system fields are in none of
them (sending one is ``FIELD_NOT_WRITABLE``). The bodies are ``entrypoints.catalog_schemas``', shared
with the agent tools. Rows and write results
carry the system fields. Every operation lists the error statuses it can answer with.
"""

from __future__ import annotations

from typing import Any

from domain.approval import CANCELLED, EXECUTED, EXPIRED, FAILED, PENDING, REJECTED
from domain.catalog import Catalog, ModelSpec
from domain.fields import FieldSpec
from domain.limits import Limits
from domain.policy import FILTER_OPERATORS
from entrypoints.catalog_schemas import Shape, data_schema, field_schema
from entrypoints.history_pages import MOST_PER_PAGE, PAGE
from entrypoints.http.errors import STATUSES
from projections.filters import MAX_SORT_KEYS
from projections.queries import MAX_LIMIT

JSON = "application/json"
SHAPES: tuple[Shape, ...] = ("create", "replace", "patch")
SYSTEM = {
    "_state": "string",
    "_version": "integer",
    "_created_at": "string",
    "_created_by": ["string", "null"],
    "_updated_at": "string",
    "_updated_by": ["string", "null"],
}
ERRORS = {str(status): {"$ref": f"#/components/responses/E{status}"} for status in STATUSES}
LIMIT: dict[str, Any] = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
}
ID: dict[str, Any] = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
}
HEADERS: dict[str, dict[str, Any]] = {
    "purpose": {
        "name": "Writ-Purpose",
        "in": "header",
        "schema": {"type": "string"},
        "description": "Why: required for every write, recorded with it.",
    },
    "key": {
        "name": "Idempotency-Key",
        "in": "header",
        "schema": {"type": "string"},
        "description": "A repeat with the same key and command returns the first result.",
    },
    "match": {
        "name": "If-Match",
        "in": "header",
        "schema": {"type": "string", "pattern": r'^(W/)?"?[0-9]{1,18}"?$'},
        "description": 'The record version the write expects, e.g. "3" (412 when it moved on).',
    },
    "wait": {
        "name": "Writ-Wait-Position",
        "in": "header",
        "schema": {"type": "integer", "minimum": 0},
        "description": "Wait until the projection has reached this log position (a write's position).",
    },
}

HISTORY_PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "limit",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": MOST_PER_PAGE, "default": PAGE},
        "description": "Events on the page.",
    },
    {
        "name": "after",
        "in": "query",
        "schema": {"type": "integer", "minimum": 0, "default": 0},
        "description": "The version after which the page starts: the previous page's next_cursor.",
    },
]
HISTORY_PAGE: dict[str, Any] = {
    "type": "object",
    "required": ["model", "id", "events", "next_cursor"],
    "properties": {
        "model": {"type": "string"},
        "id": {"type": "string"},
        "events": {"type": "array", "items": {"type": "object"}},
        "next_cursor": {
            "type": ["integer", "null"],
            "description": "Send as after for the next page; null on the last page.",
        },
    },
}


def stored_schema(field: FieldSpec) -> dict[str, Any]:
    """A field as rows carry it: its type, or null (an omitted optional field is null, whatever ``nullable``
    says: that only forbids a caller from sending an explicit null)."""
    kind = field_schema("stored", FieldSpec(type=field.type, items=field.items)).get("type")
    return {"type": [kind, "null"]} if isinstance(kind, str) else {}


def document(catalog: Catalog) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "Error": _error_schema(),
        "WriteResult": _write_result(),
        "ApprovalResult": _approval_result(),
        "Command": {"type": "object", "required": ["kind", "model"]},
    }
    for name, spec in catalog.models.items():
        schemas.update(_model_schemas(catalog, name, spec))
        paths.update(_model_paths(name, catalog.limits))
    paths.update(_shared_paths())
    paths.update(_log_paths())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Writ",
            "version": catalog.version,
            "description": "Governed writes: every write is decided against the catalog's policy and recorded.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": _error_responses(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
        "security": [{"bearer": []}],
    }


def _model_schemas(catalog: Catalog, name: str, spec: ModelSpec) -> dict[str, Any]:
    row = {
        "type": "object",
        "required": ["id", *SYSTEM],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            **{f: stored_schema(s) for f, s in spec.fields.items()},
            spec.tenant_field: {"type": "string"},
            **{k: {"type": v} for k, v in SYSTEM.items()},
        },
    }
    bodies = {f"{name}{shape.title()}": data_schema(catalog, name, shape) for shape in SHAPES}
    return {**bodies, f"{name}Row": row}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": parameters or [],
        "responses": {**responses, **ERRORS},
    }
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": {JSON: {"schema": body}}}
    return operation


def _ok(schema: dict[str, Any], description: str = "Done") -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _model_paths(name: str, limits: Limits) -> dict[str, Any]:
    write = [HEADERS["purpose"], HEADERS["key"]]
    versioned = [ID, *write, HEADERS["match"]]
    result, pending = (
        _ok(_ref("WriteResult")),
        _ok(_ref("WriteResult"), "Waits for approval (Location: the approval)"),
    )
    written = {"200": result, "202": pending}
    return {
        f"/v1/{name}": {
            "post": _op(
                f"Create a {name} (an array creates several, all or none)",
                {
                    "201": _ok(
                        {
                            "oneOf": [
                                _ref("WriteResult"),
                                {"type": "array", "items": _ref("WriteResult")},
                            ]
                        }
                    ),
                    "202": _ok(
                        {
                            "oneOf": [
                                _ref("WriteResult"),
                                {"type": "array", "items": _ref("WriteResult")},
                            ]
                        }
                    ),
                },
                body={
                    "oneOf": [
                        _ref(f"{name}Create"),
                        {"type": "array", "items": _ref(f"{name}Create"), "minItems": 1},
                    ]
                },
                parameters=write,
            ),
            "get": _op(
                f"Query {name} rows (the projection)",
                {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["rows", "next_cursor"],
                            "properties": {
                                "rows": {"type": "array", "items": _ref(f"{name}Row")},
                                "next_cursor": {"type": ["string", "null"]},
                            },
                        }
                    )
                },
                parameters=[
                    {
                        "name": "where",
                        "in": "query",
                        "schema": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": limits.filters,
                        },
                        "style": "form",
                        "explode": True,
                        "description": "FIELD:OP[:VALUE], repeatable",
                    },
                    {
                        "name": "sort",
                        "in": "query",
                        "schema": {
                            "type": "array",
                            "items": {"type": "string"},
                            "maxItems": MAX_SORT_KEYS,
                        },
                        "style": "form",
                        "explode": True,
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    },
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                    {"name": "include_deleted", "in": "query", "schema": {"type": "boolean"}},
                    HEADERS["wait"],
                ],
            ),
        },
        f"/v1/{name}/bulk-update": {
            "post": _op(
                f"Patch every live {name} matching the filters, in one save",
                {"200": _ok({"type": "object"}), "202": _ok({"type": "object"})},
                parameters=write,
                body=_bulk_body(name, limits),
            )
        },
        f"/v1/{name}/{{id}}": {
            "get": _op(
                f"One {name} row (the projection)",
                {"200": _ok(_ref(f"{name}Row"))},
                parameters=[
                    ID,
                    {"name": "include_deleted", "in": "query", "schema": {"type": "boolean"}},
                    HEADERS["wait"],
                ],
            ),
            "put": _op(
                f"Replace a {name}: omitted optional fields are cleared",
                written,
                body=_ref(f"{name}Replace"),
                parameters=versioned,
            ),
            "patch": _op(
                f"Change some fields of a {name}",
                written,
                body=_ref(f"{name}Patch"),
                parameters=versioned,
            ),
            "delete": _op(
                f"Soft-delete a {name} (?force=true purges it)",
                written,
                parameters=[
                    *versioned,
                    {"name": "force", "in": "query", "schema": {"type": "boolean"}},
                ],
            ),
        },
        f"/v1/{name}/{{id}}/restore": {
            "post": _op(f"Restore a soft-deleted {name}", written, parameters=versioned)
        },
        f"/v1/{name}/{{id}}/history": {
            "get": _op(
                f"The events of a {name}, oldest first, a page at a time",
                {"200": _ok(HISTORY_PAGE)},
                parameters=[ID, *HISTORY_PARAMETERS],
            )
        },
    }


def _shared_paths() -> dict[str, Any]:
    approval_id = {**ID, "description": "The approval request's id"}
    listed = {"200": _ok({"type": "array", "items": {"type": "object"}})}
    return {
        "/v1/evaluate": {
            "post": _op(
                "Dry run: the decision, its reasons and the preview; writes nothing",
                {"200": _ok({"type": "object"})},
                body=_ref("Command"),
                parameters=[HEADERS["purpose"]],
            )
        },
        "/v1/transactions": {
            "post": _op(
                "A unit of work: commands (with $ref and savepoints) in one save",
                {"201": _ok({"type": "object", "required": ["results", "discarded"]})},
                body={"type": "array", "minItems": 1, "items": {"type": "object"}},
                parameters=[HEADERS["purpose"], HEADERS["key"]],
            )
        },
        "/v1/decisions": {
            "get": _op(
                "Decisions in your tenant, oldest first",
                listed,
                parameters=[
                    *(
                        {"name": n, "in": "query", "schema": {"type": "string"}}
                        for n in ("by", "model", "outcome")
                    ),
                    *(
                        {
                            "name": n,
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                        }
                        for n in ("since", "until")
                    ),
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    LIMIT,
                ],
            )
        },
        "/v1/approvals": {
            "get": _op(
                "Approval requests in your tenant",
                listed,
                parameters=[
                    {"name": "status", "in": "query", "schema": {"type": "string"}},
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "The last row's cursor",
                    },
                    LIMIT,
                ],
            )
        },
        "/v1/approvals/{id}": {
            "get": _op(
                "One approval request", {"200": _ok({"type": "object"})}, parameters=[approval_id]
            )
        },
        **{
            f"/v1/approvals/{{id}}/{action}": {
                "post": _op(
                    f"{action.title()} an approval request",
                    {"200": _ok(_ref("ApprovalResult"))},
                    parameters=[approval_id, HEADERS["purpose"]],
                    body_required=False,
                    body={
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "reason": {"type": ["string", "null"]},
                            "fingerprint": {"type": ["string", "null"]},
                        },
                    },
                )
            }
            for action in ("approve", "reject", "cancel")
        },
    }


def _log_paths() -> dict[str, Any]:
    def size(name: str, description: str, *, required: bool = False) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": required,
            "description": description,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        }

    tree = size("tree_size", "Prove against the checkpoint of this size (default: the latest)")
    proof = {
        "type": "object",
        "required": ["schema", "kind", "tree_size", "path", "checkpoint"],
        "properties": {
            "schema": {"const": "writ.proof/1"},
            "kind": {"enum": ["inclusion", "consistency"]},
            "tree_size": {"type": "integer"},
            "path": {"type": "array", "items": {"type": "string"}},
            "checkpoint": {
                "type": "string",
                "description": "The C2SP checkpoint, a signed note with every signature",
            },
        },
    }
    return {
        "/v1/log/checkpoint": {
            "get": _op(
                "The log's signed checkpoint (a C2SP tlog-checkpoint signed note)",
                {
                    "200": _ok(
                        {
                            "type": "object",
                            "required": ["checkpoint", "origin", "tree_size", "root", "position"],
                        }
                    )
                },
                parameters=[tree],
            )
        },
        "/v1/log/proof/inclusion": {
            "get": _op(
                "Proof that a version of a record you may read is in the log",
                {"200": _ok(proof)},
                parameters=[
                    {
                        "name": "model",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                    {
                        "name": "id",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                    size("version", "The record's version", required=True),
                    tree,
                ],
            )
        },
        "/v1/log/proof/consistency": {
            "get": _op(
                "Proof that an earlier tree is a prefix of a signed one",
                {"200": _ok(proof)},
                parameters=[
                    size("old_size", "The earlier tree's size", required=True),
                    size("new_size", "The signed tree's size (default: the latest)"),
                ],
            )
        },
    }


def _bulk_body(name: str, limits: Limits) -> dict[str, Any]:
    """Filters, or ``"all": true`` for every live record: one or the other (neither, or both, is refused)."""
    filter_item = {
        "type": "array",
        "minItems": 2,
        "maxItems": 3,
        "prefixItems": [{"type": "string"}, {"enum": list(FILTER_OPERATORS)}],
    }
    return {
        "type": "object",
        "required": ["changes"],
        "additionalProperties": False,
        "properties": {
            "filters": {"type": "array", "items": filter_item, "maxItems": limits.filters},
            "all": {"type": "boolean", "description": "true: every live record (then no filters)"},
            "changes": _ref(f"{name}Patch"),
        },
        "oneOf": [
            {
                "required": ["filters"],
                "properties": {"filters": {"minItems": 1}, "all": {"const": False}},
            },
            {
                "required": ["all"],
                "properties": {"all": {"const": True}, "filters": {"maxItems": 0}},
            },
        ],
    }


def _write_result() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status", "model", "id", "state", "decision_id"],
        "properties": {
            "status": {"enum": ["executed", "pending_approval"]},
            "model": {"type": "string"},
            "id": {"type": "string"},
            "version": {"type": ["integer", "null"]},
            "state": {"type": "string"},
            "position": {"type": ["integer", "null"]},
            "decision_id": {"type": "string"},
            "approval_id": {"type": ["string", "null"]},
            "approval_url": {"type": "string"},
            "data": {"type": ["object", "null"]},
            "replayed": {"type": "boolean"},
            "children": {"type": "array", "items": {"type": "string"}},
        },
    }


APPROVAL_STATES = (PENDING, EXECUTED, FAILED, REJECTED, CANCELLED, EXPIRED)


def _approval_result() -> dict[str, Any]:
    """``application.results.ApprovalResult``: where a request stands after an approve, reject or cancel."""
    return {
        "type": "object",
        "required": ["approval_id", "status", "approvals", "required", "results", "position"],
        "properties": {
            "approval_id": {"type": "string"},
            "status": {"enum": list(APPROVAL_STATES)},
            "approvals": {"type": "array", "items": {"type": "string"}},
            "required": {"type": "integer"},
            "results": {"type": "array", "items": _ref("WriteResult")},
            "bulk": {"type": ["object", "null"]},
            "outcome": {"type": ["object", "null"]},
            "position": {
                "type": ["integer", "null"],
                "description": "The log position of the action's last event: pass it as "
                "Writ-Wait-Position to read the approvals with it",
            },
        },
    }


def _error_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["error", "message", "code"],
        "properties": {
            "error": {"type": "string"},
            "message": {"type": "string"},
            "code": {"type": "string"},
            "field": {"type": ["string", "null"]},
            "problems": {"type": "array"},
            "position": {
                "type": "integer",
                "description": "Where the decision that recorded the refusal is in the log (when it was "
                "recorded): pass it as Writ-Wait-Position to read the decisions with it",
            },
        },
    }


def _error_responses() -> dict[str, Any]:
    return {
        f"E{status}": {
            "description": "Refused (see code)",
            "content": {JSON: {"schema": _ref("Error")}},
        }
        for status in STATUSES
    }

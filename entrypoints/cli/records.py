"""``writ create|replace|patch|delete|restore|purge|evaluate|get|history|decisions``.

Every command acts as one principal (``entrypoints.cli.options``) on the
catalog's models in ``WRIT_DATABASE_URL``. Output is a table, or JSON with
``--json``.
"""

from __future__ import annotations

from typing import Any

import click

from domain.commands import OPERATION_OF_KIND, parse_command
from domain.errors import InvalidInputError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import (
    batched,
    cell,
    json_argument,
    load_catalog,
    principal_from,
    principal_options,
    say,
    session,
    show,
    stream_json_array,
)


def _write(kind: str, needs_id: bool, body: str | None, help_text: str) -> click.Command:
    @principal_options
    @click.option("--idempotency-key", help="Repeat-safe key for this write.")
    @click.option("--expected-version", type=int, help="Fail with VERSION_CONFLICT unless at this version.")
    def command(model: str, record_id: str | None = None, payload: str | None = None, **options: Any) -> None:
        key, version, as_json = options.pop("idempotency_key"), options.pop("expected_version"), options.pop("as_json")
        operation = OPERATION_OF_KIND[kind]
        with Runtime(load_catalog(options.pop("catalog"))) as runtime:
            writ = runtime.writ
            principal = None
            try:  # refused before the service could read it: still a decision
                principal = principal_from(**options)
                data = json_argument(payload or "{}") if body is not None else None
            except InvalidInputError as error:
                writ.refuse(principal, operation, model, error, record_id=record_id, idempotency_key=key)
            arguments: list[Any] = [principal, model, *([record_id] if needs_id else []),
                                    *([data] if body is not None else [])]
            extra = {"idempotency_key": key} if kind == "create" else {"idempotency_key": key,
                                                                      "expected_version": version}
            result = getattr(writ, kind)(*arguments, **extra).to_dict()
        keys = ("id", "status", "version", "state", "position", "decision_id", "replayed")
        show(result if as_json else {k: result[k] for k in keys}, as_json)

    # Applied innermost-first, so the command line reads: MODEL [RECORD_ID] [PAYLOAD].
    if body is not None:
        command = click.argument("payload")(command)
    if needs_id:
        command = click.argument("record_id")(command)
    command = click.argument("model")(command)
    return click.command(kind, help=help_text)(command)


RECORD_WRITES = [
    _write("create", False, "data", "Create a record: MODEL '{\"field\": value, ...}'.\n\n\b\nExample:\n"
           "  writ create Order '{\"sku\": \"LAMP-42\", \"total\": \"89.90\"}' -u carol -t acme -r clerk "
           "-p \"phone order\"\n"
           "  writ create Order '{\"sku\": \"LAMP-42\", \"total\": \"89.90\"}' --idempotency-key call-17"
           "   # WRIT_USER etc. set"),
    _write("replace", True, "data", "PUT a record: omitted optional fields are cleared.\n\n\b\nExample:\n"
           "  writ replace Order <id> '{\"sku\": \"LAMP-42\", \"total\": \"79.90\", \"quantity\": 2}' "
           "--expected-version 1"),
    _write("patch", True, "changes", "PATCH a record: change only the given fields.\n\n\b\nExample:\n"
           "  writ patch Order <id> '{\"quantity\": 3}' --expected-version 1\n"
           "  writ patch Order <id> '{\"status\": \"placed\"}' -u carol -t acme -r clerk -p \"customer confirmed\""),
    _write("delete", True, None, "Soft-delete a record (hidden from projections, kept in the store).\n\n\b\n"
           "Example:\n  writ delete Order <id> -r manager -p \"duplicate order\""),
    _write("restore", True, None, "Restore a soft-deleted record.\n\n\b\nExample:\n"
           "  writ restore Order <id> -r manager -p \"deleted by mistake\""),
    _write("purge", True, None, "Force-delete a record: a Purged tombstone remains.\n\n\b\nExample:\n"
           "  writ purge Order <id> -r manager -p \"erasure request\""),
]


@click.command()
@principal_options
@click.argument("command_json")
def evaluate(command_json: str, as_json: bool, **options: Any) -> None:
    """Dry-run a JSON command: allowed, refused or parked, and why.

    COMMAND_JSON has a kind (create, replace, patch, delete, restore, purge), a model, and the id, data or
    changes that kind needs. Nothing is saved.

    \b
    Example:
      writ evaluate '{"kind": "patch", "model": "Order", "id": "<id>", "changes": {"total": "25000"}}'
      writ evaluate '{"kind": "create", "model": "Order", "data": {"sku": "LAMP-42", "total": "89.90"}}'
    """
    command = parse_command(json_argument(command_json))
    with session(**options) as (runtime, principal):
        evaluation = runtime.writ.evaluate(principal, command).to_dict()
    keys = ("outcome", "code", "message", "reasons")
    show(evaluation if as_json else {k: evaluation[k] for k in keys}, as_json)


@click.command()
@principal_options
@click.option("--version", "version", type=int, help="Read the record as of this version.")
@click.option("--include-deleted", is_flag=True, help="Show a soft-deleted record (read_deleted grant).")
@click.argument("model")
@click.argument("record_id")
def get(model: str, record_id: str, version: int | None, include_deleted: bool, as_json: bool,
        **options: Any) -> None:
    """Show a record now, or as of a version.

    \b
    Example:
      writ get Order <id>
      writ get Order <id> --version 1 --include-deleted -r manager
    """
    with session(**options) as (runtime, principal):
        record = runtime.writ.get(principal, model, record_id, version=version, include_deleted=include_deleted)
    if as_json:
        show(record, True)
        return
    show([{"field": key, "value": cell(value)} for key, value in record.items()], False)


@click.command()
@principal_options
@click.argument("model")
@click.argument("record_id")
def history(model: str, record_id: str, as_json: bool, **options: Any) -> None:
    """Every event of a record: who, why, when, under which decision, who approved, and what changed (streamed:
    long histories in bounded memory).

    \b
    Example:
      writ history Order <id>
      writ history Order <id> --json > order-history.json
    """
    with session(**options) as (runtime, principal):
        entries = (entry.to_dict() for entry in runtime.writ.iter_history(principal, model, record_id))
        if as_json:
            stream_json_array(entries)
            return
        keys = ("version", "event", "at", "actor", "purpose", "decision_id", "approval", "changes")
        rows = ({**{k: e[k] for k in keys}, "approval": ", ".join((e["approval"] or {}).get("approvers", []))}
                for e in entries)
        for chunk in batched(rows, 200):
            show(list(chunk), False)


@click.command()
@principal_options
@click.option("--after", type=click.IntRange(0), default=0, help="Start after this log position (a page's last).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True, help="Decisions per page.")
@click.option("--by", "actor", help="Only decisions on this user's commands.")
@click.option("--model", help="Only decisions on this model.")
@click.option("--outcome", type=click.Choice(["allowed", "refused", "parked", "failed"]))
@click.option("--since", help="Only decisions at or after this time (ISO-8601 with offset).")
@click.option("--until", help="Only decisions before this time (ISO-8601 with offset).")
def decisions(after: int, limit: int, actor: str | None, model: str | None, outcome: str | None, since: str | None,
              until: str | None, as_json: bool, **options: Any) -> None:
    """Decisions (allowed, refused, parked, failed) you may read, oldest first, from the decisions read model:
    your own, and every one about the models you audit (their audit grant).

    \b
    Example:
      writ decisions --outcome refused --since 2026-12-01T00:00:00Z --limit 20
      writ decisions --by carol --model Order --after 120     # the next page starts after position 120
    """
    with session(**options) as (runtime, principal):
        found = runtime.fresh_views(say).decisions(principal, after=after, limit=limit, actor=actor, model=model,
                                                    outcome=outcome, since=since, until=until)
    keys = ("position", "at", "outcome", "operation", "model", "record_id", "actor", "code", "purpose")
    show(found if as_json else [{k: d.get(k) for k in keys} for d in found], as_json)
    if len(found) == limit:
        click.echo(f"more: --after {found[-1]['position']}", err=not as_json)


COMMANDS = [*RECORD_WRITES, evaluate, get, history, decisions]

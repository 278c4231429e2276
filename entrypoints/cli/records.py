"""``writ create|replace|patch|delete|restore|purge|evaluate|get|history|decisions``.

Every command acts as one principal (``entrypoints.cli.options``) on the
catalog's models in ``WRIT_DATABASE_URL``; a record id may be a unique prefix
(``entrypoints.cli.ids``). Output is for a person (``entrypoints.cli.render``:
a write's result and a record as ``key  value`` lines, a history as a log of
changed fields, decisions as a table fitted to the terminal), or JSON with
``--json``.
"""

from __future__ import annotations

from typing import Any

import click

from domain.commands import OPERATION_OF_KIND, parse_command
from domain.errors import InvalidInputError, RecordNotFoundError
from entrypoints.bootstrap import Runtime
from entrypoints.cli.ids import resolve_record
from entrypoints.cli.options import (
    json_argument,
    load_catalog,
    principal_from,
    principal_options,
    say,
    session,
    show,
    stream_json_array,
)
from entrypoints.cli.render import (
    Column,
    Lines,
    history_blocks,
    key_values,
    moment,
    print_lines,
    table,
    write_result,
)
from entrypoints.diffs import change_lines, changed, shown


def _write(kind: str, needs_id: bool, body: str | None, help_text: str) -> click.Command:
    @principal_options
    @click.option("--idempotency-key", help="Repeat-safe key for this write.")
    @click.option(
        "--expected-version", type=int, help="Fail with VERSION_CONFLICT unless at this version."
    )
    @click.option(
        "--quiet",
        "-q",
        is_flag=True,
        help="Print only the id: the record's, or the approval request's when the write waits for one.",
    )
    def command(
        model: str, record_id: str | None = None, payload: str | None = None, **options: Any
    ) -> None:
        key, version, as_json = (
            options.pop("idempotency_key"),
            options.pop("expected_version"),
            options.pop("as_json"),
        )
        quiet = options.pop("quiet")
        operation = OPERATION_OF_KIND[kind]
        with Runtime(load_catalog(options.pop("catalog"))) as runtime:
            writ = runtime.writ
            principal = None
            try:  # refused before the service could read it: still a decision
                principal = principal_from(**options)
                data = json_argument(payload or "{}") if body is not None else None
                if record_id is not None:
                    record_id = resolve_record(runtime, principal, model, record_id)
            except (InvalidInputError, RecordNotFoundError) as error:
                writ.refuse(
                    principal, operation, model, error, record_id=record_id, idempotency_key=key
                )
            arguments: list[Any] = [
                principal,
                model,
                *([record_id] if needs_id else []),
                *([data] if body is not None else []),
            ]
            extra = (
                {"idempotency_key": key}
                if kind == "create"
                else {"idempotency_key": key, "expected_version": version}
            )
            result = getattr(writ, kind)(*arguments, **extra).to_dict()
        if quiet:
            click.echo(result["approval_id"] or result["id"])
            return
        if as_json:
            show(result, True)
            return
        print_lines(write_result(result))
        if result["status"] == "pending_approval":
            say(
                f"nothing changed yet: it waits for approval (writ approvals show {result['approval_id']})"
            )

    # Applied innermost-first, so the command line reads: MODEL [RECORD_ID] [PAYLOAD].
    if body is not None:
        command = click.argument("payload")(command)
    if needs_id:
        command = click.argument("record_id")(command)
    command = click.argument("model")(command)
    return click.command(kind, help=help_text)(command)


ID_HELP = "RECORD_ID may be the first 8 or more characters of the id (unique in your tenant and the model)."

RECORD_WRITES = [
    _write(
        "create",
        False,
        "data",
        "Create a record: MODEL '{\"field\": value, ...}'.\n\n\b\nExample:\n"
        '  writ create Order \'{"sku": "LAMP-42", "total": "89.90"}\' -u carol -t acme -r clerk '
        '-p "phone order"\n'
        '  writ create Order \'{"sku": "LAMP-42", "total": "89.90"}\' --idempotency-key call-17'
        "   # WRIT_USER etc. set",
    ),
    _write(
        "replace",
        True,
        "data",
        "PUT a record: omitted optional fields are cleared.\n\n" + ID_HELP + "\n\n\b\nExample:\n"
        '  writ replace Order 3d7ffe91 \'{"sku": "LAMP-42", "total": "79.90", "quantity": 2}\' '
        "--expected-version 1",
    ),
    _write(
        "patch",
        True,
        "changes",
        "PATCH a record: change only the given fields.\n\n" + ID_HELP + "\n\n\b\nExample:\n"
        "  writ patch Order 3d7ffe91 '{\"quantity\": 3}' --expected-version 1\n"
        '  writ patch Order 3d7ffe91 \'{"status": "placed"}\' -r clerk -p "customer confirmed"',
    ),
    _write(
        "delete",
        True,
        None,
        "Soft-delete a record (hidden from projections, kept in the store).\n\n"
        + ID_HELP
        + '\n\n\b\nExample:\n  writ delete Order 3d7ffe91 -r manager -p "duplicate order"',
    ),
    _write(
        "restore",
        True,
        None,
        "Restore a soft-deleted record.\n\n" + ID_HELP + "\n\n\b\nExample:\n"
        '  writ restore Order 3d7ffe91 -r manager -p "deleted by mistake"',
    ),
    _write(
        "purge",
        True,
        None,
        "Force-delete a record: a Purged tombstone remains.\n\n"
        + ID_HELP
        + '\n\n\b\nExample:\n  writ purge Order 3d7ffe91 -r manager -p "erasure request"',
    ),
]
create, replace, patch, delete, restore, purge = RECORD_WRITES


@click.command()
@principal_options
@click.argument("command_json")
def evaluate(command_json: str, as_json: bool, **options: Any) -> None:
    """Dry-run a JSON command: allowed, refused or parked, and why.

    COMMAND_JSON has a kind (create, replace, patch, delete, restore, purge), a model, and the id (or its first
    8 or more characters), data or changes that kind needs. Nothing is saved.

    \b
    Example:
      writ evaluate '{"kind": "patch", "model": "Order", "id": "3d7ffe91", "changes": {"total": "25000"}}'
      writ evaluate '{"kind": "create", "model": "Order", "data": {"sku": "LAMP-42", "total": "89.90"}}'
    """
    body = json_argument(command_json)
    with session(**options) as (runtime, principal):
        if isinstance(body.get("id"), str) and isinstance(body.get("model"), str):
            body["id"] = resolve_record(runtime, principal, body["model"], body["id"])
        evaluation = runtime.writ.evaluate(principal, parse_command(body)).to_dict()
    if as_json:
        show(evaluation, True)
        return
    asked = body.get("changes") or body.get("data") or {}
    diff = changed(evaluation["before"], evaluation["after"], first=asked)
    print_lines(
        key_values(
            [
                ("outcome", evaluation["outcome"]),
                ("code", evaluation["code"]),
                ("message", evaluation["message"]),
                ("reasons", Lines(map(shown, evaluation["reasons"]))),
                (
                    "would change",
                    Lines(change_lines(diff, created=evaluation["before"] is None)) or "nothing",
                ),
            ]
        )
    )


@click.command(
    help="Show a record now, or as of a version.\n\n" + ID_HELP + "\n\n\b\nExample:\n"
    "  writ get Order 3d7ffe91\n  writ get Order 3d7ffe91 --version 1 --include-deleted -r manager"
)
@principal_options
@click.option("--version", "version", type=int, help="Read the record as of this version.")
@click.option(
    "--include-deleted", is_flag=True, help="Show a soft-deleted record (read_deleted grant)."
)
@click.argument("model")
@click.argument("record_id")
def get(
    model: str,
    record_id: str,
    version: int | None,
    include_deleted: bool,
    as_json: bool,
    **options: Any,
) -> None:
    with session(**options) as (runtime, principal):
        record_id = resolve_record(runtime, principal, model, record_id)
        record = runtime.writ.get(
            principal, model, record_id, version=version, include_deleted=include_deleted
        )
    show(record, as_json)


@click.command(
    help="Every event of a record: who, why, when, under which decision, who approved, and what changed "
    "(streamed: long histories in bounded memory).\n\n" + ID_HELP + "\n\n\b\nExample:\n"
    "  writ history Order 3d7ffe91\n  writ history Order 3d7ffe91 --json > order-history.json"
)
@principal_options
@click.argument("model")
@click.argument("record_id")
def history(model: str, record_id: str, as_json: bool, **options: Any) -> None:
    with session(**options) as (runtime, principal):
        record_id = resolve_record(runtime, principal, model, record_id)
        entries = (
            entry.to_dict() for entry in runtime.writ.iter_history(principal, model, record_id)
        )
        if as_json:
            stream_json_array(entries)
            return
        print_lines(history_blocks(entries))


DECISION_COLUMNS = (
    Column("position", "#", priority=1),
    Column("at", priority=4, show=moment),
    Column("outcome", priority=0),
    Column("operation", priority=2),
    Column("model", priority=3),
    Column("record_id", "record", priority=5, is_id=True),
    Column("actor", priority=2),
    Column("code", priority=1),
    Column("purpose", priority=6),
)


@click.command()
@principal_options
@click.option(
    "--after",
    type=click.IntRange(0),
    default=0,
    help="Start after this log position (a page's last).",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=100,
    show_default=True,
    help="Decisions per page.",
)
@click.option("--by", "actor", help="Only decisions on this user's commands.")
@click.option("--model", help="Only decisions on this model.")
@click.option("--outcome", type=click.Choice(["allowed", "refused", "parked", "failed", "read"]))
@click.option("--since", help="Only decisions at or after this time (ISO-8601 with offset).")
@click.option("--until", help="Only decisions before this time (ISO-8601 with offset).")
def decisions(
    after: int,
    limit: int,
    actor: str | None,
    model: str | None,
    outcome: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Decisions (allowed, refused, parked, failed; read: an agent's reads) you may read, oldest first, from the
    decisions read model: your own, and every one about the models you audit (their audit grant).

    \b
    Example:
      writ decisions --outcome refused --since 2026-12-01T00:00:00Z --limit 20
      writ decisions --by carol --model Order --after 120     # the next page starts after position 120
    """
    with session(**options) as (runtime, principal):
        found = runtime.fresh_views(say).decisions(
            principal,
            after=after,
            limit=limit,
            actor=actor,
            model=model,
            outcome=outcome,
            since=since,
            until=until,
        )
    if as_json:
        show(found, True)
    else:
        print_lines(table(found, DECISION_COLUMNS))
    if len(found) == limit:
        click.echo(f"more: --after {found[-1]['position']}", err=as_json)

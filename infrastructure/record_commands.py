"""``writ create|replace|patch|delete|restore|purge|evaluate|get|history|decisions``.

Every command acts as one principal, given by options or the environment
(``WRIT_USER``, ``WRIT_TENANT``, ``WRIT_ROLES`` comma-separated, ``WRIT_PURPOSE``),
on the catalog ``--catalog`` (``WRIT_CATALOG``, default ``writ.toml``) and the
database ``WRIT_DATABASE_URL``. Output is a table, or JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
import pydantic
from rich.console import Console
from rich.table import Table

from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Create, RecordCommand, parse_command
from domain.errors import WritError
from domain.principal import Principal
from infrastructure.settings import open_writ

console = Console()


class InputError(WritError):
    code = "INVALID_INPUT"


def principal_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table."),
        click.option("--catalog", envvar="WRIT_CATALOG", default="writ.toml", show_default=True,
                     type=click.Path(dir_okay=False, path_type=Path), help="Catalog file."),
        click.option("--purpose", "-p", envvar="WRIT_PURPOSE", help="Why (required for writes)."),
        click.option("--role", "-r", "roles", envvar="WRIT_ROLES", multiple=True, help="Role (repeatable)."),
        click.option("--tenant", "-t", envvar="WRIT_TENANT", required=True, help="Tenant id."),
        click.option("--user", "-u", envvar="WRIT_USER", required=True, help="User id."),
    ]
    for option in options:
        func = option(func)
    return func


@contextmanager
def _session(user: str, tenant: str, roles: tuple[str, ...], purpose: str | None,
             catalog: Path) -> Iterator[tuple[Writ, Principal]]:
    principal = principal_from(user, tenant, roles, purpose)
    writ = open_writ(catalog_from(catalog))
    try:
        yield writ, principal
    finally:
        writ.close()


def catalog_from(path: Path) -> Catalog:
    from infrastructure.cli import load_catalog  # cli registers this module's commands: import late

    return load_catalog(path)


def principal_from(user: str, tenant: str, roles: tuple[str, ...], purpose: str | None) -> Principal:
    """The principal of the options (``--role`` repeatable and/or comma-separated)."""
    split = tuple(part.strip() for role in roles for part in role.split(",") if part.strip())
    try:
        return Principal(user_id=user, tenant_id=tenant, roles=frozenset(split), purpose=purpose)
    except pydantic.ValidationError as exc:
        raise InputError(_first_error(exc)) from None


def _parse(fields: dict[str, Any]) -> Create | RecordCommand:
    try:
        return parse_command(fields)
    except pydantic.ValidationError as exc:
        raise InputError(_first_error(exc)) from None


def _first_error(exc: pydantic.ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _json_arg(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InputError("expected a JSON object, e.g. '{\"sku\": \"A-1\"}'")
    return value


def show(value: Any, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(value).decode())
        return
    rows = value if isinstance(value, list) else [value]
    if not rows:
        console.print("(nothing)")
        return
    columns = [key for key in rows[0] if key not in ("before", "after", "data")]
    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _cell(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else orjson.dumps(value).decode()


def _write(kind: str, needs_id: bool, body: str | None, help_text: str) -> click.Command:
    @principal_options
    @click.option("--idempotency-key", help="Repeat-safe key for this write.")
    @click.option("--expected-version", type=int, help="Fail with VERSION_CONFLICT unless at this version.")
    def command(model: str, record_id: str | None = None, payload: str | None = None, **options: Any) -> None:
        fields: dict[str, Any] = {"kind": kind, "model": model,
                                  "idempotency_key": options.pop("idempotency_key"),
                                  "expected_version": options.pop("expected_version")}
        if record_id is not None:
            fields["id"] = record_id
        if body is not None:
            fields[body] = _json_arg(payload or "{}")
        as_json = options.pop("as_json")
        with _session(**options) as (writ, principal):
            result = writ.execute(principal, _parse(fields)).to_dict()
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
    _write("create", False, "data", "Create a record: MODEL '{\"field\": value, ...}'."),
    _write("replace", True, "data", "PUT a record: omitted optional fields are cleared."),
    _write("patch", True, "changes", "PATCH a record: change only the given fields."),
    _write("delete", True, None, "Soft-delete a record (hidden from projections, kept in the store)."),
    _write("restore", True, None, "Restore a soft-deleted record."),
    _write("purge", True, None, "Force-delete a record: a Purged tombstone remains."),
]


@click.command()
@principal_options
@click.argument("command_json")
def evaluate(command_json: str, as_json: bool, **options: Any) -> None:
    """Dry-run a command given as JSON, e.g. '{"kind": "patch", "model": "Order", "id": "…", "changes": {…}}'."""
    command = _parse(_json_arg(command_json))
    with _session(**options) as (writ, principal):
        evaluation = writ.evaluate(principal, command).to_dict()
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
    """Show a record now, or as of a version."""
    with _session(**options) as (writ, principal):
        record = writ.get(principal, model, record_id, version=version, include_deleted=include_deleted)
    if as_json:
        show(record, True)
        return
    show([{"field": key, "value": _cell(value)} for key, value in record.items()], False)


@click.command()
@principal_options
@click.argument("model")
@click.argument("record_id")
def history(model: str, record_id: str, as_json: bool, **options: Any) -> None:
    """Every event of a record: who, why, when, and what changed."""
    with _session(**options) as (writ, principal):
        entries = [entry.to_dict() for entry in writ.history(principal, model, record_id)]
    shown = entries if as_json else [
        {k: e[k] for k in ("version", "event", "at", "actor", "purpose", "changes")} for e in entries
    ]
    show(shown, as_json)


@click.command()
@principal_options
@click.option("--after", type=int, default=0, help="Start after this log position.")
@click.option("--limit", type=int, default=100, show_default=True, help="Log events to read at most.")
@click.option("--by", "actor", help="Only decisions on this user's commands.")
@click.option("--model", help="Only decisions on this model.")
@click.option("--outcome", type=click.Choice(["allowed", "refused", "parked", "failed"]))
def decisions(after: int, limit: int, actor: str | None, model: str | None, outcome: str | None,
              as_json: bool, **options: Any) -> None:
    """Decisions (allowed, refused, parked, failed) in the tenant, oldest first."""
    with _session(**options) as (writ, principal):
        found = writ.decisions(principal, after=after, limit=limit, actor=actor, model=model, outcome=outcome)
    keys = ("position", "at", "outcome", "operation", "model", "record_id", "actor", "code", "purpose")
    show(found if as_json else [{k: d.get(k) for k in keys} for d in found], as_json)


COMMANDS = [*RECORD_WRITES, evaluate, get, history, decisions]

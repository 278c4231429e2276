"""``writ transaction FILE``: a unit of work from a JSON file of commands.

The file (``-`` for stdin) holds a JSON array. Each item is a command as ``writ evaluate`` takes it, with
an optional ``"as": NAME``; a later command refers to that result's id with ``{"$ref": NAME}`` anywhere
in its data, changes or id. An item ``{"savepoint": [...]}`` is a block whose commands are discarded
together if one of them is refused, while the rest of the file goes on::

    [
      {"kind": "create", "model": "Sale", "as": "sale", "data": {"title": "Desk", "total": "100"}},
      {"kind": "create", "model": "SaleItem", "data": {"sale_id": {"$ref": "sale"}, "sku": "LEG", "qty": 4}},
      {"savepoint": [{"kind": "patch", "model": "Member", "id": "…", "changes": {"email": "taken@x"}}]}
    ]

Every command is decided in order on the unit's state and the whole file commits as one atomic save.
A refused command outside a savepoint stops the file: nothing is saved, and its error is the one line.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from domain.errors import InvalidInputError
from domain.limits import HARD_LIMITS
from entrypoints import json_text
from entrypoints.bootstrap import Runtime
from entrypoints.cli.options import load_catalog, principal_from, principal_options, show
from entrypoints.cli.render import Column
from entrypoints.command_items import run_items

MAX_FILE_BYTES = 64 * 1024 * 1024
RESULT_COLUMNS = (
    Column("model", priority=1),
    Column("id", priority=0, is_id=True),
    Column("version", "v", priority=2),
    Column("state", priority=2),
    Column("position", priority=3),
    Column("replayed", priority=4),
)


@click.command("transaction")
@principal_options
@click.option("--idempotency-key", help="Repeat-safe key for the whole unit.")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
def transaction(file: Path, idempotency_key: str | None, as_json: bool, **options: Any) -> None:
    """Run a JSON file of commands as one unit of work: all saved together, or none.

    \b
    Example:
      writ transaction order.json      # [{"kind": "create", "model": "Sale", "as": "s", "data": {...}},
                                       #  {"kind": "create", "model": "SaleItem",
                                       #   "data": {"sale_id": {"$ref": "s"}, ...}}]
    """
    with Runtime(load_catalog(options.pop("catalog"))) as runtime:
        principal = None
        try:  # refused before the service could read it: still a decision
            principal = principal_from(**options)
            items = _read(file)
        except InvalidInputError as error:
            runtime.writ.refuse(
                principal, "transaction", "", error, idempotency_key=idempotency_key
            )
        with runtime.writ.transaction(principal, idempotency_key=idempotency_key) as tx:
            discarded = run_items(runtime.writ, tx, items)
    rows = [
        {
            "model": r.model,
            "id": r.id,
            "version": r.version,
            "state": r.state,
            "position": r.position,
            "replayed": r.replayed,
            **({"data": r.data} if as_json else {}),
        }
        for r in tx.results
    ]
    show({"results": rows, "discarded": discarded} if as_json else rows, as_json, RESULT_COLUMNS)
    for block in discarded:
        click.echo(
            f"savepoint {block['at']} discarded: {block['code']}: {block['message']}", err=True
        )


def _read(file: Path) -> list[Any]:
    raw = sys.stdin.buffer.read(MAX_FILE_BYTES + 1) if str(file) == "-" else _bytes(file)
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInputError(f"{file}: larger than {MAX_FILE_BYTES:,} bytes")
    try:
        # the catalog's nesting: when the items are run
        items = json_text.loads(raw, HARD_LIMITS.nesting)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{file}: not valid JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise InvalidInputError(f"{file}: expected a non-empty JSON array of commands")
    return items


def _bytes(file: Path) -> bytes:
    try:
        with file.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"{file}: {exc.strerror or exc}") from None

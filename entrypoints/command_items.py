"""Units of work as data: a JSON array of commands, run in one ``Transaction``.

The format ``writ transaction FILE`` and ``POST /v1/transactions`` share. Each item is a command as
``evaluate`` takes it (``{"kind": "create", "model": ..., "data": ...}``), with an optional ``"as": NAME``;
a later command refers to that result's id with ``{"$ref": NAME}`` anywhere in its data, changes or id.
An item ``{"savepoint": [...]}`` is a block whose commands are discarded together if one is refused,
while the rest goes on. A refused command outside a savepoint raises: the unit saves nothing.
"""

from __future__ import annotations

from typing import Any

import orjson

from application.service import Writ
from application.transaction import Transaction
from domain.commands import AnyCommand, parse_command
from domain.errors import InvalidInputError, WritError
from domain.limits import Limits, nested_deeper_than

MAX_ITEMS = 10_000


def run_items(writ: Writ, tx: Transaction, items: Any) -> list[dict[str, Any]]:
    """Run every item in ``tx``; the savepoints discarded, as ``{"at", "code", "message"}``."""
    try:
        _check(items, writ.catalog.limits)
    except InvalidInputError as error:  # refused at the door: recorded like any refusal
        writ.refuse(tx.principal, "transaction", "", error, idempotency_key=tx.key)
    discarded: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for index, item in enumerate(items):
        if isinstance(item, dict) and set(item) == {"savepoint"}:
            _savepoint(writ, tx, item["savepoint"], names, f"{index}", discarded)
        else:
            _run(writ, tx, item, names, f"{index}")
    return discarded


def _check(items: Any, limits: Limits) -> None:
    """The items as a whole, before anything recursive (``$ref`` resolution, parsing) reads them."""
    if not isinstance(items, list) or not items:
        raise InvalidInputError("expected a non-empty JSON array of commands")
    if len(items) > MAX_ITEMS:
        raise InvalidInputError(f"at most {MAX_ITEMS:,} commands in one unit of work")
    if nested_deeper_than(items, limits.nesting):
        raise InvalidInputError(
            f"the commands nest lists and objects more than {limits.nesting} levels deep"
        )


def _savepoint(
    writ: Writ,
    tx: Transaction,
    block: Any,
    names: dict[str, str],
    at: str,
    discarded: list[dict[str, Any]],
) -> None:
    if not isinstance(block, list):
        raise InvalidInputError(f"item {at}: a savepoint holds a JSON array of commands")
    kept = dict(names)
    try:
        with tx.savepoint():
            for index, item in enumerate(block):
                _run(writ, tx, item, names, f"{at}.{index}")
    except WritError as error:
        names.clear()
        names.update(kept)  # a name given inside the discarded block names nothing
        discarded.append({"at": at, "code": error.code, "message": error.message})


def _run(writ: Writ, tx: Transaction, item: Any, names: dict[str, str], at: str) -> None:
    try:
        name, command = _command(item, names, at)
    except InvalidInputError as error:  # refused at the door: recorded like any refusal
        body = item if isinstance(item, dict) else {}
        writ.refuse(
            tx.principal,
            str(body.get("kind", "unknown"))[:40],
            body.get("model", ""),
            error,
            idempotency_key=tx.key,
        )
    result = tx.execute(command)
    if name is not None:
        names[name] = result.id


def _command(item: Any, names: dict[str, str], at: str) -> tuple[str | None, AnyCommand]:
    if not isinstance(item, dict):
        raise InvalidInputError(f"item {at}: a command is a JSON object")
    name = item.get("as")
    if name is not None and (not isinstance(name, str) or not name or name in names):
        raise InvalidInputError(f"item {at}: 'as' must be a new, non-empty name")
    body = {key: _resolved(value, names, at) for key, value in item.items() if key != "as"}
    try:
        return name, parse_command(body)
    except InvalidInputError as error:
        raise InvalidInputError(f"item {at}: {error.message}") from None


def _resolved(value: Any, names: dict[str, str], at: str) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$ref"}:
            ref = value["$ref"]
            if not isinstance(ref, str) or ref not in names:
                raise InvalidInputError(
                    f'item {at}: {{"$ref": {orjson.dumps(ref).decode()}}} names no earlier '
                    "command's result ('as')"
                )
            return names[ref]
        return {key: _resolved(item, names, at) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, names, at) for item in value]
    return value

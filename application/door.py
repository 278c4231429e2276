"""The Python API's door: every argument is checked before anything is decided or read.

``Writ``'s commands and queries take plain Python arguments, so anything can
arrive. Each is checked here first: a principal that is not a ``Principal``,
a model that is not printable text, rows or commands that are not a list
within the catalog's ``rows`` limit, a version or position that is not an int
in range, a flag that is not a bool, an idempotency key past the catalog's
``idempotency_key_length`` — all ``InvalidInputError``; so is text no store
takes (NUL, a lone surrogate) and input nested past the catalog's ``nesting``
(measured without recursing, before anything that recurses reads it). A
record id that is text but not a UUID is ``NOT_FOUND``: no record can have
it. Nothing here touches the store; ``Subject`` names what a refused write was
about, so the service can record its decision even when no command could be
built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.commands import (
    AnyCommand,
    Create,
    Delete,
    Patch,
    Purge,
    Replace,
    Restore,
    check_idempotency_key,
    check_model_name,
)
from domain.errors import InvalidInputError, RecordNotFoundError
from domain.limits import Limits, label, nested_deeper_than, shown, unstorable
from domain.principal import Principal


@dataclass(frozen=True)
class Subject:
    """What a write was about, as the caller gave it (unchecked: decisions sanitize it)."""

    operation: str
    model: object
    record_id: object = None

    @classmethod
    def of(cls, command: object) -> Subject:
        if not isinstance(command, (Create, Replace, Patch, Delete, Restore, Purge)):
            return cls("unknown", "")
        return cls(
            command.operation, command.model, None if isinstance(command, Create) else command.id
        )


def principal_arg(value: object) -> Principal | None:
    if value is None or isinstance(value, Principal):
        return value
    raise InvalidInputError(f"principal must be a Principal or None, not {type(value).__name__}")


def record_id_arg(model: object, value: object) -> UUID:
    """The record id as a UUID; ``NOT_FOUND`` when it is text that no record id can be."""
    model = check_model_name(model)
    if isinstance(value, UUID):
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"record_id must be a UUID or a str, not {type(value).__name__}")
    try:
        return UUID(value)
    except ValueError:
        raise RecordNotFoundError(f"{label(model)} {shown(value)} not found") from None


def sequence_arg(name: str, value: object) -> Sequence[Any]:
    """A list or tuple argument (a string, a mapping or anything else is ``INVALID_INPUT``)."""
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{name} must be a list, not {type(value).__name__}")
    return value


def time_arg(name: str, value: object) -> str | None:
    """An ISO-8601 time with a UTC offset (as text), or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.isoformat()
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be an ISO-8601 time, not {type(value).__name__}")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        return moment.astimezone(UTC).isoformat()
    except (ValueError, OverflowError) as exc:
        raise InvalidInputError(
            f"{name} must be an ISO-8601 time with a UTC offset: {exc}"
        ) from None


def int_arg(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int:
        raise InvalidInputError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise InvalidInputError(f"{name} must be between {low:,} and {high:,}")
    return value


def flag_arg(name: str, value: object) -> bool:
    if type(value) is not bool:
        raise InvalidInputError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def optional_str_arg(name: str, value: object) -> str | None:
    """A str that any store takes (no NUL, no lone surrogate), or None."""
    if value is not None and not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a str or None, not {type(value).__name__}")
    if value is not None and (problem := unstorable(value)):
        raise InvalidInputError(f"{name} {problem}")
    return value


def nesting_arg(name: str, value: object, limits: Limits) -> None:
    """Refuse ``value`` when it nests lists and objects deeper than the catalog's ``nesting``."""
    if nested_deeper_than(value, limits.nesting):
        raise InvalidInputError(
            f"{name} nests lists and objects more than {limits.nesting} levels deep"
        )


def key_arg(value: object, limits: Limits) -> str | None:
    return check_idempotency_key(
        optional_str_arg("idempotency_key", value), limits.idempotency_key_length
    )


def rows_arg(value: object, limits: Limits, name: str = "rows") -> Sequence[Any]:
    """A list or tuple of 1 to ``limits.rows`` items (each is checked as its command is built)."""
    if not isinstance(value, list | tuple):
        raise InvalidInputError(f"{name} must be a list, not {type(value).__name__}")
    if not 1 <= len(value) <= limits.rows:
        raise InvalidInputError(f"{name} must hold 1 to {limits.rows:,} items, not {len(value):,}")
    return value


def commands_arg(value: object, limits: Limits) -> list[AnyCommand]:
    return [command_arg(command) for command in rows_arg(value, limits, "commands")]


def command_arg(value: object) -> AnyCommand:
    if isinstance(value, (Create, Replace, Patch, Delete, Restore, Purge)):
        return value
    raise InvalidInputError(
        f"a command must be a Create, Replace, Patch, Delete, Restore or Purge, not {type(value).__name__}"
    )

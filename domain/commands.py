"""Commands: what a caller asks Writ to do to one record.

Commands are pydantic models so they can cross any boundary (Python, CLI JSON,
HTTP) and be fingerprinted for idempotency. ``kind`` discriminates them when
parsed from JSON (``parse_command``). Building one with arguments of the wrong
type or shape raises ``InvalidInputError``: the model name is printable text,
the idempotency key printable and the expected version a positive 64-bit int
(within ``HARD_LIMITS``; the catalog's limits are checked at the door), the
data a dict keyed by str. Field values are the field rules' business.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import orjson
import pydantic
from pydantic import AfterValidator, ConfigDict, Field, StrictInt, StrictStr, TypeAdapter

from domain.errors import InvalidInputError
from domain.inputs import InputModel, describe
from domain.limits import HARD_LIMITS, INT_MAX, text_problem
from domain.policy import PolicyOperation

MODEL_NAME_LENGTH = 200


def check_model_name(value: object) -> str:
    """``value`` if it can name a model (printable text, 1-200 characters), else ``InvalidInputError``."""
    if not isinstance(value, str):
        raise InvalidInputError(f"model must be a str, not {type(value).__name__}")
    problem = "is empty" if not value else text_problem(value, MODEL_NAME_LENGTH, printable=True)
    if problem:
        raise InvalidInputError(f"model {problem}")
    return value


def check_idempotency_key(
    value: str | None, most: int = HARD_LIMITS.idempotency_key_length
) -> str | None:
    """``value`` if it can be an idempotency key (1-``most`` printable characters), else ``InvalidInputError``."""
    if value is None:
        return None
    problem = "is empty" if not value else text_problem(value, most, printable=True)
    if problem:
        raise InvalidInputError(f"idempotency_key {problem}")
    return value


class Command(InputModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Annotated[StrictStr, AfterValidator(check_model_name)]
    idempotency_key: Annotated[StrictStr | None, AfterValidator(check_idempotency_key)] = None
    expected_version: StrictInt | None = Field(default=None, ge=1, le=INT_MAX)

    operation: ClassVar[PolicyOperation]

    def fingerprint(self) -> str:
        """Hash of what the command asks for (not of how it is retried).

        Raises ``TypeError`` when the command is not JSON-encodable (the field rules refuse such data).
        """
        body = {
            name: getattr(self, name)
            for name in type(self).model_fields
            if name != "idempotency_key"
        }
        return hashlib.sha256(canonical(body)).hexdigest()


def fingerprint_of(commands: Sequence[Command]) -> str | None:
    """What the commands ask for, hashed; None when they cannot be encoded (then no stored key matches)."""
    try:
        return "+".join(command.fingerprint() for command in commands)
    except TypeError:  # orjson.JSONEncodeError: text with a lone surrogate, an int past 64 bits...
        return None


def canonical(body: Any) -> bytes:
    """``body`` as a fingerprint hashes it: sorted keys, values orjson does not encode by type and text."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS, default=_other)


def _other(value: object) -> list[str]:
    """Values orjson does not encode itself (Decimal, bytes, ...), by type and text."""
    return [type(value).__name__, str(value)]


class Create(Command):
    kind: Literal["create"] = "create"
    data: dict[StrictStr, Any] = Field(default_factory=dict)
    operation: ClassVar[PolicyOperation] = "create"


class Replace(Command):
    kind: Literal["replace"] = "replace"
    id: UUID
    data: dict[StrictStr, Any] = Field(default_factory=dict)
    operation: ClassVar[PolicyOperation] = "update"


class Patch(Command):
    kind: Literal["patch"] = "patch"
    id: UUID
    changes: dict[StrictStr, Any] = Field(default_factory=dict)
    operation: ClassVar[PolicyOperation] = "update"


class Delete(Command):
    kind: Literal["delete"] = "delete"
    id: UUID
    operation: ClassVar[PolicyOperation] = "delete"


class Restore(Command):
    kind: Literal["restore"] = "restore"
    id: UUID
    operation: ClassVar[PolicyOperation] = "restore"


class Purge(Command):
    kind: Literal["purge"] = "purge"
    id: UUID
    operation: ClassVar[PolicyOperation] = "force_delete"


RecordCommand = Replace | Patch | Delete | Restore | Purge
OPERATION_OF_KIND: dict[str, PolicyOperation] = {
    kind.model_fields["kind"].default: kind.operation
    for kind in (Create, Replace, Patch, Delete, Restore, Purge)
}
"""The policy operation (and grant) of each kind of command: ``{"patch": "update", "purge": "force_delete", ...}``."""
AnyCommand = Create | RecordCommand
"""Any command, the one type every layer passes around."""
TaggedCommand = Annotated[AnyCommand, Field(discriminator="kind")]
"""How a command is read from JSON-like data: its ``kind`` picks the class."""
_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(TaggedCommand)


def parse_command(data: Any) -> AnyCommand:
    """Parse a command from JSON-like data (``{"kind": "patch", ...}``); ``InvalidInputError`` if malformed."""
    try:
        return _ADAPTER.validate_python(data)
    except (pydantic.ValidationError, UnicodeError) as exc:
        raise InvalidInputError(describe(exc)) from None

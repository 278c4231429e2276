"""Commands: what a caller asks Writ to do to one record.

Commands are pydantic models so they can cross any boundary (Python, CLI JSON,
HTTP) and be fingerprinted for idempotency. ``kind`` discriminates them when
parsed from JSON (``parse_command``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from domain.policy import PolicyOperation


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, max_length=200)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    expected_version: int | None = Field(default=None, ge=1)

    operation: ClassVar[PolicyOperation]

    def fingerprint(self) -> str:
        """Hash of what the command asks for (not of how it is retried)."""
        body = self.model_dump(mode="json", exclude={"idempotency_key"})
        return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


class Create(Command):
    kind: Literal["create"] = "create"
    data: dict[str, Any] = Field(default_factory=dict)
    operation: ClassVar[PolicyOperation] = "create"


class Replace(Command):
    kind: Literal["replace"] = "replace"
    id: UUID
    data: dict[str, Any] = Field(default_factory=dict)
    operation: ClassVar[PolicyOperation] = "update"


class Patch(Command):
    kind: Literal["patch"] = "patch"
    id: UUID
    changes: dict[str, Any] = Field(default_factory=dict)
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
AnyCommand = Annotated[Create | RecordCommand, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Create | RecordCommand] = TypeAdapter(AnyCommand)


def parse_command(data: Any) -> Create | RecordCommand:
    """Parse a command from JSON-like data (``{"kind": "patch", ...}``)."""
    return _ADAPTER.validate_python(data)

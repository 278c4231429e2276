"""Writ's error tree: one root, a few families, one class per stable code.

Every error carries a stable ``code`` (what programs branch on), a human
``message`` and, where it concerns one field, ``field``. Adapters (CLI, HTTP)
map the families to exit codes and statuses by walking the MRO, so a new code
only needs a class here.

    WritError
    ├── CatalogError                 CATALOG_INVALID
    ├── AccessError
    │   ├── UnauthenticatedError     UNAUTHENTICATED
    │   ├── PurposeRequiredError     PURPOSE_REQUIRED
    │   ├── GrantMissingError        GRANT_MISSING
    │   └── WriteDeniedError         WRITE_DENIED
    ├── ValidationError
    │   ├── InvalidInputError        INVALID_INPUT   (also a ValueError)
    │   ├── UnknownFieldError        UNKNOWN_FIELD
    │   ├── FieldNotWritableError    FIELD_NOT_WRITABLE
    │   ├── ImmutableFieldError      IMMUTABLE_FIELD
    │   ├── RequiredFieldMissingError REQUIRED_FIELD_MISSING
    │   ├── InvalidFieldValueError   INVALID_FIELD_VALUE
    │   ├── UniqueViolationError     UNIQUE_VIOLATION
    │   └── ValidationFailedError    VALIDATION_FAILED
    ├── NotFoundError
    │   ├── ModelUnknownError        MODEL_UNKNOWN
    │   └── RecordNotFoundError      NOT_FOUND
    ├── ConflictError
    │   ├── RecordDeletedError       RECORD_DELETED
    │   ├── RecordNotDeletedError    RECORD_NOT_DELETED
    │   ├── VersionConflictError     VERSION_CONFLICT
    │   ├── IdempotencyKeyReusedError IDEMPOTENCY_KEY_REUSED
    │   ├── ApprovalNotPendingError  APPROVAL_NOT_PENDING
    │   ├── SelfApprovalForbiddenError SELF_APPROVAL_FORBIDDEN
    │   ├── ApprovalStaleError       APPROVAL_STALE
    │   └── AlreadyApprovedError     ALREADY_APPROVED
    ├── ApprovalRequiredError        APPROVAL_REQUIRED
    ├── BulkLimitExceededError       BULK_LIMIT_EXCEEDED
    ├── ServiceUnavailableError      UNAVAILABLE
    ├── ChainBrokenError             CHAIN_BROKEN
    │   └── KeyInvalidError          KEY_INVALID
    └── ConfigurationError           CONFIGURATION_INVALID
"""

from __future__ import annotations

from typing import Any, ClassVar


class WritError(Exception):
    """Root of every error Writ raises on purpose."""

    code: ClassVar[str] = "WRIT_ERROR"

    def __init__(
        self, message: str, *, field: str | None = None, recorded: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.recorded = message if recorded is None else recorded
        """What a stored decision (or approval request) keeps of the message. It outlives a purge of the record,
        so it quotes no value the caller sent; the message itself may (a custom validator's exception text)."""
        self.position: int | None = None
        """Where the decision that recorded this refusal (or failure) is in the log, once it is recorded:
        read the decisions with it (``views.wait``, ``Writ-Wait-Position``); None when nothing was recorded."""

    @property
    def reason(self) -> str:
        """The refusal as a decision's reasons list it: code and ``recorded``."""
        return f"{self.code}: {self.recorded}"

    @property
    def kind(self) -> str:
        """The family name shown to clients, e.g. ``ValidationError``."""
        for cls in type(self).__mro__:
            if cls in _FAMILIES:
                return cls.__name__
        return "WritError"

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.kind, "message": self.message, "code": self.code}
        if self.field is not None:
            body["field"] = self.field
        return body


class CatalogError(WritError):
    code = "CATALOG_INVALID"


class AccessError(WritError):
    """The principal may not issue this command."""


class UnauthenticatedError(AccessError):
    code = "UNAUTHENTICATED"


class PurposeRequiredError(AccessError):
    code = "PURPOSE_REQUIRED"


class GrantMissingError(AccessError):
    code = "GRANT_MISSING"


class WriteDeniedError(AccessError):
    code = "WRITE_DENIED"


class ValidationError(WritError):
    """The command's data breaks a field rule."""


class InvalidInputError(ValidationError, ValueError):
    """An argument of the wrong type or shape, or past a limit (``domain.limits``).

    Also a ``ValueError``, so pydantic validators may raise it and callers that
    catch ``ValueError`` around construction keep working.
    """

    code = "INVALID_INPUT"


class UnknownFieldError(ValidationError):
    code = "UNKNOWN_FIELD"


class FieldNotWritableError(ValidationError):
    code = "FIELD_NOT_WRITABLE"


class ImmutableFieldError(ValidationError):
    code = "IMMUTABLE_FIELD"


class RequiredFieldMissingError(ValidationError):
    code = "REQUIRED_FIELD_MISSING"


class InvalidFieldValueError(ValidationError):
    code = "INVALID_FIELD_VALUE"


class UniqueViolationError(ValidationError):
    code = "UNIQUE_VIOLATION"


class ValidationFailedError(ValidationError):
    code = "VALIDATION_FAILED"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: list[ValidationFailedError] | None = None,
        recorded: str | None = None,
    ) -> None:
        super().__init__(message, field=field, recorded=recorded)
        self.problems = problems or []
        """Every problem the custom validators found, when this error stands for several."""

    @classmethod
    def of(cls, problems: list[ValidationFailedError]) -> ValidationFailedError:
        """One error listing every problem (its field is theirs when they all name one)."""
        fields = {problem.field for problem in problems}

        def listed(texts: list[str]) -> str:
            return texts[0] if len(texts) == 1 else f"{len(texts)} problems: " + "; ".join(texts)

        return cls(
            listed([p.message for p in problems]),
            field=fields.pop() if len(fields) == 1 else None,
            problems=problems,
            recorded=listed([p.recorded for p in problems]),
        )

    def to_dict(self) -> dict[str, Any]:
        body = super().to_dict()
        if self.problems:
            body["problems"] = [problem.to_dict() for problem in self.problems]
        return body


class NotFoundError(WritError):
    """Nothing by that name is visible to this principal."""


class ModelUnknownError(NotFoundError):
    code = "MODEL_UNKNOWN"


class RecordNotFoundError(NotFoundError):
    code = "NOT_FOUND"


class ConflictError(WritError):
    """The command does not fit the record's current state."""


class RecordDeletedError(ConflictError):
    code = "RECORD_DELETED"


class RecordNotDeletedError(ConflictError):
    code = "RECORD_NOT_DELETED"


class VersionConflictError(ConflictError):
    code = "VERSION_CONFLICT"


class IdempotencyKeyReusedError(ConflictError):
    code = "IDEMPOTENCY_KEY_REUSED"


class ApprovalNotPendingError(ConflictError):
    code = "APPROVAL_NOT_PENDING"


class SelfApprovalForbiddenError(ConflictError):
    code = "SELF_APPROVAL_FORBIDDEN"


class ApprovalStaleError(ConflictError):
    code = "APPROVAL_STALE"


class AlreadyApprovedError(ConflictError):
    code = "ALREADY_APPROVED"


class ApprovalRequiredError(WritError):
    """Policy requires approval; the command was not executed."""

    code = "APPROVAL_REQUIRED"


class BulkLimitExceededError(WritError):
    code = "BULK_LIMIT_EXCEEDED"


class ServiceUnavailableError(WritError):
    """Something this command needs is not set up in this process (e.g. the views, for a bulk update)."""

    code = "UNAVAILABLE"


class ChainBrokenError(WritError):
    """A record's stored history fails its hash chain: an event was altered, removed, inserted or reordered,
    or a snapshot does not match the history. The record is not served (a wrong value would be worse)."""

    code = "CHAIN_BROKEN"

    def __init__(self, message: str, *, record_id: str, version: int | None) -> None:
        super().__init__(message)
        self.record_id = record_id
        self.version = version


class KeyInvalidError(ChainBrokenError):
    """A record's stored data key does not unwrap for it (altered, or moved from another record): its data
    cannot be read, so it is not served, as with any broken history (``version`` None: no event is at fault)."""

    code = "KEY_INVALID"

    def __init__(self, message: str, *, record_id: str) -> None:
        super().__init__(message, record_id=record_id, version=None)


_FAMILIES = {
    CatalogError,
    AccessError,
    ValidationError,
    NotFoundError,
    ConflictError,
    ApprovalRequiredError,
    BulkLimitExceededError,
    ChainBrokenError,
    ServiceUnavailableError,
}


class ConfigurationError(WritError):
    """The deployment's settings (environment, key files, database URL) are missing or do not make sense."""

    code = "CONFIGURATION_INVALID"

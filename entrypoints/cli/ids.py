"""Id prefixes, as git takes them: ``writ get Order 3d7ffe91`` names the one record of your tenant and that
model whose id starts so.

A prefix is 8 to 31 hex digits (a UUID's hyphens may be kept or left out); a whole id, or text that is no
hex at all, is passed on as it is, for the command to judge. Candidates come from the event store's key
(``LogQueries.first_ids``: the aggregates whose first event is a record's ``Created`` or an approval's
``Requested``), and each is kept only if the read the command itself makes finds it for you: the record
loader with your tenant and the command's model, ``Writ.approval`` for a request. Another tenant's ids are
never told apart from none: a prefix only they match is ``NOT_FOUND``, as is one that only matches a request
of your tenant you may not read, and only a prefix that two of your own match is ambiguous (``INVALID_INPUT``,
listing them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from uuid import UUID

from domain.approval import ApprovalRequest
from domain.errors import GrantMissingError, InvalidInputError, RecordNotFoundError
from domain.principal import Principal
from domain.record import Record
from entrypoints.bootstrap import Runtime
from infrastructure.persistence import LogQueries

MIN_PREFIX = 8
MOST_CANDIDATES = 1000
SHOWN_MATCHES = 5
_HEX = re.compile(r"[0-9a-f]+")


def prefix_of(text: str) -> str | None:
    """The hex digits of ``text`` when it is an id prefix (not a whole id); None when it is no prefix at all."""
    digits = text.strip().lower().replace("-", "")
    if not _HEX.fullmatch(digits) or len(digits) >= 32:
        return None
    if len(digits) < MIN_PREFIX:
        raise InvalidInputError(
            f"id prefix {text!r} is too short: give at least {MIN_PREFIX} hex characters"
        )
    return digits


def resolve_record(runtime: Runtime, principal: Principal | None, model: str, text: str) -> str:
    """The whole id of the one ``model`` record of the principal's tenant that ``text`` names (``text`` itself
    when it is no prefix)."""
    runtime.catalog.model(model)  # MODEL_UNKNOWN before anything is read
    tenant = principal.tenant_id if principal is not None else None
    runtime.writ  # noqa: B018 - its core reads the records
    loader = runtime.core.loader
    return _resolve(
        runtime,
        text,
        Record.Created.TOPIC,
        model,
        lambda candidate: (
            tenant is not None and loader.load(candidate, tenant=tenant, model=model) is not None
        ),
    )


def resolve_approval(runtime: Runtime, principal: Principal | None, text: str) -> str:
    """The whole id of the one approval request of the principal's tenant that ``text`` names (``text`` itself
    when it is no prefix)."""

    def readable(candidate: UUID) -> bool:
        try:
            runtime.writ.approval(principal, candidate)
        except (
            RecordNotFoundError,
            GrantMissingError,
        ):  # one the principal may not read is not theirs
            return False
        return True

    return _resolve(runtime, text, ApprovalRequest.Created.TOPIC, "Approval", readable)


def _resolve(
    runtime: Runtime, text: str, topic: str, kind: str, readable: Callable[[UUID], bool]
) -> str:
    digits = prefix_of(text)
    if digits is None:
        return text
    runtime.writ  # noqa: B018 - its core reads the log
    recorder = runtime.core.store.recorder
    assert isinstance(recorder, LogQueries)
    candidates = recorder.first_ids(
        UUID(digits.ljust(32, "0")), UUID(digits.ljust(32, "f")), topic, MOST_CANDIDATES + 1
    )
    if len(candidates) > MOST_CANDIDATES:
        raise InvalidInputError(f"id prefix {text!r} matches too many ids: give more characters")
    found = [str(candidate) for candidate in candidates if readable(candidate)]
    if not found:
        raise RecordNotFoundError(f"{kind} {text} not found: no id you can see starts with it")
    if len(found) > 1:
        listed = ", ".join(found[:SHOWN_MATCHES]) + (", ..." if len(found) > SHOWN_MATCHES else "")
        raise InvalidInputError(
            f"ambiguous id prefix {text!r}: {len(found)} {kind} ids start with it ({listed}); "
            "give more characters"
        )
    return found[0]

"""Compound operations: a parent saved first, its steps saved one by one after it.

Some work cannot be one atomic save: thousands of children, or steps that wait on something else
between them. ``writ.compound`` saves the parent at once and each step as its own write::

    with writ.compound(clerk, "Import", {"source": "batch-7"}) as job:
        for row in rows:
            job.create("ImportRow", {"import_id": job.parent.id, **row})

If the block raises anything at all (``BaseException``: a refusal, a bug, ``KeyboardInterrupt``,
``SystemExit``), the parent gets a ``Failed`` event naming the exception, and the exception goes on
unchanged. A failure to mark the parent (the database went away too) is logged, never raised in its
place. The steps already saved stay, attached to the parent, for diagnosis.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from application.results import WriteResult
    from domain.principal import Principal


class Steps(Protocol):
    """The writes a compound operation makes (``application.commands.Commands``)."""

    def create(
        self,
        principal: Principal | None,
        model: str,
        data: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> WriteResult: ...

    def patch(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        changes: dict[str, Any],
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult: ...

    def fail(
        self, principal: Principal | None, model: str, record_id: UUID | str, reason: str
    ) -> WriteResult: ...


log = logging.getLogger("writ.compound")
REASON_LENGTH = 500


class Compound:
    def __init__(
        self,
        writ: Steps,
        principal: Principal | None,
        model: str,
        data: dict[str, Any],
        idempotency_key: str | None,
    ) -> None:
        self.writ, self.principal, self.model = writ, principal, model
        self._data, self._key = data, idempotency_key
        self.parent: WriteResult | None = None
        self.steps: list[WriteResult] = []

    def __enter__(self) -> Compound:
        self.parent = self.writ.create(
            self.principal, self.model, self._data, idempotency_key=self._key
        )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None or self.parent is None:
            return
        reason = f"{kind.__name__}: {error}" if str(error) else kind.__name__
        try:
            self.writ.fail(self.principal, self.model, self.parent.id, reason[:REASON_LENGTH])
        except BaseException:  # marking must never replace the error that is propagating
            log.exception(
                "could not mark %s %s failed after %s; the original error propagates",
                self.model,
                self.parent.id,
                kind.__name__,
            )

    def create(self, model: str, data: dict[str, Any]) -> WriteResult:
        """A step: one create, saved now."""
        return self._step(self.writ.create(self.principal, model, data))

    def patch(self, model: str, record_id: UUID | str, changes: dict[str, Any]) -> WriteResult:
        """A step: one patch, saved now."""
        return self._step(self.writ.patch(self.principal, model, record_id, changes))

    def _step(self, result: WriteResult) -> WriteResult:
        self.steps.append(result)
        return result

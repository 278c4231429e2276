"""``Writ``: the command service, a facade of the documented calls.

Every call goes to one of a few collaborators composed over one core (``application.core``): the write
commands and their dry run (``application.commands``), units of work (``application.transaction``) and
compound operations (``application.compound``), approvals (``application.approvals``), bulk updates
(``application.bulk``), reads (``application.queries``) and auditors' reads (``application.audit``). The core
holds the ``eventsourcing`` application (``application.store``), never exposed: nothing ungoverned is
reachable from ``Writ``. ``entrypoints.bootstrap.open_writ`` makes one, fully wired.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, NoReturn
from uuid import UUID

from application.approvals import Approvals
from application.audit import Audit
from application.bulk import Bulk
from application.commands import Commands
from application.compound import Compound
from application.core import Core
from application.ports import Matcher
from application.queries import Reads
from application.results import ApprovalResult, BulkResult, Evaluation, HistoryEntry, WriteResult
from application.transaction import Transaction
from domain.catalog import Catalog
from domain.commands import AnyCommand, Delete, Purge, Restore
from domain.errors import WritError
from domain.principal import Principal


class Writ:
    """Governed, event-sourced writes and reads over the models of one catalog."""

    def __init__(self, core: Core, matcher: Matcher) -> None:
        self._core = core
        self._closing: list[Callable[[], None]] = []
        reads, bulk = Reads(core), Bulk(core, matcher)
        approvals = Approvals(core, bulk)
        self._commands, self._approvals, self._bulk = Commands(core, approvals), approvals, bulk
        self._reads, self._audit = reads, Audit(core, reads)

    @property
    def catalog(self) -> Catalog:
        """The catalog every command is decided against."""
        return self._core.catalog

    def group_commit_status(self) -> dict[str, Any] | None:
        """How this process has batched its saves since it started (``GroupCommit.status``); None where the store
        saves one at a time."""
        group = self._core.store.group_commit
        return None if group is None else group.status()

    # -- writes ---------------------------------------------------------------------------------------------

    def create(
        self,
        principal: Principal | None,
        model: str,
        data: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """Create one record (with its nested children, in the same save)."""
        return self._commands.create(principal, model, data, idempotency_key=idempotency_key)

    def create_many(
        self,
        principal: Principal | None,
        model: str,
        rows: Sequence[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[WriteResult]:
        """Create several records in one atomic save: all of them or none."""
        return self._commands.create_many(principal, model, rows, idempotency_key=idempotency_key)

    def replace(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        data: dict[str, Any],
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """PUT: replace every writable field; omitted optional fields are cleared."""
        return self._commands.replace(
            principal,
            model,
            record_id,
            data,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )

    def patch(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        changes: dict[str, Any],
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """PATCH: change only the given fields."""
        return self._commands.patch(
            principal,
            model,
            record_id,
            changes,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )

    def delete(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """Soft delete: hidden from projections, kept in the store."""
        return self._commands.lifecycle(
            Delete,
            principal,
            model,
            record_id,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )

    def restore(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """Undo a soft delete."""
        return self._commands.lifecycle(
            Restore,
            principal,
            model,
            record_id,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )

    def purge(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """Force delete: a ``Purged`` tombstone, and the record's data made unrecoverable."""
        return self._commands.lifecycle(
            Purge,
            principal,
            model,
            record_id,
            expected_version=expected_version,
            idempotency_key=idempotency_key,
        )

    def execute(self, principal: Principal | None, command: AnyCommand) -> WriteResult:
        """One command object (``domain.commands``), as the named calls above."""
        return self._commands.execute(principal, command)

    def execute_many(
        self,
        principal: Principal | None,
        commands: Sequence[AnyCommand],
        *,
        idempotency_key: str | None = None,
    ) -> list[WriteResult]:
        """Several command objects decided and saved in one atomic save (or parked together)."""
        return self._commands.execute_many(principal, commands, idempotency_key=idempotency_key)

    def evaluate(self, principal: Principal | None, command: AnyCommand) -> Evaluation:
        """Dry run: the decision, its reasons and the before/after preview. Writes nothing."""
        return self._commands.evaluate(principal, command)

    def transaction(
        self, principal: Principal | None, *, idempotency_key: str | None = None
    ) -> Transaction:
        """A unit of work: ``with writ.transaction(principal) as tx:`` — its commands decide as they go and
        commit as one atomic save when the block ends (nothing, if it raises)."""
        return Transaction(self._core, principal, idempotency_key)

    def compound(
        self,
        principal: Principal | None,
        model: str,
        data: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> Compound:
        """A parent saved now, whose later steps are saved one by one (``application.compound``)."""
        return Compound(self._commands, principal, model, data, idempotency_key)

    def bulk_update(
        self,
        principal: Principal | None,
        model: str,
        filters: Sequence[Any],
        changes: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        all_records: bool = False,
    ) -> BulkResult:
        """Patch every live match in the principal's tenant, each its own event, in one atomic save (or parked);
        no filters needs ``all_records=True``."""
        return self._bulk.bulk_update(
            principal,
            model,
            filters,
            changes,
            idempotency_key=idempotency_key,
            all_records=all_records,
        )

    def refuse(
        self,
        principal: object,
        operation: str,
        model: object,
        error: WritError,
        *,
        record_id: object = None,
        idempotency_key: object = None,
    ) -> NoReturn:
        """Record a write an entry point refused before it reached the service (its input could not be read: a
        malformed principal, JSON that does not parse) as a refused decision, then raise ``error``."""
        self._commands.refuse(
            principal, operation, model, error, record_id=record_id, idempotency_key=idempotency_key
        )

    def record_read(
        self,
        principal: Principal,
        operation: str,
        model: object,
        *,
        record_id: object = None,
        error: WritError | None = None,
        reasons: Sequence[str] = (),
    ) -> None:
        """Record a read an entry point must account for (an agent's tool call) as a decision ``read``."""
        self._commands.record_read(
            principal, operation, model, record_id=record_id, error=error, reasons=reasons
        )

    # -- approvals ------------------------------------------------------------------------------------------

    def approval(self, principal: Principal | None, approval_id: UUID | str) -> dict[str, Any]:
        """A request as it stands, for its requester, its eligible approvers and the model's auditors."""
        return self._approvals.approval(principal, approval_id)

    def approve(
        self,
        principal: Principal | None,
        approval_id: UUID | str,
        *,
        reason: str | None = None,
        fingerprint: str | None = None,
    ) -> ApprovalResult:
        """Approve (the model's ``approve`` grant); the last approval the catalog asks for executes the change."""
        return self._approvals.approve(
            principal, approval_id, reason=reason, fingerprint=fingerprint
        )

    def reject(
        self, principal: Principal | None, approval_id: UUID | str, reason: str
    ) -> ApprovalResult:
        """Reject with a reason (the model's ``approve`` grant): the commands never run."""
        return self._approvals.reject(principal, approval_id, reason)

    def cancel(
        self, principal: Principal | None, approval_id: UUID | str, *, reason: str | None = None
    ) -> ApprovalResult:
        """The requester withdraws the request."""
        return self._approvals.cancel(principal, approval_id, reason=reason)

    # -- reads ----------------------------------------------------------------------------------------------

    def get(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        version: int | None = None,
        include_deleted: bool = False,
    ) -> dict[str, Any]:
        """The record as the caller may see it, now or as of ``version``."""
        return self._reads.get(
            principal, model, record_id, version=version, include_deleted=include_deleted
        )

    def history(
        self, principal: Principal | None, model: str, record_id: UUID | str
    ) -> list[HistoryEntry]:
        """Every event of the record with actor, purpose, time and before/after values."""
        return self._reads.history(principal, model, record_id)

    def iter_history(
        self, principal: Principal | None, model: str, record_id: UUID | str, *, after: int = 0
    ) -> Iterator[HistoryEntry]:
        """``history``, streamed a page at a time, past version ``after``."""
        return self._reads.iter_history(principal, model, record_id, after=after)

    def decisions(
        self,
        principal: Principal | None,
        *,
        after: int = 0,
        limit: int = 100,
        actor: str | None = None,
        model: str | None = None,
        outcome: str | None = None,
    ) -> list[dict[str, Any]]:
        """Decisions the principal may read, from the log itself, oldest first."""
        return self._reads.decisions(
            principal, after=after, limit=limit, actor=actor, model=model, outcome=outcome
        )

    def as_of(
        self, principal: Principal | None, model: str, record_id: UUID | str, at: str | datetime
    ) -> dict[str, Any]:
        """The record as it stood at time ``at``."""
        return self._audit.as_of(principal, model, record_id, at)

    def diff(
        self,
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        from_version: int,
        to_version: int,
    ) -> dict[str, dict[str, Any]]:
        """The fields that differ between two versions of the record: ``{field: {"before", "after"}}``."""
        return self._audit.diff(principal, model, record_id, from_version, to_version)

    def export(
        self, principal: Principal | None, *, since: str | datetime, until: str | datetime
    ) -> Iterator[dict[str, Any]]:
        """Every event stored in [``since``, ``until``) in the tenant, of the models the principal audits."""
        return self._audit.export(principal, since=since, until=until)

    def close(self) -> None:
        """Close the store (and what was opened with it)."""
        self._core.close()
        while self._closing:
            self._closing.pop()()

    def closing_also(self, close: Callable[[], None]) -> None:
        """Close what was opened for this service (``entrypoints.bootstrap.open_writ``) when it closes."""
        self._closing.append(close)

    def __enter__(self) -> Writ:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

"""The unit of work: many commands, over many records and models, in one atomic save.

::

    with writ.transaction(clerk) as tx:
        order = tx.create("Order", {"sku": "LAMP-42", "total": "89.90"})
        tx.create("OrderItem", {"order_id": order.id, "sku": "BULB", "qty": 2})
        with tx.savepoint():           # if this block raises, only its changes are discarded
            tx.patch("Stock", stock_id, {"count": 7})

Each command is decided when it is called, on the unit's state: it sees what the commands before it
staged (the order above exists for its item; a counter gives the next number). A refused command raises
at once (its refusal is recorded, as any refusal is) and stages nothing; the block may catch it and go
on. When the block ends the unit commits as one save: events, decisions (inside the events), counters,
unique claims and the idempotency key together. If the block raises, nothing is saved. A conflict at
commit re-decides every kept command on fresh state, with the same record ids, and saves all of them or
none; a command that no longer passes fails the whole unit with its error. ``tx.results`` holds the
committed results (positions, and values a re-decision changed, such as counter numbers).

A command that needs approval cannot wait inside a unit of work: it is refused with
``APPROVAL_REQUIRED`` (send it on its own to park it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from application.door import Subject, key_arg, principal_arg
from application.retry import Lost
from application.unit import decision_of
from domain.commands import AnyCommand, Create, Delete, Patch, Purge, Replace, Restore
from domain.errors import ApprovalRequiredError, IdempotencyKeyReusedError, InvalidInputError
from domain.ids import new_id
from domain.limits import shown
from domain.principal import Principal

if TYPE_CHECKING:
    from application.core import Core
    from application.results import WriteResult


class Transaction:
    def __init__(
        self, core: Core, principal: Principal | None, idempotency_key: str | None
    ) -> None:
        self.core, self.principal, self.key = core, principal, idempotency_key
        self.unit = core.unit(locking=True)
        self.now = core.clock()
        self.results: list[WriteResult] = []
        """After commit: each kept command's result, in order."""
        self._kept: list[tuple[AnyCommand, UUID]] = []
        self._replaying: list[dict[str, Any]] | None = None
        """The first run's results, when the idempotency key was used: the block's commands are matched
        against that run's, not decided again."""
        self._state = "new"

    # -- the block ----------------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        try:
            principal_arg(self.principal)
            key_arg(self.key, self.core.catalog.limits)
        except InvalidInputError as error:
            self.core.refuse_at_door(self.principal, Subject("transaction", ""), self.key, error)
        claimed = self.core.repeats.claimed(self.principal, self.key)
        self._replaying = None if claimed is None else list(claimed.results)
        self._state = "open"
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if kind is not None:
                self._state = "discarded"
                return
            self._state = "committing"
            self.results = self._commit()
            self._state = "done"
        finally:
            self.unit.unlock()
            if self._state == "committing":
                self._state = "failed"

    @contextmanager
    def savepoint(self) -> Iterator[Transaction]:
        """A block whose changes are discarded, alone, if it raises (the exception goes on to the caller)."""
        self._require_open()
        kept = len(self._kept)
        try:
            with self.unit.savepoint():
                yield self
        except BaseException:
            del self._kept[kept:]
            raise

    # -- commands -----------------------------------------------------------------------------

    def create(self, model: str, data: dict[str, Any]) -> WriteResult:
        return self.execute(self.core.build(self.principal, Create, model, data=data))

    def replace(
        self,
        model: str,
        record_id: UUID | str,
        data: dict[str, Any],
        *,
        expected_version: int | None = None,
    ) -> WriteResult:
        return self.execute(
            self.core.build(
                self.principal, Replace, model, record_id, data=data, version=expected_version
            )
        )

    def patch(
        self,
        model: str,
        record_id: UUID | str,
        changes: dict[str, Any],
        *,
        expected_version: int | None = None,
    ) -> WriteResult:
        return self.execute(
            self.core.build(
                self.principal, Patch, model, record_id, changes=changes, version=expected_version
            )
        )

    def delete(
        self, model: str, record_id: UUID | str, *, expected_version: int | None = None
    ) -> WriteResult:
        return self.execute(
            self.core.build(self.principal, Delete, model, record_id, version=expected_version)
        )

    def restore(
        self, model: str, record_id: UUID | str, *, expected_version: int | None = None
    ) -> WriteResult:
        return self.execute(
            self.core.build(self.principal, Restore, model, record_id, version=expected_version)
        )

    def purge(
        self, model: str, record_id: UUID | str, *, expected_version: int | None = None
    ) -> WriteResult:
        return self.execute(
            self.core.build(self.principal, Purge, model, record_id, version=expected_version)
        )

    def execute(self, command: AnyCommand) -> WriteResult:
        """Decide ``command`` now, on the unit's state, and stage it (its result has no position until commit)."""
        self._require_open()
        record_id = new_id() if isinstance(command, Create) else command.id
        if self._replaying is not None:
            return self._replay(command, record_id)
        with self.unit.savepoint():
            self._stage(command, record_id)
        self._kept.append((command, record_id))
        return self.unit.decided[-1]

    # -- internals ----------------------------------------------------------------------------

    def _replay(self, command: AnyCommand, record_id: UUID) -> WriteResult:
        """The first run's result for this command (the whole unit's fingerprint is compared at the end)."""
        assert self._replaying is not None
        index = len(self._kept)
        self._kept.append((command, record_id))
        if index >= len(self._replaying):
            self._reused(Subject.of(command))
        return self.core.repeats.replayed(self._replaying[index])

    def _reused(self, subject: Subject) -> NoReturn:
        error = IdempotencyKeyReusedError(
            f"Idempotency key {shown(self.key or '')} was already used for a different unit of work"
        )
        self.core.record_refusal(self.principal, subject, None, error, self.key, "refused")
        raise error

    def _stage(self, command: AnyCommand, record_id: UUID) -> Any:
        verdict, staged = self.core.stage(
            self.unit, self.principal, command, None, self.now, record_id=record_id
        )
        if staged is None:
            error = ApprovalRequiredError(
                f"Policy requires approval for this {command.operation}; a unit of work "
                "cannot wait for one: send the command on its own to park it"
            )
            self.core.record_refusal(
                self.principal, Subject.of(command), verdict, error, self.key, "refused"
            )
            raise error
        self.unit.decided.append(self.core.result(staged, decision_of(staged), None, self.unit))
        return staged

    def _commit(self) -> list[WriteResult]:
        if not self._kept:
            # a unit of no commands under a key whose first unit made changes is another unit
            if self._replaying is not None:
                self._reused(Subject("transaction", ""))
            return []
        assert self.principal is not None
        principal, commands = self.principal, [command for command, _ in self._kept]

        def again() -> list[WriteResult] | None:
            replayed = self.core.repeats.replay(principal, commands, self.key)
            # the claim vanished? never: keys are append-only
            if replayed is None and self._replaying is not None:
                raise IdempotencyKeyReusedError(
                    "the idempotency key's claim could not be read back"
                )
            return replayed

        def attempt(lost_before: int) -> list[WriteResult]:
            # after ``again``: a repeat that won the race is returned, not decided again
            if lost_before:
                self._restage()
            return self.core.commit(self.unit, principal, commands, self.key, self.now)

        lost = Lost(
            principal,
            Subject.of(commands[0]),
            self.key,
            f"{commands[0].model}: records of this unit of "
            "work changed while it was decided; nothing was saved",
        )
        first = again()
        if first is not None:
            return first
        return self.core.retry.run(attempt, lost, again=again)

    def _restage(self) -> None:
        """Every kept command decided again on fresh state, with the record ids its results gave."""
        self.unit.unlock()
        self.unit, self.now = self.core.unit(locking=True), self.core.clock()
        for command, record_id in self._kept:
            self._stage(command, record_id)

    def _require_open(self) -> None:
        if self._state != "open":
            raise InvalidInputError(
                f"This unit of work is {self._state}: use it inside its with block"
            )

"""The write commands of ``Writ``: create, replace, patch, delete, restore, purge, and their dry run.

Each builds its command at the door (``Core.build``: a refusal there is recorded like any other), then
``execute_many`` decides every command on one unit of work and saves it in one atomic save, or parks it for
approval (``application.approvals``), retrying a lost race on fresh state (``application.retry``): with the
same record ids, and not at all when a command named the version it expected. A repeat of a command under
its idempotency key returns its first result.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

from application.decisions import allowed_meta, read_decision
from application.door import Subject, command_arg, principal_arg, rows_arg
from application.repeats import RepeatedCommand
from application.results import Evaluation, WriteResult
from application.retry import Lost
from application.staging import UnitEffects, split_children
from application.unit import Unit, decision_of, unit_record
from domain.commands import AnyCommand, Command, Create, Delete, Patch, Purge, Replace, Restore
from domain.errors import InvalidInputError, RecordNotFoundError, WritError
from domain.ids import new_id
from domain.pipeline import Verdict, decide
from domain.principal import Principal

if TYPE_CHECKING:
    from application.approvals import Approvals
    from application.core import Core


class Commands:
    def __init__(self, core: Core, approvals: Approvals) -> None:
        self.core, self.approvals = core, approvals

    def create(
        self,
        principal: Principal | None,
        model: str,
        data: dict[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        return self.execute(
            principal, self.core.build(principal, Create, model, data=data, key=idempotency_key)
        )

    def create_many(
        self,
        principal: Principal | None,
        model: str,
        rows: Sequence[dict[str, Any]],
        *,
        idempotency_key: str | None = None,
    ) -> list[WriteResult]:
        try:
            rows = rows_arg(rows, self.core.catalog.limits)
        except InvalidInputError as error:
            self.core.refuse_at_door(principal, Subject("create", model), idempotency_key, error)
        commands = [self.core.build(principal, Create, model, data=row) for row in rows]
        return self.execute_many(principal, commands, idempotency_key=idempotency_key)

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
        return self.execute(
            principal,
            self.core.build(
                principal,
                Replace,
                model,
                record_id,
                data=data,
                version=expected_version,
                key=idempotency_key,
            ),
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
        return self.execute(
            principal,
            self.core.build(
                principal,
                Patch,
                model,
                record_id,
                changes=changes,
                version=expected_version,
                key=idempotency_key,
            ),
        )

    def lifecycle(
        self,
        kind: type[Delete | Restore | Purge],
        principal: Principal | None,
        model: str,
        record_id: UUID | str,
        *,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> WriteResult:
        """A command that names a record and nothing else: delete, restore or purge."""
        command = self.core.build(
            principal, kind, model, record_id, version=expected_version, key=idempotency_key
        )
        return self.execute(principal, command)

    def fail(
        self, principal: Principal | None, model: str, record_id: UUID | str, reason: str
    ) -> WriteResult:
        """Mark a record failed: a ``Failed`` event with ``reason`` (a compound operation's parent whose steps
        broke off). Its data and state stay as they were."""
        command = self.core.build(principal, Patch, model, record_id, changes={})
        record = self.core.loaded(principal, command, None)
        if principal is None or record is None or record.model != model:
            raise RecordNotFoundError(f"{model} {record_id} not found")
        verdict = Verdict("allow", reasons=("a compound operation failed",))
        meta = {
            **allowed_meta(principal, command, verdict, self.core.catalog.version, None),
            "operation": "fail",
        }
        record.fail(str(reason), meta, self.core.clock(), self.core.keys.digest)
        recordings = self.core.save(record)
        return self.core.result(record, meta["decision_id"], recordings[-1].notification.id)

    def execute(self, principal: Principal | None, command: AnyCommand) -> WriteResult:
        key = command.idempotency_key if isinstance(command, Command) else None
        return self.execute_many(principal, [command], idempotency_key=key)[0]

    def execute_many(
        self,
        principal: Principal | None,
        commands: Sequence[AnyCommand],
        *,
        idempotency_key: str | None = None,
    ) -> list[WriteResult]:
        """Decide and execute commands atomically, retrying lost races on fresh state."""
        commands = self.core.checked(principal, commands, idempotency_key)
        replay = self.core.repeats.replay

        def attempt(_: int) -> list[WriteResult]:
            try:
                with self.core.unit(locking=True) as unit:
                    return self._attempt(unit, principal, commands, idempotency_key)
            except RepeatedCommand:
                # a refusal found the key's claim: the first attempt reads none beforehand
                return replay(principal, commands, idempotency_key) or []

        lost = Lost(
            principal,
            Subject.of(commands[0]),
            idempotency_key,
            f"{commands[0].model}: the record changed while this write was decided",
        )
        return self.core.retry.run(
            attempt,
            lost,
            again=lambda: replay(principal, commands, idempotency_key),
        )

    def _attempt(
        self,
        unit: Unit,
        principal: Principal | None,
        commands: Sequence[AnyCommand],
        idempotency_key: str | None,
    ) -> list[WriteResult]:
        now = self.core.clock()
        versions: dict[str, int] = {}
        verdicts: list[Verdict] = []
        size, parking = 0, False
        for command in commands:
            if not isinstance(command, Create):
                unit.take_turn(command.id)
                found = unit_record(unit, command.id) or self.core.loaded(
                    principal, command, idempotency_key
                )
                if found is not None:
                    versions.setdefault(str(found.id), found.version)
                    unit.touch(found)  # staged as loaded: the stage below reads it from the unit
            verdict, staged = self.core.stage(
                unit, principal, command, idempotency_key, now, size=size
            )
            verdicts.append(verdict)
            size += verdict.size
            if staged is None:
                parking = True
            elif not parking:
                unit.decided.append(self.core.result(staged, decision_of(staged), None, unit))
        assert principal is not None
        if parking:
            return self.approvals.park(
                principal, list(commands), verdicts, versions, idempotency_key, now
            )
        return self.core.commit(unit, principal, commands, idempotency_key, now)

    def evaluate(self, principal: Principal | None, command: AnyCommand) -> Evaluation:
        """Dry run: the decision, its reasons and the before/after preview. Writes nothing."""
        principal, command = principal_arg(principal), command_arg(command)
        record = None if isinstance(command, Create) else self.core.load(command.id, principal)
        spec = self.core.catalog.models.get(command.model)
        if spec is not None:
            command, _ = split_children(spec, command, self.core.catalog.limits.rows)
        effects = UnitEffects(
            self.core.staging,
            self.core.unit(),
            new_id() if isinstance(command, Create) else command.id,
            record,
        )
        verdict = decide(
            self.core.catalog, command, principal, record, self.core.clock(), effects=effects
        )
        error = verdict.error
        return Evaluation(
            outcome=verdict.action,
            code=error.code if error else None,
            message=error.message if error else None,
            errors=[e.to_dict() for e in verdict.errors],
            reasons=list(verdict.reasons),
            before=verdict.before,
            after=verdict.after,
            policy_version=self.core.catalog.version,
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
        """Record a write an entry point refused before it reached the service (its input could not be
        read: a malformed principal, JSON that does not parse) as a refused decision, then raise ``error``."""
        self.core.refuse_at_door(
            principal, Subject(operation, model, record_id), idempotency_key, error
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
        """Record a read served to (or refused) a caller an entry point must account for, an agent's tool
        call, as a decision with outcome ``read``; ``reasons`` say what was asked, never the values read."""
        self.core.save(
            read_decision(
                principal,
                Subject(operation, model, record_id),
                error,
                reasons,
                self.core.catalog.version,
                self.core.clock(),
            )
        )

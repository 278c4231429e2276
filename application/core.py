"""The core every governed write goes through: decide and stage, commit, record a refusal.

``Core.stage`` decides one command with the pure pipeline (``domain.pipeline``) on a unit of work's state
(``application.unit``) and stages what it changes (``application.staging``); ``Core.commit`` saves a unit in
one atomic save with the idempotency key's claim (``application.repeats``), through the store's group commit
(``application.store``). Every refusal is recorded as a decision (``record_refusal``), including arguments
refused at the door (``refuse_at_door``) before any command could be built. A command's first attempt reads
no idempotency claim: a repeat conflicts on the claim when it is saved, and a refusal checks the claim
before it is recorded (``refused``), so a repeat gets its first result either way. The core is fully wired
when it is made: the catalog, the store, the deployment's keys (``application.ports.KeyRing``) and a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError, Recording

from application.decisions import allowed_meta, refused_decision
from application.door import Subject, commands_arg, key_arg, principal_arg, record_id_arg
from application.group_commit import RaceLost
from application.loading import RecordLoader
from application.ports import KeyRing
from application.repeats import RepeatedCommand, Repeats
from application.results import WriteResult, last_position
from application.retry import HotConflict, Retry
from application.staging import Staging, UnitEffects, check_nested_row, split_children
from application.store import Store
from application.unit import Locks, Unit, decision_of, unit_record
from domain.approval import ApprovalRequest
from domain.catalog import Catalog, ModelSpec
from domain.commands import AnyCommand, Command, Create, RecordCommand
from domain.decision import Decision
from domain.errors import (
    ApprovalRequiredError,
    ChainBrokenError,
    InvalidInputError,
    RecordNotFoundError,
    WritError,
)
from domain.ids import new_id
from domain.pipeline import Verdict, decide
from domain.principal import Principal
from domain.record import Record

Clock = Callable[[], datetime]
CommandT = TypeVar("CommandT", bound=Command)


def child_id(parent: UUID, name: str, index: int) -> UUID:
    """A nested child's id, derived from its parent's: the same on every retry of the unit that stages it,
    and in the approved execution of a parked create."""
    return uuid5(parent, f"{name}/{index}")


def needs_approval(verdict: Verdict) -> bool:
    """The verdict parks the command: policy requires approval and nothing else stands in the way."""
    return verdict.action == "require_approval" and all(
        isinstance(e, ApprovalRequiredError) for e in verdict.errors
    )


class Core:
    def __init__(
        self, catalog: Catalog, store: Store, keys: KeyRing, clock: Clock | None = None
    ) -> None:
        self.catalog, self.store, self.keys = catalog, store, keys
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.loader = RecordLoader(store.events, store.snapshots, keys.digest)
        self.locks = Locks()
        """This process's turns on hot aggregates: counters, and records being decided."""
        self.staging = Staging(catalog, store, lambda: self.clock(), keys, self.load)  # noqa: PLW0108 - as it is then
        self.repeats = Repeats(store, self.loader, self.record_refusal, keys)
        self.retry = Retry(self.record_refusal)

    def unit(self, *, locking: bool = False) -> Unit:
        """An empty unit of work (``locking``: it takes turns on this process's locks of the records and counters
        it decides on; ``with unit:`` unlocks them)."""
        return Unit(self.store.aggregate, self.locks if locking else None)

    # -- deciding -------------------------------------------------------------------------------------------

    def stage(
        self,
        unit: Unit,
        principal: Principal | None,
        command: AnyCommand,
        key: str | None,
        now: datetime,
        *,
        size: int = 0,
        record_id: UUID | None = None,
        extra: dict[str, Any] | None = None,
        approved: bool = False,
    ) -> tuple[Verdict, Record | None]:
        """Decide ``command`` on the unit's state and, when allowed, stage it with its nested children.
        Returns the verdict and the staged record (None when the command would park for approval).
        ``approved``: an approval's execution (a refusal raises, unrecorded: the request records it)."""
        spec = self.catalog.models.get(command.model)
        nested: dict[str, list[Any]] = {}
        if spec is not None:
            try:
                command, nested = split_children(spec, command, self.catalog.limits.rows)
            except InvalidInputError as error:
                if not approved:
                    self.refused(principal, Subject.of(command), None, error, key, "refused")
                raise
        record = self._staged_record(unit, principal, command, key, approved)
        record_id = record_id or (new_id() if isinstance(command, Create) else command.id)
        verdict = decide(
            self.catalog,
            command,
            principal,
            record,
            now,
            effects=UnitEffects(self.staging, unit, record_id, record),
        )
        if needs_approval(verdict):
            if not approved:
                self._check_parked_children(spec, nested, principal, record_id, now, key)
                return verdict, None
        elif approved and verdict.error is not None:
            raise verdict.error
        else:
            self._refuse_unless_allowed(principal, command, verdict, key, size + verdict.size)
        assert principal is not None and spec is not None
        meta = {
            **allowed_meta(principal, command, verdict, self.catalog.version, key),
            **(extra or {}),
        }
        try:
            staged = self.staging.apply(
                unit, command, record, verdict.payload, meta, now, record_id
            )
        except WritError as error:
            # e.g. a cascaded restore whose unique value another record took since
            if not approved:
                self.refused(principal, Subject.of(command), verdict, error, key, "refused")
            raise
        self._stage_children(unit, principal, spec, nested, staged, key, now, extra, approved)
        return verdict, staged

    def _stage_children(
        self,
        unit: Unit,
        principal: Principal,
        spec: ModelSpec,
        nested: dict[str, list[Any]],
        parent: Record,
        key: str | None,
        now: datetime,
        extra: dict[str, Any] | None,
        approved: bool,
    ) -> None:
        for name, rows in nested.items():
            child = spec.children[name]
            for index, row in enumerate(rows):
                made = Create(model=child.model, data=check_nested_row(row, child.via, parent.id))
                child_verdict, kid = self.stage(
                    unit,
                    principal,
                    made,
                    key,
                    now,
                    extra=extra,
                    approved=approved,
                    record_id=child_id(parent.id, name, index),
                )
                if kid is None:  # a nested child cannot wait for approval apart from its parent
                    waits = ApprovalRequiredError(
                        f"Policy requires approval for this {child.model} create; a "
                        "nested child cannot wait for it: create it on its own"
                    )
                    self.refused(principal, Subject.of(made), child_verdict, waits, key, "refused")
                    raise waits
                unit.children.setdefault(parent.id, []).append(str(kid.id))

    def _staged_record(
        self,
        unit: Unit,
        principal: Principal | None,
        command: AnyCommand,
        key: str | None,
        approved: bool,
    ) -> Record | None:
        """The record ``command`` decides on, as the unit has it (its turn taken on it first)."""
        if isinstance(command, Create):
            return None
        unit.take_turn(command.id)
        if approved:
            return self.staging.record(unit, command.id, principal)
        return unit_record(unit, command.id) or self.loaded(principal, command, key)

    def _check_parked_children(
        self,
        spec: ModelSpec | None,
        nested: dict[str, list[Any]],
        principal: Principal | None,
        parent_id: UUID,
        now: datetime,
        key: str | None,
    ) -> None:
        """A create that parks for approval parks with its nested children: each is decided now as far as it can
        be without its parent in the store (grant, policy, field rules; nested again), and a child that would be
        refused refuses the create (it was parked, and failed only when approved)."""
        for name, rows in nested.items():
            assert spec is not None
            child = spec.children[name]
            for index, row in enumerate(rows):
                try:
                    whole = Create(
                        model=child.model, data=check_nested_row(row, child.via, parent_id)
                    )
                    made, grandchildren = split_children(
                        self.catalog.model(child.model), whole, self.catalog.limits.rows
                    )
                except WritError as error:
                    self.refused(
                        principal, Subject("create", child.model), None, error, key, "refused"
                    )
                    raise
                verdict = decide(self.catalog, made, principal, None, now)
                if verdict.error is not None and not needs_approval(verdict):
                    self.refused(
                        principal, Subject.of(made), verdict, verdict.error, key, "refused"
                    )
                    raise verdict.error
                self._check_parked_children(
                    self.catalog.models.get(child.model),
                    grandchildren,
                    principal,
                    child_id(parent_id, name, index),
                    now,
                    key,
                )

    def _refuse_unless_allowed(
        self,
        principal: Principal | None,
        command: AnyCommand,
        verdict: Verdict,
        key: str | None,
        size: int,
    ) -> None:
        """Record and raise the verdict's error, or the command's size past ``command_bytes``."""
        error, most = verdict.error, self.catalog.limits.command_bytes
        if error is None and size > most:
            error = InvalidInputError(
                f"The command's records would be {size:,} bytes encoded; at most {most:,}"
            )
            verdict = Verdict("deny", (error,), (error.reason,))
        if error is not None:
            outcome = "parked" if verdict.action == "require_approval" else "refused"
            self.refused(principal, Subject.of(command), verdict, error, key, outcome)
            raise error

    # -- committing -----------------------------------------------------------------------------------------

    def commit(
        self,
        unit: Unit,
        principal: Principal,
        commands: Sequence[AnyCommand],
        key: str | None,
        now: datetime,
    ) -> list[WriteResult]:
        """Save everything the unit staged, with the idempotency key's claim, in one atomic save."""
        kept = [r.to_dict() for r in unit.decided] if key else []
        claim = self.repeats.claim(principal, commands, key, kept, now)
        try:
            recordings = self.save(*unit.aggregates(), *claim)
        except IntegrityError as conflict:
            self.staging.remember_counters(unit.aggregates(), saved=False)
            # a counter's race, not any integrity error: worth the counters' budget
            if unit.hot and isinstance(conflict, RaceLost):
                raise HotConflict(*conflict.args) from conflict
            raise
        self.staging.remember_counters(unit.aggregates(), saved=True)
        positions = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
            for r in recordings
        }
        return [r.placed(positions[UUID(r.id), r.version or 0]) for r in unit.decided]

    def apply_approved(
        self,
        request: ApprovalRequest,
        requester: Principal,
        loaded: list[tuple[AnyCommand, Record | None]],
        bodies: list[dict[str, Any]],
        now: datetime,
    ) -> tuple[list[Any], list[WriteResult]]:
        """The approved commands decided again, as the requester, and applied (their events carry the approval)."""
        unit = self.unit()
        approval = {"approval": request.stamp()}
        for (command, stored), body in zip(loaded, bodies, strict=True):
            if stored is not None and stored.id not in unit.staged:
                unit.touch(stored)
            record_id = UUID(body["id"]) if isinstance(command, Create) else command.id
            _, staged = self.stage(
                unit,
                requester,
                command,
                None,
                now,
                record_id=record_id,
                extra=approval,
                approved=True,
            )
            assert staged is not None
            unit.decided.append(self.result(staged, decision_of(staged), None, unit))
        return unit.aggregates(), list(unit.decided)

    def save(self, *aggregates: Any) -> list[Recording[UUID]]:
        """The aggregates' pending events in one atomic save (in the next group commit)."""
        return self.store.save(*aggregates)

    @staticmethod
    def result(
        record: Record, decision_id: str, position: int | None, unit: Unit | None = None
    ) -> WriteResult:
        return WriteResult(
            status="executed",
            model=record.model,
            id=str(record.id),
            version=record.version,
            state=record.state,
            position=position,
            decision_id=decision_id,
            data=record.view() if record.state != "purged" else None,
            children=unit.children.get(record.id, []) if unit is not None else [],
        )

    # -- reading --------------------------------------------------------------------------------------------

    def load(self, record_id: UUID, principal: Principal | None) -> Record | None:
        """The record, checked link by link; None when there is none in the principal's tenant."""
        return self.loader.load(
            record_id, tenant=principal.tenant_id if principal is not None else None
        )

    def loaded(
        self, principal: Principal | None, command: RecordCommand, key: str | None
    ) -> Record | None:
        """``load`` for a command: a broken chain is its failed decision."""
        try:
            return self.load(command.id, principal)
        except ChainBrokenError as broken:
            self.refused(principal, Subject.of(command), None, broken, key, outcome="failed")
            raise

    # -- the door and refusals ------------------------------------------------------------------------------

    def build(
        self,
        principal: object,
        kind: type[CommandT],
        model: object,
        record_id: object = None,
        *,
        version: object = None,
        key: object = None,
        **body: Any,
    ) -> CommandT:
        """The command of a write's arguments; a refusal at the door is recorded like any other."""
        try:
            if kind is not Create:
                body["id"] = record_id_arg(model, record_id)
            return kind(model=model, expected_version=version, idempotency_key=key, **body)
        except (InvalidInputError, RecordNotFoundError) as error:
            self.refuse_at_door(principal, Subject(kind.operation, model, record_id), key, error)

    def checked(self, principal: object, commands: object, key: object) -> list[AnyCommand]:
        """A unit's principal, commands and idempotency key, checked at the door."""
        try:
            principal_arg(principal)
            key_arg(key, self.catalog.limits)
            return commands_arg(commands, self.catalog.limits)
        except InvalidInputError as error:
            first = commands[0] if isinstance(commands, list | tuple) and commands else None
            self.refuse_at_door(principal, Subject.of(first), key, error)

    def refuse_at_door(
        self, principal: object, subject: Subject, key: object, error: WritError
    ) -> NoReturn:
        self.record_refusal(principal, subject, None, error, key, "refused")
        raise error

    def refused(
        self,
        principal: object,
        subject: Subject,
        verdict: Verdict | None,
        error: WritError,
        key: str | None,
        outcome: str,
    ) -> None:
        """Record the refusal of a command about to be decided, unless it repeats a command its idempotency key
        already executed (the first attempt reads no claim): then ``RepeatedCommand``, and the first result."""
        if (
            key is not None
            and isinstance(principal, Principal)
            and self.repeats.claimed(principal, key) is not None
        ):
            raise RepeatedCommand(key)
        self.record_refusal(principal, subject, verdict, error, key, outcome)

    def record_refusal(
        self,
        principal: object,
        subject: Subject,
        verdict: Verdict | None,
        error: WritError,
        idempotency_key: object,
        outcome: str,
    ) -> None:
        """Record the refusal as a decision, and where it is on ``error`` (``WritError.position``)."""
        recordings = self.save(
            refused_decision(
                principal,
                subject,
                verdict,
                error,
                self.catalog.version,
                idempotency_key,
                outcome,
                self.clock(),
            )
        )
        error.position = last_position(recordings)

    def parked_decision(
        self,
        principal: Principal,
        command: AnyCommand,
        verdict: Verdict,
        key: str | None,
        now: datetime,
    ) -> Decision:
        error = verdict.error or ApprovalRequiredError("Policy requires approval")
        return refused_decision(
            principal, Subject.of(command), verdict, error, self.catalog.version, key, "parked", now
        )

    def failed_decision(
        self, principal: Principal, request: ApprovalRequest, error: WritError, now: datetime
    ) -> Decision:
        subject = Subject(request.operation, request.model, request.record_id)
        return refused_decision(
            principal, subject, None, error, self.catalog.version, None, "failed", now
        )

    def close(self) -> None:
        self.store.close()

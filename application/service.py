"""The command service: Writ's one eventsourcing ``Application``.

``Writ`` decides every command with the pure pipeline (``domain.pipeline``),
then saves the record events, the decision and the idempotency key in one
atomic save. Refusals are recorded as decisions too, including arguments
refused at the door (``application.door``) before any command could be
built: wrong types, a text id that is no UUID, limits. A save that loses an
optimistic-concurrency race is retried on fresh state a bounded number of times
(or reported as ``VERSION_CONFLICT`` when the caller named the version it
expected); a lost race on an idempotency key returns the winner's result.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn, TypeVar
from uuid import UUID, uuid4, uuid5

import orjson
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, MutableOrImmutableAggregate
from eventsourcing.persistence import EventStore, IntegrityError, Recording

from application.approvals import ApprovalsMixin
from application.audit import AuditMixin
from application.bulk import BulkMixin
from application.compound import Compound
from application.decisions import allowed_meta, read_decision, refused_decision
from application.door import (
    Subject,
    command_arg,
    commands_arg,
    key_arg,
    principal_arg,
    record_id_arg,
    rows_arg,
)
from application.encoding import EncodingEventStore, MadeOnRead
from application.group_commit import GroupCommit
from application.loading import RecordLoader
from application.ports import Matcher
from application.queries import QueriesMixin
from application.results import Evaluation, WriteResult
from application.staging import Effects, Stager, check_nested_row, split_children
from application.transaction import Transaction
from application.unit import HotConflict, Locks, Unit, back_off, decision_of, retry_limit, unit_record
from domain.approval import ApprovalRequest
from domain.catalog import Catalog, ModelSpec
from domain.chain import Digest, plain_digest
from domain.commands import Command, Create, Delete, Patch, Purge, RecordCommand, Replace, Restore, fingerprint_of
from domain.decision import Decision
from domain.errors import (
    ApprovalRequiredError,
    ChainBrokenError,
    IdempotencyKeyReusedError,
    InvalidInputError,
    RecordNotFoundError,
    VersionConflictError,
    WritError,
)
from domain.idempotency import IdempotencyKey, key_id
from domain.limits import shown
from domain.links import Counter, Family
from domain.pipeline import Verdict, decide
from domain.principal import Principal
from domain.record import PURGED, Record

AnyCommand = Create | RecordCommand
Clock = Callable[[], datetime]
CommandT = TypeVar("CommandT", bound=Command)

class RepeatedCommand(Exception):  # noqa: N818 - a signal inside execute_many, never raised past it
    """The command being decided repeats one its idempotency key executed: return that one's result."""


def child_id(parent: UUID, name: str, index: int) -> UUID:
    """A nested child's id, derived from its parent's: the same on every retry of the unit that stages it,
    and in the approved execution of a parked create."""
    return uuid5(parent, f"{name}/{index}")


def plain_index_digest(content: Any) -> str:
    """An unkeyed digest of unique values, for a store without a vault (tests of the pure service)."""
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def needs_approval(verdict: Verdict) -> bool:
    """The verdict parks the command: policy requires approval and nothing else stands in the way."""
    return verdict.action == "require_approval" and all(isinstance(e, ApprovalRequiredError) for e in verdict.errors)


class Writ(BulkMixin, ApprovalsMixin, AuditMixin, QueriesMixin, Stager, Application[UUID]):
    """Governed, event-sourced writes over the models of one catalog."""

    name = "Writ"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {
        Record: 20, Counter: 100, Family: 100}
    """Records every 20 events: a load replays (decrypts and checks the links of) every event past the latest
    snapshot, about 50 µs each, which a bulk update pays for each of its records; a snapshot costs a row in
    the same insert as its save's other snapshots. Counters and families are read far less often."""
    max_attempts = 12

    def __init__(self, catalog: Catalog, env: dict[str, str] | None = None, clock: Clock | None = None,
                 digest: Digest = plain_digest):
        super().__init__(env)
        self.catalog = catalog
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.digest = digest
        self.loader = RecordLoader(self.events, self.snapshots, digest)
        self.matcher: Matcher | None = None
        """Finds a bulk update's candidates (``application.ports``); wired in by ``entrypoints.bootstrap``."""
        self.new_key: Callable[[UUID], None] = lambda _: None
        """Makes the data key of a record about to be created (its id is new: no key can exist yet), so its
        digests and seals need no lookup; wired to the vault by the backend."""
        self.locks = Locks()
        """This process's turns on hot aggregates: counters, and records being decided."""
        self.counters: dict[UUID, Counter] = {}
        """Each counter as this process last saved it (``Stager.counter``)."""
        self.index_digest: Callable[[Any], str] = plain_index_digest
        """Keyed digest of unique values (``UniqueClaim`` ids): the vault's, wired by the backend."""
        self.group_commit = self.construct_group_commit()
        self.closing_too: list[Callable[[], None]] = []
        """Closed with the application (e.g. the vault's connection, wired by the backend)."""

    def construct_group_commit(self) -> GroupCommit | None:
        """Concurrent saves of this process stored together (``application.group_commit``); None where the
        recorder cannot insert a batch. ``WRIT_GROUP_COMMIT_SAVES`` (64) and ``WRIT_GROUP_COMMIT_EVENTS``
        (1,000) bound a batch; ``WRIT_GROUP_COMMIT_WINDOW_MS`` (0) makes its first save wait for more."""
        recorder: Any = self.recorder
        if not hasattr(recorder, "insert_groups"):
            return None
        return GroupCommit(self.mapper, recorder, max_saves=int(self.env.get("WRIT_GROUP_COMMIT_SAVES", "64")),
                           max_events=int(self.env.get("WRIT_GROUP_COMMIT_EVENTS", "1000")),
                           window=float(self.env.get("WRIT_GROUP_COMMIT_WINDOW_MS", "0")) / 1000)

    def construct_event_store(self) -> EventStore[UUID]:
        """Saves encode their events as the recorder reads them (``application.encoding``)."""
        return EncodingEventStore(mapper=self.mapper, recorder=self.recorder)

    def close(self) -> None:
        recorder: Any = self.recorder
        if hasattr(recorder, "close"):  # a connection it keeps for saves
            recorder.close()
        super().close()
        for close in self.closing_too:
            close()

    # -- commands -------------------------------------------------------------

    def create(self, principal: Principal | None, model: str, data: dict[str, Any], *,
               idempotency_key: str | None = None) -> WriteResult:
        """Create one record."""
        return self.execute(principal, self.build(principal, Create, model, data=data, key=idempotency_key))

    def create_many(self, principal: Principal | None, model: str, rows: Sequence[dict[str, Any]], *,
                    idempotency_key: str | None = None) -> list[WriteResult]:
        """Create several records in one atomic save: all of them or none."""
        try:
            rows = rows_arg(rows, self.catalog.limits)
        except InvalidInputError as error:
            self._refuse_at_door(principal, Subject("create", model), idempotency_key, error)
        commands = [self.build(principal, Create, model, data=row) for row in rows]
        return self.execute_many(principal, commands, idempotency_key=idempotency_key)

    def replace(self, principal: Principal | None, model: str, record_id: UUID | str, data: dict[str, Any], *,
                expected_version: int | None = None, idempotency_key: str | None = None) -> WriteResult:
        """PUT: replace every writable field; omitted optional fields are cleared."""
        return self.execute(principal, self.build(principal, Replace, model, record_id, data=data,
                                                   version=expected_version, key=idempotency_key))

    def patch(self, principal: Principal | None, model: str, record_id: UUID | str, changes: dict[str, Any], *,
              expected_version: int | None = None, idempotency_key: str | None = None) -> WriteResult:
        """PATCH: change only the given fields."""
        return self.execute(principal, self.build(principal, Patch, model, record_id, changes=changes,
                                                   version=expected_version, key=idempotency_key))

    def delete(self, principal: Principal | None, model: str, record_id: UUID | str, *,
               expected_version: int | None = None, idempotency_key: str | None = None) -> WriteResult:
        """Soft delete: hidden from projections, kept in the store."""
        return self.execute(principal, self.build(principal, Delete, model, record_id, version=expected_version,
                                                   key=idempotency_key))

    def restore(self, principal: Principal | None, model: str, record_id: UUID | str, *,
                expected_version: int | None = None, idempotency_key: str | None = None) -> WriteResult:
        """Undo a soft delete."""
        return self.execute(principal, self.build(principal, Restore, model, record_id, version=expected_version,
                                                   key=idempotency_key))

    def purge(self, principal: Principal | None, model: str, record_id: UUID | str, *,
              expected_version: int | None = None, idempotency_key: str | None = None) -> WriteResult:
        """Force delete: append a ``Purged`` tombstone."""
        return self.execute(principal, self.build(principal, Purge, model, record_id, version=expected_version,
                                                   key=idempotency_key))

    def fail(self, principal: Principal | None, model: str, record_id: UUID | str, reason: str) -> WriteResult:
        """Mark a record failed: a ``Failed`` event with ``reason`` (a compound operation's parent whose steps
        broke off). Its data and state stay as they were."""
        command = self.build(principal, Patch, model, record_id, changes={})
        record = self._loaded(principal, command, None)
        if principal is None or record is None or record.model != model:
            raise RecordNotFoundError(f"{model} {record_id} not found")
        verdict = Verdict("allow", reasons=("a compound operation failed",))
        meta = {**allowed_meta(principal, command, verdict, self.catalog.version, None), "operation": "fail"}
        record.fail(str(reason), meta, self.clock(), self.digest)
        recordings = self.save(record)
        return self.result(record, meta["decision_id"], recordings[-1].notification.id)

    def execute(self, principal: Principal | None, command: AnyCommand) -> WriteResult:
        key = command.idempotency_key if isinstance(command, Command) else None
        return self.execute_many(principal, [command], idempotency_key=key)[0]

    def execute_many(self, principal: Principal | None, commands: Sequence[AnyCommand], *,
                     idempotency_key: str | None = None) -> list[WriteResult]:
        """Decide and execute commands atomically, retrying lost races on fresh state."""
        commands = self._checked(principal, commands, idempotency_key)
        pinned = any(c.expected_version is not None for c in commands)
        attempt = 0
        while True:
            if attempt:  # the first attempt reads no claim: a repeat's claim conflicts at save, or stops a refusal
                replayed = self.replay(principal, commands, idempotency_key)
                if replayed is not None:
                    return replayed
            try:
                return self._attempt(principal, commands, idempotency_key)
            except RepeatedCommand:
                return self.replay(principal, commands, idempotency_key) or []
            except IntegrityError as conflict:
                attempt += 1
                if pinned or attempt >= retry_limit(conflict, self.max_attempts):
                    break
                back_off(attempt)
        replayed = self.replay(principal, commands, idempotency_key)
        if replayed is not None:
            return replayed
        error = VersionConflictError(f"{commands[0].model}: the record changed while this write was decided")
        self.record_refusal(principal, Subject.of(commands[0]), None, error, idempotency_key, outcome="failed")
        raise error

    def refuse(self, principal: object, operation: str, model: object, error: WritError, *,
               record_id: object = None, idempotency_key: object = None) -> NoReturn:
        """Record a write an entry point refused before it reached the service (its input could not be
        read: a malformed principal, JSON that does not parse) as a refused decision, then raise ``error``."""
        self._refuse_at_door(principal, Subject(operation, model, record_id), idempotency_key, error)

    def record_read(self, principal: Principal, operation: str, model: object, *, record_id: object = None,
                    error: WritError | None = None, reasons: Sequence[str] = ()) -> None:
        """Record a read served to (or refused) a caller an entry point must account for, an agent's tool
        call, as a decision with outcome ``read``; ``reasons`` say what was asked, never the values read."""
        self.save(read_decision(principal, Subject(operation, model, record_id), error, reasons,
                                self.catalog.version, self.clock()))

    def evaluate(self, principal: Principal | None, command: AnyCommand) -> Evaluation:
        """Dry run: the decision, its reasons and the before/after preview. Writes nothing."""
        principal, command = principal_arg(principal), command_arg(command)
        record = None if isinstance(command, Create) else self._load(command.id, principal)
        unit = self.unit()
        spec = self.catalog.models.get(command.model)
        if spec is not None:
            command, _ = split_children(spec, command, self.catalog.limits.rows)
        effects = Effects(self, unit, uuid4() if isinstance(command, Create) else command.id, record)
        verdict = decide(self.catalog, command, principal, record, self.clock(), effects=effects)
        error = verdict.error
        return Evaluation(
            outcome=verdict.action,
            code=error.code if error else None,
            message=error.message if error else None,
            errors=[e.to_dict() for e in verdict.errors],
            reasons=list(verdict.reasons),
            before=verdict.before,
            after=verdict.after,
            policy_version=self.catalog.version,
        )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """The library's save, collecting Writ's own aggregates without its per-object protocol checks
        (``isinstance`` against runtime-checkable protocols: a tenth of a 10,000-record bulk update)."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing.events.extend(obj.collect_events())
                processing.aggregates[obj.id] = obj
            elif obj is not None:
                processing.collect_events(obj)
        processing.saved_kwargs.update(kwargs)
        return self._saved(processing)

    def save_made(self, events: MadeOnRead[Any, Any], aggregates: Sequence[Aggregate]) -> list[Recording[UUID]]:
        """A save of ``events``, made as the recorder reads them (``application.encoding``), by ``aggregates``."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events = events  # type: ignore[assignment]  # read as a sequence only
        processing.aggregates.update((aggregate.id, aggregate) for aggregate in aggregates)
        return self._saved(processing)

    def _saved(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """A save in the next group commit (a save made as it is read, a bulk's, is stored on its own)."""
        if self.group_commit is None or isinstance(processing.events, MadeOnRead):
            recordings = self._record(processing)
        else:
            recordings = self.group_commit.save(processing.events)
        self._snapshot_saved(processing)
        self._notify(recordings)
        return recordings

    def _snapshot_saved(self, processing: ProcessingEvent[UUID]) -> None:
        """Snapshots of the aggregates this save carried onto or past a multiple of their interval, taken from
        the saved aggregates themselves (the save succeeded: their state is what was recorded) at the version
        they reached, and put in one insert. The library's way reads each aggregate back from the store and
        puts its snapshot in a transaction of its own: a bulk update that brought 10,000 records to their
        100th version spent about a minute there. No snapshot of a purged record: its key is gone."""
        if self.snapshots is None:
            return
        due: dict[UUID, Any] = {}
        for event in processing.events:
            aggregate = processing.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate is not None else None
            if interval and event.originator_version % interval == 0 and getattr(aggregate, "state", None) != PURGED:
                due[event.originator_id] = aggregate
        taken = []
        for aggregate in due.values():
            kind = getattr(type(aggregate), "Snapshot", None) or self.snapshot_class
            assert kind is not None  # the library's Snapshot, for aggregates without a class of their own
            taken.append(kind.take(aggregate))
        if taken:
            self.snapshots.put(taken)

    # -- internals ------------------------------------------------------------

    def unit(self, *, locking: bool = False) -> Unit:
        """An empty unit of work on this store (``locking``: it takes turns on this process's locks of the records
        and counters it decides on, and its owner unlocks it when done)."""
        return Unit(self.aggregate, self.locks if locking else None)

    def transaction(self, principal: Principal | None, *, idempotency_key: str | None = None) -> Transaction:
        """A unit of work: ``with writ.transaction(principal) as tx:`` — its commands decide as they go and
        commit as one atomic save when the block ends (nothing, if it raises)."""
        return Transaction(self, principal, idempotency_key)

    def compound(self, principal: Principal | None, model: str, data: dict[str, Any], *,
                 idempotency_key: str | None = None) -> Compound:
        """A parent saved now, whose later steps are saved one by one (``application.compound``)."""
        return Compound(self, principal, model, data, idempotency_key)

    def stage(self, unit: Unit, principal: Principal | None, command: AnyCommand, key: str | None,
              now: datetime, *, size: int = 0, record_id: UUID | None = None,
              extra: dict[str, Any] | None = None, approved: bool = False) -> tuple[Verdict, Record | None]:
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
                    self._refused(principal, Subject.of(command), None, error, key, "refused")
                raise
        record = self._staged_record(unit, principal, command, key, approved)
        record_id = record_id or (uuid4() if isinstance(command, Create) else command.id)
        verdict = decide(self.catalog, command, principal, record, now,
                         effects=Effects(self, unit, record_id, record))
        if needs_approval(verdict):
            if not approved:
                self._check_parked_children(spec, nested, principal, record_id, now, key)
                return verdict, None
        elif approved and verdict.error is not None:
            raise verdict.error
        else:
            self._refuse_unless_allowed(principal, command, verdict, key, size + verdict.size)
        assert principal is not None and spec is not None
        meta = {**allowed_meta(principal, command, verdict, self.catalog.version, key), **(extra or {})}
        try:
            staged = self.apply(unit, command, record, verdict.payload, meta, now, record_id)
        except WritError as error:  # e.g. a cascaded restore whose unique value another record took since
            if not approved:
                self._refused(principal, Subject.of(command), verdict, error, key, "refused")
            raise
        for name, rows in nested.items():
            child = spec.children[name]
            for index, row in enumerate(rows):
                made = Create(model=child.model, data=check_nested_row(row, child.via, staged.id))
                child_verdict, kid = self.stage(unit, principal, made, key, now, extra=extra, approved=approved,
                                                record_id=child_id(staged.id, name, index))
                if kid is None:  # a nested child cannot wait for approval apart from its parent
                    waits = ApprovalRequiredError(f"Policy requires approval for this {child.model} create; a "
                                                  "nested child cannot wait for it: create it on its own")
                    self._refused(principal, Subject.of(made), child_verdict, waits, key, "refused")
                    raise waits
                unit.children.setdefault(staged.id, []).append(str(kid.id))
        return verdict, staged

    def _staged_record(self, unit: Unit, principal: Principal | None, command: AnyCommand, key: str | None,
                       approved: bool) -> Record | None:
        """The record ``command`` decides on, as the unit has it (its turn taken on it first)."""
        if isinstance(command, Create):
            return None
        unit.take_turn(command.id)
        if approved:
            return self.record(unit, command.id, principal)
        return unit_record(unit, command.id) or self._loaded(principal, command, key)

    def _check_parked_children(self, spec: ModelSpec | None, nested: dict[str, list[Any]],
                               principal: Principal | None, parent_id: UUID, now: datetime, key: str | None) -> None:
        """A create that parks for approval parks with its nested children: each is decided now as far as it can
        be without its parent in the store (grant, policy, field rules; nested again), and a child that would be
        refused refuses the create (it was parked, and failed only when approved)."""
        for name, rows in nested.items():
            assert spec is not None
            child = spec.children[name]
            for index, row in enumerate(rows):
                try:
                    whole = Create(model=child.model, data=check_nested_row(row, child.via, parent_id))
                    made, grandchildren = split_children(self.catalog.model(child.model), whole,
                                                         self.catalog.limits.rows)
                except WritError as error:
                    self._refused(principal, Subject("create", child.model), None, error, key, "refused")
                    raise
                verdict = decide(self.catalog, made, principal, None, now)
                if verdict.error is not None and not needs_approval(verdict):
                    self._refused(principal, Subject.of(made), verdict, verdict.error, key, "refused")
                    raise verdict.error
                self._check_parked_children(self.catalog.models.get(child.model), grandchildren, principal,
                                            child_id(parent_id, name, index), now, key)

    def _attempt(self, principal: Principal | None, commands: Sequence[AnyCommand],
                 idempotency_key: str | None) -> list[WriteResult]:
        unit = self.unit(locking=True)
        try:
            return self._attempt_in(unit, principal, commands, idempotency_key)
        finally:
            unit.unlock()

    def _attempt_in(self, unit: Unit, principal: Principal | None, commands: Sequence[AnyCommand],
                    idempotency_key: str | None) -> list[WriteResult]:
        now = self.clock()
        versions: dict[str, int] = {}
        verdicts: list[Verdict] = []
        size, parking = 0, False
        for command in commands:
            if not isinstance(command, Create):
                unit.take_turn(command.id)
                found = unit_record(unit, command.id) or self._loaded(principal, command, idempotency_key)
                if found is not None:
                    versions.setdefault(str(found.id), found.version)
                    unit.touch(found)  # staged as loaded: the stage below reads it from the unit
            verdict, staged = self.stage(unit, principal, command, idempotency_key, now, size=size)
            verdicts.append(verdict)
            size += verdict.size
            if staged is None:
                parking = True
            elif not parking:
                unit.decided.append(self.result(staged, decision_of(staged), None, unit))
        assert principal is not None
        if parking:
            return self.park(principal, list(commands), verdicts, versions, idempotency_key, now)
        return self.commit(unit, principal, commands, idempotency_key, now)

    def commit(self, unit: Unit, principal: Principal, commands: Sequence[AnyCommand], key: str | None,
               now: datetime) -> list[WriteResult]:
        """Save everything the unit staged, with the idempotency key's claim, in one atomic save."""
        claim = self.claim_key(principal, commands, key, [r.to_dict() for r in unit.decided] if key else [], now)
        try:
            recordings = self.save(*unit.aggregates(), *claim)
        except IntegrityError as conflict:
            self.remember_counters(unit.aggregates(), saved=False)
            if unit.hot:
                raise HotConflict(*conflict.args) from conflict
            raise
        self.remember_counters(unit.aggregates(), saved=True)
        positions = {(r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id
                     for r in recordings}
        return [replace(r, position=positions[UUID(r.id), r.version or 0]) for r in unit.decided]

    def _loaded(self, principal: Principal | None, command: RecordCommand, key: str | None) -> Record | None:
        try:
            return self._load(command.id, principal)
        except ChainBrokenError as broken:
            self._refused(principal, Subject.of(command), None, broken, key, outcome="failed")
            raise

    def _apply_approved(self, request: ApprovalRequest, requester: Principal,
                        loaded: list[tuple[AnyCommand, Record | None]], bodies: list[dict[str, Any]],
                        now: datetime) -> tuple[list[Any], list[WriteResult]]:
        """The approved commands decided again, as the requester, and applied (their events carry the approval)."""
        unit = self.unit()
        approval = {"approval": request.stamp()}
        for (command, stored), body in zip(loaded, bodies, strict=True):
            if stored is not None and stored.id not in unit.staged:
                unit.touch(stored)
            record_id = UUID(body["id"]) if isinstance(command, Create) else command.id
            _, staged = self.stage(unit, requester, command, None, now, record_id=record_id, extra=approval,
                                   approved=True)
            assert staged is not None
            unit.decided.append(self.result(staged, decision_of(staged), None, unit))
        return unit.aggregates(), list(unit.decided)

    def parked_decision(self, principal: Principal, command: AnyCommand, verdict: Verdict, key: str | None,
                        now: datetime) -> Decision:
        error = verdict.error or ApprovalRequiredError("Policy requires approval")
        return refused_decision(principal, Subject.of(command), verdict, error, self.catalog.version, key,
                                "parked", now)

    def failed_decision(self, principal: Principal, request: ApprovalRequest, error: WritError,
                        now: datetime) -> Decision:
        subject = Subject(request.operation, request.model, request.record_id)
        return refused_decision(principal, subject, None, error, self.catalog.version, None, "failed", now)

    def _refuse_unless_allowed(self, principal: Principal | None, command: AnyCommand, verdict: Verdict,
                               idempotency_key: str | None, size: int) -> None:
        """Record and raise the verdict's error, or the command's size past ``command_bytes``."""
        error, most = verdict.error, self.catalog.limits.command_bytes
        if error is None and size > most:
            error = InvalidInputError(f"The command's records would be {size:,} bytes encoded; at most {most:,}")
            verdict = Verdict("deny", (error,), (f"{error.code}: {error.message}",))
        if error is not None:
            outcome = "parked" if verdict.action == "require_approval" else "refused"
            self._refused(principal, Subject.of(command), verdict, error, idempotency_key, outcome)
            raise error

    def claim_key(self, principal: Principal | None, commands: Sequence[AnyCommand], key: str | None,
                  stored: list[dict[str, Any]], now: datetime) -> list[IdempotencyKey]:
        """The idempotency key's claim (saved with the write), holding the results a repeat returns, without
        their data: a repeat reads that from the record (so a purge erases it there too)."""
        if not key or principal is None:
            return []
        fingerprint = fingerprint_of(commands) or ""  # "": matches no command (the rules refuse unencodable ones)
        kept = [{**result, "data": None} for result in stored]
        return [IdempotencyKey.claim(principal.tenant_id, principal.user_id, key, fingerprint, kept, now)]

    def build(self, principal: object, kind: type[CommandT], model: object, record_id: object = None, *,
               version: object = None, key: object = None, **body: Any) -> CommandT:
        """The command of a write's arguments; a refusal at the door is recorded like any other."""
        try:
            if kind is not Create:
                body["id"] = record_id_arg(model, record_id)
            return kind(model=model, expected_version=version, idempotency_key=key, **body)
        except (InvalidInputError, RecordNotFoundError) as error:
            self._refuse_at_door(principal, Subject(kind.operation, model, record_id), key, error)

    def _checked(self, principal: object, commands: object, key: object) -> list[AnyCommand]:
        """``execute_many``'s arguments, checked at the door."""
        try:
            principal_arg(principal)
            key_arg(key, self.catalog.limits)
            return commands_arg(commands, self.catalog.limits)
        except InvalidInputError as error:
            first = commands[0] if isinstance(commands, list | tuple) and commands else None
            self._refuse_at_door(principal, Subject.of(first), key, error)

    def _refuse_at_door(self, principal: object, subject: Subject, key: object, error: WritError) -> NoReturn:
        self.record_refusal(principal, subject, None, error, key, "refused")
        raise error

    def _refused(self, principal: object, subject: Subject, verdict: Verdict | None, error: WritError,
                 key: str | None, outcome: str) -> None:
        """Record the refusal of a command about to be decided, unless it repeats a command its idempotency key
        already executed (the first attempt reads no claim): then ``RepeatedCommand``, and the first result."""
        if key is not None and isinstance(principal, Principal) and self.claimed(principal, key) is not None:
            raise RepeatedCommand(key)
        self.record_refusal(principal, subject, verdict, error, key, outcome)

    def record_refusal(self, principal: object, subject: Subject, verdict: Verdict | None,
                        error: WritError, idempotency_key: object, outcome: str) -> None:
        self.save(refused_decision(principal, subject, verdict, error, self.catalog.version,
                                   idempotency_key, outcome, self.clock()))

    @staticmethod
    def result(record: Record, decision_id: str, position: int | None, unit: Unit | None = None) -> WriteResult:
        return WriteResult(
            status="executed", model=record.model, id=str(record.id),
            version=record.version, state=record.state, position=position, decision_id=decision_id,
            data=record.view() if record.state != "purged" else None,
            children=unit.children.get(record.id, []) if unit is not None else [],
        )

    def replay(self, principal: Principal | None, commands: Sequence[AnyCommand],
                key: str | None) -> list[WriteResult] | None:
        claimed = self.claimed(principal, key)
        if claimed is None:
            return None
        if claimed.fingerprint != fingerprint_of(commands):
            error = IdempotencyKeyReusedError(
                f"Idempotency key {shown(claimed.key)} was already used for a different command"
            )
            self.record_refusal(principal, Subject.of(commands[0]), None, error, key, outcome="refused")
            raise error
        return [self.replayed(result) for result in claimed.results]

    def claimed(self, principal: Principal | None, key: str | None) -> IdempotencyKey | None:
        """The claim of an idempotency key, if a write has used it."""
        if key is None or principal is None:
            return None
        claimed = self.aggregate(key_id(principal.tenant_id, principal.user_id, key))  # never snapshotted: one read
        assert claimed is None or isinstance(claimed, IdempotencyKey)
        return claimed

    def replayed(self, stored: dict[str, Any]) -> WriteResult:
        position_of = getattr(self.recorder, "position_of", None)
        origin = (stored["approval_id"], 1) if stored.get("approval_id") else (stored["id"], stored["version"])
        position = position_of(UUID(origin[0]), origin[1]) if position_of else None
        return WriteResult(**{**stored, **self._data_then(stored), "position": position, "replayed": True})

    def _data_then(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A repeated write's data, read from its record as of the version it wrote; none once purged."""
        if stored.get("approval_id") or not stored.get("id") or not stored.get("version"):
            return {}
        current = self.loader.load(UUID(stored["id"]))
        if current is None or current.state == PURGED:
            return {"data": None, "state": PURGED}
        then = current if current.version == stored["version"] else self.loader.load(current.id,
                                                                                      version=stored["version"])
        return {"data": None if then is None else then.view()}

    def _load(self, record_id: UUID, principal: Principal | None) -> Record | None:
        """The record, checked link by link; None when there is none in the principal's tenant."""
        return self.loader.load(record_id, tenant=principal.tenant_id if principal is not None else None)

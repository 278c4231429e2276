"""The command service: Writ's one eventsourcing ``Application``.

``Writ`` decides every command with the pure pipeline (``domain.pipeline``),
then saves the record events, the decision and the idempotency key in one
atomic save. Refusals are recorded as decisions too. A save that loses an
optimistic-concurrency race is retried on fresh state a bounded number of times
(or reported as ``VERSION_CONFLICT`` when the caller named the version it
expected); a lost race on an idempotency key returns the winner's result.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import MutableOrImmutableAggregate
from eventsourcing.persistence import IntegrityError

from application.decisions import allowed_meta, refused_decision
from application.loading import RecordLoader
from application.queries import QueriesMixin
from application.results import Evaluation, WriteResult
from domain.catalog import Catalog
from domain.chain import Digest, plain_digest
from domain.commands import Create, Delete, Patch, Purge, RecordCommand, Replace, Restore
from domain.errors import ChainBrokenError, IdempotencyKeyReusedError, VersionConflictError, WritError
from domain.idempotency import IdempotencyKey, key_id
from domain.pipeline import Verdict, decide
from domain.principal import Principal
from domain.record import Record

AnyCommand = Create | RecordCommand
Clock = Callable[[], datetime]

_APPLY: dict[type[RecordCommand], Callable[[Record, dict[str, Any], dict[str, Any], datetime, Digest], None]] = {
    Replace: lambda record, payload, meta, now, digest: record.replace(payload, meta, now, digest),
    Patch: lambda record, payload, meta, now, digest: record.patch(payload, meta, now, digest),
    Delete: lambda record, _, meta, now, digest: record.delete(meta, now, digest),
    Restore: lambda record, _, meta, now, digest: record.restore(meta, now, digest),
    Purge: lambda record, _, meta, now, digest: record.purge(meta, now, digest),
}


class Writ(QueriesMixin, Application[UUID]):
    """Governed, event-sourced writes over the models of one catalog."""

    name = "Writ"
    snapshotting_intervals: ClassVar[dict[type[MutableOrImmutableAggregate[Any]], int]] = {Record: 100}
    max_attempts = 12

    def __init__(self, catalog: Catalog, env: dict[str, str] | None = None, clock: Clock | None = None,
                 digest: Digest = plain_digest):
        super().__init__(env)
        self.catalog = catalog
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.digest = digest
        self.loader = RecordLoader(self.events, self.snapshots, digest)

    # -- commands -------------------------------------------------------------

    def create(self, principal: Principal | None, model: str, data: dict[str, Any], *,
               idempotency_key: str | None = None) -> WriteResult:
        """Create one record."""
        return self.execute(principal, Create(model=model, data=data, idempotency_key=idempotency_key))

    def create_many(self, principal: Principal | None, model: str, rows: Sequence[dict[str, Any]], *,
                    idempotency_key: str | None = None) -> list[WriteResult]:
        """Create several records in one atomic save: all of them or none."""
        commands = [Create(model=model, data=row) for row in rows]
        return self.execute_many(principal, commands, idempotency_key=idempotency_key)

    def replace(self, principal: Principal | None, model: str, record_id: UUID | str,
                data: dict[str, Any], **options: Any) -> WriteResult:
        """PUT: replace every writable field; omitted optional fields are cleared."""
        return self.execute(principal, Replace(model=model, id=record_id, data=data, **options))

    def patch(self, principal: Principal | None, model: str, record_id: UUID | str,
              changes: dict[str, Any], **options: Any) -> WriteResult:
        """PATCH: change only the given fields."""
        return self.execute(principal, Patch(model=model, id=record_id, changes=changes, **options))

    def delete(self, principal: Principal | None, model: str, record_id: UUID | str,
               **options: Any) -> WriteResult:
        """Soft delete: hidden from projections, kept in the store."""
        return self.execute(principal, Delete(model=model, id=record_id, **options))

    def restore(self, principal: Principal | None, model: str, record_id: UUID | str,
                **options: Any) -> WriteResult:
        """Undo a soft delete."""
        return self.execute(principal, Restore(model=model, id=record_id, **options))

    def purge(self, principal: Principal | None, model: str, record_id: UUID | str,
              **options: Any) -> WriteResult:
        """Force delete: append a ``Purged`` tombstone."""
        return self.execute(principal, Purge(model=model, id=record_id, **options))

    def execute(self, principal: Principal | None, command: AnyCommand) -> WriteResult:
        return self.execute_many(principal, [command], idempotency_key=command.idempotency_key)[0]

    def execute_many(self, principal: Principal | None, commands: Sequence[AnyCommand], *,
                     idempotency_key: str | None = None) -> list[WriteResult]:
        """Decide and execute commands atomically, retrying lost races on fresh state."""
        fingerprint = "+".join(c.fingerprint() for c in commands) if idempotency_key else ""
        for attempt in range(self.max_attempts):
            replayed = self._replay(principal, commands[0], idempotency_key, fingerprint)
            if replayed is not None:
                return replayed
            try:
                return self._attempt(principal, commands, idempotency_key, fingerprint)
            except IntegrityError:
                if any(c.expected_version is not None for c in commands) or attempt + 1 == self.max_attempts:
                    break
                time.sleep(random.uniform(0, min(0.05, 0.001 * 2**attempt)))  # noqa: S311 - jitter
        replayed = self._replay(principal, commands[0], idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
        error = VersionConflictError(f"{commands[0].model}: the record changed while this write was decided")
        self._record_refusal(principal, commands[0], None, error, idempotency_key, outcome="failed")
        raise error

    def evaluate(self, principal: Principal | None, command: AnyCommand) -> Evaluation:
        """Dry run: the decision, its reasons and the before/after preview. Writes nothing."""
        record = None if isinstance(command, Create) else self._load(command.id, principal)
        verdict = decide(self.catalog, command, principal, record, self.clock())
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

    # -- internals ------------------------------------------------------------

    def _attempt(self, principal: Principal | None, commands: Sequence[AnyCommand],
                 idempotency_key: str | None, fingerprint: str) -> list[WriteResult]:
        now = self.clock()
        records: dict[UUID, Record] = {}
        decided: list[tuple[UUID, str]] = []
        for command in commands:
            try:
                record = None if isinstance(command, Create) else records.get(command.id) or self._load(
                    command.id, principal)
            except ChainBrokenError as broken:
                self._record_refusal(principal, command, None, broken, idempotency_key, outcome="failed")
                raise
            verdict = decide(self.catalog, command, principal, record, now)
            if verdict.error is not None:
                outcome = "parked" if verdict.action == "require_approval" else "refused"
                self._record_refusal(principal, command, verdict, verdict.error, idempotency_key, outcome)
                raise verdict.error
            assert principal is not None
            meta = allowed_meta(principal, command, verdict, self.catalog.version, idempotency_key)
            record = self._apply(command, record, verdict, meta, now)
            records[record.id] = record
            decided.append((record.id, meta["decision_id"]))
        key = []
        if idempotency_key and principal is not None:
            stored = [self._result(records[rid], did, None).to_dict() for rid, did in decided]
            key = [IdempotencyKey.claim(principal.tenant_id, principal.user_id, idempotency_key,
                                        fingerprint, stored, now)]
        recordings = self.save(*records.values(), *key)
        positions = {r.domain_event.originator_id: r.notification.id for r in recordings}
        return [self._result(records[rid], did, positions[rid]) for rid, did in decided]

    def _apply(self, command: AnyCommand, record: Record | None, verdict: Verdict,
               meta: dict[str, Any], now: datetime) -> Record:
        if isinstance(command, Create):
            return Record.create(command.model, meta["tenant"], verdict.payload, meta, now, digest=self.digest)
        assert record is not None
        _APPLY[type(command)](record, verdict.payload, meta, now, self.digest)
        return record

    def _record_refusal(self, principal: Principal | None, command: AnyCommand, verdict: Verdict | None,
                        error: WritError, idempotency_key: str | None, outcome: str) -> None:
        self.save(refused_decision(principal, command, verdict, error, self.catalog.version,
                                   idempotency_key, outcome, self.clock()))

    @staticmethod
    def _result(record: Record, decision_id: str, position: int | None) -> WriteResult:
        return WriteResult(
            status="executed", model=record.model, id=str(record.id),
            version=record.version, state=record.state, position=position, decision_id=decision_id,
            data=record.view() if record.state != "purged" else None,
        )

    def _replay(self, principal: Principal | None, command: AnyCommand, key: str | None,
                fingerprint: str) -> list[WriteResult] | None:
        if key is None or principal is None:
            return None
        claimed: Any
        try:
            claimed = self.repository.get(key_id(principal.tenant_id, principal.user_id, key))
        except AggregateNotFoundError:
            return None
        assert isinstance(claimed, IdempotencyKey)
        if claimed.fingerprint != fingerprint:
            error = IdempotencyKeyReusedError(
                f"Idempotency key {key!r} was already used for a different command"
            )
            self._record_refusal(principal, command, None, error, key, outcome="refused")
            raise error
        return [self._replayed(result) for result in claimed.results]

    def _replayed(self, stored: dict[str, Any]) -> WriteResult:
        position_of = getattr(self.recorder, "position_of", None)
        position = position_of(UUID(stored["id"]), stored["version"]) if position_of else None
        return WriteResult(**{**stored, "position": position, "replayed": True})

    def _load(self, record_id: UUID, principal: Principal | None) -> Record | None:
        """The record, checked link by link; None when there is none in the principal's tenant."""
        return self.loader.load(record_id, tenant=principal.tenant_id if principal is not None else None)

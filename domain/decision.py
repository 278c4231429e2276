"""The ``Decision`` aggregate: the audit record of one governed command.

A command Writ refuses, parks or fails to execute leaves one ``Decision``, with
the principal, purpose, outcome, error code, reasons and the catalog version it
was decided under. (An allowed decision travels inside the record event it
allowed, so the decision and the change are one atomic fact.) A read an entry
point must account for (an agent's tool call) leaves one with outcome ``read``:
who read what, and the code when it was refused, never the values read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.ids import new_id

Outcome = Literal["allowed", "refused", "parked", "failed", "read"]


class Decision(Aggregate):
    TOPIC = "writ.decision:Decision"

    class Created(Aggregate.Created):
        TOPIC = "writ.decision:Created"
        outcome: str
        operation: str
        model: str
        tenant: str | None
        record_id: str | None
        actor: str | None
        roles: list[str]
        purpose: str | None
        correlation_id: str | None
        code: str | None
        reasons: list[str]
        policy_version: str
        idempotency_key: str | None
        audit: dict[str, str]

    def __init__(self, outcome: str, code: str | None, model: str, record_id: str | None) -> None:
        self.outcome = outcome
        self.code = code
        self.model = model
        self.record_id = record_id

    @classmethod
    def record(cls, now: datetime, decision_id: UUID | None = None, **fields: Any) -> Decision:
        return cls._create(cls.Created, id=decision_id or new_id(), timestamp=now, **fields)

"""The small aggregates a write keeps beside its records, saved in the same atomic save.

* ``Counter``: the last number a sequence or counter gave, per tenant, model, field and period. A
  create advances it in the save that creates the record, so two creates racing for the same number
  conflict in the store (one retries and takes the next): numbers follow commit order, with no gap and
  no repeat, and a refused or rolled-back create takes none.
* ``UniqueClaim``: which live record holds a unique value (or values) in a tenant. Its id is a keyed
  digest of the values (``Writ.index_digest``), so the store holds no value; creating a record claims
  it, a soft delete or a purge releases it, a restore claims it again. Two writers claiming the same
  value conflict in the store: exactly one commits.
* ``Family``: the children created under a parent record (master-detail), so a cascade finds them
  without a read model.

Ids are derived (uuid5 of a JSON array: injective), so whoever needs one finds it without a lookup.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from eventsourcing.domain import Aggregate

_COUNTERS = uuid5(NAMESPACE_URL, "https://writ.dev/counter")
_CLAIMS = uuid5(NAMESPACE_URL, "https://writ.dev/unique")
_FAMILIES = uuid5(NAMESPACE_URL, "https://writ.dev/family")


def counter_id(tenant: str, model: str, field: str, period: str) -> UUID:
    return uuid5(_COUNTERS, orjson.dumps([tenant, model, field, period]).decode())


def claim_id(digest: str) -> UUID:
    return uuid5(_CLAIMS, digest)


def family_id(parent: UUID) -> UUID:
    return uuid5(_FAMILIES, str(parent))


class Counter(Aggregate):
    TOPIC = "writ.counter:Counter"

    class Created(Aggregate.Created):
        TOPIC = "writ.counter:Created"

    class Advanced(Aggregate.Event):
        TOPIC = "writ.counter:Advanced"
        value: int

        def apply(self, counter: Counter) -> None:
            counter.value = self.value

    def __init__(self) -> None:
        self.value = 0

    @classmethod
    def start(cls, counter: UUID, now: datetime) -> Counter:
        return cls._create(cls.Created, id=counter, timestamp=now)

    def advance(self, now: datetime) -> int:
        self.trigger_event(self.Advanced, timestamp=now, value=self.value + 1)
        return self.value


class UniqueClaim(Aggregate):
    TOPIC = "writ.unique:UniqueClaim"

    class Created(Aggregate.Created):
        TOPIC = "writ.unique:Created"
        model: str
        fields: list[str]
        holder: str | None

    class Claimed(Aggregate.Event):
        TOPIC = "writ.unique:Claimed"
        holder: str

        def apply(self, claim: UniqueClaim) -> None:
            claim.holder = self.holder

    class Released(Aggregate.Event):
        TOPIC = "writ.unique:Released"
        holder: str

        def apply(self, claim: UniqueClaim) -> None:
            claim.holder = None

    def __init__(self, model: str, fields: list[str], holder: str | None) -> None:
        self.model = model
        self.fields = fields
        self.holder = holder

    @classmethod
    def open(
        cls, claim: UUID, model: str, fields: list[str], now: datetime, holder: UUID | None = None
    ) -> UniqueClaim:
        """A claim made now, held by ``holder`` from its first event."""
        return cls._create(
            cls.Created,
            id=claim,
            timestamp=now,
            model=model,
            fields=fields,
            holder=None if holder is None else str(holder),
        )

    def claim(self, holder: UUID, now: datetime) -> None:
        if self.holder != str(holder):
            self.trigger_event(self.Claimed, timestamp=now, holder=str(holder))

    def release(self, holder: UUID, now: datetime) -> None:
        if self.holder == str(holder):
            self.trigger_event(self.Released, timestamp=now, holder=str(holder))


class Family(Aggregate):
    TOPIC = "writ.family:Family"

    class Created(Aggregate.Created):
        TOPIC = "writ.family:Created"
        parent: str

    class Adopted(Aggregate.Event):
        TOPIC = "writ.family:Adopted"
        model: str
        child: str

        def apply(self, family: Family) -> None:
            family.children.append((self.model, self.child))

    def __init__(self, parent: str) -> None:
        self.parent = parent
        self.children: list[tuple[str, str]] = []

    @classmethod
    def start(cls, parent: UUID, now: datetime) -> Family:
        return cls._create(cls.Created, id=family_id(parent), timestamp=now, parent=str(parent))

    class Noted(Aggregate.Event):
        """A change to the family that must not race with another: the parent deleted, restored or purged,
        a child restored."""

        TOPIC = "writ.family:Noted"
        operation: str
        record: str

        def apply(self, family: Family) -> None:
            pass

    def adopt(self, model: str, child: UUID, now: datetime) -> None:
        self.trigger_event(self.Adopted, timestamp=now, model=model, child=str(child))

    def note(self, operation: str, record: UUID, now: datetime) -> None:
        self.trigger_event(self.Noted, timestamp=now, operation=operation, record=str(record))


def as_pairs(children: Any) -> list[tuple[str, str]]:
    """A family's children as (model, id) pairs, whatever a snapshot round trip made of the tuples."""
    return [(str(model), str(child)) for model, child in children]

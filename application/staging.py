"""Staging one decided command into a unit of work, with everything that moves with it.

``stage`` decides a command on the unit's state (``application.unit``) and, when it is allowed, applies
it: the record's event, and in the same unit the counters its generators advanced, the unique values it
claims or releases, the family a child joins, and the cascade a parent's delete, restore or purge runs
over its children. Nothing here saves: the caller saves the whole unit in one atomic save.

Uniqueness: each ``unique`` group (and each slugified field) of a live record is claimed by a
``UniqueClaim`` whose id is a keyed digest of the tenant, model, fields and values. Cascades run under
the parent's decision: its events carry ``meta.cascade`` naming the parent, and a restore brings back only
the children that parent's delete took down.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from application.unit import Unit
from domain.catalog import Catalog, ModelSpec
from domain.chain import Digest
from domain.commands import (
    AnyCommand,
    Create,
    Delete,
    Patch,
    Purge,
    RecordCommand,
    Replace,
    Restore,
)
from domain.errors import (
    ImmutableFieldError,
    InvalidFieldValueError,
    InvalidInputError,
    RecordNotFoundError,
    RequiredFieldMissingError,
    UniqueViolationError,
    WritError,
)
from domain.generators import md5_of, slugify, suffixed
from domain.ids import new_id
from domain.links import Counter, Family, UniqueClaim, as_pairs, claim_id, counter_id, family_id
from domain.principal import Principal
from domain.record import DELETED, PURGED, Record
from domain.values import utc_text

if TYPE_CHECKING:
    from application.ports import KeyRing
    from application.store import Store

SLUG_ATTEMPTS = 1000
CACHED_COUNTERS = 10_000

_APPLY: dict[
    type[RecordCommand], Callable[[Record, dict[str, Any], dict[str, Any], datetime, Digest], None]
] = {
    Replace: lambda record, payload, meta, now, digest: record.replace(payload, meta, now, digest),
    Patch: lambda record, payload, meta, now, digest: record.patch(payload, meta, now, digest),
    Delete: lambda record, _, meta, now, digest: record.delete(meta, now, digest),
    Restore: lambda record, _, meta, now, digest: record.restore(meta, now, digest),
    Purge: lambda record, _, meta, now, digest: record.purge(meta, now, digest),
}


def unique_groups(spec: ModelSpec) -> list[tuple[str, ...]]:
    """The field groups a live record holds unique: ``unique``, and every slugified field."""
    slugs = [(name,) for name, generator in spec.generated.items() if generator.kind == "slugify"]
    return list(dict.fromkeys([*spec.unique, *slugs]))


def split_children(
    spec: ModelSpec, command: AnyCommand, most: int
) -> tuple[AnyCommand, dict[str, list[Any]]]:
    """A create without its nested children, and the children's rows by child name."""
    if (
        not isinstance(command, Create)
        or not spec.children
        or not any(n in command.data for n in spec.children)
    ):
        return command, {}
    nested: dict[str, list[Any]] = {}
    for name in spec.children:
        if name not in command.data:
            continue
        rows = command.data[name]
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise InvalidInputError(f"{name}: nested children are a list of objects", field=name)
        nested[name] = rows
    if sum(len(rows) for rows in nested.values()) > most:
        raise InvalidInputError(f"At most {most:,} nested children in one create")
    rest = {key: value for key, value in command.data.items() if key not in nested}
    return command.model_copy(update={"data": rest}), nested


@dataclass
class UnitEffects:
    """``domain.pipeline.Effects`` for one command staged into ``unit``: reads see the unit first."""

    stager: Staging
    unit: Unit
    record_id: UUID
    record: Record | None = None

    def generate(
        self,
        spec: ModelSpec,
        model: str,
        principal: Principal,
        payload: dict[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        made: dict[str, Any] = {}
        for name, generator in spec.generated.items():
            value: Any
            if generator.kind == "uuid":
                value = str(new_id())
            elif generator.kind == "timestamp":
                # a str field gets the text a datetime field would keep
                value = now if spec.fields[name].type == "datetime" else utc_text(now)
            elif generator.kind == "md5":
                value = md5_of(payload.get(generator.source or ""))
            elif generator.kind == "slugify":
                value = self._free_slug(
                    model,
                    principal.tenant_id,
                    name,
                    slugify(payload.get(generator.source or "")),
                    now,
                )
            else:
                counter = self.stager.counter(
                    self.unit,
                    counter_id(principal.tenant_id, model, name, generator.period(now)),
                    now,
                )
                number = counter.advance(now)
                value = number if generator.kind == "sequence" else generator.render(number, now)
            made[name] = spec.fields[name].normalize(name, value)
        return made

    def conflicts(
        self, spec: ModelSpec, command: AnyCommand, principal: Principal, state: dict[str, Any]
    ) -> list[WritError]:
        problems = self._parent_problems(command, principal, state)
        for names, claim in self.stager.claims(spec, principal.tenant_id, command.model, state):
            held = self.unit.get(claim)
            # staged as absent: a writer that claims it first makes this save conflict
            if held is None:
                held = self.unit.touch(
                    UniqueClaim.open(
                        claim, command.model, list(names), self.stager.clock(), self.record_id
                    )
                )
            elif claim not in self.unit.staged:
                # staged, so this unit's later commands (and its apply) read this copy
                self.unit.touch(held)
            if held.holder not in (None, str(self.record_id)):
                problems.append(
                    UniqueViolationError(
                        f"{command.model}: {', '.join(names)} is already taken by another live record in the tenant",
                        field=names[0],
                    )
                )
        return problems

    def _free_slug(self, model: str, tenant: str, name: str, slug: str, now: datetime) -> str:
        for attempt in range(1, SLUG_ATTEMPTS + 1):
            candidate = suffixed(slug, attempt)
            claim = self.stager.claim_of(
                self.unit, tenant, model, (name,), [candidate], now, self.record_id
            )
            if claim.holder in (None, str(self.record_id)):
                self.unit.touch(claim).claim(self.record_id, now)
                return candidate
        raise UniqueViolationError(
            f"{model}: no free {name} after {SLUG_ATTEMPTS} suffixes", field=name
        )

    def _parent_problems(
        self, command: AnyCommand, principal: Principal, state: dict[str, Any]
    ) -> list[WritError]:
        link = self.stager.catalog.parents.get(command.model)
        if link is None:
            return []
        parent_model, via = link
        if isinstance(command, Patch | Replace):
            before = self.record.data.get(via) if self.record is not None else None
            if state.get(via) != before:
                return [
                    ImmutableFieldError(
                        f"Cannot move a {command.model} to another {parent_model}: {via}", field=via
                    )
                ]
            return []
        if not isinstance(command, Create | Restore):
            return []
        value = state.get(via)
        if value is None:
            return [
                RequiredFieldMissingError(
                    f"A {command.model} belongs to a {parent_model}: {via} is required", field=via
                )
            ]
        parent = self.stager.record(self.unit, UUID(str(value)), principal)
        if parent is None or parent.model != parent_model or not parent.is_live:
            return [RecordNotFoundError(f"{parent_model} {value} not found", field=via)]
        return []


class Staging:
    """Applies decided commands to a unit, with what moves with them: counters, unique claims, families, cascades.
    ``load`` reads a record as the principal may see it (``application.core.Core.load``)."""

    def __init__(
        self,
        catalog: Catalog,
        store: Store,
        clock: Callable[[], datetime],
        keys: KeyRing,
        load: Callable[[UUID, Principal | None], Record | None],
    ) -> None:
        self.catalog, self.store, self.clock, self.keys, self._load = (
            catalog,
            store,
            clock,
            keys,
            load,
        )
        self.counters: dict[UUID, Counter] = {}
        """Each counter as this process last saved it (``counter``)."""

    # -- reads through the unit -------------------------------------------------------------

    def _stored_counter(self, counter: UUID) -> Counter | None:
        try:
            found: Any = self.store.repository.get(counter)  # a counter may have a snapshot
        except AggregateNotFoundError:
            return None
        assert isinstance(found, Counter)
        return found

    def record(self, unit: Unit, record_id: UUID, principal: Principal | None) -> Record | None:
        staged = unit.staged.get(record_id)
        if isinstance(staged, Record):
            tenant = principal.tenant_id if principal is not None else staged.tenant
            return staged if staged.tenant == tenant else None
        return self._load(record_id, principal)

    def counter(self, unit: Unit, counter: UUID, now: datetime) -> Counter:
        """The counter as staged, as this process last saved it, or as stored. The cached copy may be stale
        (another process advanced it since): then the save conflicts, the cache is dropped, the write retries."""
        unit.serialize(counter)
        found = unit.staged.get(counter)
        if found is None:
            cached = self.counters.get(counter)
            found = copy.deepcopy(cached) if cached is not None else self._stored_counter(counter)
        return unit.touch(found if found is not None else Counter.start(counter, now))  # type: ignore[no-any-return]

    def remember_counters(self, aggregates: Iterable[Any], saved: bool) -> None:
        """After a save: keep its counters as saved, or forget them when the save conflicted."""
        for aggregate in aggregates:
            if isinstance(aggregate, Counter):
                if saved:
                    self.counters[aggregate.id] = aggregate
                    while len(self.counters) > CACHED_COUNTERS:
                        self.counters.pop(next(iter(self.counters)), None)
                else:
                    self.counters.pop(aggregate.id, None)

    def claims(
        self, spec: ModelSpec, tenant: str, model: str, state: dict[str, Any]
    ) -> Iterator[tuple[tuple[str, ...], UUID]]:
        """Each unique group ``state`` holds values for, with its claim's id (a group with a null is free)."""
        for names in unique_groups(spec):
            values = [state.get(name) for name in names]
            if all(value is not None for value in values):
                yield names, claim_id(self.keys.index_digest([tenant, model, list(names), values]))

    def claim_of(
        self,
        unit: Unit,
        tenant: str,
        model: str,
        names: tuple[str, ...],
        values: list[Any],
        now: datetime,
        holder: UUID,
    ) -> UniqueClaim:
        claim = claim_id(self.keys.index_digest([tenant, model, list(names), values]))
        found = unit.get(claim)
        return (
            found if found is not None else UniqueClaim.open(claim, model, list(names), now, holder)
        )

    # -- applying -----------------------------------------------------------------------------

    def apply(
        self,
        unit: Unit,
        command: AnyCommand,
        record: Record | None,
        payload: dict[str, Any],
        meta: dict[str, Any],
        now: datetime,
        record_id: UUID,
    ) -> Record:
        """The command's event on its record, and its claims, family and cascade, all staged."""
        spec = self.catalog.model(command.model)
        before = self._held(spec, record)
        if isinstance(command, Create):
            self.keys.new_key(record_id)
            record = Record.create(
                command.model,
                meta["tenant"],
                payload,
                meta,
                now,
                record_id=record_id,
                digest=self.keys.digest,
            )
        else:
            assert record is not None
            unit.touch(record)
            _APPLY[type(command)](record, payload, meta, now, self.keys.digest)
        unit.touch(record)
        self._reclaim(unit, record, before, self._held(spec, record), now)
        if command.model in self.catalog.parents and isinstance(command, Create | Restore):
            parent = UUID(str(record.data[self.catalog.parents[command.model][1]]))
            family = self.family(unit, parent, now)
            if isinstance(command, Create):
                family.adopt(command.model, record.id, now)
            else:
                family.note("restore", record.id, now)
        if isinstance(command, Delete | Restore | Purge) and spec.children:
            self._cascade(unit, record, command, meta, now)
        return record

    def family(self, unit: Unit, parent: UUID, now: datetime) -> Family:
        """The parent's family, staged. A child joining or coming back, and the parent's delete, restore or
        purge, each append to it: two of them racing conflict in the store, and the loser is decided again
        (a child is never created under a parent that was deleted meanwhile, nor missed by its cascade)."""
        found = unit.staged.get(family_id(parent))
        if found is None:
            try:
                found = self.store.repository.get(family_id(parent))  # a family may have a snapshot
            except AggregateNotFoundError:
                found = Family.start(parent, now)
        assert isinstance(found, Family)
        return unit.touch(found)  # type: ignore[no-any-return]

    def _held(self, spec: ModelSpec, record: Record | None) -> dict[UUID, tuple[str, ...]]:
        if record is None or not record.is_live:
            return {}
        return {
            claim: names
            for names, claim in self.claims(spec, record.tenant, record.model, record.data)
        }

    def _reclaim(
        self,
        unit: Unit,
        record: Record,
        before: dict[UUID, tuple[str, ...]],
        after: dict[UUID, tuple[str, ...]],
        now: datetime,
    ) -> None:
        for claim in before.keys() - after.keys():
            held = unit.get(claim)
            if held is not None:
                unit.touch(held).release(record.id, now)
        for claim in after.keys() - before.keys():
            held = unit.get(claim)
            held = (
                held
                if held is not None
                else UniqueClaim.open(claim, record.model, list(after[claim]), now, record.id)
            )
            if held.holder not in (None, str(record.id)):
                raise UniqueViolationError(
                    f"{record.model}: {', '.join(after[claim])} is already taken by another "
                    "live record in the tenant",
                    field=after[claim][0],
                )
            unit.touch(held).claim(record.id, now)

    def _cascade(
        self, unit: Unit, parent: Record, command: AnyCommand, meta: dict[str, Any], now: datetime
    ) -> None:
        family = self.family(unit, parent.id, now)
        family.note(command.operation, parent.id, now)
        cascade = {"parent": str(parent.id), "model": parent.model}
        for model, child_id in as_pairs(family.children):
            child = self.record(unit, UUID(child_id), None)
            if child is None or child.state == PURGED:
                continue
            if isinstance(command, Delete) and not child.is_live:
                continue
            if isinstance(command, Restore) and not (
                child.state == DELETED and self._cascaded(child, parent.id)
            ):
                continue
            child_meta = {**meta, "model": model, "cascade": cascade}
            cascaded = type(command)(model=model, id=child.id)  # type: ignore[call-arg]
            self.apply(unit, cascaded, child, {}, child_meta, now, child.id)

    def _cascaded(self, child: Record, parent: UUID) -> bool:
        """Whether the child's last event is the delete its parent's cascade made."""
        if child.pending_events:
            last: Any = child.pending_events[-1]
        else:
            last = next(iter(self.store.events.get(child.id, gt=child.version - 1)), None)
        cascade = (getattr(last, "meta", None) or {}).get("cascade") or {}
        return isinstance(last, Record.Deleted) and cascade.get("parent") == str(parent)


def check_nested_row(row: dict[str, Any], via: str, parent: UUID) -> dict[str, Any]:
    """A nested child's data, pointing at its parent (a row naming another parent is refused)."""
    if row.get(via) not in (None, str(parent), parent):
        raise InvalidFieldValueError(
            f"A nested child belongs to the record it is nested in: {via}", field=via
        )
    return {**row, via: str(parent)}

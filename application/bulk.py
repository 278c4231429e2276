"""``bulk_update``: patch every live record of a model that matches filters, each with its own governed event.

The views' query language finds the candidates (the ``Matcher`` port, over the
current-rows views caught up first), but a view only proposes: every
candidate is loaded as it stands, checked against the filters again and
decided again, under the model's ``bulk_update`` grant and policy, with its
``before.``/``after.`` state. Then one of three things happens, all or nothing:

* a record is refused (policy, field rules): nothing is written and the bulk is
  refused with that record's error (narrow the filters to leave it out);
* a record needs approval: the whole bulk is parked as one approval request,
  with the count and a sample of the change, bound to every matched record's
  version; on approval it runs on exactly those records, or fails stale;
* otherwise every matched record gets its own ``Patched`` event carrying the
  bulk's decision and one shared correlation id, in ONE save.

A bulk names its records: an empty filter list is refused unless the caller
says ``all_records=True`` (every live record of the model in the tenant), and
filters with ``all_records=True`` contradict each other and are refused too.
The filters are bounded by the catalog's ``filters``, ``filter_values`` and
``nesting`` limits, checked before anything reads them.

A bulk is one atomic save, so it is bounded, not chunked: more matches than
the model's ``max_affected`` (or the catalog's ``rows`` limit, 10,000 by
default) is ``BULK_LIMIT_EXCEEDED`` and nothing is written. Chunks would let a
failure leave half the matches updated, which is what a bulk must not do.

A write that saves one of the candidates while the bulk decides makes the
bulk's save fail whole: the same candidates are then loaded and decided
again, up to ``BULK_ATTEMPTS`` times, before the bulk fails ``VERSION_CONFLICT``.
From the views' query to the save the cyclic collector is paused (``collector``),
each candidate is decided as soon as it is loaded (``RecordLoader.each``),
one ``Decider`` decides them all (what does not depend on the record, once),
and each record is patched when the save reads its event (``save_bulk``): on
PostgreSQL, while the database inserts the part before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from application import collector
from application.core import Core
from application.door import Subject, flag_arg, key_arg, nesting_arg, principal_arg, sequence_arg
from application.encoding import MadeOnRead
from application.fingerprints import kept, matches
from application.parking import fingerprint as approval_fingerprint
from application.parking import requester_of
from application.ports import Matcher
from application.results import BulkResult, last_position
from application.retry import Lost
from domain.approval import ApprovalRequest
from domain.chain import id_text
from domain.commands import Patch, canonical, check_model_name
from domain.errors import (
    BulkLimitExceededError,
    GrantMissingError,
    IdempotencyKeyReusedError,
    ImmutableFieldError,
    InvalidInputError,
    PurposeRequiredError,
    UnauthenticatedError,
    WriteDeniedError,
    WritError,
)
from domain.filters import filters_of
from domain.idempotency import IdempotencyKey
from domain.ids import new_id
from domain.limits import shown
from domain.pipeline import Decider, Verdict
from domain.policy import Comparison
from domain.principal import Principal
from domain.record import Record
from domain.rules import check_update

if TYPE_CHECKING:
    from eventsourcing.persistence import Recording

    from domain.catalog import ModelSpec

Patcher = Callable[[tuple[Record, Verdict]], Any]
"""Patches one decided record and returns its event (``Bulk.bulk_patch``)."""
SAMPLE = 5
"""Records shown in a parked bulk's preview."""
BULK_ATTEMPTS = 3
"""Times a bulk update is decided and saved before a lost race is a ``CONFLICT``: each attempt loads and decides
every record again, so a bulk that keeps losing to single writes gives up rather than retrying for minutes."""


class Bulk:
    """``Writ.bulk_update``: over the core, with the views' ``Matcher`` proposing the candidates."""

    def __init__(self, core: Core, matcher: Matcher) -> None:
        self.core, self.matcher = core, matcher

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
        """Patch every live match in the principal's tenant; ``updated_count`` says how many. No filters is
        refused unless ``all_records=True`` says every live record is meant."""
        with collector.paused():  # from the views' ten thousand ids to the save: nothing to free
            return self._bulk_update(
                principal, model, filters, changes, idempotency_key, all_records
            )

    # -- internals ------------------------------------------------------------

    def _bulk_update(
        self,
        principal: Principal | None,
        model: str,
        filters: Sequence[Any],
        changes: dict[str, Any],
        idempotency_key: str | None,
        all_records: bool,
    ) -> BulkResult:
        subject = Subject("bulk_update", model)
        try:
            who, spec, comparisons = self._bulk_arguments(
                principal, model, filters, changes, idempotency_key, all_records
            )
        except WritError as error:
            self.core.refuse_at_door(principal, subject, idempotency_key, error)
        fingerprint = _fingerprint(model, comparisons, changes)
        replayed = self._bulk_replay(who, subject, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
        most = min(
            spec.policy.max_affected or self.core.catalog.limits.rows, self.core.catalog.limits.rows
        )
        ids = self._matches(who, model, comparisons, most, subject, idempotency_key)
        lost = Lost(
            who,
            subject,
            idempotency_key,
            f"{model}: records of this bulk update changed while it was "
            f"decided, {BULK_ATTEMPTS} times; nothing was written: retry it, or narrow its filters",
        )
        return self.core.retry.run(  # another write saved one of its candidates (or its key) first: each candidate
            lambda _: self._bulk(
                who, spec, model, comparisons, changes, ids, idempotency_key, fingerprint
            ),
            lost,
            attempts=BULK_ATTEMPTS,  # is loaded, checked against the filters and decided again
            again=lambda: self._bulk_replay(who, subject, idempotency_key, fingerprint),
        )

    def _bulk(
        self,
        who: Principal,
        spec: ModelSpec,
        model: str,
        comparisons: list[Comparison],
        changes: dict[str, Any],
        ids: list[UUID],
        idempotency_key: str | None,
        fingerprint: str,
    ) -> BulkResult:
        now = self.core.clock()
        # each decided as soon as it is loaded
        loaded = self.core.loader.each(ids, tenant=who.tenant_id, model=model)
        still_matches = _matcher(comparisons, spec)
        decided = self.decide_bulk(who, model, filter(still_matches, loaded), changes, now)
        if not decided:  # no record to decide the changes on: the field rules still judge them, as on an empty one
            _, errors = check_update(spec, {}, changes, self.core.catalog.limits, replace=False)
            if errors:
                self.core.record_refusal(
                    who, Subject("bulk_update", model), None, errors[0], idempotency_key, "refused"
                )
                raise errors[0]
        refused = next(
            (
                (r, v, v.error)
                for r, v in decided
                if v.error is not None and v.action != "require_approval"
            ),
            None,
        )
        if refused is not None:
            record, verdict, error = refused
            self.core.record_refusal(
                who,
                Subject("bulk_update", model, record.id),
                verdict,
                error,
                idempotency_key,
                "refused",
            )
            raise error
        if any(v.action == "require_approval" for _, v in decided):
            return self._park_bulk(
                who, spec, comparisons, changes, decided, idempotency_key, fingerprint, now
            )
        return self._run_bulk(who, model, decided, idempotency_key, fingerprint, now)

    def _bulk_arguments(
        self,
        principal: object,
        model: object,
        filters: object,
        changes: object,
        key: object,
        all_records: object,
    ) -> tuple[Principal, ModelSpec, list[Comparison]]:
        who = principal_arg(principal)
        if who is None:
            raise UnauthenticatedError("No principal: every command needs an authenticated caller")
        key_arg(key, self.core.catalog.limits)
        spec = self.core.catalog.model(check_model_name(model))
        comparisons = filters_of(sequence_arg("filters", filters), self.core.catalog.limits)
        _check_scope(comparisons, flag_arg("all_records", all_records))
        nesting_arg("changes", changes, self.core.catalog.limits)
        if not isinstance(changes, dict) or not changes:
            raise InvalidInputError("changes must be a non-empty dict of field values")
        # the door's checks on the changes
        Patch(model=spec_model_name(model), id=new_id(), changes=changes)
        if not (who.purpose or "").strip():
            raise PurposeRequiredError("Every write must state its purpose")
        if not spec.grants.allows("bulk_update", who.roles):
            raise GrantMissingError(
                f"{', '.join(sorted(who.roles)) or 'no role'} may not bulk_update {model}"
            )
        if spec.policy.always_denies("bulk_update"):
            raise WriteDeniedError(f"Policy denies bulk_update on {model}")
        parent = self.core.catalog.parents.get(spec_model_name(model))
        if parent is not None and parent[1] in changes:
            raise ImmutableFieldError(
                f"Cannot move a {model} to another {parent[0]}: {parent[1]}", field=parent[1]
            )
        unique = sorted({name for group in spec.unique for name in group} & set(changes))
        if unique:
            raise InvalidInputError(
                f"A bulk update cannot change unique fields ({', '.join(unique)}): one value "
                "for many records would collide; change them one record at a time",
                field=unique[0],
            )
        return who, spec, comparisons

    def _matches(
        self,
        who: Principal,
        model: str,
        comparisons: list[Comparison],
        most: int,
        subject: Subject,
        key: str | None,
    ) -> list[UUID]:
        try:
            ids = self.matcher.matching_ids(who, model, comparisons, most=most)
        except WritError as error:
            self.core.refuse_at_door(who, subject, key, error)
        if len(ids) > most:
            self.core.refuse_at_door(
                who,
                subject,
                key,
                BulkLimitExceededError(
                    f"More than {most:,} {model} records match; a bulk update is one atomic save of at most {most:,} "
                    "(the model's max_affected or the catalog's rows limit): narrow the filters"
                ),
            )
        # the order of their text (fixed-width hex), without writing it
        return sorted(ids, key=attrgetter("int"))

    def _run_bulk(
        self,
        who: Principal,
        model: str,
        decided: list[tuple[Record, Verdict]],
        key: str | None,
        fingerprint: str,
        now: datetime,
    ) -> BulkResult:
        result, patch = self.bulk_patch(who, model, decided, key, now)
        recordings = self.save_bulk(
            decided, patch, self._bulk_claim(who, key, fingerprint, result, now)
        )
        return result.model_copy(update={"position": last_position(recordings)})

    def bulk_patch(
        self,
        who: Principal,
        model: str,
        decided: list[tuple[Record, Verdict]],
        key: str | None,
        now: datetime,
        approval: dict[str, Any] | None = None,
    ) -> tuple[BulkResult, Patcher]:
        """The bulk's result, and what patches one decided record (in memory) under its one decision and
        correlation id, returning the record's event."""
        decision_id, correlation = str(new_id()), who.correlation_id or str(new_id())
        meta = _bulk_meta(
            who, model, decided, decision_id, correlation, self.core.catalog.version, key, approval
        )
        digest = self.core.keys.digest

        def patch(decision: tuple[Record, Verdict]) -> Any:
            record = decision[0]
            record.patch(decision[1].payload, meta, now, digest)
            # ``collect_events``, without its loop: the one event is taken
            pending = record.pending_events
            (event,) = pending
            pending.clear()
            return event

        return BulkResult(
            status="executed",
            model=model,
            updated_count=len(decided),
            ids=[id_text(r.id) for r, _ in decided],
            decision_id=decision_id,
            correlation_id=correlation,
        ), patch

    def save_bulk(
        self, decided: list[tuple[Record, Verdict]], patch: Patcher, first: Sequence[Aggregate]
    ) -> list[Recording[UUID]]:
        """One atomic save of ``first`` (their events first) and every decided record's patch, each record
        patched when the recorder reads its event: on PostgreSQL, while the database inserts the part before."""
        records = [record for record, _ in decided]
        events = MadeOnRead(
            decided, patch, ready=[event for each in first for event in each.collect_events()]
        )
        return self.core.store.save_made(events, [*first, *records])

    def decide_bulk(
        self,
        who: Principal,
        model: str,
        records: Iterable[Record],
        changes: dict[str, Any],
        now: datetime,
    ) -> list[tuple[Record, Verdict]]:
        """Each record's patch decided under the ``bulk_update`` grant and policy (one patch stands for each: the
        decider names the record it decides, not the patch's id)."""
        decider, patch = (
            Decider(self.core.catalog, who, now),
            Patch(model=model, id=new_id(), changes=changes),
        )
        return [(record, decider.decide(patch, record, "bulk_update")) for record in records]

    def _park_bulk(
        self,
        who: Principal,
        spec: ModelSpec,
        comparisons: list[Comparison],
        changes: dict[str, Any],
        decided: list[tuple[Record, Verdict]],
        key: str | None,
        fingerprint: str,
        now: datetime,
    ) -> BulkResult:
        versions = {str(record.id): record.version for record, _ in decided}
        body = {
            "model": decided[0][0].model,
            "filters": [c.model_dump(mode="json") for c in comparisons],
            "changes": changes,
            "matched": versions,
        }
        parked = next(v for _, v in decided if v.action == "require_approval")
        command = Patch(model=body["model"], id=decided[0][0].id, changes=changes)
        decision = self.core.parked_decision(who, command, parked, key, now)
        sample = [
            {
                "id": str(r.id),
                "before": {k: (v.before or {}).get(k) for k in changes},
                "after": {k: (v.after or {}).get(k) for k in changes},
            }
            for r, v in decided[:SAMPLE]
        ]
        request = ApprovalRequest.request(
            now,
            tenant=who.tenant_id,
            model=body["model"],
            operation="bulk_update",
            command={"bulk": body},
            fingerprint=kept(self.core.keys, approval_fingerprint([body], versions)),
            record_id=None,
            record_version=None,
            requester=requester_of(who),
            reasons=list(parked.reasons),
            preview={"count": len(decided), "sample": sample},
            required=spec.approvals.required_for("bulk_update"),
            expires_at=(now + spec.approvals.expires_after).isoformat(),
            decision_id=str(decision.id),
            covers=list(versions),
        )
        result = BulkResult(
            status="pending_approval",
            model=body["model"],
            updated_count=0,
            ids=list(versions),
            decision_id=str(decision.id),
            approval_id=str(request.id),
            correlation_id=who.correlation_id,
        )
        recordings = self.core.save(
            request, decision, *self._bulk_claim(who, key, fingerprint, result, now)
        )
        position = next(
            r.notification.id for r in recordings if r.domain_event.originator_id == request.id
        )
        return result.model_copy(update={"position": position})

    def _bulk_claim(
        self, who: Principal, key: str | None, fingerprint: str, result: BulkResult, now: datetime
    ) -> list[IdempotencyKey]:
        if not key:
            return []
        return [
            IdempotencyKey.claim(
                who.tenant_id,
                who.user_id,
                key,
                kept(self.core.keys, fingerprint),
                [result.to_dict()],
                now,
            )
        ]

    def _bulk_replay(
        self, who: Principal, subject: Subject, key: str | None, fingerprint: str
    ) -> BulkResult | None:
        """The first result of a bulk update repeated with its idempotency key (None: the key is new)."""
        claimed = self.core.repeats.claimed(who, key)
        if claimed is None:
            return None
        if not matches(self.core.keys, claimed.fingerprint, fingerprint):
            error = IdempotencyKeyReusedError(
                f"Idempotency key {shown(claimed.key)} was already used for a different command"
            )
            self.core.record_refusal(who, subject, None, error, key, "refused")
            raise error
        return BulkResult(**{**claimed.results[0], "replayed": True})


def _check_scope(comparisons: list[Comparison], all_records: bool) -> None:
    """A bulk names its records: by filters, or every live record by ``all_records``, never both or neither."""
    if not comparisons and not all_records:
        raise InvalidInputError(
            "A bulk update with no filters would change every live record: say so with "
            'all_records=True (HTTP: "all": true; CLI: --all), or give filters'
        )
    if comparisons and all_records:
        raise InvalidInputError(
            "all_records=True means every live record: it takes no filters (send one or the other)"
        )


def spec_model_name(model: object) -> str:
    return check_model_name(model)


def _matcher(comparisons: list[Comparison], spec: ModelSpec) -> Callable[[Record], bool]:
    """Whether a record as it stands (not as the view had it) is live and matches every filter: on its data
    when the filters name only data fields, else on its view (the data with the id and "_" fields)."""
    matchers = [c.matcher(spec.typed) for c in comparisons]
    if all(c.field != "id" and not c.field.startswith("_") for c in comparisons):
        return lambda record: record.is_live and all(m(record.data) for m in matchers)

    def on_view(record: Record) -> bool:
        if not record.is_live:
            return False
        view = record.view()
        return all(m(view) for m in matchers)

    return on_view


def _fingerprint(model: str, comparisons: list[Comparison], changes: dict[str, Any]) -> str:
    try:
        body = {
            "model": model,
            "filters": [c.model_dump(mode="json") for c in comparisons],
            "changes": changes,
        }
        # encoded as a command's fingerprint is (a Decimal by type and text): a repeat matches
        return hashlib.sha256(canonical(body)).hexdigest()
    except (
        TypeError,
        ValueError,
    ):
        # orjson's or pydantic's: the field rules and the views refuse such values
        return ""


def _bulk_meta(
    who: Principal,
    model: str,
    decided: list[tuple[Record, Verdict]],
    decision_id: str,
    correlation: str,
    version: str,
    key: str | None,
    approval: dict[str, Any] | None,
) -> dict[str, Any]:
    reasons = sorted({reason for _, verdict in decided for reason in verdict.reasons})
    meta = {
        "actor": who.user_id,
        "roles": sorted(who.roles),
        "tenant": who.tenant_id,
        "model": model,
        "operation": "bulk_update",
        "purpose": who.purpose,
        "correlation_id": correlation,
        "causation_id": who.causation_id,
        "decision_id": decision_id,
        "policy_version": version,
        "reasons": reasons[:20],
        "idempotency_key": key,
        "audit": dict(who.audit_attributes),
        "bulk": {"count": len(decided)},
    }
    return {**meta, "approval": approval} if approval else meta

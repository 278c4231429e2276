"""What a dead letter goes back as once a purge destroyed its owner's key (``infrastructure.bus.dead_letters.erased``):
a record event without its data, changes or reason; an approval event (its owner: the request, whose key the
purge of any record it covers destroys, a bulk's included) with the request's plain facts only; anything else,
or an owner whose key lives, unchanged."""

from __future__ import annotations

import uuid

import orjson

from infrastructure.bus.contract import IntegrationEvent
from infrastructure.bus.dead_letters import erased

PURGED, LIVE, ASKED = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
SECRET = "call after six"


def purged(owner: uuid.UUID) -> bool:
    """The keys a purge destroyed: a record's, and an approval request's that covered it."""
    return owner in (PURGED, ASKED)


def event(record: uuid.UUID, event_type: str, model: str = "Order", **fields: object) -> bytes:
    return IntegrationEvent(
        event_id=f"{record}:1",
        event_type=event_type,
        record_id=str(record),
        version=1,
        position=7,
        occurred_at="2026-12-07T00:00:00+00:00",
        tenant="acme",
        model=model,
        **fields,  # type: ignore[arg-type]
    ).to_json()


def test_a_purged_record_s_events_lose_what_the_purge_erased() -> None:
    created = orjson.loads(erased(event(PURGED, "Created", data={"note": SECRET}), purged))
    assert (created["data"], created["redacted"]) == (None, True)
    patched = orjson.loads(erased(event(PURGED, "Patched", changes={"note": SECRET}), purged))
    assert (patched["changes"], patched["redacted"]) == (None, True)
    failed = orjson.loads(erased(event(PURGED, "Failed", reason=f"bad note {SECRET}"), purged))
    assert failed["reason"] is None and SECRET not in str(failed)
    asked = {"approval_id": str(ASKED), "model": "Order", "operation": "update", "preview": SECRET}
    approval = orjson.loads(erased(event(PURGED, "Requested", "Approval", data=asked), purged))
    assert approval["data"] == {"approval_id": str(ASKED), "model": "Order", "operation": "update"}
    assert approval["redacted"] is True
    # a bulk's request names no one record: its own key tells
    sample = {"sample": [{"id": str(PURGED), "before": {"note": SECRET}}]}
    bulk = {"approval_id": str(ASKED), "operation": "bulk_update", "preview": sample}
    body = erased(event(uuid.UUID(int=0), "Requested", "Approval", data=bulk), purged)
    assert SECRET not in body.decode() and orjson.loads(body)["redacted"] is True


def test_anything_else_goes_back_as_it_was() -> None:
    for body in (
        event(LIVE, "Created", data={"note": SECRET}),
        event(PURGED, "Requested", "Approval", data={"approval_id": str(LIVE), "preview": SECRET}),
        event(PURGED, "Deleted"),
        b"not json",
        b'{"schema": "someone.else/1", "data": 1}',
        b"[1]",
        b"null",
        b'"writ.event/1"',
        # Writ's schema, not shaped as Writ writes it
        event(PURGED, "Requested", "Approval", data=[str(ASKED)]),
        orjson.dumps({**orjson.loads(event(PURGED, "Created")), "record_id": 7}),
    ):
        assert erased(body, purged) == body

"""Reads are governed on the command side, on both databases: records need the read grant, deleted ones and their
history read_deleted, decisions go to their actor and the model's auditors, approval requests to their requester,
approvers and auditors. The expectations are written out by hand (``tests.read_grants``), not computed by the
rules they check; a refused read records nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from tests.application.refusals import refusal
from tests.read_grants import (
    ACME_ORDER_DECISIONS,
    AUDITOR,
    CAROLS_DECISIONS,
    CLERK,
    CLERK2,
    DIRECTOR,
    INTERN,
    MANAGER,
    OUTSIDER,
    PACKER,
    READS_CATALOG,
    VIEWER,
    Scene,
    decided,
    scenario,
)

MISSING = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def writ(database_url: str) -> Iterator[Writ]:
    app = open_writ(Catalog.from_toml(READS_CATALOG, source="tests/read_grants.py"), database_url)
    yield app
    app.close()


@pytest.fixture
def scene(writ: Writ) -> Scene:
    return scenario(writ)


def code_of(attempt: Callable[[], Any]) -> str:
    with pytest.raises(WritError) as caught:
        attempt()
    return caught.value.code


def every_read(writ: Writ, reader: Principal, model: str, record: str) -> list[Callable[[], Any]]:
    """Every command-side read of one record (and of one that does not exist: refused before it is looked up)."""
    return [
        lambda: writ.get(reader, model, record),
        lambda: writ.history(reader, model, record),
        lambda: writ.as_of(reader, model, record, "2100-01-01T00:00:00+00:00"),
        lambda: writ.diff(reader, model, record, 1, 1),
        lambda: writ.get(reader, model, MISSING),
    ]


def test_a_record_is_read_with_the_read_grant_or_any_grant_where_none_is_declared(
    writ: Writ, scene: Scene
) -> None:
    for reader in (CLERK, MANAGER, VIEWER, AUDITOR):
        assert writ.get(reader, "Order", scene.live)["sku"] == "LIVE"
        assert [h.event for h in writ.history(reader, "Order", scene.live)] == ["Created"]
        assert writ.diff(reader, "Order", scene.live, 1, 1) == {}
    # Note declares no read: its create and approve roles read it
    for reader in (
        CLERK,
        CLERK2,
        DIRECTOR,
    ):
        assert writ.get(reader, "Note", scene.note)["text"] == "hello"
    denied = [
        (PACKER, "Order"),
        (INTERN, "Order"),
        (DIRECTOR, "Order"),
        (INTERN, "Note"),
        (AUDITOR, "Note"),
        (VIEWER, "Note"),
    ]
    for reader, model in denied:
        for read in every_read(writ, reader, model, scene.live if model == "Order" else scene.note):
            error = refusal(writ, read, writes=False)  # refused reads record no decision
            assert error.code == "GRANT_MISSING", (reader.user_id, model, error.message)
    assert code_of(lambda: writ.get(OUTSIDER, "Order", scene.live)) == "NOT_FOUND", (
        "another tenant's: not found"
    )


def not_found_on_every_read(writ: Writ, *asked: tuple[Principal, str, str]) -> None:
    """Each (reader, model, record id) is ``NOT_FOUND`` on every read, and the refusals record nothing."""
    for reader, model, record in asked:
        for read in every_read(writ, reader, model, record):
            error = refusal(writ, read, writes=False)
            assert error.code == "NOT_FOUND", (reader.user_id, model, error.message)


def test_a_record_asked_for_under_another_models_name_is_not_found(
    writ: Writ, scene: Scene
) -> None:
    """The read grant is that of the record's own model: a viewer or an auditor, who read orders and no notes,
    asking for a note as an ``Order`` find nothing, on every read; so does a director (notes, no orders) asking
    for an order as a ``Note``."""
    not_found_on_every_read(
        writ,
        (VIEWER, "Order", scene.note),
        (AUDITOR, "Order", scene.note),
        (DIRECTOR, "Note", scene.live),
    )


def test_events_stored_compressed_still_keep_each_tenant_and_model_to_itself(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that compresses its events (the event store's ``COMPRESSOR_TOPIC``) names no tenant or model in
    the stored bytes, so the database cannot tell another tenant's record from the caller's: the decoded first
    event decides, and another tenant's record, or one of another model, is ``NOT_FOUND`` on every read."""
    monkeypatch.setenv("COMPRESSOR_TOPIC", "eventsourcing.compressor:ZlibCompressor")
    app = open_writ(Catalog.from_toml(READS_CATALOG, source="tests/read_grants.py"), database_url)
    try:
        scene = scenario(app)
        first = app._core.store.recorder.select_notifications(0, 1)[0]
        assert b'"tenant"' not in bytes(first.state), (
            "stored compressed: nothing to find in the bytes"
        )
        not_found_on_every_read(
            app,
            (CLERK, "Order", scene.theirs),
            (OUTSIDER, "Order", scene.live),
            (VIEWER, "Order", scene.note),
        )
        assert app.get(OUTSIDER, "Order", scene.theirs)["sku"] == "THEIRS"
        assert app.get(CLERK, "Order", scene.live)["sku"] == "LIVE"
    finally:
        app.close()


def test_a_deleted_record_and_its_history_need_read_deleted(writ: Writ, scene: Scene) -> None:
    """A clerk who is refused the deleted record by ``get`` is refused its history too (it holds its data)."""
    assert code_of(lambda: writ.get(CLERK, "Order", scene.deleted)) == "RECORD_DELETED"
    for record in (scene.deleted, scene.live):  # refused before it is loaded, deleted or not
        assert (
            code_of(lambda r=record: writ.get(CLERK, "Order", r, include_deleted=True))
            == "GRANT_MISSING"
        )
    assert writ.get(AUDITOR, "Order", scene.live, include_deleted=True)["sku"] == "LIVE"
    for read in (
        lambda: writ.history(CLERK, "Order", scene.deleted),
        lambda: list(writ.iter_history(MANAGER, "Order", scene.deleted)),
        lambda: writ.as_of(VIEWER, "Order", scene.deleted, "2100-01-01T00:00:00+00:00"),
        lambda: writ.diff(CLERK, "Order", scene.deleted, 1, 2),
    ):
        assert refusal(writ, read, writes=False).code == "GRANT_MISSING"
    history = writ.history(AUDITOR, "Order", scene.deleted)
    assert [(h.event, h.after.get("note")) for h in history] == [
        ("Created", "secret"),
        ("Patched", "still secret"),
        ("Deleted", "still secret"),
    ]
    assert writ.get(AUDITOR, "Order", scene.deleted, include_deleted=True)["note"] == "still secret"
    writ.restore(MANAGER, "Order", scene.deleted)
    assert [h.event for h in writ.history(CLERK, "Order", scene.deleted)][-1] == "Restored", (
        "live again: readable"
    )


def test_decisions_are_read_by_their_actor_and_the_models_auditors(
    writ: Writ, scene: Scene
) -> None:
    assert decided(writ.decisions(CLERK)) == CAROLS_DECISIONS
    assert decided(writ.decisions(AUDITOR)) == ACME_ORDER_DECISIONS, (
        "every Order decision and the Nope refusal"
    )
    assert decided(writ.decisions(MANAGER)) == [("allowed", "delete", "Order")], (
        "an approver: only its own"
    )
    assert decided(writ.decisions(DIRECTOR)) == [], "approving Note reads no decision"
    assert decided(writ.decisions(CLERK2)) == [
        ("allowed", "create", "Note"),
        ("allowed", "create", "Order"),
        ("parked", "update", "Order"),
        ("parked", "update", "Note"),
    ]
    assert decided(writ.decisions(INTERN)) == []
    assert (
        writ.decisions(CLERK, actor="maria") == []
        and len(writ.decisions(AUDITOR, actor="maria")) == 1
    )
    assert {d["tenant"] for d in writ.decisions(OUTSIDER)} == {"globex"}
    assert decided(writ.decisions(AUDITOR, model="Nope")) == [("refused", "create", "Nope")]
    assert decided(writ.decisions(CLERK2, model="Note")) == [
        ("allowed", "create", "Note"),
        ("parked", "update", "Note"),
    ]
    assert decided(writ.decisions(AUDITOR, outcome="parked")) == [("parked", "update", "Order")] * 2


def test_an_approval_request_is_read_by_its_requester_approvers_and_auditors(
    writ: Writ, scene: Scene
) -> None:
    for reader in (CLERK, MANAGER, AUDITOR):
        shown = writ.approval(reader, scene.carols_request)
        assert (shown["requester"], shown["preview"]["after"]["total"]) == ("carol", "500")
    for reader in (CLERK2, VIEWER, DIRECTOR, INTERN):
        assert (
            refusal(
                writ, lambda r=reader: writ.approval(r, scene.carols_request), writes=False
            ).code
            == "GRANT_MISSING"
        ), reader.user_id
    assert writ.approval(DIRECTOR, scene.notes_request)["model"] == "Note"
    for reader in (AUDITOR, MANAGER):  # neither audits nor approves Note
        assert code_of(lambda r=reader: writ.approval(r, scene.notes_request)) == "GRANT_MISSING"
    assert code_of(lambda: writ.approval(OUTSIDER, scene.carols_request)) == "NOT_FOUND"


def test_an_id_of_another_kind_is_not_found(writ: Writ, scene: Scene) -> None:
    """A record's id names no approval request, and a request's id (of the caller's tenant, naming the model)
    no record: each read finds nothing, for readers who may read both."""
    for reader in (CLERK, MANAGER, AUDITOR):
        error = refusal(writ, lambda r=reader: writ.approval(r, scene.live), writes=False)
        assert error.code == "NOT_FOUND", (reader.user_id, error.message)
        for read in every_read(writ, reader, "Order", scene.carols_request):
            error = refusal(writ, read, writes=False)
            assert error.code == "NOT_FOUND", (reader.user_id, error.message)


def test_every_read_without_a_principal_is_unauthenticated(writ: Writ, scene: Scene) -> None:
    """No caller, no read: each is refused ``UNAUTHENTICATED`` (the export too, as its stream starts), and
    records nothing."""
    since, until = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
    for read in (
        lambda: writ.get(None, "Order", scene.live),
        lambda: writ.history(None, "Order", scene.live),
        lambda: writ.as_of(None, "Order", scene.live, until),
        lambda: writ.diff(None, "Order", scene.live, 1, 1),
        lambda: writ.decisions(None),
        lambda: writ.approval(None, scene.carols_request),
        lambda: list(writ.export(None, since=since, until=until)),
    ):
        assert refusal(writ, read, writes=False).code == "UNAUTHENTICATED"


def test_an_export_holds_the_models_the_principal_audits(writ: Writ, scene: Scene) -> None:
    since, until = "2000-01-01T00:00:00+00:00", "2100-01-01T00:00:00+00:00"
    lines = list(writ.export(AUDITOR, since=since, until=until))
    models = {line.get("model") or line["decision"]["model"] for line in lines}
    assert models == {"Order", "Nope"}, (
        "Order's events, decisions and requests, and the refusal naming no model"
    )
    assert any(
        line.get("id") == scene.deleted and line.get("data", {}).get("note") == "secret"
        for line in lines
    )
    for reader in (CLERK, MANAGER, DIRECTOR):
        assert list(writ.export(reader, since=since, until=until)) == [], reader.user_id

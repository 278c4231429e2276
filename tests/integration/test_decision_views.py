"""The decisions read model on both databases: the same decisions the log holds, filtered and paged.

The oracle is the command side's own scan of the log (``Writ.decisions``), so the read model is checked
against something it did not compute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from infrastructure.backend_choice import open_backend
from projections import open_views, open_worker
from tests.catalogs import principal

CLERK, MANAGER, OTHER = (
    principal(),
    principal("maria", "acme", "manager"),
    principal("olga", "globex", "manager"),
)
AUDITOR = principal("ada", "acme", "auditor")


def mixed_decisions(writ: Writ) -> None:
    record = writ.create(CLERK, "Order", {"sku": "D-1", "total": "5"}).id
    writ.patch(CLERK, "Order", record, {"quantity": 2})
    for attempt in (
        lambda: writ.purge(CLERK, "Order", record),
        lambda: writ.patch(CLERK, "Order", record, {"sku": "X"}),
        lambda: writ.create(CLERK, "Nope", {}),
    ):
        with pytest.raises(WritError):
            attempt()
    assert writ.patch(CLERK, "Order", record, {"total": "20000"}).status == "pending_approval"
    writ.delete(MANAGER, "Order", record)
    writ.create(OTHER, "Order", {"sku": "G-1", "total": "1"})


def project(catalog: Catalog, database_url: str) -> None:
    worker = open_worker(catalog, database_url)
    worker.run(until_caught_up=True)
    worker.close()


def test_the_read_model_holds_every_decision_the_log_holds(
    catalog: Catalog, database_url: str, writ: Writ
) -> None:
    mixed_decisions(writ)
    project(catalog, database_url)
    views = open_views(catalog, database_url)
    try:
        for who in (CLERK, AUDITOR, OTHER):
            assert views.decisions(who, limit=1000) == writ.decisions(who, limit=1000)
        assert [d["outcome"] for d in views.decisions(AUDITOR)] == [
            "allowed",
            "allowed",
            "refused",
            "refused",
            "refused",
            "parked",
            "allowed",
        ]
        assert [d["code"] for d in views.decisions(AUDITOR, outcome="refused")] == [
            "GRANT_MISSING",
            "IMMUTABLE_FIELD",
            "MODEL_UNKNOWN",
        ]
        assert [d["actor"] for d in views.decisions(AUDITOR, actor="maria")] == ["maria"]
        assert {d["model"] for d in views.decisions(AUDITOR, model="Nope")} == {"Nope"}
        record = views.decisions(AUDITOR)[0]["record_id"]
        assert [d["outcome"] for d in views.decisions(AUDITOR, record_id=record)] == [
            "allowed",
            "allowed",
            "refused",
            "refused",
            "parked",
            "allowed",
        ], "the record's own, not the refusal naming no record"
        assert views.decisions(AUDITOR, record_id="00000000-0000-4000-8000-000000000000") == []
        first, rest = (
            views.decisions(AUDITOR, limit=3),
            views.decisions(AUDITOR, after=0, limit=100)[3:],
        )
        assert views.decisions(AUDITOR, after=first[-1]["position"]) == rest
        soon = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
        assert views.decisions(AUDITOR, since=soon) == []
        assert views.decisions(AUDITOR, until=soon) == views.decisions(AUDITOR)
        every = views.decisions(AUDITOR)
        moments = [datetime.fromisoformat(d["at"]) for d in every]
        assert moments[2] < moments[3] < moments[4], "each decision its own moment"
        assert views.decisions(AUDITOR, since=every[3]["at"]) == every[3:], "since: from it, it in"
        assert views.decisions(AUDITOR, until=every[3]["at"]) == every[:3], (
            "until: up to it, it out"
        )
        with pytest.raises(WritError) as caught:
            views.decisions(AUDITOR, since="yesterday")
        assert caught.value.code == "INVALID_INPUT"
    finally:
        views.close()


def test_a_deployment_that_lacks_the_read_model_rebuilds_it_at_start(
    catalog: Catalog, database_url: str, writ: Writ
) -> None:
    mixed_decisions(writ)
    project(catalog, database_url)
    backend = open_backend(database_url)
    database = backend.database(views=True)
    with database.transaction() as tx:
        tx.execute(f"DROP TABLE {backend.table('writ_decisions').render(backend.dialect)}")
    database.close()
    project(catalog, database_url)
    views = open_views(catalog, database_url)
    try:
        assert views.decisions(AUDITOR, limit=1000) == writ.decisions(AUDITOR, limit=1000)
    finally:
        views.close()

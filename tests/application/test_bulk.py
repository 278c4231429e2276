"""bulk_update on both databases: every live match in the tenant gets its own governed event, all or nothing.

The test catalog lets managers bulk-update orders, denies it for a shipped order (``before.status``),
parks it when a total would pass 10,000 (``after.total``), and allows at most 40 records per bulk.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from typing import Any
from uuid import UUID

import pytest

from application import loading
from application.service import Writ
from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal
from domain.record import Record, is_shredded
from entrypoints.bootstrap import Runtime, open_writ
from infrastructure import postgres_recorder
from tests.application.test_tampering import RawStore
from tests.catalogs import SHOP_CATALOG, principal
from tests.integration.test_verify import verify

MANAGER = principal("maria", "acme", "manager").model_copy(update={"correlation_id": None})
BOSS = principal("bob", "acme", "manager")
CLERK = principal("carol", "acme", "clerk")
OTHER = principal("olga", "globex", "manager")


def orders(writ: Writ, who: Principal, statuses: Sequence[str], total: str = "10") -> list[str]:
    rows = [
        {"sku": f"B-{n}", "total": total, "status": status} for n, status in enumerate(statuses)
    ]
    return [r.id for r in writ.create_many(who, "Order", rows)]


def refused(code: str, action: Any) -> WritError:
    with pytest.raises(WritError) as caught:
        action()
    assert caught.value.code == code, caught.value.message
    return caught.value


def test_every_live_match_in_the_tenant_gets_its_own_event(runtime: Runtime) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed", "draft", "placed", "placed", "draft"])
    writ.delete(MANAGER, "Order", ids[3])
    theirs = orders(writ, OTHER, ["placed"])
    runtime.catch_up()
    done = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"note": "priority"})
    assert (done.status, done.updated_count, sorted(done.ids)) == (
        "executed",
        2,
        sorted([ids[0], ids[2]]),
    )
    events = [writ.history(MANAGER, "Order", rid)[-1] for rid in (ids[0], ids[2])]
    assert [e.event for e in events] == ["Patched", "Patched"]
    assert {e.decision_id for e in events} == {done.decision_id}
    assert {e.correlation_id for e in events} == {done.correlation_id} and done.correlation_id
    assert [writ.get(MANAGER, "Order", rid)["note"] for rid in ids[:3]] == [
        "priority",
        None,
        "priority",
    ]
    assert writ.get(MANAGER, "Order", ids[3], include_deleted=True)["note"] is None
    assert writ.get(OTHER, "Order", theirs[0])["note"] is None
    decided = [d for d in writ.decisions(MANAGER) if d["operation"] == "bulk_update"]
    assert len(decided) == 2 and {d["id"] for d in decided} == {done.decision_id}
    assert gc.isenabled()  # paused while the bulk held its records, on again after


def test_the_collector_is_paused_from_the_views_query_on(runtime: Runtime) -> None:
    """The views' ids are the bulk's first ten thousand objects: a full collection there finds nothing."""
    writ, seen = runtime.writ, []
    orders(writ, MANAGER, ["placed"])
    runtime.catch_up()
    views = writ._bulk.matcher
    assert views is not None

    class Watching:
        def matching_ids(self, *args: Any, **options: Any) -> list[UUID]:
            seen.append(gc.isenabled())
            return views.matching_ids(*args, **options)

    writ._bulk.matcher = Watching()
    assert (
        writ.bulk_update(
            MANAGER, "Order", [("status", "eq", "placed")], {"note": "x"}
        ).updated_count
        == 1
    )
    assert seen == [False] and gc.isenabled()


class Proposing:
    """The bulk's matcher port, answering ``ids`` (in that order) whatever it is asked: a view that lags
    behind the writes, strays out of the tenant or model, or shuffles."""

    def __init__(self, *ids: str) -> None:
        self.ids = [UUID(rid) for rid in ids]

    def matching_ids(self, *_: Any, most: int) -> list[UUID]:
        return list(self.ids)


def test_a_lagging_view_only_proposes(runtime: Runtime) -> None:
    """Candidates the view still shows as matching, but which no longer match as they stand (or are gone),
    are left alone: each record is checked again on its current state."""
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed", "placed", "placed"])

    writ._bulk.matcher = Proposing(*ids)  # a view that has not seen the last two writes
    writ.patch(MANAGER, "Order", ids[1], {"status": "draft"})
    writ.delete(MANAGER, "Order", ids[2])
    done = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"note": "checked"})
    assert (done.updated_count, done.ids) == (1, [ids[0]])
    assert writ.get(MANAGER, "Order", ids[1])["note"] is None


def test_a_view_proposing_another_tenants_or_models_record_is_not_obeyed(runtime: Runtime) -> None:
    """The loader keeps only records of the principal's tenant and the bulk's model, whatever the view says."""
    writ = runtime.writ
    mine, theirs = orders(writ, MANAGER, ["placed"])[0], orders(writ, OTHER, ["placed"])[0]
    customer = writ.create(MANAGER, "Customer", {"name": "Ada", "email": "ada@example.com"}).id

    writ._bulk.matcher = Proposing(mine, theirs, customer)
    done = writ.bulk_update(MANAGER, "Order", [], {"note": "mine"}, all_records=True)
    assert (done.updated_count, done.ids) == (1, [mine])
    assert writ.get(OTHER, "Order", theirs)["note"] is None
    assert writ.get(MANAGER, "Customer", customer)["_version"] == 1


def test_candidates_proposed_in_any_order_are_saved_in_id_order(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "LOAD_PART", 2)
    writ = runtime.writ
    ids = sorted(orders(writ, MANAGER, ["placed"] * 5))

    writ._bulk.matcher = Proposing(ids[3], ids[0], ids[4], ids[2], ids[1])
    done = writ.bulk_update(MANAGER, "Order", [], {"note": "ordered"}, all_records=True)
    saved = writ._core.store.recorder.select_notifications(
        start=None, limit=100, topics=[Record.Patched.TOPIC]
    )
    assert done.ids == ids == [str(n.originator_id) for n in saved]


def test_on_postgresql_the_next_part_is_asked_for_before_this_one_is_handed_over(
    runtime: Runtime, database_url: str
) -> None:
    """The reader of a bulk's parts: on PostgreSQL it sends the next part's queries (its keys asked for first)
    before it hands a part over, so the database works while the part is checked; SQLite reads each part
    when it is wanted. Every part comes whole, in order, either way."""
    writ = runtime.writ
    ids = sorted(UUID(rid) for rid in orders(writ, MANAGER, ["placed"] * 6))
    asked: list[int] = []
    vault = writ._core.store.recorder.vault  # type: ignore[attr-defined]
    key_queries = vault.key_queries

    def counted(owners: Sequence[UUID]) -> Any:
        asked.append(len(owners))
        return key_queries(owners)

    vault.key_queries = counted
    handed = []
    for _, events in writ._core.store.recorder.read_histories([ids[0:2], ids[2:4], ids[4:6]]):  # type: ignore[attr-defined]
        handed.append(([e.originator_id for e in events], len(asked)))
    ahead = database_url.startswith("postgresql")
    assert handed == [(ids[0:2], 2 if ahead else 1), (ids[2:4], 3 if ahead else 2), (ids[4:6], 3)]


def test_records_are_patched_as_the_save_reads_them_and_a_failure_writes_nothing(
    runtime: Runtime, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk's records are patched as the save reads their events: on PostgreSQL (saves inserted a part at a
    time) the first part is in the database before the last record is patched. A record that fails as it is
    patched fails the whole save: nothing is written, and the events table is free for the next writer."""
    monkeypatch.setattr(postgres_recorder, "PART", 2)
    writ = runtime.writ
    ids = sorted(orders(writ, MANAGER, ["placed"] * 5))
    runtime.catch_up()
    steps: list[str] = []
    patch, insert = Record.patch, postgres_recorder.WritPostgresRecorder._insert_part

    def patching(record: Record, *args: Any, **kwargs: Any) -> None:
        steps.append("patch")
        patch(record, *args, **kwargs)

    def inserting(*args: Any) -> Any:
        steps.append("insert")
        return insert(*args)

    monkeypatch.setattr(Record, "patch", patching)
    monkeypatch.setattr(postgres_recorder.WritPostgresRecorder, "_insert_part", inserting)
    assert (
        writ.bulk_update(MANAGER, "Order", [], {"note": "streamed"}, all_records=True).updated_count
        == 5
    )
    if database_url.startswith("postgresql"):
        assert steps.index("insert") < len(steps) - 1 - steps[::-1].index("patch"), steps
    else:
        assert steps == ["patch"] * 5
    # a fresh `writ verify` process: every part's events chained, in order
    report = verify(database_url)
    assert report["ok"], report

    def failing(record: Record, *args: Any, **kwargs: Any) -> None:
        if str(record.id) == ids[-1]:
            raise RuntimeError("cannot be patched")
        patch(record, *args, **kwargs)

    monkeypatch.setattr(Record, "patch", failing)
    runtime.catch_up()
    with pytest.raises(RuntimeError, match="cannot be patched"):
        writ.bulk_update(MANAGER, "Order", [], {"note": "never"}, all_records=True)
    assert [writ.get(MANAGER, "Order", rid)["note"] for rid in ids] == ["streamed"] * 5
    assert writ.create(MANAGER, "Order", {"sku": "AFTER", "total": "1"}).version == 1


@pytest.fixture
def tight_runtime(catalog: Catalog, database_url: str) -> Iterator[Runtime]:
    """A runtime whose PostgreSQL pool holds the fewest connections allowed: two."""
    tight = (
        f"{database_url}&pool_size=1&max_overflow=1"
        if database_url.startswith("postgresql")
        else database_url
    )
    with Runtime(catalog, tight) as opened:
        yield opened


def test_a_snapshot_taken_between_the_reads_of_a_part_is_loaded_whole(
    tight_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part's snapshots are read before its events, which start at each record's latest snapshot: a snapshot
    saved between the two reads leaves events that do not start where the snapshots read say. Such a record
    is loaded on its own (on PostgreSQL, on the pool's second connection while the reads hold the first), not
    refused as a broken chain (simulated: the part's snapshots read as none)."""
    runtime = tight_runtime
    writ = runtime.writ
    writ._core.store.snapshotting_intervals = {**writ._core.store.snapshotting_intervals, Record: 2}  # type: ignore[misc]
    ids = sorted(orders(writ, MANAGER, ["placed"] * 3))
    writ.patch(MANAGER, "Order", ids[1], {"quantity": 5})  # at version 2: snapshotted
    runtime.catch_up()
    read = writ._core.store.recorder.read_histories  # type: ignore[attr-defined]
    seen: list[list[int]] = []

    def snapshots_missed(parts: Any) -> Iterator[Any]:
        for _, events in read(parts):
            seen.append([event.originator_version for event in events])
            yield [], events

    monkeypatch.setattr(writ._core.store.recorder, "read_histories", snapshots_missed)
    done = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"note": "whole"})
    assert seen == [[1, 2, 1]]  # ids[1]'s events start at its snapshot's version
    assert (done.updated_count, done.ids) == (3, ids)
    assert [
        (r["note"], r["quantity"], r["_version"])
        for r in (writ.get(MANAGER, "Order", rid) for rid in ids)
    ] == [("whole", 1, 2), ("whole", 5, 3), ("whole", 1, 2)]


def test_a_record_purged_by_another_process_is_read_with_its_key_gone(
    catalog: Catalog, database_url: str
) -> None:
    """A bulk reads its candidates' keys again with them: a record another process purged (its key destroyed
    there, still cached here, its snapshot shredded) is read as purged and left alone, and its key is no longer
    used here."""
    with Runtime(catalog, database_url) as here, Runtime(catalog, database_url) as there:
        writ = here.writ
        writ._core.store.snapshotting_intervals = {
            **writ._core.store.snapshotting_intervals,
            Record: 2,
        }  # type: ignore[misc]
        gone, kept = orders(writ, MANAGER, ["placed", "placed"])
        writ.patch(MANAGER, "Order", gone, {"quantity": 5})  # at version 2: snapshotted
        assert writ.get(MANAGER, "Order", gone)["quantity"] == 5  # its key cached here
        there.writ.purge(MANAGER, "Order", gone)

        writ._bulk.matcher = Proposing(gone, kept)  # a view that has not seen the purge
        done = writ.bulk_update(MANAGER, "Order", [], {"note": "after purge"}, all_records=True)
        assert (done.updated_count, done.ids) == (1, [kept])
        (purged,) = list(writ._core.loader.each([UUID(gone)], tenant="acme", model="Order"))
        assert (purged.state, purged.version) == ("purged", 3)
        created, patched, _ = (event for event, _ in writ._core.loader.history(UUID(gone)))
        # the key that was cached here is dropped
        assert is_shredded(created) and is_shredded(patched)


def test_more_matches_than_max_affected_write_nothing(runtime: Runtime) -> None:
    writ = runtime.writ
    orders(writ, MANAGER, ["placed"] * 41)
    runtime.catch_up()
    error = refused(
        "BULK_LIMIT_EXCEEDED",
        lambda: writ.bulk_update(MANAGER, "Order", [], {"note": "x"}, all_records=True),
    )
    assert "More than 40 Order records match" in error.message
    assert all(r["note"] is None for r in _all_notes(writ))
    assert [d["code"] for d in writ.decisions(MANAGER) if d["outcome"] == "refused"] == [
        "BULK_LIMIT_EXCEEDED"
    ]


def test_another_tenants_matches_count_for_nothing(runtime: Runtime) -> None:
    """``max_affected`` bounds the caller's own matches: another tenant's 41 that match the same filter are
    not candidates, so they neither trip the limit nor push the caller's out of the views' answer."""
    writ = runtime.writ
    ours = orders(writ, MANAGER, ["placed", "placed"])
    orders(writ, OTHER, ["placed"] * 41)
    runtime.catch_up()
    done = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"note": "ours"})
    assert (done.status, done.updated_count, sorted(done.ids)) == ("executed", 2, sorted(ours))


def test_one_refused_record_refuses_the_whole_bulk(runtime: Runtime) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed", "shipped", "placed"])
    runtime.catch_up()
    refused(
        "WRITE_DENIED",
        lambda: writ.bulk_update(MANAGER, "Order", [], {"note": "x"}, all_records=True),
    )
    assert [writ.get(MANAGER, "Order", rid)["_version"] for rid in ids] == [1, 1, 1]
    assert gc.isenabled()
    refused(
        "GRANT_MISSING",
        lambda: writ.bulk_update(CLERK, "Order", [], {"note": "x"}, all_records=True),
    )
    refused(
        "UNKNOWN_FIELD",
        lambda: writ.bulk_update(MANAGER, "Order", [("colour", "eq", "red")], {"note": "x"}),
    )
    refused("INVALID_INPUT", lambda: writ.bulk_update(MANAGER, "Order", "status", {"note": "x"}))
    codes = [
        d["code"]
        for d in writ.decisions(principal("ada", "acme", "auditor"))
        if d["outcome"] == "refused"
    ]
    assert codes == ["WRITE_DENIED", "GRANT_MISSING", "UNKNOWN_FIELD", "INVALID_INPUT"]


def test_a_bulk_without_a_purpose_is_refused_even_with_nothing_to_match(runtime: Runtime) -> None:
    writ = runtime.writ
    (placed,) = orders(writ, MANAGER, ["placed"])
    runtime.catch_up()
    aimless = MANAGER.model_copy(update={"purpose": " "})
    for filters, everything in (([], True), ([("status", "eq", "draft")], False)):
        refused(
            "PURPOSE_REQUIRED",
            lambda filters=filters, everything=everything: writ.bulk_update(
                aimless, "Order", filters, {"note": "x"}, all_records=everything
            ),
        )
    assert writ.get(MANAGER, "Order", placed)["_version"] == 1


def test_the_bulk_update_grant_is_checked_before_the_matches_are_looked_for(
    runtime: Runtime,
) -> None:
    """A principal without the ``bulk_update`` grant is refused ``GRANT_MISSING`` whatever its filter matches,
    nothing included: the answer tells nothing of the matches, and nothing is written."""
    writ = runtime.writ
    (placed,) = orders(writ, MANAGER, ["placed"])
    runtime.catch_up()
    for status in ("shipped", "placed"):
        with pytest.raises(WritError) as caught:
            writ.bulk_update(CLERK, "Order", [("status", "eq", status)], {"note": "x"})
        assert (caught.value.code, "bulk_update" in caught.value.message) == ("GRANT_MISSING", True)
    assert writ.get(MANAGER, "Order", placed)["_version"] == 1


def test_a_bulk_that_needs_approval_parks_whole_then_runs_on_exactly_its_records(
    runtime: Runtime, database_url: str
) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 3)
    runtime.catch_up()
    parked = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"total": "20000"})
    assert (parked.status, parked.updated_count) == ("pending_approval", 0) and parked.approval_id
    shown = writ.approval(BOSS, parked.approval_id)
    assert shown["preview"]["count"] == 3 and shown["preview"]["sample"][0]["after"] == {
        "total": "20000"
    }
    assert all(writ.get(MANAGER, "Order", rid)["total"] == "10" for rid in ids)
    orders(writ, MANAGER, ["placed"])  # matches now, but was not part of what was approved
    done = writ.approve(BOSS, parked.approval_id)
    assert done.status == "executed" and done.bulk is not None and done.bulk.updated_count == 3
    assert sorted(done.bulk.ids) == sorted(ids)
    raw = RawStore(database_url)
    last = max(raw.last_position(str(rid)) for rid in [parked.approval_id, *ids])
    assert done.position == done.bulk.position == last, "where the approval's save ends in the log"
    assert all(writ.get(MANAGER, "Order", rid)["total"] == "20000" for rid in ids)
    assert writ.history(MANAGER, "Order", ids[0])[-1].approval == {
        "id": parked.approval_id,
        "approvers": ["bob"],
    }


def test_a_bulk_approved_after_one_of_its_records_changed_is_stale(runtime: Runtime) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()
    parked = writ.bulk_update(MANAGER, "Order", [], {"total": "30000"}, all_records=True)
    writ.patch(MANAGER, "Order", ids[1], {"quantity": 5})
    refused("APPROVAL_STALE", lambda: writ.approve(BOSS, str(parked.approval_id)))
    assert [writ.get(MANAGER, "Order", rid)["total"] for rid in ids] == ["10", "10"]


def test_an_approved_bulk_is_decided_again_under_the_catalog_in_force(
    runtime: Runtime, database_url: str
) -> None:
    """The last approval decides the bulk again, as its requester, under the catalog in force: a requester who
    has lost the ``bulk_update`` grant since the park gets nothing written; the request ends ``failed``."""
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()
    parked = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"total": "20000"})
    assert parked.status == "pending_approval" and parked.approval_id
    text = SHOP_CATALOG.replace('bulk_update = ["manager"]', 'bulk_update = ["director"]')
    assert text != SHOP_CATALOG
    later = open_writ(Catalog.from_toml(text), database_url)
    try:
        refused("GRANT_MISSING", lambda: later.approve(BOSS, str(parked.approval_id)))
        assert later.approval(BOSS, str(parked.approval_id))["status"] == "failed"
        assert [later.get(MANAGER, "Order", rid)["total"] for rid in ids] == ["10", "10"]
        assert [len(later.history(MANAGER, "Order", rid)) for rid in ids] == [1, 1]
    finally:
        later.close()


def test_each_record_of_a_bulk_is_decided_under_the_bulk_update_policy(database_url: str) -> None:
    """A bulk is decided under its own policy, not the update's: here ``bulk_update`` denies a quantity above 100,
    which a single patch may set."""
    text = SHOP_CATALOG.replace(
        '  "allow",\n]\nmax_affected = 40',
        '  { action = "deny", when = { field = "after.quantity", op = "gt", value = 100 } },\n'
        '  "allow",\n]\nmax_affected = 40',
    )
    assert text != SHOP_CATALOG
    with Runtime(Catalog.from_toml(text), database_url) as here:
        writ = here.writ
        ids = orders(writ, MANAGER, ["placed"] * 2)
        here.catch_up()
        refused(
            "WRITE_DENIED",
            lambda: writ.bulk_update(
                MANAGER, "Order", [("status", "eq", "placed")], {"quantity": 500}
            ),
        )
        assert [writ.get(MANAGER, "Order", rid)["quantity"] for rid in ids] == [1, 1]
        assert writ.patch(MANAGER, "Order", ids[0], {"quantity": 500}).version == 2, "one at a time"


def test_a_bulk_on_a_model_whose_policy_allows_no_bulk_is_denied_even_with_nothing_to_match(
    database_url: str,
) -> None:
    """Tally grants bulk_update to anyone here but its policy names no bulk_update rule (writes are opt-in): the
    bulk is denied at once, not answered "0 updated" because nothing matched."""
    text = SHOP_CATALOG.replace(
        '[models.Tally.grants]\ncreate = ["*"]',
        '[models.Tally.grants]\nbulk_update = ["*"]\ncreate = ["*"]',
    )
    assert text != SHOP_CATALOG
    with Runtime(Catalog.from_toml(text), database_url) as here:
        refused(
            "WRITE_DENIED",
            lambda: here.writ.bulk_update(CLERK, "Tally", [], {"a": 1}, all_records=True),
        )


def test_changes_the_field_rules_refuse_are_refused_even_with_nothing_to_match(
    runtime: Runtime,
) -> None:
    """No record matches, yet the changes are judged as on an empty record: refused, and recorded."""
    writ = runtime.writ
    runtime.catch_up()
    for code, changes in (
        ("INVALID_FIELD_VALUE", {"quantity": 0}),
        ("FIELD_NOT_WRITABLE", {"created_by": "mallory"}),
        ("UNKNOWN_FIELD", {"colour": "red"}),
    ):
        refused(
            code,
            lambda changes=changes: writ.bulk_update(
                MANAGER, "Order", [("status", "eq", "placed")], changes
            ),
        )
    assert [d["code"] for d in writ.decisions(MANAGER) if d["outcome"] == "refused"] == [
        "INVALID_FIELD_VALUE",
        "FIELD_NOT_WRITABLE",
        "UNKNOWN_FIELD",
    ]


def test_a_repeated_bulk_returns_the_first_result(runtime: Runtime) -> None:
    writ = runtime.writ
    orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()
    first = writ.bulk_update(
        MANAGER, "Order", [], {"note": "once"}, all_records=True, idempotency_key="bulk-1"
    )
    again = writ.bulk_update(
        MANAGER, "Order", [], {"note": "once"}, all_records=True, idempotency_key="bulk-1"
    )
    assert again.replayed and (again.decision_id, again.updated_count) == (first.decision_id, 2)
    refused(
        "IDEMPOTENCY_KEY_REUSED",
        lambda: writ.bulk_update(
            MANAGER, "Order", [], {"note": "twice"}, all_records=True, idempotency_key="bulk-1"
        ),
    )
    assert [d["code"] for d in writ.decisions(MANAGER) if d["outcome"] == "refused"] == [
        "IDEMPOTENCY_KEY_REUSED"
    ]


def _racing(
    writ: Writ, other: Writ, record_id: str, times: int, newcomers: list[str] | None = None
) -> list[int]:
    """Make ``other`` (another service on the same store, as another process would be) patch ``record_id``
    after the bulk decided its records and before it saves, on its first ``times`` attempts (and create a
    matching order into ``newcomers``)."""
    decide, attempts = writ._bulk.decide_bulk, []

    def deciding(*args: Any) -> Any:
        decided = decide(*args)
        attempts.append(len(decided))
        if len(attempts) <= times:
            other.patch(MANAGER, "Order", record_id, {"quantity": len(attempts) + 1})
            if newcomers is not None:
                newcomers.extend(orders(other, MANAGER, ["placed"]))
        return decided

    writ._bulk.decide_bulk = deciding  # type: ignore[method-assign]
    return attempts


def test_a_bulk_that_lost_a_race_decides_again_on_fresh_state(
    runtime: Runtime, catalog: Catalog, database_url: str
) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 3)
    runtime.catch_up()
    with Runtime(catalog, database_url) as other:
        newcomers: list[str] = []
        attempts = _racing(writ, other.writ, ids[1], times=1, newcomers=newcomers)
        done = writ.bulk_update(
            MANAGER,
            "Order",
            [],
            {"note": "after the race"},
            all_records=True,
            idempotency_key="bulk-race",
        )
    assert attempts == [3, 3] and done.updated_count == 3
    # the candidates stay those first proposed
    assert writ.get(MANAGER, "Order", newcomers[0])["note"] is None
    rows = [writ.get(MANAGER, "Order", rid) for rid in ids]
    assert [(r["note"], r["_version"]) for r in rows] == [
        ("after the race", 2),
        ("after the race", 3),
        ("after the race", 2),
    ]
    assert rows[1]["quantity"] == 2  # the other write stands, the bulk's patch came after it
    assert [e.event for e in writ.history(MANAGER, "Order", ids[1])] == [
        "Created",
        "Patched",
        "Patched",
    ]


def test_a_bulk_that_keeps_losing_fails_with_conflict_and_writes_nothing(
    runtime: Runtime, catalog: Catalog, database_url: str
) -> None:
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()
    with Runtime(catalog, database_url) as other:
        attempts = _racing(writ, other.writ, ids[0], times=99)
        error = refused(
            "VERSION_CONFLICT",
            lambda: writ.bulk_update(
                MANAGER,
                "Order",
                [],
                {"note": "never"},
                all_records=True,
                idempotency_key="bulk-lost",
            ),
        )
    assert len(attempts) == 3 and "nothing was written" in error.message
    assert [writ.get(MANAGER, "Order", rid)["note"] for rid in ids] == [None, None]
    failed = [d for d in writ.decisions(MANAGER) if d["outcome"] == "failed"]
    assert [(d["operation"], d["code"]) for d in failed] == [("bulk_update", "VERSION_CONFLICT")]
    del writ._bulk.decide_bulk  # the class's own again
    runtime.catch_up()
    done = writ.bulk_update(
        MANAGER, "Order", [], {"note": "never"}, all_records=True, idempotency_key="bulk-lost"
    )
    assert done.updated_count == 2 and not done.replayed  # a failed attempt claims no key


def _all_notes(writ: Writ) -> list[dict[str, Any]]:
    notifications = writ._core.store.recorder.select_notifications(
        1, 10_000, topics=["writ.record:Created"]
    )
    return [writ.get(MANAGER, "Order", str(n.originator_id)) for n in notifications]


def test_records_a_bulk_brings_to_their_snapshot_interval_are_snapshotted_in_one_insert(
    runtime: Runtime, catalog: Catalog, database_url: str
) -> None:
    """Snapshots are taken from the saved records, all in one insert (not each read back from the store and put
    in a transaction of its own), at the version the save left them; a cold process loads them from there."""
    writ = runtime.writ
    writ._core.store.snapshotting_intervals = {**writ._core.store.snapshotting_intervals, Record: 3}  # type: ignore[misc]
    ids = orders(writ, MANAGER, ["placed"] * 4)
    writ.patch(MANAGER, "Order", ids[0], {"quantity": 2})  # ids[0] at version 2, the others at 1
    runtime.catch_up()
    inserts: list[list[Any]] = []
    insert = writ._core.store.snapshots.recorder.insert_events  # type: ignore[union-attr]

    def counted(stored: Any, **options: Any) -> Any:
        inserts.append([(event.originator_id, event.originator_version) for event in stored])
        return insert(stored, **options)

    writ._core.store.snapshots.recorder.insert_events = counted  # type: ignore[union-attr,method-assign]
    # ids[0] reaches version 3: snapshot
    writ.bulk_update(MANAGER, "Order", [], {"note": "first"}, all_records=True)
    runtime.catch_up()
    # the others reach 3
    writ.bulk_update(MANAGER, "Order", [], {"note": "second"}, all_records=True)
    assert [sorted(put, key=str) for put in inserts] == [
        [(UUID(ids[0]), 3)],
        sorted(((UUID(rid), 3) for rid in ids[1:]), key=str),
    ]
    with Runtime(catalog, database_url) as cold:
        read: list[int] = []
        select_events = cold.writ._core.store.recorder.select_events

        def counting(originator_id: Any, **options: Any) -> Any:
            found = select_events(originator_id, **options)
            read.append(len(found))
            return found

        cold.writ._core.store.recorder.select_events = counting  # type: ignore[method-assign]
        row = cold.writ.get(MANAGER, "Order", ids[0])
    assert (row["note"], row["quantity"], row["_version"]) == ("second", 2, 4)
    # its first event (the tenant check), then from the snapshot at 3 on
    assert sum(read) <= 3, read


def test_records_are_loaded_part_by_part_each_checked(
    runtime: Runtime, catalog: Catalog, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk reads its records ``LOAD_PART`` at a time: every part's records are loaded (by a runtime that has
    none of their keys yet), from their snapshots where they have one, and come out in id order; a record
    tampered with in the last part refuses the whole bulk."""
    monkeypatch.setattr(loading, "LOAD_PART", 3)
    writ = runtime.writ
    writ._core.store.snapshotting_intervals = {**writ._core.store.snapshotting_intervals, Record: 2}  # type: ignore[misc]
    ids = sorted(orders(writ, MANAGER, ["placed"] * 10))
    for rid in ids[::3]:
        for quantity in (2, 3, 4):
            # snapshotted at versions 2 and 4
            writ.patch(MANAGER, "Order", rid, {"quantity": quantity})
    runtime.catch_up()
    with Runtime(catalog, database_url) as cold:
        cold.catch_up()
        alone: list[UUID] = []
        load = cold.writ._core.loader.load

        def counted(record_id: UUID, **options: Any) -> Record | None:
            alone.append(record_id)
            return load(record_id, **options)

        cold.writ._core.loader.load = counted  # type: ignore[method-assign]
        done = cold.writ.bulk_update(
            MANAGER, "Order", [("status", "eq", "placed")], {"note": "parts"}
        )
    # none loaded on its own: each from its part
    assert (done.updated_count, done.ids, alone) == (10, ids, [])
    rows = [writ.get(MANAGER, "Order", rid) for rid in ids]
    assert [(r["note"], r["_version"]) for r in rows] == [
        ("parts", 5 if n % 3 == 0 else 2) for n in range(10)
    ]

    def edit_note(body: dict[str, Any]) -> None:
        body["changes"]["note"] = "edited"

    RawStore(database_url).edit(ids[-1], rows[-1]["_version"], edit_note)
    runtime.catch_up()
    error = refused(
        "CHAIN_BROKEN",
        lambda: writ.bulk_update(MANAGER, "Order", [], {"note": "again"}, all_records=True),
    )
    assert error.record_id == ids[-1]
    assert [writ.get(MANAGER, "Order", rid)["note"] for rid in ids[:-1]] == ["parts"] * 9
    RawStore(database_url).edit(ids[0], rows[0]["_version"], edit_note)
    # refused in the first part, the next part's reads in flight: more times than the pool has connections,
    # none kept
    for _ in range(15):
        error = refused(
            "CHAIN_BROKEN",
            lambda: writ.bulk_update(MANAGER, "Order", [], {"note": "again"}, all_records=True),
        )
        assert error.record_id == ids[0]
    assert writ.patch(MANAGER, "Order", ids[4], {"note": "after"}).version == 3


def test_exactly_max_affected_matches_run(runtime: Runtime) -> None:
    """``max_affected`` is the most a bulk changes, not one past it: the test catalog's 40 matches all run."""
    writ = runtime.writ
    assert runtime.catalog.models["Order"].policy.max_affected == 40, "the bound this test sits on"
    ids = orders(writ, MANAGER, ["placed"] * 40)
    runtime.catch_up()
    done = writ.bulk_update(MANAGER, "Order", [], {"note": "forty"}, all_records=True)
    assert (done.status, done.updated_count, sorted(done.ids)) == ("executed", 40, sorted(ids))
    assert {writ.get(MANAGER, "Order", rid)["note"] for rid in ids} == {"forty"}


def test_a_parked_bulk_larger_than_its_sample_counts_binds_and_runs_every_record(
    runtime: Runtime,
) -> None:
    """The preview shows five records, but the count, the bound versions and the approved run cover all seven."""
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 7)
    runtime.catch_up()
    parked = writ.bulk_update(MANAGER, "Order", [], {"total": "20000"}, all_records=True)
    assert parked.status == "pending_approval" and sorted(parked.ids) == sorted(ids)
    preview = writ.approval(BOSS, str(parked.approval_id))["preview"]
    assert (preview["count"], len(preview["sample"])) == (7, 5)
    done = writ.approve(BOSS, str(parked.approval_id))
    assert done.bulk is not None and sorted(done.bulk.ids) == sorted(ids)
    assert [writ.get(MANAGER, "Order", rid)["total"] for rid in ids] == ["20000"] * 7


def test_one_record_needing_approval_parks_the_whole_bulk_wherever_it_sorts(
    runtime: Runtime,
) -> None:
    """Records are decided in id order; the one whose total would pass 10,000 sorts after one that needs
    nothing, and still the whole bulk parks and nothing is written."""
    writ = runtime.writ
    (small,) = orders(writ, MANAGER, ["placed"])
    big = orders(writ, MANAGER, ["placed"], total="20000")[0]
    while UUID(big).int < UUID(small).int:  # ids are random: draw until the big one sorts second
        writ.delete(MANAGER, "Order", big)
        big = orders(writ, MANAGER, ["placed"], total="20000")[0]
    runtime.catch_up()
    parked = writ.bulk_update(MANAGER, "Order", [("status", "eq", "placed")], {"note": "x"})
    assert (parked.status, parked.updated_count) == ("pending_approval", 0)
    assert [writ.get(MANAGER, "Order", rid)["_version"] for rid in (small, big)] == [1, 1]


def test_a_deleted_record_a_lagging_view_proposes_is_left_alone_under_an_id_filter(
    runtime: Runtime,
) -> None:
    """With a filter on ``id`` the record is checked on its view, and a deleted one is still no match."""
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed", "placed"])

    writ._bulk.matcher = Proposing(*ids)  # a view that has not seen the delete
    writ.delete(MANAGER, "Order", ids[1])
    done = writ.bulk_update(MANAGER, "Order", [("id", "in", ids)], {"note": "checked"})
    assert (done.updated_count, done.ids) == (1, [ids[0]])
    assert writ.get(MANAGER, "Order", ids[1], include_deleted=True)["_version"] == 2


def test_a_repeat_that_loses_to_its_first_under_one_key_returns_the_first_result(
    runtime: Runtime, catalog: Catalog, database_url: str
) -> None:
    """Another process runs the same bulk with the same key while this one decides: this one's save loses,
    and it answers with that run's result instead of deciding again (nor failing ``VERSION_CONFLICT``)."""
    writ = runtime.writ
    ids = orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()
    decide, firsts = writ._bulk.decide_bulk, []

    def bulk(on: Writ) -> Any:
        return on.bulk_update(
            MANAGER, "Order", [], {"note": "once"}, all_records=True, idempotency_key="bulk-twin"
        )

    with Runtime(catalog, database_url) as other:

        def deciding(*args: Any) -> Any:
            decided = decide(*args)
            if not firsts:
                firsts.append(bulk(other.writ))
            return decided

        writ._bulk.decide_bulk = deciding  # type: ignore[method-assign]
        done = bulk(writ)
    assert done.replayed and (done.decision_id, done.updated_count) == (firsts[0].decision_id, 2)
    assert [writ.get(MANAGER, "Order", rid)["_version"] for rid in ids] == [2, 2]


def test_a_bulk_key_reused_with_other_filters_is_refused(runtime: Runtime) -> None:
    writ = runtime.writ
    orders(writ, MANAGER, ["placed", "draft"])
    runtime.catch_up()

    def bulk(status: str) -> Any:
        return writ.bulk_update(
            MANAGER, "Order", [("status", "eq", status)], {"note": "n"}, idempotency_key="bulk-f"
        )

    assert bulk("placed").updated_count == 1
    refused("IDEMPOTENCY_KEY_REUSED", lambda: bulk("draft"))


def test_a_bulk_s_events_carry_its_key_and_its_caller_s_correlation_id(runtime: Runtime) -> None:
    writ = runtime.writ
    (placed,) = orders(writ, MANAGER, ["placed"])
    runtime.catch_up()
    caller = MANAGER.model_copy(update={"correlation_id": "corr-7"})
    done = writ.bulk_update(
        caller, "Order", [], {"note": "n"}, all_records=True, idempotency_key="bulk-m"
    )
    event = writ.history(MANAGER, "Order", placed)[-1]
    assert (done.correlation_id, event.correlation_id, event.idempotency_key) == (
        "corr-7",
        "corr-7",
        "bulk-m",
    )


def test_a_bulk_with_an_unfit_key_or_no_changes_is_refused_at_the_door(runtime: Runtime) -> None:
    writ = runtime.writ
    (placed,) = orders(writ, MANAGER, ["placed"])
    runtime.catch_up()
    for key, changes in (("k" * 201, {"note": "n"}), ("x\x1fy", {"note": "n"}), (None, {})):
        refused(
            "INVALID_INPUT",
            lambda key=key, changes=changes: writ.bulk_update(
                MANAGER, "Order", [], changes, all_records=True, idempotency_key=key
            ),
        )
    assert writ.get(MANAGER, "Order", placed)["_version"] == 1


def test_a_parked_bulk_repeated_with_its_key_returns_the_same_request(runtime: Runtime) -> None:
    writ = runtime.writ
    orders(writ, MANAGER, ["placed"] * 2)
    runtime.catch_up()

    def bulk() -> Any:
        return writ.bulk_update(
            MANAGER, "Order", [], {"total": "20000"}, all_records=True, idempotency_key="bulk-p"
        )

    first, again = bulk(), bulk()
    assert first.status == "pending_approval" and again.replayed
    assert again.approval_id == first.approval_id
    runtime.catch_up()
    assert [a["id"] for a in runtime.views.approvals(BOSS)] == [first.approval_id]

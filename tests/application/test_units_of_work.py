"""Units of work, savepoints and compound operations, on both databases.

The oracle for "nothing was saved" is the events table itself, read with a connection of our own.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError

from application import retry
from application.compound import Compound
from application.group_commit import RaceLost
from application.retry import OTHER_ATTEMPTS, Retry
from application.service import Writ
from domain.catalog import Catalog
from domain.decision import Decision
from domain.errors import (
    ApprovalRequiredError,
    RecordNotFoundError,
    UniqueViolationError,
    ValidationFailedError,
    VersionConflictError,
    WriteDeniedError,
    WritError,
)
from domain.record import Record
from entrypoints.bootstrap import open_writ
from tests.application.refusals import topics_since
from tests.catalogs import principal
from tests.support import saves, stored_rows

CLERK, MANAGER = principal("carol", "acme", "clerk"), principal("maria", "acme", "manager")
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def topics(database_url: str) -> Tally[str]:
    return Tally(row.topic for row in stored_rows(database_url))


def records(database_url: str) -> int:
    return sum(1 for row in stored_rows(database_url) if row.topic == "writ.record:Created")


def test_a_unit_spans_models_sees_its_own_changes_and_commits_in_one_save(
    sales: Writ, database_url: str
) -> None:
    member = sales.create(CLERK, "Member", {"email": "m@x"})
    with sales.transaction(CLERK) as tx:
        sale = tx.create("Sale", {"title": "Desk", "total": "100"})
        # sees the staged sale, and the staged item
        item = tx.create("SaleItem", {"sale_id": sale.id, "sku": "LEG", "qty": 4})
        tx.patch("SaleItem", item.id, {"qty": 5})
        tx.patch("Member", member.id, {"name": "Mo"})
        assert sale.position is None and sales.get(CLERK, "Member", member.id)["name"] is None, (
            "nothing yet"
        )
    positions = [result.position for result in tx.results]
    assert [r.model for r in tx.results] == ["Sale", "SaleItem", "SaleItem", "Member"]
    assert all(p is not None for p in positions)
    first, last = saves(database_url)[-1]
    saved = [row for row in stored_rows(database_url) if first <= row.id <= last]
    assert all(first <= p <= last for p in positions if p is not None), (
        "one save holds the whole unit"
    )
    assert Tally(row.topic for row in saved) == Tally(
        {
            "writ.record:Created": 2,
            "writ.record:Patched": 2,
            "writ.family:Created": 1,
            "writ.family:Adopted": 1,
            "writ.counter:Created": 2,
            "writ.counter:Advanced": 2,
            "writ.unique:Created": 1,
        }
    ), "records, the family, both counters (number, sequence) and the slug's claim"
    assert (
        sales.get(CLERK, "SaleItem", item.id)["qty"] == 5
        and sales.get(CLERK, "Member", member.id)["name"] == "Mo"
    )
    assert tx.results[1].version == 1 and tx.results[2].version == 2


def test_a_block_that_raises_leaves_nothing_at_all(sales: Writ, database_url: str) -> None:
    sales.create(CLERK, "Sale", {"title": "first", "total": "1"})  # ORD-…-0001
    before = topics(database_url)
    with pytest.raises(RuntimeError, match="changed my mind"), sales.transaction(CLERK) as tx:
        tx.create("Sale", {"title": "second", "total": "2"})
        tx.create("Member", {"email": "gone@x"})
        raise RuntimeError("changed my mind")
    assert topics(database_url) == before, (
        "no events, no decision marked executed, no counter advanced"
    )
    assert (
        sales.create(CLERK, "Sale", {"title": "third", "total": "3"})
        .data["number"]
        .endswith("-0002")
    )
    assert sales.create(CLERK, "Member", {"email": "gone@x"}).status == "executed", (
        "its unique claim was never kept"
    )


def test_a_failing_savepoint_is_discarded_alone(sales: Writ, database_url: str) -> None:
    with sales.transaction(CLERK) as tx:
        kept = tx.create("Sale", {"title": "kept", "total": "1"})
        with pytest.raises(ValueError, match="inner"), tx.savepoint():
            tx.create("Sale", {"title": "discarded", "total": "2"})
            tx.patch("Sale", kept.id, {"note": "from the discarded block"})
            tx.create("Member", {"email": "inner@x"})
            raise ValueError("inner")
        with tx.savepoint():
            tx.patch("Sale", kept.id, {"note": "kept note"})
        last = tx.create("Sale", {"title": "after", "total": "3"})
    assert [r.data["number"][-4:] for r in tx.results if r.model == "Sale" and r.version == 1] == [
        "0001",
        "0002",
    ]
    assert sales.get(CLERK, "Sale", kept.id)["note"] == "kept note"
    assert sales.get(CLERK, "Sale", last.id)["number"].endswith("-0002"), (
        "the discarded create took no number"
    )
    assert "discarded" not in str(
        [sales.get(CLERK, "Sale", r.id)["title"] for r in tx.results if r.model == "Sale"]
    )
    assert records(database_url) == 2
    sales.create(CLERK, "Member", {"email": "inner@x"})  # the discarded claim was never kept


def test_a_refused_command_raises_at_once_and_the_unit_goes_on(
    sales: Writ, database_url: str
) -> None:
    with sales.transaction(CLERK) as tx:
        tx.create("Sale", {"title": "ok", "total": "1"})
        with pytest.raises(WriteDeniedError):
            tx.create("Sale", {"title": "unlucky", "total": "13"})
        with pytest.raises(ValidationFailedError):
            tx.create("Sale", {"title": "bad", "total": "1", "discount": "2"})
        tx.create("Sale", {"title": "ok too", "total": "2"})
    assert [r.data["number"][-4:] for r in tx.results] == ["0001", "0002"], (
        "refusals took no number"
    )
    refused = [
        d for d in sales.decisions(principal("ada", "acme", "auditor")) if d["outcome"] == "refused"
    ]
    assert {d["code"] for d in refused} == {"WRITE_DENIED", "VALIDATION_FAILED"}, (
        "refusals are recorded"
    )


def test_a_command_needing_approval_cannot_wait_inside_a_unit(sales: Writ) -> None:
    sale = sales.create(CLERK, "Sale", {"title": "big", "total": "1"})
    with sales.transaction(CLERK) as tx:
        with pytest.raises(ApprovalRequiredError, match="send the command on its own"):
            tx.patch("Sale", sale.id, {"total": "20000"})
        tx.patch("Sale", sale.id, {"note": "small change"})
    assert sales.get(CLERK, "Sale", sale.id)["total"] == "1"
    refusals = [d for d in sales.decisions(CLERK) if d["outcome"] == "refused"]
    assert [(d["operation"], d["code"]) for d in refusals] == [("update", "APPROVAL_REQUIRED")]


def test_a_unit_with_an_unfit_key_is_refused_before_its_block_runs(sales: Writ) -> None:
    ran = []
    for key in ("k" * 201, "x\x1fy"):
        with pytest.raises(WritError) as caught, sales.transaction(CLERK, idempotency_key=key):
            ran.append(key)
        assert caught.value.code == "INVALID_INPUT"
    assert ran == []


def test_a_conflict_at_commit_redecides_the_whole_unit_on_fresh_state(
    sales: Writ, database_url: str
) -> None:
    sale = sales.create(CLERK, "Sale", {"title": "contested", "total": "1"})
    with sales.transaction(CLERK) as tx:
        tx.patch("Sale", sale.id, {"note": "from the unit"})
        tx.create("Sale", {"title": "new in unit", "total": "1"})
        sales.patch(CLERK, "Sale", sale.id, {"channel": "web"})  # commits first
        sales.create(CLERK, "Sale", {"title": "took 0002", "total": "1"})  # takes the unit's number
    stored = sales.get(CLERK, "Sale", sale.id)
    assert (stored["note"], stored["channel"], stored["_version"]) == ("from the unit", "web", 3)
    assert tx.results[1].data is not None and tx.results[1].data["number"].endswith("-0003"), (
        "re-decided: the unit took the next free number"
    )


def test_a_stale_expected_version_fails_the_whole_unit(sales: Writ, database_url: str) -> None:
    sale = sales.create(CLERK, "Sale", {"title": "contested", "total": "1"})
    before = topics(database_url)
    with pytest.raises(VersionConflictError), sales.transaction(CLERK) as tx:
        tx.create("Member", {"email": "half@x"})
        tx.patch("Sale", sale.id, {"note": "unit"}, expected_version=1)
        sales.patch(CLERK, "Sale", sale.id, {"note": "someone else"})
    after = topics(database_url)
    assert after - before == Tally({"writ.record:Patched": 1, "writ.decision:Created": 1}), (
        "only the other write and the unit's failed decision"
    )


def test_a_unit_with_an_expected_version_is_decided_again_when_another_of_its_records_changed(
    sales: Writ, sales_catalog: Catalog, database_url: str
) -> None:
    """A race lost on what no expected version names (here the unit's counter, taken by another process) is
    contention like any other: the unit is decided again, and its pinned record, unchanged, still matches. It
    failed VERSION_CONFLICT at once, as though the pinned record had changed."""
    other = open_writ(sales_catalog, database_url)
    try:
        sale = sales.create(CLERK, "Sale", {"title": "pinned", "total": "1"})
        with sales.transaction(CLERK) as tx:
            tx.create("Sale", {"title": "numbered in the unit", "total": "1"})
            tx.patch("Sale", sale.id, {"note": "from the unit"}, expected_version=1)
            other.create(CLERK, "Sale", {"title": "took 0002", "total": "1"})
        assert tx.results[0].data is not None and tx.results[0].data["number"].endswith("-0003")
        assert sales.get(CLERK, "Sale", sale.id)["note"] == "from the unit"
        sale = sales.create(CLERK, "Sale", {"title": "pinned too", "total": "1"})
        with (
            pytest.raises(VersionConflictError, match="is at version 2, not 1"),
            sales.transaction(CLERK) as tx,
        ):
            tx.create("Sale", {"title": "numbered again", "total": "1"})
            tx.patch("Sale", sale.id, {"note": "from the unit"}, expected_version=1)
            other.create(CLERK, "Sale", {"title": "takes the unit's number", "total": "1"})
            other.patch(CLERK, "Sale", sale.id, {"note": "and changes the pinned record"})
    finally:
        other.close()


def test_two_units_racing_for_one_counter_both_commit_with_distinct_numbers(
    sales: Writ, sales_catalog: Catalog, database_url: str
) -> None:
    """Two services (as two processes would: no lock shared) stage the same number; one commit conflicts,
    and that unit is decided again and takes the next number."""
    other = open_writ(sales_catalog, database_url)
    barrier = threading.Barrier(2)
    numbers: list[str] = []

    def unit(writ: Writ) -> None:
        with writ.transaction(CLERK) as tx:
            tx.create("Sale", {"title": "race", "total": "1"})
            barrier.wait(timeout=30)  # both staged ORD-…-0001 before either commits
        numbers.append(tx.results[0].data["number"])  # type: ignore[index]

    threads = [threading.Thread(target=unit, args=(writ,)) for writ in (sales, other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    other.close()
    assert sorted(n[-4:] for n in numbers) == ["0001", "0002"]


def failing_saves(writ: Writ, error: Exception, times: int) -> list[int]:
    """The write's first ``times`` saves of records raise ``error`` (a rival won the race, or the store refused);
    those saves attempted, counted (a failed decision's own save goes through)."""
    core, attempted = writ._core, []
    save = core.save

    def flaky(*aggregates: Any) -> Any:
        if not any(isinstance(aggregate, Record) for aggregate in aggregates):
            return save(*aggregates)
        attempted.append(len(attempted))
        if len(attempted) <= times:
            raise error
        return save(*aggregates)

    core.save = flaky  # type: ignore[method-assign]
    return attempted


def test_a_counter_s_lost_race_gets_the_counters_budget(
    sales: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A race lost on a counter is contention worth waiting out: the write is decided again past a budget of
    three, which a race on a record would exhaust, and takes the number left free."""
    monkeypatch.setattr(retry, "back_off", lambda _: None)
    sales._core.retry = Retry(sales._core.record_refusal, attempts=3)
    attempted = failing_saves(sales, RaceLost("a rival took the number"), 5)
    sale = sales.create(CLERK, "Sale", {"title": "contended", "total": "1"})
    assert len(attempted) == 6 and sale.data is not None and sale.data["number"].endswith("-0001")
    attempted = failing_saves(sales, RaceLost("a rival patched it first"), 5)
    with pytest.raises(VersionConflictError):
        sales.patch(CLERK, "Sale", sale.id, {"note": "on a record, three attempts"})
    assert len(attempted) == 3


def test_a_counter_s_other_integrity_error_gets_only_the_other_budget(
    sales: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integrity error the store did not report as a lost race is no contention, even for a write that takes
    a number: decided again at most ``OTHER_ATTEMPTS`` times, whatever larger budget the caller has."""
    monkeypatch.setattr(retry, "back_off", lambda _: None)
    sales._core.retry = Retry(sales._core.record_refusal, attempts=50)
    attempted = failing_saves(sales, IntegrityError("a constraint of the store"), 100)
    with pytest.raises(VersionConflictError):
        sales.create(CLERK, "Sale", {"title": "refused by the store", "total": "1"})
    assert len(attempted) == OTHER_ATTEMPTS


def test_a_unit_with_an_idempotency_key_runs_once(sales: Writ, database_url: str) -> None:
    def run() -> list[Any]:
        with sales.transaction(CLERK, idempotency_key="unit-1") as tx:
            tx.create("Sale", {"title": "once", "total": "1"})
            tx.create("Member", {"email": "once@x"})
        return tx.results

    first, again = run(), run()
    assert [r.id for r in again] == [r.id for r in first] and all(r.replayed for r in again)
    assert records(database_url) == 2


def test_a_unit_with_an_idempotency_key_and_a_discarded_savepoint_runs_once(
    sales: Writ, database_url: str
) -> None:
    """A savepoint's discarded commands are no part of the unit: its repeat is answered with the first results,
    each command's own, as if the discarded block had never been."""

    def run() -> list[Any]:
        with sales.transaction(CLERK, idempotency_key="unit-2") as tx:
            tx.create("Sale", {"title": "first", "total": "1"})
            with pytest.raises(ValueError, match="inner"), tx.savepoint():
                tx.create("Member", {"email": "discarded@x"})
                raise ValueError("inner")
            tx.create("Member", {"email": "kept@x"})
        return tx.results

    first, again = run(), run()
    assert [(r.model, r.id) for r in first] == [(r.model, r.id) for r in again]
    assert [r.model for r in first] == ["Sale", "Member"] and all(r.replayed for r in again)
    assert records(database_url) == 2


def test_a_unit_repeating_a_key_with_more_fewer_or_no_commands_is_a_reused_key(
    sales: Writ, database_url: str
) -> None:
    with sales.transaction(CLERK, idempotency_key="unit-4") as tx:
        tx.create("Member", {"email": "one@x"})
        tx.create("Member", {"email": "two@x"})
    emails = ["one@x", "two@x", "three@x"], ["one@x"], []
    for repeat in emails:
        position = sales._core.store.recorder.max_notification_id()
        with (
            pytest.raises(WritError) as reused,
            sales.transaction(CLERK, idempotency_key="unit-4") as tx,
        ):
            for email in repeat:
                tx.create("Member", {"email": email})
        assert reused.value.code == "IDEMPOTENCY_KEY_REUSED", repeat
        assert topics_since(sales, position) == [Decision.Created.TOPIC], "the refusal, recorded"
    assert records(database_url) == 2


def test_a_unit_lets_go_of_its_records_when_it_ends_committed_or_discarded(writ: Writ) -> None:
    """A unit takes this process's turn on each record it decides on; once it ends, another thread's write
    takes the turn at once."""
    rid = writ.create(CLERK, "Order", {"sku": "TURN-1", "total": "1"}).id

    def free() -> bool:
        taken: list[bool] = []

        def take() -> None:
            release = writ._core.locks.take(UUID(rid), 0)
            taken.append(release is not None)
            if release is not None:
                release()

        other = threading.Thread(target=take)
        other.start()
        other.join()
        return taken[0]

    with writ.transaction(CLERK) as tx:
        tx.patch("Order", rid, {"total": "2"})
        assert not free()
    assert free()
    with pytest.raises(ValueError, match="discard"), writ.transaction(CLERK) as tx:
        tx.patch("Order", rid, {"total": "3"})
        raise ValueError("discard")
    assert free()


def test_a_unit_cannot_be_used_outside_its_block(sales: Writ) -> None:
    with sales.transaction(CLERK) as tx:
        pass
    with pytest.raises(Exception, match="use it inside its with block"):
        tx.create("Sale", {"title": "late", "total": "1"})


def test_a_compound_failure_marks_the_parent_failed_keeps_the_steps_and_propagates(
    sales: Writ,
) -> None:
    with (
        pytest.raises(KeyboardInterrupt),
        sales.compound(CLERK, "Sale", {"title": "import", "total": "1"}) as job,
    ):
        assert job.parent is not None
        first = job.create("SaleItem", {"sale_id": job.parent.id, "sku": "ONE"})
        job.create("SaleItem", {"sale_id": job.parent.id, "sku": "TWO"})
        raise KeyboardInterrupt
    history = sales.history(CLERK, "Sale", job.parent.id)
    assert [entry.event for entry in history] == ["Created", "Failed"]
    assert sales.get(CLERK, "SaleItem", first.id)["sku"] == "ONE", "children stay for diagnosis"
    assert len(job.steps) == 2


def test_a_compound_that_succeeds_is_not_marked(sales: Writ) -> None:
    with sales.compound(CLERK, "Sale", {"title": "fine", "total": "1"}) as job:
        assert job.parent is not None
        job.create("SaleItem", {"sale_id": job.parent.id, "sku": "ONE"})
    assert [e.event for e in sales.history(CLERK, "Sale", job.parent.id)] == ["Created"]


def test_a_compound_failure_s_reason_is_cut_to_500_characters(sales: Writ) -> None:
    with (
        pytest.raises(ValueError, match="x"),
        sales.compound(CLERK, "Sale", {"title": "long", "total": "1"}) as job,
    ):
        raise ValueError("x" * 2000)
    assert job.parent is not None
    failed = sales.history(CLERK, "Sale", job.parent.id)[-1]
    assert (failed.event, failed.reason) == ("Failed", "ValueError: " + "x" * 488)


def test_a_compound_repeated_with_its_key_finds_its_first_parent(
    sales: Writ, database_url: str
) -> None:
    def run() -> Any:
        with sales.compound(
            CLERK, "Sale", {"title": "job", "total": "1"}, idempotency_key="job-1"
        ) as job:
            assert job.parent is not None
        return job.parent

    first, again = run(), run()
    assert (again.id, again.replayed) == (first.id, True)
    assert records(database_url) == 1


def test_a_failure_to_mark_is_logged_and_never_masks_the_original_error(
    sales: Writ, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.ERROR, "writ.compound"),
        pytest.raises(UniqueViolationError),
        sales.compound(CLERK, "Sale", {"title": "doomed", "total": "1"}) as job,
    ):
        assert job.parent is not None
        sales.purge(MANAGER, "Sale", job.parent.id)  # the parent is gone: marking it will fail
        sales.create(CLERK, "Member", {"email": "dup@x"})
        job.create("Member", {"email": "dup@x"})
    assert "could not mark Sale" in caplog.text and "UniqueViolationError" in caplog.text
    with pytest.raises(RecordNotFoundError):
        sales.get(CLERK, "Sale", job.parent.id)


def test_an_interruption_while_marking_never_masks_the_original_error(
    sales: Writ, caplog: pytest.LogCaptureFixture
) -> None:
    """Marking the parent is stopped by a ``BaseException`` of its own: logged, and the block's error goes on."""

    class Stopped(BaseException):
        pass

    class StoppedWhileMarking:  # the service's steps, but marking the parent is stopped
        def __init__(self) -> None:
            self.create, self.patch = sales._commands.create, sales._commands.patch

        def fail(self, *_: Any) -> Any:
            raise Stopped

    job = Compound(StoppedWhileMarking(), CLERK, "Sale", {"title": "stopped", "total": "1"}, None)
    with (
        caplog.at_level(logging.ERROR, "writ.compound"),
        pytest.raises(ValueError, match="original"),
        job,
    ):
        raise ValueError("original")
    assert "could not mark Sale" in caplog.text


def test_a_record_staged_in_a_unit_is_found_only_in_its_own_tenant(writ: Writ) -> None:
    """Within one unit a staged record is read as the store would give it: another tenant finds nothing."""
    stored = writ.create(CLERK, "Order", {"sku": "S-1", "total": "1"}).id
    staged = Record.create("Order", "acme", {"sku": "A-1", "total": "1"}, {"actor": "carol"}, NOW)
    with writ._core.unit() as unit:
        unit.touch(staged)
        staging = writ._core.staging
        assert staging.record(unit, staged.id, CLERK) is staged
        assert staging.record(unit, staged.id, None) is staged
        assert staging.record(unit, staged.id, principal("gus", "globex")) is None
        stored_id = UUID(stored)
        assert staging.record(unit, stored_id, principal("gus", "globex")) is None
        found = staging.record(unit, stored_id, CLERK)
        assert found is not None and found.tenant == "acme"

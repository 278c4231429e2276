"""Optimistic concurrency and idempotency under real thread races, on both databases."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import pytest

from application import retry
from application.retry import Retry
from application.service import Writ
from domain.commands import Patch
from domain.errors import GrantMissingError, VersionConflictError
from domain.idempotency import IdempotencyKey
from domain.record import Record
from entrypoints.bootstrap import open_writ
from tests.catalogs import principal

T = TypeVar("T")
FIELDS = "abcdefgh"


def race(count: int, action: Callable[[int], T]) -> list[T | Exception]:
    """Run ``action(i)`` in ``count`` threads released together; collect results or errors."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T | Exception:
        barrier.wait(timeout=10)
        try:
            return action(i)
        except Exception as exc:
            return exc

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def topics_in_log(writ: Writ, topic: str) -> int:
    return len(writ._core.store.recorder.select_notifications(1, 10_000, topics=[topic]))


def test_stale_writes_with_expected_version_conflict(writ: Writ) -> None:
    record_id = writ.create(principal(), "Tally", {}).id
    outcomes = race(
        8,
        lambda i: writ.patch(
            principal(f"u{i}"), "Tally", record_id, {FIELDS[i]: i}, expected_version=1
        ),
    )
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    losers = [o for o in outcomes if isinstance(o, Exception)]
    assert len(winners) == 1 and len(losers) == 7
    assert all(isinstance(o, VersionConflictError) for o in losers), losers
    assert writ.get(principal(), "Tally", record_id)["_version"] == 2


def test_without_expected_version_no_update_is_lost(writ: Writ) -> None:
    record_id = writ.create(principal(), "Tally", {}).id
    outcomes = race(8, lambda i: writ.patch(principal(f"u{i}"), "Tally", record_id, {FIELDS[i]: i}))
    assert not [o for o in outcomes if isinstance(o, Exception)]
    final = writ.get(principal(), "Tally", record_id)
    assert {name: final[name] for name in FIELDS} == {name: i for i, name in enumerate(FIELDS)}
    assert final["_version"] == 9
    actors = {h.actor for h in writ.history(principal(), "Tally", record_id)[1:]}
    assert actors == {f"u{i}" for i in range(8)}


def test_one_process_s_writers_take_turns_on_a_record_and_lose_no_race(
    writ: Writ, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers of one process take turns on a record before they load it: none decides on a state another is
    about to replace, so none loses a race and none backs off (the retries would hide the loss otherwise)."""
    backed_off: list[int] = []
    monkeypatch.setattr(retry, "back_off", backed_off.append)
    record_id = writ.create(principal(), "Tally", {}).id
    outcomes = race(8, lambda i: writ.patch(principal(f"u{i}"), "Tally", record_id, {FIELDS[i]: i}))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert sorted(o.version for o in outcomes) == list(range(2, 10))  # type: ignore[union-attr]
    assert backed_off == [], "a writer lost its race to a writer of its own process"


def test_a_pinned_write_whose_record_changed_before_its_save_is_refused_version_conflict(
    writ: Writ, database_url: str
) -> None:
    """A write naming the version it expects, overtaken on its record between decide and save, is decided again
    like any write that lost a race, and its version check refuses it on the fresh state (one refused decision,
    nothing written). A race it lost elsewhere lets it through: test_units_of_work."""
    loser = overtaken(writ.catalog, database_url, writ, None, times=1)
    loads: list[Any] = []
    load = loser._core.load
    loser._core.load = lambda *args: loads.append(args) or load(*args)  # type: ignore[method-assign]
    try:
        record_id = writ.create(principal(), "Tally", {"a": 1}).id
        with pytest.raises(VersionConflictError, match="is at version 2, not 1"):
            loser.patch(principal("loser"), "Tally", record_id, {"a": 2}, expected_version=1)
        assert len(loads) == 2, "decided again on the record as it is now"
        refused = writ.decisions(principal("ada", "acme", "auditor"), actor="loser")
        assert [(d["outcome"], d["code"]) for d in refused] == [("refused", "VERSION_CONFLICT")]
        assert writ.get(principal(), "Tally", record_id)["a"] == 1
    finally:
        loser.close()


def test_a_unit_whose_race_was_on_its_unpinned_record_is_decided_again_and_lands(
    writ: Writ, database_url: str
) -> None:
    """The unit's first record (no expected version) is overtaken by another process; its pinned record is not
    touched, so the unit, decided again, still matches its expected version and is saved whole."""
    loser = overtaken(writ.catalog, database_url, writ, None, times=1)
    try:
        loose = writ.create(principal(), "Tally", {"a": 1}).id
        pinned = writ.create(principal(), "Tally", {"a": 1}).id
        loser.execute_many(
            principal("loser"),
            [
                Patch(model="Tally", id=loose, changes={"a": 2}),
                Patch(model="Tally", id=pinned, changes={"a": 2}, expected_version=1),
            ],
        )
        assert writ.get(principal(), "Tally", pinned)["_version"] == 2
        assert writ.get(principal(), "Tally", loose)["_version"] == 3, (
            "the rival's patch, then the unit's"
        )
    finally:
        loser.close()


def test_concurrent_retries_of_one_idempotent_create_write_once(writ: Writ) -> None:
    def create(_: int) -> Any:
        return writ.create(
            principal(), "Order", {"sku": "IDEM-1", "total": "5"}, idempotency_key="order-1"
        )

    outcomes = race(5, create)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len({o.id for o in outcomes}) == 1  # type: ignore[union-attr]
    assert sum(o.replayed for o in outcomes) == 4  # type: ignore[union-attr]
    assert len({o.position for o in outcomes}) == 1  # type: ignore[union-attr]
    assert topics_in_log(writ, Record.Created.TOPIC) == 1
    assert topics_in_log(writ, IdempotencyKey.Created.TOPIC) == 1
    assert [d["outcome"] for d in writ.decisions(principal())] == ["allowed"]


def test_idempotent_repeat_returns_first_result_and_appends_nothing(writ: Writ) -> None:
    first = writ.create(principal(), "Order", {"sku": "IDEM-2", "total": "5"}, idempotency_key="k2")
    position = writ._core.store.recorder.max_notification_id()
    again = writ.create(principal(), "Order", {"sku": "IDEM-2", "total": "5"}, idempotency_key="k2")
    assert again.replayed and (again.id, again.version, again.position) == (
        first.id,
        1,
        first.position,
    )
    assert writ._core.store.recorder.max_notification_id() == position
    other_user = writ.create(
        principal("bob"), "Order", {"sku": "IDEM-2", "total": "5"}, idempotency_key="k2"
    )
    assert other_user.id != first.id and not other_user.replayed


def test_a_repeat_returns_the_data_its_first_run_wrote_not_the_records_data_now(
    writ: Writ,
) -> None:
    first = writ.create(principal(), "Order", {"sku": "IDEM-3", "total": "5"}, idempotency_key="k3")
    writ.patch(principal(), "Order", first.id, {"total": "7"})
    again = writ.create(principal(), "Order", {"sku": "IDEM-3", "total": "5"}, idempotency_key="k3")
    assert again.replayed and again.data is not None
    assert (again.id, again.version, again.data["total"]) == (first.id, 1, "5")


def overtaken(
    catalog: Any, database_url: str, rival: Writ, attempts: int | None, times: int | None = None
) -> Writ:
    """Another command service on the same store whose every load (the first ``times`` loads) is overtaken by
    ``rival``'s write to the same record before it saves: a real concurrent writer, on the same database,
    between decide and save (it makes ``attempts`` attempts; None: Writ's own budget)."""
    service = open_writ(catalog, database_url)
    core = service._core
    load = core.load
    left = [times]

    def overtaken_load(record_id: Any, asking: Any) -> Any:
        loaded = load(record_id, asking)
        if left[0] is not None:
            if left[0] == 0:
                return loaded
            left[0] -= 1
        if loaded is not None and loaded.model == "Tally":
            rival.patch(
                principal("rival"), "Tally", record_id, {"b": rival._core.clock().microsecond}
            )
        elif loaded is not None:
            rival.patch(
                principal("rival", loaded.tenant, "manager"),
                loaded.model,
                record_id,
                {"note": str(rival._core.clock().microsecond)},
            )
        return loaded

    core.load = overtaken_load  # type: ignore[method-assign]
    if attempts is not None:
        core.retry = Retry(core.record_refusal, attempts=attempts)
    return service


def test_a_write_that_loses_many_races_to_another_process_still_lands(
    writ: Writ, database_url: str
) -> None:
    """Nothing makes writers in two processes take turns on a record: a write may lose many races in a row
    (more the more processes write it), and is decided again each time, well past a dozen."""
    loser = overtaken(writ.catalog, database_url, writ, None, times=30)
    try:
        record_id = writ.create(principal(), "Tally", {"a": 1}).id
        done = loser.patch(principal("loser"), "Tally", record_id, {"a": 2})
        assert done.version == 32, "thirty rival patches first, then this one"
        assert writ.get(principal(), "Tally", record_id)["a"] == 2
    finally:
        loser.close()


def test_a_write_overtaken_on_every_attempt_fails_with_a_failed_decision(
    writ: Writ, catalog: Any, database_url: str
) -> None:
    loser = overtaken(writ.catalog, database_url, writ, 3)
    try:
        record_id = writ.create(principal(), "Tally", {"a": 1}).id
        try:
            loser.patch(principal("loser"), "Tally", record_id, {"a": 2})
            raise AssertionError("the overtaken write went through")
        except VersionConflictError as exc:
            assert exc.code == "VERSION_CONFLICT"
        assert writ.get(principal(), "Tally", record_id)["a"] == 1
        # three rival patches, no more
        assert writ.get(principal(), "Tally", record_id)["_version"] == 4
        failed = writ.decisions(principal("ada", "acme", "auditor"), actor="loser")
        assert [(d["outcome"], d["code"]) for d in failed] == [("failed", "VERSION_CONFLICT")]
    finally:
        loser.close()


def test_a_repeat_the_rules_would_now_refuse_still_returns_the_first_result(writ: Writ) -> None:
    """The first attempt reads no claim: a repeat is decided like any command, and its refusal is caught by the
    claim before it is recorded."""
    first = writ.create(principal(), "Order", {"sku": "IDEM-3", "total": "5"}, idempotency_key="k3")
    position = writ._core.store.recorder.max_notification_id()
    # same user and tenant: the key's scope; no create grant now
    demoted = principal("alice", "acme", "visitor")
    again = writ.create(demoted, "Order", {"sku": "IDEM-3", "total": "5"}, idempotency_key="k3")
    assert again.replayed and (again.id, again.position) == (first.id, first.position)
    # no refusal recorded, nothing appended
    assert writ._core.store.recorder.max_notification_id() == position
    with pytest.raises(GrantMissingError):
        writ.create(demoted, "Order", {"sku": "IDEM-3", "total": "5"}, idempotency_key="k4")

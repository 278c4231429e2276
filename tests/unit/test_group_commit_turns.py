"""Group commit's turns without a database: every caller answered once, with its own positions, whoever leads,
and leadership handed on when a leader fails or is interrupted.

The store here is a stand-in for the recorder's batch insert (``BatchStore``): it numbers the events of each
batch in order, can hold a batch until the test lets it go, and refuses the saves marked bad. The database
itself is tested in ``tests/application/test_group_commit.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from application import group_commit
from application.group_commit import GroupCommit
from domain.errors import ConfigurationError, ServiceUnavailableError
from tests.support import wait_until


@dataclass
class Event:
    originator_id: UUID = field(default_factory=uuid4)
    originator_version: int = 1
    bad: bool = False


class Mapper:
    def to_stored_event(self, event: Any) -> StoredEvent:
        topic = "bad" if event.bad else "good"
        return StoredEvent(event.originator_id, event.originator_version, topic, b"{}")


class Store:
    """Numbers each batch's events in order; a batch holding a bad save is refused as a whole."""

    def __init__(self, flush: float = 0.0) -> None:
        self.flush = flush
        """Seconds each batch takes, as a commit's flush does (callers queue meanwhile)."""
        self.last = 0
        self.batches: list[int] = []
        self.hold = threading.Event()
        self.hold.set()
        self.holding = threading.Event()

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        self.holding.set()
        self.hold.wait(30)
        time.sleep(self.flush)
        if any(event.topic == "bad" for group in groups for event in group):
            raise RuntimeError("the database refused a row")
        self.batches.append(len(groups))
        placed = []
        for group in groups:
            placed.append(list(range(self.last + 1, self.last + 1 + len(group))))
            self.last += len(group)
        return placed


def _group(store: Store, **bounds: Any) -> GroupCommit:
    return GroupCommit(Mapper(), store, **bounds)  # type: ignore[arg-type]


def _in_threads(count: int, call: Any) -> list[Any]:
    outcomes: list[Any] = [None] * count

    def run(index: int) -> None:
        try:
            outcomes[index] = call(index)
        except BaseException as error:
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    _joined(threads)
    return outcomes


def _joined(threads: list[threading.Thread]) -> None:
    """Every thread finished, or the test fails at one shared deadline (a caller never answered)."""
    deadline = time.monotonic() + 60
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "a caller was never answered"


def test_every_caller_gets_its_own_positions_whoever_leads() -> None:
    store = Store(flush=0.001)
    group = _group(store, max_saves=3)

    def writer(_: int) -> list[tuple[UUID, int]]:
        mine = []
        for _ in range(40):
            events = [Event(), Event()]
            recordings = group.save(events)
            assert [r.domain_event for r in recordings] == events
            mine += [(r.notification.originator_id, r.notification.id) for r in recordings]
        return mine

    outcomes = _in_threads(12, writer)
    positions = [position for outcome in outcomes for _, position in outcome]
    assert sorted(positions) == list(range(1, 12 * 40 * 2 + 1))  # each once: nobody got another's
    assert 1 < max(store.batches) <= 3 and sum(store.batches) == 12 * 40  # batches were shared
    assert not group.leading and group.queued == 0


def test_a_refused_batch_answers_each_caller_alone_and_the_next_save_goes_through() -> None:
    store = Store()
    group = _group(store)
    store.hold.clear()
    leader = threading.Thread(target=group.save, args=([Event()],), daemon=True)
    leader.start()
    assert store.holding.wait(30)
    saves = [[Event()], [Event(bad=True)], [Event()], [Event()]]
    followers: list[Any] = [None] * len(saves)

    def follow(index: int) -> None:
        try:
            followers[index] = group.save(saves[index])
        except RuntimeError as error:
            followers[index] = error

    threads = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(len(saves))]
    for thread in threads:
        thread.start()
    wait_until(lambda: group.queued == len(saves), 30, "every follower queued")
    store.hold.set()
    _joined([leader, *threads])
    assert isinstance(followers[1], RuntimeError)
    assert all(len(followers[i]) == 1 for i in (0, 2, 3))
    assert len(group.save([Event()])) == 1
    assert not group.leading and group.queued == 0


class Interrupted(BaseException):
    pass


def test_a_leader_interrupted_before_its_batch_hands_the_lead_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first caller is interrupted while it waits for a batch to form (``window``): it is answered with
    the interruption, its save is never stored, and a caller queued behind it leads the others' saves."""
    store = Store()
    group = _group(store, window=0.001)
    followers_queued = threading.Event()
    calls = []

    def sleep(_: float) -> None:
        calls.append(1)
        if len(calls) == 1:
            assert followers_queued.wait(30)
            raise Interrupted

    monkeypatch.setattr(group_commit.time, "sleep", sleep)
    first = Event()
    outcome: list[Any] = []

    def lead() -> None:
        try:
            group.save([first])
        except Interrupted as error:
            outcome.append(error)

    leader = threading.Thread(target=lead, daemon=True)
    leader.start()
    wait_until(lambda: group.leading, 30, "the first caller leading")
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(group.save([Event()])), daemon=True)
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: group.queued == 5, 30, "four callers queued behind the first")
    followers_queued.set()
    _joined([leader, *threads])
    assert len(outcome) == 1 and len(results) == 4
    assert store.last == 4  # the interrupted save was never stored
    assert not group.leading and group.queued == 0


@pytest.mark.parametrize("bounds", [{"max_saves": 0}, {"max_events": 0}, {"max_saves": -1}])
def test_a_batch_bound_below_one_is_refused_when_made(bounds: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="at least one save and one event"):
        _group(Store(), **bounds)


def _queued_behind_a_held_leader(group: GroupCommit, store: Store, saves: list[list[Event]]) -> Any:
    """A lone leader's batch held in the store while ``saves`` queue behind it; returns what joins them all and
    gives each caller's outcome (the leader's last) once the store is let go."""
    store.hold.clear()
    outcomes: list[Any] = [None] * (len(saves) + 1)

    def run(index: int, events: list[Event]) -> None:
        try:
            outcomes[index] = group.save(events)
        except BaseException as error:
            outcomes[index] = error

    leader = threading.Thread(target=run, args=(len(saves), [Event()]), daemon=True)
    leader.start()
    assert store.holding.wait(30)
    threads = [
        threading.Thread(target=run, args=(i, events), daemon=True)
        for i, events in enumerate(saves)
    ]
    for thread in threads:
        thread.start()
    wait_until(lambda: group.queued == len(saves), 30, "every follower queued")

    def settled() -> list[Any]:
        store.hold.set()
        _joined([leader, *threads])
        return outcomes

    return settled


def test_a_batch_holds_at_most_max_events() -> None:
    """Three saves of two events queue behind a leader, under a bound of four events a batch: two of them go
    together, the third in the batch after."""
    store = Store()
    group = _group(store, max_events=4)
    settled = _queued_behind_a_held_leader(group, store, [[Event(), Event()] for _ in range(3)])
    outcomes = settled()
    assert [len(outcome) for outcome in outcomes] == [2, 2, 2, 1]
    assert store.batches == [1, 2, 1]


class InterruptedStore(Store):
    """The batch after the first is interrupted while it is stored (a KeyboardInterrupt in the leader)."""

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        if self.batches:
            raise Interrupted
        return super().insert_groups(groups)


def test_a_leader_interrupted_while_storing_answers_its_whole_batch() -> None:
    """Every caller of an interrupted batch is answered with the interruption (its write may or may not be
    stored, as any interrupted write's), none is left waiting nor takes the lead of a batch it is not in."""
    store = InterruptedStore()
    group = _group(store)
    settled = _queued_behind_a_held_leader(group, store, [[Event()] for _ in range(3)])
    outcomes = settled()
    assert [type(outcome) for outcome in outcomes[:3]] == [Interrupted] * 3
    # the first batch's own leader, stored
    assert len(outcomes[3]) == 1
    assert not group.leading and group.queued == 0


class WakeInterrupted:
    """The wake-up lock of a save whose caller is interrupted while it waits: at once (still queued), or once
    woken to lead the next batch."""

    def __init__(self, once_woken: bool) -> None:
        self.lock, self.once_woken = group_commit._locked(), once_woken

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            return self.lock.acquire(blocking=False)
        if self.once_woken:
            wait_until(lambda: not self.lock.locked(), 30, "the save's caller woken to lead")
        raise Interrupted

    def release(self) -> None:
        self.lock.release()


@pytest.mark.parametrize("once_woken", [False, True], ids=["while-queued", "once-woken-to-lead"])
def test_a_waiting_caller_interrupted_leaves_the_queue_and_passes_the_lead_on(
    once_woken: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller interrupted while its save waits in the queue takes its save out of it (never stored); one
    woken to lead the next batch hands the lead to the caller behind it. Everybody else is answered."""

    @dataclass
    class Save(group_commit._Save):
        def __post_init__(self) -> None:
            if threading.current_thread().name == "interrupted":
                self.wake = WakeInterrupted(once_woken)  # type: ignore[assignment]

    monkeypatch.setattr(group_commit, "_Save", Save)
    store = Store()
    group = _group(store)
    store.hold.clear()
    outcomes: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            outcomes[name] = group.save([Event()])
        except BaseException as error:
            outcomes[name] = error

    threads = {
        name: threading.Thread(target=run, args=(name,), name=name, daemon=True)
        for name in ("leader", "interrupted", "behind")
    }
    threads["leader"].start()
    assert store.holding.wait(30)
    threads["interrupted"].start()
    wait_until(
        lambda: group.queued == 1 if once_woken else "interrupted" in outcomes,
        30,
        "the interrupted caller queued (once woken: still queued; else: gone)",
    )
    threads["behind"].start()
    wait_until(lambda: group.queued == (2 if once_woken else 1), 30, "the next caller queued")
    store.hold.set()
    _joined(list(threads.values()))
    assert isinstance(outcomes["interrupted"], Interrupted)
    assert len(outcomes["leader"]) == 1 and len(outcomes["behind"]) == 1
    assert store.last == 2, "the interrupted caller's save was stored"
    assert not group.leading and group.queued == 0


class UnavailableStore(Store):
    """The batch after the first finds the store unavailable (its table held past the lock timeout)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[int] = []

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        self.asked.append(len(groups))
        if self.batches:
            raise ServiceUnavailableError("the events table was held past the lock timeout")
        return super().insert_groups(groups)


def test_an_unavailable_store_fails_the_whole_batch_at_once() -> None:
    """Each save of a batch stored alone after the store was unavailable would wait as long again: every caller
    gets the error from the one attempt."""
    store = UnavailableStore()
    group = _group(store)
    settled = _queued_behind_a_held_leader(group, store, [[Event()] for _ in range(3)])
    outcomes = settled()
    assert [type(outcome) for outcome in outcomes[:3]] == [ServiceUnavailableError] * 3
    assert store.asked == [1, 3], "the batch's saves were tried again one by one"
    assert not group.leading and group.queued == 0


class TimedStore(Store):
    """Each insert call takes a quarter of a second on ``clock``, the clock the group commit reads."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 0.0

    def insert_groups(self, groups: Sequence[Sequence[StoredEvent]]) -> list[list[int] | None]:
        self.clock += 0.25
        return super().insert_groups(groups)


def test_the_status_counts_each_insert_call_its_saves_and_its_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch the database refuses (one bad save) is stored again save by save: each call counts, and each
    call's time counts however it ends."""
    store = TimedStore()
    clock = SimpleNamespace(perf_counter=lambda: store.clock, sleep=time.sleep)
    monkeypatch.setattr(group_commit, "time", clock)
    group = _group(store, max_saves=5, max_events=7, window=0.002)
    bounds = {"max_saves": 5, "max_events": 7, "window_ms": 2.0}
    assert group.status() == {
        "batches": 0,
        "saves": 0,
        "mean_batch": 0.0,
        "largest_batch": 0,
        "mean_store_ms": 0.0,
        "queued": 0,
        **bounds,
    }
    group.save([Event()])
    store.holding.clear()
    settled = _queued_behind_a_held_leader(
        group, store, [[Event()], [Event(bad=True)], [Event(), Event()]]
    )
    assert group.status()["queued"] == 3
    outcomes = settled()
    assert isinstance(outcomes[1], RuntimeError) and len(outcomes[2]) == 2
    # the lone save; the held leader's; the three queued behind it, refused; each of them again alone
    assert group.status() == {
        "batches": 1 + 1 + 1 + 3,
        "saves": 1 + 1 + 3 + 3,
        "mean_batch": round(8 / 6, 2),
        "largest_batch": 3,
        "mean_store_ms": 250.0,
        "queued": 0,
        **bounds,
    }

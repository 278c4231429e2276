"""Group commit on both databases: one batch, each save's own outcome.

The batches are made deterministic by holding the events table's write lock from another connection: the
first save's leader blocks on it, the others queue behind it, and the test releases the lock once every
save it expects is queued (a condition, not a pause). The next batch then holds all of them.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from application.service import Writ
from domain.errors import UniqueViolationError, WritError
from domain.record import Record
from infrastructure.backend_choice import open_backend
from infrastructure.config import SQLiteConfig, parse_database_url
from infrastructure.verification import verify
from tests.catalogs import principal
from tests.support import wait_until

ALICE = principal("alice", "acme", "clerk")


@contextmanager
def events_table_held(database_url: str) -> Iterator[None]:
    """The events table's write lock, held by another connection until the block ends."""
    config = parse_database_url(database_url)
    if isinstance(config, SQLiteConfig):
        conn = sqlite3.connect(config.path, isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    with psycopg.connect(database_url.split("?", maxsplit=1)[0]) as pg:
        pg.execute(f'LOCK TABLE "{config.schema}".writ_events IN EXCLUSIVE MODE')
        yield
        pg.rollback()


def queued_together(
    writ: Writ, database_url: str, leader: Callable[[], Any], followers: list[Callable[[], Any]]
) -> tuple[Any, list[Any]]:
    """Run ``leader``, then ``followers`` while the leader's save is blocked; every follower's save is queued
    before the lock is released, so they are stored as ONE batch. Their results (or errors), in order."""
    outcomes: list[Any] = [None] * (len(followers) + 1)
    group = writ._core.store.group_commit
    assert group is not None

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            outcomes[index] = call()
        except WritError as error:
            outcomes[index] = error

    with events_table_held(database_url):
        first = threading.Thread(target=run, args=(0, leader))
        first.start()
        wait_until(lambda: group.leading, 30, "the leader storing its save")
        threads = [
            threading.Thread(target=run, args=(i + 1, call)) for i, call in enumerate(followers)
        ]
        for thread in threads:
            thread.start()
        wait_until(lambda: group.queued >= len(followers), 30, "every follower's save queued")
    for thread in [first, *threads]:
        thread.join(timeout=60)
    return outcomes[0], outcomes[1:]


def test_a_batch_stores_independent_saves_and_settles_each_race_alone(
    sales: Writ, database_url: str
) -> None:
    def member(email: str, key: str | None = None) -> Callable[[], Any]:
        return lambda: sales.create(
            ALICE, "Member", {"email": email, "region": "eu", "code": email}, idempotency_key=key
        )

    member(
        "warm@x.io"
    )()  # the deployment's index key exists before the table is held (its first use writes it)
    before = sales._core.store.group_commit.figures.largest  # type: ignore[union-attr]
    leader, outcomes = queued_together(
        sales,
        database_url,
        member("lead@x.io"),
        [
            member("a@x.io"),
            member("b@x.io"),
            member("c@x.io"),  # independent
            member("same@x.io", "k1"),
            member("same@x.io", "k1"),
            member("same@x.io", "k1"),  # one command, repeated
            member("taken@x.io"),
            member("taken@x.io"),  # one unique value, two records
        ],
    )
    assert sales._core.store.group_commit.figures.largest >= 8 > before  # type: ignore[union-attr]
    assert leader.status == "executed"
    independent, repeated, racing = outcomes[:3], outcomes[3:6], outcomes[6:]
    assert all(o.status == "executed" for o in independent), independent
    assert len({o.id for o in repeated}) == 1 and sorted(o.replayed for o in repeated) == [
        False,
        True,
        True,
    ]
    winners = [o for o in racing if not isinstance(o, WritError)]
    assert len(winners) == 1 and isinstance(
        next(o for o in racing if o not in winners), UniqueViolationError
    )
    stored = {
        sales.get(ALICE, "Member", o.id)["email"]
        for o in [leader, *independent, repeated[0], *winners]
    }
    assert stored == {"lead@x.io", "a@x.io", "b@x.io", "c@x.io", "same@x.io", "taken@x.io"}
    refused = [d for d in sales.decisions(ALICE, limit=1000) if d["outcome"] == "refused"]
    assert [d["code"] for d in refused] == ["UNIQUE_VIOLATION"]
    assert verify(open_backend(database_url)).ok


def test_callers_past_a_batch_are_stored_by_the_leaders_after_it(
    sales: Writ, database_url: str
) -> None:
    """Eight callers queue behind a blocked leader while a batch takes three: the leader's batch, then each
    next leader's (the first caller left waiting), until none waits; every caller gets its own record."""
    group = sales._core.store.group_commit
    assert group is not None
    group.max_saves = 3
    sales.create(ALICE, "Member", {"email": "warm@x.io", "region": "eu", "code": "warm"})
    batches = group.figures.batches

    def member(n: int) -> Callable[[], Any]:
        return lambda: sales.create(
            ALICE, "Member", {"email": f"m{n}@x.io", "region": "eu", "code": f"m{n}"}
        )

    leader, outcomes = queued_together(
        sales, database_url, member(0), [member(n) for n in range(1, 9)]
    )
    results = [leader, *outcomes]
    assert all(not isinstance(r, WritError) and r.status == "executed" for r in results), results
    # the leader alone, then 8 callers three at a time
    assert group.figures.batches - batches == 1 + 3
    assert group.figures.largest == 3 and not group.leading and group.queued == 0
    emails = {sales.get(ALICE, "Member", r.id)["email"] for r in results}
    assert emails == {f"m{n}@x.io" for n in range(9)}


def test_the_status_tells_how_the_process_batched_its_saves(sales: Writ, database_url: str) -> None:
    """What an operator reads (``GET /healthz`` shows it): a lone create is a batch of one, and four callers
    queued behind a blocked leader are one batch of four."""
    sales.create(ALICE, "Member", {"email": "warm@x.io", "region": "eu", "code": "warm"})
    before = sales.group_commit_status()
    assert before is not None and before["batches"] >= 1 and before["queued"] == 0

    def member(n: int) -> Callable[[], Any]:
        return lambda: sales.create(
            ALICE, "Member", {"email": f"s{n}@x.io", "region": "eu", "code": f"s{n}"}
        )

    queued_together(sales, database_url, member(0), [member(n) for n in range(1, 5)])
    after = sales.group_commit_status()
    assert after is not None
    assert (after["batches"] - before["batches"], after["saves"] - before["saves"]) == (2, 5)
    assert after["largest_batch"] == 4 and after["queued"] == 0
    assert after["mean_batch"] == round(after["saves"] / after["batches"], 2)
    # both batches' insert calls took some time (what the figure adds up: tests/unit/test_group_commit_turns.py)
    assert after["mean_store_ms"] * after["batches"] > before["mean_store_ms"] * before["batches"]
    assert (after["max_saves"], after["max_events"], after["window_ms"]) == (64, 1000, 0.0)


def test_one_call_stores_groups_and_leaves_out_only_those_that_conflict(writ: Writ) -> None:
    kept = Record.Created.TOPIC
    first = writ.create(ALICE, "Tally", {"a": 1})
    record_id = UUID(first.id)
    stored_again = StoredEvent(
        originator_id=record_id, originator_version=1, topic=kept, state=b"{}"
    )
    fresh = [_created(writ, uuid4()) for _ in range(3)]
    twice = _created(writ, uuid4())
    recorder: Any = writ._core.store.recorder
    head = recorder.max_notification_id()
    placed = recorder.insert_groups(
        [[fresh[0]], [stored_again], [fresh[1], fresh[2]], [twice], [twice]]
    )
    assert placed[1] is None and placed[4] is None  # stored already; held by the group before it
    assert [len(p or []) for p in placed] == [1, 0, 2, 1, 0]
    positions = [position for group in placed if group for position in group]
    assert positions == sorted(positions) and positions[0] > head
    assert recorder.max_notification_id() == positions[-1]
    assert [e.originator_id for e in recorder.select_notifications(head + 1, 10)] == [
        fresh[0].originator_id,
        fresh[1].originator_id,
        fresh[2].originator_id,
        twice.originator_id,
    ]


def test_every_conflicting_group_of_a_call_leaves_nothing_behind(writ: Writ) -> None:
    first = writ.create(ALICE, "Tally", {"a": 1})
    again = StoredEvent(
        originator_id=UUID(first.id), originator_version=1, topic=Record.Created.TOPIC, state=b"{}"
    )
    recorder: Any = writ._core.store.recorder
    head = recorder.max_notification_id()
    assert recorder.insert_groups([[again], [again]]) == [None, None]
    assert recorder.max_notification_id() == head


def test_a_group_left_out_claims_nothing_and_each_conflict_names_its_own_group(writ: Writ) -> None:
    """A group left out (it writes what an earlier group writes) holds none of its events against the groups
    after it; a group conflicting with the store is told from its neighbours by its own events (id and
    version: a new version of a stored record is no conflict); after groups are left out, the call's
    conflicts still name the right groups."""
    recorder: Any = writ._core.store.recorder
    x, y = _created(writ, uuid4()), _created(writ, uuid4())
    assert [bool(p) for p in recorder.insert_groups([[x], [x, y], [y]])] == [True, False, True]
    stored = UUID(writ.create(ALICE, "Tally", {"a": 1}).id)
    again = StoredEvent(
        originator_id=stored, originator_version=1, topic=Record.Created.TOPIC, state=b"{}"
    )
    next_version = StoredEvent(
        originator_id=stored, originator_version=2, topic=Record.Patched.TOPIC, state=b"{}"
    )
    assert [bool(p) for p in recorder.insert_groups([[again], [next_version]])] == [False, True]
    twice, fresh = _created(writ, uuid4()), _created(writ, uuid4())
    placed = recorder.insert_groups([[twice], [twice], [again], [fresh]])
    assert [bool(p) for p in placed] == [True, False, False, True]


def test_a_left_out_group_s_new_key_is_still_to_be_stored(writ: Writ) -> None:
    """The store learns that a key is stored only with the group that stored it: a new record's key whose group
    was rolled back (it conflicted) is inserted with that record's next save, or its data could never be
    opened."""
    recorder: Any = writ._core.store.recorder
    stored = UUID(writ.create(ALICE, "Tally", {"a": 1}).id)
    again = StoredEvent(
        originator_id=stored, originator_version=1, topic=Record.Created.TOPIC, state=b"{}"
    )
    owner = uuid4()
    assert recorder.insert_groups([[_created(writ, owner), again]]) == [None]
    assert [row[0] for row in writ._core.keys.pending([owner]).rows] == [owner]


def test_a_save_holding_one_event_twice_is_refused_whole(writ: Writ) -> None:
    """Only a defect could put one event twice in a save; the store refuses it and stores nothing. SQLite leaves
    the group out (a conflict); PostgreSQL raises an integrity error that names no group, never a driver's
    data error."""
    recorder: Any = writ._core.store.recorder
    event = _created(writ, uuid4())
    head = recorder.max_notification_id()
    try:
        placed = recorder.insert_groups([[event, event]])
    except IntegrityError:
        placed = [None]
    assert placed == [None]
    assert recorder.max_notification_id() == head


def _created(writ: Writ, record_id: UUID) -> StoredEvent:
    """A sealed ``Created`` event of a fresh Tally record, as a save stores it."""
    writ._core.keys.new_key(record_id)
    record = Record.create(
        "Tally",
        "acme",
        {"a": 1},
        {"actor": "alice", "tenant": "acme", "model": "Tally"},
        writ._core.clock(),
        record_id=record_id,
        digest=writ._core.keys.digest,
    )
    (event,) = record.collect_events()
    return writ._core.store.mapper.to_stored_event(event)


@pytest.fixture(autouse=True)
def _no_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WRIT_GROUP_COMMIT_WINDOW_MS", raising=False)

"""A record with thousands of events loads from its latest snapshot, not from the first event."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.service import Writ
from tests.catalogs import principal

EVENTS = 3000
INTERVAL = (
    20  # as documented ("Records snapshot every 20 events"), not read from the code under test
)


def grow(writ: Writ, events: int) -> UUID:
    """A Tally with ``events`` events, saved 50 at a time (snapshots are taken as saves pass each interval)."""
    record_id = UUID(writ.create(principal(), "Tally", {"a": 0}).id)
    record = writ._core.store.repository.get(record_id)
    for value in range(1, events):
        record.patch(
            {"a": value},
            {"actor": "alice", "tenant": "acme", "model": "Tally"},
            writ._core.clock(),
            writ._core.keys.digest,
        )
        if value % 50 == 0 or value == events - 1:
            writ._core.save(record)
    return record_id


def test_a_record_with_thousands_of_events_is_read_from_its_snapshot(writ: Writ) -> None:
    record_id = grow(writ, EVENTS)
    interval = INTERVAL
    read: list[tuple[Any, Any, int]] = []
    select_events = writ._core.store.recorder.select_events

    def counting(originator_id: Any, **options: Any) -> Any:  # the real recorder, counted
        found = select_events(originator_id, **options)
        read.append((options.get("gt"), options.get("lte"), len(found)))
        return found

    writ._core.store.recorder.select_events = counting  # type: ignore[method-assign]
    try:
        loaded = writ.get(principal(), "Tally", record_id)
    finally:
        writ._core.store.recorder.select_events = select_events  # type: ignore[method-assign]
    assert (loaded["a"], loaded["_version"]) == (EVENTS - 1, EVENTS)
    assert read, "the load read events"
    assert sum(count for _, _, count in read) < interval, (
        f"read {read}: more than one interval of events"
    )
    assert max(gt or 0 for gt, _, _ in read) > EVENTS - interval, (
        "events read from after the latest snapshot"
    )
    replayed = writ.history(principal(), "Tally", record_id)[-1].after
    assert replayed["a"] == loaded["a"]

"""A record with thousands of events loads from its latest snapshot, not from the first event."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

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
    read = counted_reads(writ)
    loaded = writ.get(principal(), "Tally", record_id)
    assert (loaded["a"], loaded["_version"]) == (EVENTS - 1, EVENTS)
    [(snapshots, versions)] = read
    assert len(snapshots) == 1 and snapshots[0] > EVENTS - INTERVAL, f"snapshots read: {snapshots}"
    assert versions[0] == 1 and len(versions) <= INTERVAL, (
        f"read {versions}: its first event, then more than one interval of events"
    )
    assert min(versions[1:]) == snapshots[0], "events read from the latest snapshot's version on"
    replayed = writ.history(principal(), "Tally", record_id)[-1].after
    assert replayed["a"] == loaded["a"]


def test_a_record_as_of_an_earlier_version_is_read_from_the_snapshot_before_it(writ: Writ) -> None:
    record_id = grow(writ, 200)
    snapshotted = [s.originator_version for s in writ._core.store.snapshots.get(record_id)]
    latest = max(version for version in snapshotted if version <= 130)  # the library's own read
    assert latest > 1 and max(snapshotted) > 130, (
        f"snapshots {snapshotted}: one before 130, one past it"
    )
    read = counted_reads(writ)
    then = writ._core.loader.load(record_id, version=130)
    assert then is not None and (then.data["a"], then.version) == (129, 130)
    [(snapshots, versions)] = read
    assert snapshots == [latest], f"snapshots read: {snapshots}"
    assert versions == [1, *range(latest, 131)], f"events read: {versions}"
    history = writ.history(principal(), "Tally", record_id)
    assert history[129].after["a"] == then.data["a"], "the same state as its history gives"


@pytest.mark.parametrize("command", ["get", "patch", "history"])
def test_a_command_or_a_read_of_ones_own_record_reads_it_once(writ: Writ, command: str) -> None:
    """Each way of naming the caller's record (a read: its tenant and model; a command: its tenant alone) finds
    it in one read: nothing withheld, no second read."""
    record_id = grow(writ, 45)
    read = counted_reads(writ)
    who = principal()
    if command == "get":
        writ.get(who, "Tally", record_id)
    elif command == "patch":
        writ.patch(who, "Tally", record_id, {"a": -1})
    else:  # then its pages of events, read on their own
        writ.history(who, "Tally", record_id)
    assert len(read) == 1, f"read {len(read)} times"
    assert read.again == 0 or command == "history", f"read again {read.again} times"


class Reads(list[tuple[list[int], list[int]]]):
    """The versions of the snapshot and of the events each ``read_record`` returned, and how many other reads
    of events followed (a second read)."""

    again = 0


def counted_reads(writ: Writ) -> Reads:
    """``Reads`` of the real recorder from now on (the record's own: nothing withheld), for the rest of the test."""
    recorder: Any = writ._core.store.recorder
    read_record, select_events = recorder.read_record, recorder.select_events
    read = Reads()

    def counting(record_id: UUID, version: int | None = None, **named: Any) -> Any:
        rows = read_record(record_id, version, **named)
        assert rows.first is not None and not rows.withheld
        snapshots = [] if rows.snapshot is None else [rows.snapshot.originator_version]
        read.append((snapshots, [1, *(e.originator_version for e in rows.since)]))
        return rows

    def selecting(*args: Any, **options: Any) -> Any:
        read.again += 1
        return select_events(*args, **options)

    recorder.read_record, recorder.select_events = counting, selecting
    return read

"""A record with thousands of events loads from its latest snapshot, not from the first event."""

from __future__ import annotations

from uuid import UUID

from application.service import Writ
from domain.record import Record
from tests.catalogs import principal


def test_long_lived_record_loads_from_snapshot(writ: Writ) -> None:
    record_id = UUID(writ.create(principal(), "Tally", {"a": 0}).id)
    record = writ.repository.get(record_id)
    clerk = principal()
    for value in range(1, 1000):  # build history fast: one save per 50 events
        record.patch({"a": value}, {"actor": "alice", "tenant": "acme", "model": "Tally"}, writ.clock())
        if value % 50 == 0 or value == 999:
            writ.save(record)
    assert writ.snapshots is not None
    latest = list(writ.snapshots.get(record_id, desc=True, limit=1))
    interval = Writ.snapshotting_intervals[Record]
    assert latest and latest[0].originator_version > 1000 - interval
    newer = list(writ.events.get(record_id, gt=latest[0].originator_version))
    assert len(newer) < interval
    loaded = writ.get(clerk, "Tally", record_id)
    assert (loaded["a"], loaded["_version"]) == (999, 1000)
    replayed = writ.history(clerk, "Tally", record_id)[-1].after
    assert replayed["a"] == loaded["a"]

"""The record's hash chain, pure: what each event's digests and hash cover, and every tampering ``replay``
must refuse (altered, removed, inserted, reordered events; a snapshot that disagrees with its history).

The expected hashes are computed here from the documented formula (SHA-256 over sorted-key JSON), not
with ``domain.chain``, so a change to what the chain covers shows up as a failure.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest

from domain.chain import iso_text, plain_digest
from domain.errors import ChainBrokenError
from domain.record import Record, check_snapshot, replay

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
META = {"actor": "ann", "tenant": "acme", "model": "Order"}


def sha(content: Any) -> str:
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def history() -> tuple[Record, list[Record.Event]]:
    record = Record.create("Order", "acme", {"sku": "A", "total": "1"}, META, NOW)
    record.patch({"total": "2"}, META, NOW + timedelta(seconds=1))
    record.delete(META, NOW + timedelta(seconds=2))
    record.restore(META, NOW + timedelta(seconds=3))
    record.replace({"sku": "A", "total": "3"}, META, NOW + timedelta(seconds=4))
    return record, record.collect_events()


def test_each_hash_covers_the_previous_hash_metadata_and_both_digests() -> None:
    record, events = history()
    previous, data, state = "", {}, "new"
    for event in events:
        kind = type(event).__name__
        payload = {
            "Created": {"model": "Order", "tenant": "acme", "data": getattr(event, "data", None)},
            "Patched": {"changes": getattr(event, "changes", None)},
            "Replaced": {"data": getattr(event, "data", None)},
        }.get(kind, {})
        data = {
            "Created": payload.get("data"),
            "Replaced": payload.get("data"),
            "Patched": {**data, **(payload.get("changes") or {})},
        }.get(kind, data)
        state = {"Created": "new", "Deleted": "deleted"}.get(kind, "modified")
        at = event.timestamp.isoformat()
        changed = {
            "Created": {"changed": ["sku", "total"]},
            "Patched": {"changed": ["total"]},
            "Replaced": {"changed": ["total"]},
        }.get(kind, {})  # the names a data event changed: metadata
        assert event.meta == {**META, **changed}
        fingerprint = {
            "model": "Order",
            "tenant": "acme",
            "data": data,
            "state": state,
            "created_at": NOW.isoformat(),
            "created_by": "ann",
            "updated_at": at,
            "updated_by": "ann",
            "failure": None,
        }
        assert event.body_digest == sha([str(record.id), "body", payload])
        assert event.state_digest == sha([str(record.id), "state", fingerprint])
        assert event.hash == sha(
            {
                "prev": previous,
                "id": str(record.id),
                "version": event.originator_version,
                "kind": kind,
                "at": at,
                "meta": {**META, **changed},
                "body": event.body_digest,
                "state": event.state_digest,
            }
        )
        previous = event.hash
    assert record.last_hash == previous


def test_an_untouched_history_replays_to_the_record() -> None:
    record, events = history()
    replayed = replay(None, events)
    assert replayed is not None and replayed.view() == record.view()


def test_a_record_as_it_is_left_by_each_kind_of_event_is_the_one_its_events_replay_to() -> None:
    """What a write leaves in memory (the state its digests were computed from) is what loading it rebuilds,
    every attribute, for each kind of event: nothing a later write or a snapshot reads differs."""
    record = Record.create("Order", "acme", {"sku": "A", "total": "1"}, META, NOW)
    steps = [
        lambda at: record.patch({"total": "2"}, META, at),
        lambda at: record.fail("the approval went stale", META, at),
        lambda at: record.delete(META, at),
        lambda at: record.restore(META, at),
        lambda at: record.replace({"sku": "B", "total": "3", "note": "x"}, META, at),
        lambda at: record.purge(META, at),
    ]
    events: list[Record.Event] = []
    for second, write in enumerate([None, *steps]):
        if write is not None:
            write(NOW + timedelta(seconds=second))
        events += record.collect_events()
        replayed = replay(None, events)
        assert replayed is not None
        left = {k: v for k, v in vars(record).items() if k != "_pending_events"}
        rebuilt = {k: v for k, v in vars(replayed).items() if k != "_pending_events"}
        assert left == rebuilt, type(events[-1]).__name__


def tampered(events: list[Record.Event], index: int, **changes: Any) -> list[Record.Event]:
    event = copy.copy(events[index])
    for name, value in changes.items():
        object.__setattr__(event, name, value)
    return [*events[:index], event, *events[index + 1 :]]


@pytest.mark.parametrize(
    ("case", "version"),
    [
        ("altered value", 2),
        ("altered metadata", 3),
        ("altered time", 2),
        ("removed middle event", 3),
        ("two bodies swapped", 2),
        ("inserted event", 3),
        ("altered digest and hash", 2),
    ],
)
def test_replay_refuses_every_tampering_with_the_record_and_version(
    case: str, version: int
) -> None:
    record, events = history()
    forged = {
        "altered value": lambda: tampered(events, 1, changes={"total": "9"}),
        "altered metadata": lambda: tampered(events, 2, meta={**META, "actor": "mallory"}),
        "altered time": lambda: tampered(events, 1, timestamp=NOW + timedelta(days=1)),
        "removed middle event": lambda: [*events[:2], *events[3:]],
        "two bodies swapped": lambda: tampered(
            tampered(events, 1, changes={"sku": "A", "total": "3"}), 4, data={"total": "2"}
        ),
        "inserted event": lambda: [*events[:2], events[1], *events[2:]],
        "altered digest and hash": lambda: tampered(
            events,
            1,
            changes={"total": "9"},
            body_digest=sha([str(record.id), "body", {"changes": {"total": "9"}}]),
        ),
    }[case]()
    with pytest.raises(ChainBrokenError) as caught:
        replay(None, forged)
    assert (caught.value.record_id, caught.value.version) == (str(record.id), version)
    assert caught.value.code == "CHAIN_BROKEN" and f"version {version}" in caught.value.message


def test_a_snapshot_is_trusted_only_when_it_matches_the_state_its_event_recorded() -> None:
    record, events = history()
    at_three = replay(None, events[:3])
    assert at_three is not None
    check_snapshot(at_three, events[2], plain_digest)
    assert replay(copy.deepcopy(at_three), events[3:]).view() == record.view()
    edited = copy.deepcopy(at_three)
    edited.data = {**edited.data, "total": "1000"}
    with pytest.raises(ChainBrokenError, match="snapshot at version 3 holds other values"):
        check_snapshot(edited, events[2], plain_digest)
    moved = copy.deepcopy(at_three)
    moved.tenant = "globex"
    with pytest.raises(ChainBrokenError):
        check_snapshot(moved, events[2], plain_digest)
    with pytest.raises(ChainBrokenError, match="does not match the event"):
        check_snapshot(copy.deepcopy(at_three), events[1], plain_digest)


def test_the_same_instant_at_two_offsets_is_written_as_each() -> None:
    utc = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    paris = utc.astimezone(timezone(timedelta(hours=1)))
    assert utc == paris and iso_text(utc) == "2026-01-02T03:04:05+00:00"
    assert iso_text(paris) == "2026-01-02T04:04:05+01:00"
    assert iso_text(utc.replace(tzinfo=None)) == "2026-01-02T03:04:05"

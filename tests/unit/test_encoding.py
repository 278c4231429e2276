"""``MadeOnRead``: a save's events made and encoded as the recorder reads them, each once, in order."""

from __future__ import annotations

import dataclasses
from uuid import uuid4

import pytest
from eventsourcing.persistence import Notification, Recording

from application.encoding import MadeOnRead, dataclass_of


def made_log(count: int, ready: tuple[str, ...] = ()) -> tuple[MadeOnRead[int, str], list[int]]:
    made: list[int] = []

    def make(source: int) -> str:
        made.append(source)
        return f"item {source}"

    return MadeOnRead(list(range(count)), make, ready=list(ready)), made


def test_items_are_made_when_first_read_in_order_and_once() -> None:
    items, made = made_log(5, ready=("first",))
    assert len(items) == 6 and made == []
    # the ready item, then sources 0 and 1: made in order up to the one read
    assert items[2] == "item 1"
    assert made == [0, 1]
    assert list(items[1:3]) == ["item 0", "item 1"] and made == [0, 1]  # read again: not made again
    assert items[-1] == "item 4" and made == [0, 1, 2, 3, 4]
    assert list(items) == ["first", "item 0", "item 1", "item 2", "item 3", "item 4"]
    assert made == [0, 1, 2, 3, 4]


def test_reads_past_either_end_fail_as_a_list_does_and_make_nothing() -> None:
    items, made = made_log(3)
    for index in (3, -4):
        with pytest.raises(IndexError):
            items[index]
    assert list(items[5:9]) == [] and made == []
    assert list(items[::-1]) == ["item 2", "item 1", "item 0"]


def test_slices_read_as_a_lists_do_while_only_some_items_are_made() -> None:
    """A slice is taken from the items made so far: its bounds count from the end of all of them, not of those."""
    items, made = made_log(6, ready=("first",))
    expected = ["first", *(f"item {n}" for n in range(6))]
    assert list(items[1:-3]) == expected[1:-3] and made == [0, 1, 2]
    assert list(items[-5:-2]) == expected[-5:-2] and made == [0, 1, 2, 3]
    assert list(items[::2]) == expected[::2] and list(items[5:0:-2]) == expected[5:0:-2]
    assert list(items[-100:100]) == expected and list(items[4:2]) == []


def test_a_failing_make_fails_the_read_and_keeps_what_was_made() -> None:
    def make(source: int) -> str:
        if source == 2:
            raise ValueError("cannot be made")
        return f"item {source}"

    items = MadeOnRead([0, 1, 2, 3], make)
    assert items[0] == "item 0"
    with pytest.raises(ValueError, match="cannot be made"):
        items[3]
    assert items[1] == "item 1"


def test_a_recording_made_field_by_field_equals_the_librarys() -> None:
    originator = uuid4()
    fields = {
        "originator_id": originator,
        "originator_version": 2,
        "topic": "writ.record:Patched",
        "state": b"{}",
        "id": 7,
    }
    fast, slow = dataclass_of(Notification, **fields), Notification(**fields)
    assert (fast, hash(fast), repr(fast)) == (slow, hash(slow), repr(slow))
    assert dataclass_of(Recording, domain_event="event", notification=fast) == Recording(
        "event", slow
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.id = 8  # type: ignore[misc]

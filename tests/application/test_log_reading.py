"""Reading the notification log: Writ's recorders answer ``select_notifications`` exactly as the library does.

The PostgreSQL recorder fetches the log as binary tuples (the workers' hot path);
these tests hold it to the library's contract on both databases: every argument
combination, the same notifications, ``UUID`` originator ids and ``bytes`` states.
"""

from __future__ import annotations

from uuid import UUID

import pytest
from eventsourcing.persistence import ApplicationRecorder

from application.service import Writ
from domain.errors import GrantMissingError
from domain.record import EVENT_TOPICS
from tests.catalogs import principal


def library_select(writ: Writ) -> ApplicationRecorder:
    """The library's own implementation, bound to Writ's recorder."""
    recorder = writ.recorder
    library = next(cls for cls in type(recorder).__mro__ if cls.__module__.startswith("eventsourcing."))
    return library.select_notifications.__get__(recorder)  # type: ignore[no-any-return, attr-defined]


@pytest.fixture
def busy_log(writ: Writ) -> Writ:
    """Records with creates, patches, deletes and a purge, plus a refused command's decision (another topic)."""
    clerk, manager = principal(), principal("maria", "acme", "manager")
    for n in range(6):
        record_id = writ.create(clerk, "Order", {"sku": f"S-{n}", "total": f"{n}.50"}).id
        writ.patch(clerk, "Order", record_id, {"quantity": n + 2})
        if n % 2:
            writ.delete(manager, "Order", record_id)
    with pytest.raises(GrantMissingError):
        writ.purge(clerk, "Order", record_id)
    writ.purge(manager, "Order", record_id)
    return writ


ARGUMENTS = [
    {"start": 1, "limit": 100},
    {"start": None, "limit": 5},
    {"start": 4, "limit": 3},
    {"start": 4, "limit": 100, "inclusive_of_start": False},
    {"start": 2, "limit": 100, "stop": 9},
    {"start": 1, "limit": 100, "topics": ["writ.record:Patched", "writ.record:Deleted"]},
    {"start": 3, "limit": 4, "stop": 12, "topics": list(EVENT_TOPICS), "inclusive_of_start": False},
]


@pytest.mark.parametrize("arguments", ARGUMENTS)
def test_select_notifications_matches_the_library(busy_log: Writ, arguments: dict[str, object]) -> None:
    ours = busy_log.recorder.select_notifications(**arguments)  # type: ignore[arg-type]
    assert ours == library_select(busy_log)(**arguments)
    assert ours, "each case selects something"


def test_select_notifications_filters_as_documented(busy_log: Writ) -> None:
    everything = busy_log.recorder.select_notifications(1, 1000)
    assert len({n.topic for n in everything}) >= 4
    assert all(isinstance(n.originator_id, UUID) and type(n.state) is bytes for n in everything)
    ids = [n.id for n in everything]
    assert ids == sorted(ids)
    middle = ids[len(ids) // 3]
    expected = [n for n in everything if middle < n.id <= ids[-2] and n.topic == "writ.record:Patched"][:2]
    got = busy_log.recorder.select_notifications(middle, 2, stop=ids[-2], topics=["writ.record:Patched"],
                                                 inclusive_of_start=False)
    assert got == expected and len(got) == 2

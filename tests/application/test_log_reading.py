"""Reading the notification log: ``select_notifications`` answers every argument combination correctly.

The PostgreSQL recorder fetches the log as binary tuples (the workers' hot path); SQLite uses the
library's. Both are held to an independent oracle: every stored row read with a plain query on a
connection of the test's own, filtered and cut in Python. On PostgreSQL the result must also equal the
library's own method (which Writ's overrides), so the override keeps the library's contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import ApplicationRecorder, Notification

from application.service import Writ
from domain.errors import GrantMissingError
from domain.record import EVENT_TOPICS
from tests.catalogs import principal
from tests.support import stored_rows


def library_select(writ: Writ) -> ApplicationRecorder:
    """The library's own implementation, bound to Writ's recorder."""
    recorder = writ._core.store.recorder
    library = next(
        cls for cls in type(recorder).__mro__ if cls.__module__.startswith("eventsourcing.")
    )
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


def expected(
    rows: list[Notification],
    start: int | None,
    limit: int,
    stop: int | None = None,
    topics: Sequence[str] = (),
    inclusive_of_start: bool = True,
) -> list[Notification]:
    low = (start or 0) if inclusive_of_start else (start or 0) + 1
    picked = [
        n
        for n in rows
        if n.id >= low and (stop is None or n.id <= stop) and (not topics or n.topic in topics)
    ]
    return picked[:limit]


@pytest.mark.parametrize("arguments", ARGUMENTS)
def test_select_notifications_answers_as_the_rows_say(
    busy_log: Writ, database_url: str, arguments: dict[str, Any]
) -> None:
    ours = busy_log._core.store.recorder.select_notifications(**arguments)
    assert ours == expected(stored_rows(database_url), **arguments)
    assert ours, "each case selects something"
    if database_url.startswith("postgres"):
        assert ours == library_select(busy_log)(**arguments)


def test_select_notifications_filters_as_documented(busy_log: Writ) -> None:
    everything = busy_log._core.store.recorder.select_notifications(1, 1000)
    assert len({n.topic for n in everything}) >= 4
    assert all(isinstance(n.originator_id, UUID) and type(n.state) is bytes for n in everything)
    ids = [n.id for n in everything]
    assert ids == sorted(ids)
    middle = ids[len(ids) // 3]
    expected = [
        n for n in everything if middle < n.id <= ids[-2] and n.topic == "writ.record:Patched"
    ][:2]
    got = busy_log._core.store.recorder.select_notifications(
        middle, 2, stop=ids[-2], topics=["writ.record:Patched"], inclusive_of_start=False
    )
    assert got == expected and len(got) == 2

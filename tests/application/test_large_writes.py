"""No write may hang: a save of about ten megabytes completes, and the next writer is not kept waiting; a bulk
reading as much completes.

On PostgreSQL the library's pipelined insert could leave part of a large message unsent and wait for a
reply forever, holding the events table's EXCLUSIVE lock (from about 6 MB); Writ saves with one
statement instead (``infrastructure.postgres_recorder``). The save runs in a thread so a hang is a
failed deadline here, not a stuck suite. A save of thousands of events goes in parts of ``PART``, in one
transaction: all of it lands, in order, chained and readable by a fresh process, or none of it does.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from application import loading
from application.encoding import MadeOnRead
from application.service import Writ
from domain.catalog import Catalog
from domain.errors import ConfigurationError
from entrypoints.bootstrap import Runtime, open_writ
from infrastructure.postgres_recorder import PART
from tests.catalogs import SHOP_CATALOG, principal
from tests.conftest import PG_URL
from tests.integration.test_verify import verify
from tests.support import wait_until, writ_command

CLERK = principal()
MANAGER = principal("maria", "acme", "manager")


def test_a_ten_megabyte_save_completes_and_frees_the_table(writ: Writ) -> None:
    rows = [
        {
            "sku": f"BIG-{n}",
            "total": "1",
            "note": f"{n}" + "x" * 250_000,
            "tags": ["y" * 80_000] * 3,
        }
        for n in range(20)
    ]
    done: list[Any] = []
    thread = threading.Thread(
        target=lambda: done.append(writ.create_many(CLERK, "Order", rows)), daemon=True
    )
    thread.start()
    wait_until(lambda: bool(done), 120, "a 10 MB create_many to finish")
    assert len(done[0]) == 20
    assert writ.get(CLERK, "Order", done[0][-1].id)["note"].startswith("19x")
    after = writ.create(CLERK, "Order", {"sku": "AFTER", "total": "1"})
    assert after.position and after.position > done[0][-1].position


def test_a_bulk_reading_megabytes_a_part_completes(
    catalog: Catalog, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk reads its candidates a part at a time (on PostgreSQL pipelined: the next part is asked for before
    this one is checked); parts of megabytes each come back whole, and no reply is waited for forever."""
    monkeypatch.setattr(loading, "LOAD_PART", 5)
    with Runtime(catalog, database_url) as runtime:
        writ = runtime.writ
        rows = [
            {
                "sku": f"BIG-{n}",
                "total": "1",
                "note": f"{n}" + "x" * 250_000,
                "tags": ["y" * 80_000] * 3,
            }
            for n in range(20)
        ]
        ids = sorted(r.id for r in writ.create_many(MANAGER, "Order", rows))
        runtime.catch_up()
        done: list[Any] = []

        def bulk() -> None:
            try:
                done.append(
                    writ.bulk_update(MANAGER, "Order", [], {"quantity": 7}, all_records=True)
                )
            except Exception as error:  # handed to the test, which fails on it at once
                done.append(error)

        threading.Thread(target=bulk, daemon=True).start()
        wait_until(lambda: bool(done), 120, "a bulk over 10 MB of records to finish")
        assert not isinstance(done[0], Exception), done[0]
        assert (done[0].updated_count, done[0].ids) == (20, ids)
        assert [writ.get(MANAGER, "Order", rid)["quantity"] for rid in ids] == [7] * 20


def test_a_save_of_several_parts_lands_whole_in_order_and_chained(
    writ: Writ, database_url: str, tmp_path: Path
) -> None:
    rows = [{"sku": f"P-{n}", "total": "1"} for n in range(2 * PART + 500)]
    done = writ.create_many(CLERK, "Order", rows)
    positions = [r.position or 0 for r in done]
    # one save, in the rows' order
    assert positions == list(range(positions[0], positions[0] + len(rows)))
    report = verify(database_url)
    assert report["ok"] and report["findings"] == [] and report["records"] == len(rows)
    catalog = tmp_path / "writ.toml"
    catalog.write_text(SHOP_CATALOG)
    # each part's keys were saved with it
    for index in (
        0,
        PART - 1,
        PART,
        2 * PART,
        len(rows) - 1,
    ):
        shown = writ_command(
            "get",
            "Order",
            done[index].id,
            "--json",
            "--catalog",
            str(catalog),
            "--user",
            "carol",
            "--tenant",
            "acme",
            "--role",
            "clerk",
            "--purpose",
            "read back",
            env={"WRIT_DATABASE_URL": database_url},
        )
        assert f'"sku":"P-{index}"' in shown.stdout.replace(" ", "")


def filler(record_id: UUID | None = None) -> StoredEvent:
    return StoredEvent(
        originator_id=record_id or uuid4(), originator_version=1, topic="tests:Filler", state=b"{}"
    )


@pytest.mark.parametrize("failing", ["a taken version", "an event that cannot be encoded"])
def test_a_save_failing_in_a_later_part_writes_nothing_and_frees_the_table(
    writ: Writ, failing: str
) -> None:
    taken = writ.create(CLERK, "Order", {"sku": "TAKEN", "total": "1"})
    head = writ._core.store.recorder.max_notification_id()
    events = [filler() for _ in range(PART + 500)]
    if failing == "a taken version":
        events[PART + 200] = filler(UUID(taken.id))
        expected: type[Exception] = IntegrityError
        save: Any = events
    else:

        def encode(event: StoredEvent) -> StoredEvent:
            if event is events[PART + 200]:
                raise ValueError("cannot be encoded")
            return event

        expected, save = ValueError, MadeOnRead(events, encode)
    with pytest.raises(expected):
        writ._core.store.recorder.insert_events(save)
    assert writ._core.store.recorder.max_notification_id() == head
    assert not writ._core.store.recorder.select_notifications(start=(head or 0) + 1, limit=10)
    after = writ.create(CLERK, "Order", {"sku": "AFTER", "total": "1"})
    assert after.position and after.position > (head or 0)


def test_a_store_whose_save_function_predates_this_version_says_how_to_upgrade(
    catalog: Catalog, pg_schema: str
) -> None:
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={pg_schema}"
    open_writ(catalog, url).close()
    # as a store made by an earlier version has it
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP FUNCTION "{pg_schema}".writ_events_insert')
    worker = open_writ(catalog, url, create_tables=False)
    with pytest.raises(ConfigurationError, match=r"predates this version of Writ.*CREATE_TABLE=y"):
        worker.create(CLERK, "Order", {"sku": "OLD", "total": "1"})
    worker.close()
    upgraded = open_writ(catalog, url)
    assert upgraded.create(CLERK, "Order", {"sku": "NEW", "total": "1"}).position
    upgraded.close()

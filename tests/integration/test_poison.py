"""Workers never crash-loop on one event: they halt at it, say where and why, and resume once an operator
sets it aside, losing nothing after it. Real ``writ`` processes, both databases.

The poison is written the way an older release or a hand-made import could have written it: a record
event saved straight through the library, past the decision pipeline (which refuses such values today),
with a datetime field that is not a datetime.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from uuid import UUID

import orjson
import pytest

from application.service import Writ
from domain.catalog import Catalog
from domain.record import Record
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from infrastructure.positions import Positions
from projections import open_views, open_worker
from tests.integration.conftest import bus_written_ids
from tests.integration.insider import Insider
from tests.integration.test_projection_crash import worker_process
from tests.integration.test_relay import MANAGER, write_orders
from tests.support import CliProcess, wait_until, writ_command

GOOD = [{"sku": f"OK-{n}", "total": "1"} for n in range(6)]


def write_poison(writ: Writ) -> int:
    """A record event no view can hold (``updated_at`` is a datetime field); its log position."""
    meta = {
        "actor": "importer",
        "tenant": "acme",
        "model": "Order",
        "operation": "create",
        "purpose": "import",
    }
    data = {"sku": "BAD-1", "total": "1", "updated_at": "not a time", "tenant_id": "acme"}
    recordings = writ._core.save(Record.create("Order", "acme", data, meta, writ._core.clock()))
    return recordings[-1].notification.id


def views_of(writ: Writ, database_url: str) -> set[str]:
    from projections import open_views

    views = open_views(writ.catalog, database_url)
    try:
        return {row["sku"] for row in views.list(MANAGER, "Order", limit=100).rows}
    finally:
        views.close()


def project_status(database_url: str, catalog_path: Path) -> dict[str, object]:
    done = writ_command(
        "project", "--status", "--json", "--database", database_url, "--catalog", str(catalog_path)
    )
    return orjson.loads(done.stdout.splitlines()[0])


def test_the_projection_halts_at_a_poison_event_and_resumes_when_it_is_set_aside(
    writ: Writ, database_url: str, catalog_path: Path, tmp_path: Path
) -> None:
    writ.create_many(MANAGER, "Order", GOOD[:3])
    bad = write_poison(writ)
    writ.create_many(MANAGER, "Order", GOOD[3:])

    once = writ_command(
        "project", "--once", "--database", database_url, "--catalog", str(catalog_path), check=False
    )
    assert once.returncode == 2, once.stderr
    assert (
        f"error: PROJECTION_HALTED: Projection current_rows halted at position {bad}" in once.stderr
    )
    assert views_of(writ, database_url) == {"OK-0", "OK-1", "OK-2"}, (
        "what came before the poison is projected"
    )
    status = project_status(database_url, catalog_path)
    assert status["halted_at"] == bad and "not a time" in str(status["halted_reason"])

    worker = worker_process(database_url, catalog_path)
    try:
        worker.wait_for_line(f"halted at position {bad}")
        assert worker.process.poll() is None, "a halted worker waits; it does not exit and restart"
        done = writ_command(
            "project",
            "--set-aside",
            str(bad),
            "--reason",
            "legacy import, re-entered by hand",
            "--operator",
            "olivia",
            "--database",
            database_url,
            "--catalog",
            str(catalog_path),
        )
        assert f"set aside position {bad}" in done.stdout
        worker.wait_for_line(f"position {bad} was set aside; resuming")
        wait_until(
            lambda: views_of(writ, database_url) == {row["sku"] for row in GOOD},
            30,
            "every good record after the poison to be projected",
        )
        assert sum(f"halted at position {bad}" in line for line in worker.lines) == 1, worker.lines
    finally:
        worker.stop()
    assert project_status(database_url, catalog_path)["halted_at"] is None
    backend = open_backend(database_url)
    database = backend.database(views=True)
    try:
        with database.reading() as tx:
            aside = Positions(backend).set_asides(tx, "projection:current_rows")
    finally:
        database.close()
    assert aside[bad][:2] == ("legacy import, re-entered by hand", "olivia")


@pytest.mark.parametrize("batch_size", [1, 100])
def test_the_position_moves_past_an_event_set_aside(
    writ: Writ, catalog: Catalog, database_url: str, batch_size: int
) -> None:
    """An event set aside is passed like any other: last in the log, or alone in a batch (``--batch-size 1``),
    it held the position before it for good (every record after it unprojected, or the views one event behind,
    so a ``wait`` for the log's head, a bulk update's too, timed out)."""
    writ.create_many(MANAGER, "Order", GOOD[:3])
    bad = write_poison(writ)
    worker = open_worker(catalog, database_url, batch_size=batch_size)
    views = open_views(catalog, database_url)
    try:
        worker.set_aside_event(bad, "legacy import, re-entered by hand", "olivia")
        worker.run(until_caught_up=True)
        views.wait(bad, timeout=1)
        writ.create_many(MANAGER, "Order", GOOD[3:])
        worker.run(until_caught_up=True)
        (status,) = worker.status()
        assert (status.position, status.events_behind) == (status.head, 0)
    finally:
        views.close()
        worker.close()
    assert views_of(writ, database_url) == {row["sku"] for row in GOOD}


def test_the_status_of_a_worker_halted_at_an_event_that_cannot_be_read_still_reads(
    writ: Writ, database_url: str, catalog_path: Path
) -> None:
    """Its lag in seconds comes from the next event's time, which cannot be read: the status said nothing
    but a JSON decoder's traceback, where the operator looks first."""
    writ.create_many(MANAGER, "Order", GOOD[:2])
    bad = writ.create(MANAGER, "Order", GOOD[2])
    insider = Insider(database_url)
    try:
        insider.set_state(str(bad.id), 1, b"\x00 not an event")
    finally:
        insider.close()
    once = writ_command(
        "project", "--once", "--database", database_url, "--catalog", str(catalog_path), check=False
    )
    assert once.returncode == 2 and f"halted at position {bad.position}" in once.stderr, once.stderr
    status = project_status(database_url, catalog_path)
    assert (status["halted_at"], status["events_behind"], status["seconds_behind"]) == (
        bad.position,
        1,
        None,
    )
    shown = writ_command(
        "project", "--status", "--database", database_url, "--catalog", str(catalog_path)
    )
    assert "unknown (the next event cannot be read)" in shown.stdout, shown.stdout


def relay_status(database_url: str, exchange: str) -> dict[str, object]:
    done = writ_command(
        "relay", "--status", "--json", "--database", database_url, "--exchange", exchange
    )
    return orjson.loads(done.stdout)


@pytest.mark.rabbitmq
def test_the_relay_halts_at_an_event_over_the_message_limit_and_resumes_past_it(
    writ: Writ, database_url: str, bus_exchange: str, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer()
    write_orders(writ, 3, prefix="BEFORE")
    big = writ.create(MANAGER, "Order", {"sku": "BIG-1", "total": "1", "note": "x" * 3000})
    write_orders(writ, 3, prefix="AFTER")
    written = bus_written_ids(writ)
    relay = bus_relay("--max-message-bytes", "2048")
    relay.wait_for_line(f"halted at position {big.position}")
    assert consumer.wait_for(3) == written[:3]
    status = relay_status(database_url, bus_exchange)
    assert status["halted_at"] == big.position and "over the broker limit of 2,048" in str(
        status["halted_reason"]
    )

    writ_command(
        "relay",
        "--set-aside",
        str(big.position),
        "--reason",
        "too big for the bus",
        "--database",
        database_url,
        "--exchange",
        bus_exchange,
    )
    relay.wait_for_line(f"position {big.position} was set aside; resuming")
    assert consumer.wait_for(6) == [event for event in written if event != f"{big.id}:1"]
    assert relay_status(database_url, bus_exchange)["halted_at"] is None


def rabbitmq_max_message_size(size: int) -> None:
    subprocess.run(
        ["rabbitmqctl", "eval", f"application:set_env(rabbit, max_message_size, {size})."],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.rabbitmq
def test_a_message_the_broker_refuses_is_found_by_probing_and_set_aside(
    writ: Writ, database_url: str, bus_exchange: str, bus_consumer, bus_relay
) -> None:
    """The broker's own limit is lower than the relay was told: the channel closes on that message, the
    relay reconnects, fails at the same place, probes one message at a time and halts at the culprit
    (before: it reconnected on PRECONDITION_FAILED forever)."""
    consumer = bus_consumer()
    write_orders(writ, 3, prefix="BEFORE")
    big = writ.create(MANAGER, "Order", {"sku": "BIG-2", "total": "1", "note": "y" * 9000})
    write_orders(writ, 3, prefix="AFTER")
    written = bus_written_ids(writ)
    rabbitmq_max_message_size(8192)
    relay: CliProcess | None = None
    try:
        relay = bus_relay()
        relay.wait_for_line(f"halted at position {big.position}", timeout=60)
        assert relay.said("one at a time, probing a failure")
        assert "PRECONDITION_FAILED" in str(
            relay_status(database_url, bus_exchange)["halted_reason"]
        )
    finally:
        rabbitmq_max_message_size(128 * 1024 * 1024)
    writ_command(
        "relay",
        "--set-aside",
        str(big.position),
        "--reason",
        "over the broker's limit",
        "--database",
        database_url,
        "--exchange",
        bus_exchange,
    )
    assert consumer.wait_for(6) == [event for event in written if event != f"{big.id}:1"]


def key_moved(writ: Writ, database_url: str) -> tuple[str, int]:
    """An order whose data key row holds another record's wrapped key (swapped by raw SQL): its id and the position
    of its first event."""
    from tests.integration.insider import Insider

    victim = writ.create(MANAGER, "Order", {"sku": "KEY-1", "total": "1"})
    other = writ.create(MANAGER, "Order", {"sku": "KEY-2", "total": "1"}).id
    insider = Insider(database_url)
    table = insider.table("writ_keys")
    insider.execute(
        f"UPDATE {table} SET wrapped = (SELECT wrapped FROM {table} WHERE id = ?) WHERE id = ?",
        (insider.key(other), insider.key(victim.id)),
    )
    return victim.id, victim.position or 0


def test_a_key_that_does_not_unwrap_is_key_invalid_wherever_it_is_read(
    writ: Writ, database_url: str, catalog_path: Path
) -> None:
    from domain.errors import KeyInvalidError

    write_orders(writ, 2, prefix="BEFORE")
    victim, position = key_moved(writ, database_url)
    env = {"WRIT_DATABASE_URL": database_url, "WRIT_CATALOG": str(catalog_path)}
    for command in (("get", "Order", victim), ("history", "Order", victim)):
        done = writ_command(
            *command, "-u", "maria", "-t", "acme", "-r", "manager", check=False, env=env
        )
        assert done.returncode == 2 and done.stderr.startswith(
            f"error: KEY_INVALID: the data key of {victim} does not unwrap"
        ), done.stderr
    fresh = open_writ(writ.catalog, database_url)  # no key cached: a bulk's read
    try:
        with pytest.raises(KeyInvalidError) as caught:
            fresh._core.loader.load_many([UUID(victim)], tenant="acme", model="Order")
        assert (caught.value.code, caught.value.record_id) == ("KEY_INVALID", victim)
    finally:
        fresh.close()
    once = writ_command(
        "project", "--once", "--database", database_url, "--catalog", str(catalog_path), check=False
    )
    assert (
        once.returncode == 2 and f"halted at position {position}: KEY_INVALID: " in once.stderr
    ), once.stderr


@pytest.mark.rabbitmq
def test_the_relay_halts_at_an_event_whose_key_does_not_unwrap(
    writ: Writ, database_url: str, bus_exchange: str, bus_consumer, bus_relay
) -> None:
    consumer = bus_consumer()
    write_orders(writ, 3, prefix="BEFORE")
    written = bus_written_ids(writ)
    _, position = key_moved(writ, database_url)
    relay = bus_relay()
    relay.wait_for_line(f"halted at position {position}")
    assert consumer.wait_for(3) == written
    assert str(relay_status(database_url, bus_exchange)["halted_reason"]).startswith(
        "KEY_INVALID: "
    )

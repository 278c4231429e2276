"""A running relay that meets data keys wrapped by a master key it does not have halts, and says so.

The operator rotates (the new master key first, ``writ keys rotate``) while a relay started with the old key
alone keeps running. The next events it reads have keys it cannot unwrap. Before, it exited with
``CONFIGURATION_INVALID`` and ``writ relay --status`` still named the dead process as the holder. Now it halts
at the first such event, as on any event it cannot publish: alive, holding its lease, the halt and its reason
in ``--status``; once its key file holds the new key it reads the event again, clears the halt and goes on.
A real ``writ relay`` process, RabbitMQ and both databases.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from uuid import UUID

import pytest

from application.service import Writ
from domain.errors import ConfigurationError
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from infrastructure.master_keys import key_id, new_master_key
from tests.integration.conftest import bus_written_ids
from tests.integration.test_poison import relay_status
from tests.integration.test_relay import MANAGER, write_orders
from tests.support import CliProcess, wait_until, writ_command

pytestmark = pytest.mark.rabbitmq


def relay_with(database_url: str, amqp_url: str, exchange: str, **keys: str) -> CliProcess:
    """``writ relay`` with only the master keys given (``WRIT_MASTER_KEY`` or ``WRIT_MASTER_KEY_FILE``)."""
    return CliProcess(
        "relay",
        "--database",
        database_url,
        "--exchange",
        exchange,
        env={"WRIT_AMQP_URL": amqp_url, "WRIT_MASTER_KEY": "", **keys},
    )


def rotate_and_write(writ: Writ, database_url: str, keys: str, prefix: str) -> int:
    """Rotate to the first of ``keys``, write three orders with them; the log position of the first order."""
    writ_command("keys", "rotate", env={"WRIT_DATABASE_URL": database_url, "WRIT_MASTER_KEY": keys})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WRIT_MASTER_KEY", keys)
        rotated = open_writ(writ.catalog, database_url)
    try:
        made = rotated.create_many(
            MANAGER, "Order", [{"sku": f"{prefix}-{n}", "total": "1"} for n in range(3)]
        )
    finally:
        rotated.close()
    return min(result.position for result in made if result.position is not None)


def assert_halted(
    relay: CliProcess, database_url: str, exchange: str, position: int, missing: str
) -> None:
    relay.wait_for_line(f"halted at position {position}", timeout=30)
    assert relay.process.poll() is None, "the relay halts; it does not exit"
    status = relay_status(database_url, exchange)
    assert status["halted_at"] == position, status
    assert f"wrapped by master key {key_id(base64.b64decode(missing))}" in str(
        status["halted_reason"]
    ), status
    assert status["holder"] == relay.worker_id, "the holder named is the live, halted relay"
    assert status["behind"] == 3, (
        "everything before the event is published and saved, nothing after it"
    )


def test_a_relay_meeting_a_rotated_master_key_halts_with_its_status_and_resumes_once_it_has_the_key(
    writ: Writ, database_url: str, amqp_url: str, bus_exchange: str, bus_consumer, tmp_path: Path
) -> None:
    old, new, newest = os.environ["WRIT_MASTER_KEY"], new_master_key(), new_master_key()
    key_file = tmp_path / "master.keys"
    key_file.write_text(f"{old}\n")
    consumer = bus_consumer()
    write_orders(writ, 3, prefix="BEFORE")
    relays = [relay_with(database_url, amqp_url, bus_exchange, WRIT_MASTER_KEY_FILE=str(key_file))]
    try:
        assert consumer.wait_for(3) == bus_written_ids(writ)
        first = rotate_and_write(writ, database_url, f"{new},{old}", "AFTER")
        assert_halted(relays[0], database_url, bus_exchange, first, new)

        # the running relay reads its key file again while halted
        key_file.write_text(f"{new}\n{old}\n")
        relays[0].wait_for_line(f"position {first} reads now; resuming", timeout=30)
        assert consumer.wait_for(6) == bus_written_ids(writ)
        assert relay_status(database_url, bus_exchange)["halted_at"] is None
        relays[0].stop()

        every = f"{newest},{new},{old}"  # a relay configured by the variable is restarted instead
        second = rotate_and_write(writ, database_url, every, "LATER")
        relays.append(
            relay_with(database_url, amqp_url, bus_exchange, WRIT_MASTER_KEY=f"{new},{old}")
        )
        assert_halted(relays[1], database_url, bus_exchange, second, newest)
        relays[1].stop()
        relays.append(relay_with(database_url, amqp_url, bus_exchange, WRIT_MASTER_KEY=every))
        assert consumer.wait_for(9) == bus_written_ids(writ)
        wait_until(
            lambda: relay_status(database_url, bus_exchange)["halted_at"] is None,
            30,
            "the halt to clear once the restarted relay has published past it",
        )
    finally:
        for relay in relays:
            relay.stop()


def test_a_key_that_does_not_unwrap_leaves_no_destroyed_key_in_the_cache(
    writ: Writ, database_url: str
) -> None:
    """A worker's batch re-reads its keys to drop the ones purged since. One key of the batch not unwrapping (a
    rotation to a master key the worker lacks) must not cut that short: the purged record's key would stay
    cached, and the worker would go on opening the record's data with it."""
    purged, kept = (
        UUID(writ.create(MANAGER, "Order", {"sku": sku, "total": "1"}).id) for sku in ("P-1", "K-1")
    )
    worker = open_backend(database_url)  # another process's vault, with the old master key alone
    try:
        vault = worker.vault()
        vault.prefetch([purged, kept])
        assert vault.cipher(purged) is not None, "the worker has the key cached"
        writ.purge(MANAGER, "Order", str(purged))
        new = new_master_key()
        writ_command(
            "keys",
            "rotate",
            env={
                "WRIT_DATABASE_URL": database_url,
                "WRIT_MASTER_KEY": f"{new},{os.environ['WRIT_MASTER_KEY']}",
            },
        )
        with pytest.raises(ConfigurationError, match="wrapped by master key"):
            vault.prefetch([purged, kept])
        assert vault.cipher(purged) is None, "the purged record's key left the cache all the same"
    finally:
        worker.close()

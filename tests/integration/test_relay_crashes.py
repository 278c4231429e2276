"""The relay survives its own SIGKILL and a broker restart: nothing lost, order kept, duplicates deduped."""

from __future__ import annotations

import random
import subprocess
import time

import pytest

from infrastructure.backends import open_backend
from infrastructure.positions import Positions
from tests.integration.conftest import bus_written_ids
from tests.integration.test_relay import write_orders
from tests.support import wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.slow]


def confirmed_position(database_url: str, exchange: str) -> int:
    backend = open_backend(database_url)
    database = backend.database()
    try:
        with database.transaction() as tx:
            positions = Positions(backend)
            positions.create(tx)
            return positions.read(tx, f"relay:{exchange}").position
    finally:
        database.close()


def test_relay_sigkilled_at_three_random_points_loses_nothing(writ, database_url, bus_exchange,
                                                               bus_consumer, bus_relay) -> None:
    seed = time.time_ns()
    rng = random.Random(seed)
    consumer = bus_consumer()
    relay = bus_relay()
    for round_ in range(3):
        start = writ.recorder.max_notification_id() or 0
        write_orders(writ, 1200, prefix=f"K{round_}")
        target = start + rng.randint(1, 1100)
        wait_until(lambda t=target: confirmed_position(database_url, bus_exchange) >= t, 30,
                   f"the relay to confirm position {target} (seed {seed})")
        relay.kill()
        relay = bus_relay()
    write_orders(writ, 200, prefix="Z")

    written = bus_written_ids(writ)
    assert consumer.wait_for(len(written), timeout=60) == written, f"seed {seed}"


def rabbitmqctl(command: str) -> None:
    subprocess.run(["rabbitmqctl", command], check=True, capture_output=True, timeout=60)


def test_broker_down_at_start_and_restarted_mid_run(writ, database_url, bus_exchange, bus_consumer,
                                                    bus_relay) -> None:
    consumer = bus_consumer()
    write_orders(writ, 600)
    try:
        rabbitmqctl("stop_app")
        relay = bus_relay()
        relay.wait_for_line("broker unreachable")
        rabbitmqctl("start_app")
        relay.wait_for_line("publishing from position")
        start = writ.recorder.max_notification_id() or 0
        write_orders(writ, 2500, prefix="R")
        wait_until(lambda: confirmed_position(database_url, bus_exchange) > start, 30, "publishing to resume")
        rabbitmqctl("stop_app")
        write_orders(writ, 200, prefix="S")
    finally:
        rabbitmqctl("start_app")
    relay.wait_for_line("broker connection lost")

    written = bus_written_ids(writ)
    assert consumer.wait_for(len(written), timeout=90) == written

"""``writ dead-letters``, against RabbitMQ: a subscriber gives up on two messages; once the cause is fixed, the
command lists them and moves them back to its queue, and the subscriber handles each once; the one whose record
was purged meanwhile comes back without the record's data."""

from __future__ import annotations

import orjson
import pytest

from tests.integration.conftest import bus_written_ids
from tests.integration.test_relay import MANAGER, write_orders
from tests.integration.test_subscriber import _queue_depth
from tests.support import wait_until, writ_command

pytestmark = pytest.mark.rabbitmq


def test_dead_letters_are_listed_then_moved_back_and_handled_once(
    writ, amqp_url, database_url, bus_consumer, bus_relay
) -> None:
    write_orders(writ, 12)
    written = bus_written_ids(writ)
    poison = frozenset({written[2], written[9]})
    consumer = bus_consumer(max_attempts=2, poison=poison)
    bus_relay()
    consumer.wait_for(len(written) - 2)
    queue = consumer.subscriber.name
    wait_until(
        lambda: _queue_depth(amqp_url, f"{queue}.dead") == 2, 15, "two messages dead-lettered"
    )
    env = {"WRIT_AMQP_URL": amqp_url, "WRIT_DATABASE_URL": database_url, "COLUMNS": "80"}

    listed = orjson.loads(writ_command("dead-letters", "list", queue, "--json", env=env).stdout)
    assert listed["count"] == 2 and {m["message_id"] for m in listed["messages"]} == poison
    assert all(m["deaths"] >= 1 and m["event_type"] == "Created" for m in listed["messages"])
    table = writ_command("dead-letters", "list", queue, env=env).stdout
    assert f"{queue}.dead: 2 dead-lettered messages" in table and all(
        len(line) <= 80 for line in table.splitlines()
    )
    first = writ_command("dead-letters", "list", queue, "--limit", "1", "--json", env=env).stdout
    assert (orjson.loads(first)["count"], len(orjson.loads(first)["messages"])) == (2, 1)
    assert _queue_depth(amqp_url, f"{queue}.dead") == 2, "listing leaves them where they are"

    erased, kept = sorted(poison)  # "<record id>:1" each, a Created
    writ.purge(MANAGER, "Order", erased.split(":")[0])  # the dead copy still holds its data
    written = bus_written_ids(writ)
    consumer.wait_for(len(written) - 2)  # the Purged tombstone
    consumer.poison = frozenset()  # the cause is fixed
    one = writ_command("dead-letters", "replay", queue, "--limit", "1", env=env).stdout
    assert one.strip() == f"moved 1 messages from {queue}.dead back to {queue}"
    moved = writ_command("dead-letters", "replay", queue, env=env).stdout
    assert moved.strip() == f"moved 1 messages from {queue}.dead back to {queue}"
    assert sorted(consumer.wait_for(len(written))) == sorted(written)
    assert consumer.events[erased].redacted and consumer.events[erased].data is None
    assert (consumer.events[kept].redacted, consumer.events[kept].data["total"]) == (False, "10")
    assert _queue_depth(amqp_url, f"{queue}.dead") == 0
    with consumer.reader.transaction() as tx:
        inbox = tx.query("SELECT message_id FROM writ_inbox WHERE subscriber = ?", (queue,))
    assert sorted(row[0] for row in inbox) == sorted(written), "each went back under its message_id"
    assert all(consumer.attempts[event_id] == 3 for event_id in poison), (
        "two failed deliveries, then handled once"
    )
    assert (
        writ_command("dead-letters", "replay", queue, env=env)
        .stdout.strip()
        .startswith("moved 0 messages")
    )
    blind = {**env, "WRIT_DATABASE_URL": ""}  # no store: it could not tell what was purged
    refused = writ_command("dead-letters", "replay", queue, env=blind, check=False)
    assert refused.returncode == 2 and "needs the store" in refused.stderr, refused.stderr
    missing = writ_command("dead-letters", "replay", "no-such-subscriber", env=env, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith(
        "error: NOT_FOUND: queue 'no-such-subscriber"
    )

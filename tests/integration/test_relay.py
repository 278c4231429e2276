"""The relay against the real broker, on both databases: order, completeness, purge, status, failover."""

from __future__ import annotations

import orjson
import pytest
from click.testing import CliRunner

from application.service import Writ
from domain.principal import Principal
from entrypoints.cli import main
from tests.integration.conftest import bus_written_ids

pytestmark = pytest.mark.rabbitmq

MANAGER = Principal(user_id="maria", tenant_id="acme", roles=frozenset({"manager"}), purpose="bus test",
                    correlation_id="corr-1", causation_id="cause-1")


def write_orders(writ: Writ, count: int, chunk: int = 2500, prefix: str = "A") -> None:
    for start in range(0, count, chunk):
        rows = [{"sku": f"{prefix}-{i}", "total": "10"} for i in range(start, min(count, start + chunk))]
        writ.create_many(MANAGER, "Order", rows)


@pytest.mark.slow
def test_ten_thousand_events_arrive_in_order_exactly_once(writ, bus_consumer, bus_relay) -> None:
    consumer = bus_consumer()
    write_orders(writ, 10_000)
    written = bus_written_ids(writ)
    assert len(written) == 10_000

    relay = bus_relay()
    consumed = consumer.wait_for(len(written), timeout=90)

    assert consumed == written
    relay.stop()
    assert relay.process.returncode == 0


def test_events_carry_the_integration_schema_and_headers(writ, bus_consumer, bus_relay) -> None:
    consumer = bus_consumer()
    created = writ.create(MANAGER, "Order", {"sku": "LAMP-1", "total": "12.50"})
    writ.patch(MANAGER, "Order", created.id, {"quantity": 3})
    bus_relay()
    consumer.wait_for(2)

    first = consumer.events[f"{created.id}:1"]
    assert (first.schema, first.event_type, first.tenant, first.model) == ("writ.event/1", "Created", "acme", "Order")
    assert first.routing_key == "acme.Order.Created"
    assert first.data is not None and first.data["sku"] == "LAMP-1"
    assert (first.actor, first.correlation_id, first.causation_id) == ("maria", "corr-1", "cause-1")
    assert first.decision is not None and first.decision["outcome"] == "allowed"
    assert (first.decision["operation"], first.decision["policy_version"]) == ("create", writ.catalog.version)
    assert first.decision_id and first.hash
    patched = consumer.events[f"{created.id}:2"]
    assert patched.changes is not None and patched.changes["quantity"] == 3 and patched.data is None
    assert patched.decision is not None and patched.decision["operation"] == "update"


def test_purged_record_data_is_never_published_but_the_tombstone_is(writ, bus_consumer, bus_relay) -> None:
    consumer = bus_consumer()
    kept = writ.create(MANAGER, "Order", {"sku": "KEEP-1", "total": "1", "note": "visible"})
    gone = writ.create(MANAGER, "Order", {"sku": "GONE-1", "total": "1", "note": "secret"})
    writ.patch(MANAGER, "Order", gone.id, {"note": "also secret"})
    writ.purge(MANAGER, "Order", gone.id)
    bus_relay()
    consumer.wait_for(len(bus_written_ids(writ)))

    assert consumer.events[f"{kept.id}:1"].data["note"] == "visible"
    for version in (1, 2):
        event = consumer.events[f"{gone.id}:{version}"]
        assert event.redacted and event.data is None and event.changes is None
    tombstone = consumer.events[f"{gone.id}:3"]
    assert tombstone.event_type == "Purged" and tombstone.routing_key == "acme.Order.Purged"
    assert b"secret" not in b"".join(orjson.dumps(e) for e in consumer.events.values())


def test_status_reports_position_lag_and_last_publish(writ, database_url, bus_exchange, bus_consumer,
                                                      bus_relay) -> None:
    write_orders(writ, 30)
    status = _status(database_url, bus_exchange)
    assert (status["position"], status["behind"], status["published_at"]) == (0, 30, None)

    consumer = bus_consumer()
    bus_relay()
    consumer.wait_for(30)
    status = _status(database_url, bus_exchange)
    assert status["behind"] == 0 and status["position"] >= 30 and status["published_at"]


def test_one_active_relay_and_a_standby_that_takes_over(writ, bus_consumer, bus_relay) -> None:
    consumer = bus_consumer()
    first = bus_relay()
    first.wait_for_line("lease acquired")
    second = bus_relay()
    second.wait_for_line("standby")
    write_orders(writ, 200)
    consumer.wait_for(200)
    assert not any("lease acquired" in line for line in second.lines)

    first.kill()
    second.wait_for_line("lease acquired")
    write_orders(writ, 200, prefix="B")
    written = bus_written_ids(writ)
    assert consumer.wait_for(len(written)) == written


def _status(database_url: str, exchange: str) -> dict[str, object]:
    result = CliRunner().invoke(main, ["relay", "--status", "--json", "--database", database_url,
                                       "--exchange", exchange])
    assert result.exit_code == 0, result.output
    return orjson.loads(result.output)

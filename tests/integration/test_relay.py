"""The relay against the real broker, on both databases: order, completeness, purge, status, failover."""

from __future__ import annotations

import aio_pika
import orjson
import pytest
from click.testing import CliRunner

from application.service import Writ
from domain.errors import WritError
from domain.principal import Principal
from entrypoints.cli import main
from tests.integration.conftest import bus_written_ids
from tests.support import stored_rows, wait_until

pytestmark = pytest.mark.rabbitmq

MANAGER = Principal(
    user_id="maria",
    tenant_id="acme",
    roles=frozenset({"manager"}),
    purpose="bus test",
    correlation_id="corr-1",
    causation_id="cause-1",
)


def write_orders(writ: Writ, count: int, chunk: int = 2500, prefix: str = "A") -> None:
    for start in range(0, count, chunk):
        rows = [
            {"sku": f"{prefix}-{i}", "total": "10"} for i in range(start, min(count, start + chunk))
        ]
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
    assert (first.schema, first.event_type, first.tenant, first.model) == (
        "writ.event/1",
        "Created",
        "acme",
        "Order",
    )
    assert first.routing_key == "acme.Order.Created"
    assert first.data is not None and first.data["sku"] == "LAMP-1"
    assert (first.actor, first.correlation_id, first.causation_id) == ("maria", "corr-1", "cause-1")
    assert first.decision is not None and first.decision["outcome"] == "allowed"
    assert (first.decision["operation"], first.decision["policy_version"]) == (
        "create",
        writ.catalog.version,
    )
    assert first.decision_id and first.hash
    patched = consumer.events[f"{created.id}:2"]
    assert patched.changes is not None and patched.changes["quantity"] == 3 and patched.data is None
    assert patched.decision is not None and patched.decision["operation"] == "update"


@pytest.mark.parametrize("publisher", ["fast", "public"])
def test_every_message_is_persistent_json_with_its_headers_and_an_escaped_routing_key(
    writ, database_url, bus_tap, bus_relay, publisher
) -> None:
    """Record events and every kind of decision that changed nothing (refused, parked, failed) go out as
    persistent JSON with ``message_id`` = event id, the contract headers and injective routing keys."""
    dotted = Principal(
        user_id="ann",
        tenant_id="acme.x",
        roles=frozenset({"manager"}),
        purpose="bus",
        correlation_id="corr-9",
        causation_id="cause-9",
    )
    underscored = dotted.model_copy(update={"tenant_id": "acme_x"})
    first = writ.create(dotted, "Order", {"sku": "DOT-1", "total": "1"})
    writ.create(underscored, "Order", {"sku": "UND-1", "total": "1"})
    with pytest.raises(WritError):  # refused: a clerk may not purge
        writ.purge(dotted.model_copy(update={"roles": frozenset({"clerk"})}), "Order", first.id)
    # parked
    assert writ.patch(dotted, "Order", first.id, {"total": "20000"}).status == "pending_approval"
    _fail_once(writ, database_url, first.id)
    written = bus_written_ids(writ)
    bus_relay("--publisher", publisher)
    messages = bus_tap.wait_for(len(written))

    assert [m.message_id for m in messages] == written
    outcomes = [
        orjson.loads(m.body).get("decision", {}).get("outcome")
        for m in messages
        if m.type == "Decision"
    ]
    assert sorted(outcomes) == ["failed", "parked", "refused"]
    for message in messages:
        body = orjson.loads(message.body)
        assert (message.delivery_mode, message.content_type) == (
            aio_pika.DeliveryMode.PERSISTENT,
            "application/json",
        )
        assert message.message_id == body["event_id"] and message.type == body["event_type"]
        assert message.headers["writ-schema"] == "writ.event/1"
        assert message.headers["writ-position"] == body["position"]
        if body["correlation_id"] is not None:
            assert (
                message.headers["correlation_id"]
                == body["correlation_id"]
                == message.correlation_id
            )
        tenant = {"acme.x": "acme%2Ex", "acme_x": "acme_x"}[body["tenant"]]
        model = body["model"]  # Order, or Approval for the parked request's events
        assert message.routing_key == f"{tenant}.{model}.{body['event_type']}" and model in (
            "Order",
            "Approval",
        )
    ours = [
        m
        for m in messages
        if m.type != "Decision"
        and orjson.loads(m.body)["actor"] == "ann"
        and orjson.loads(m.body)["model"] == "Order"
    ]
    assert len(ours) == 2 and {m.headers.get("causation_id") for m in ours} == {"cause-9"}


def test_approval_events_reach_the_bus_for_notifiers(writ, bus_tap, bus_relay) -> None:
    clerk = Principal(
        user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="big order"
    )
    record = writ.create(clerk, "Order", {"sku": "BIG-1", "total": "1"}).id
    parked = writ.patch(clerk, "Order", record, {"total": "50000"})
    writ.approve(
        MANAGER.for_purpose("sign-off", audit_attributes={"agent": "approve-bot"}),
        parked.approval_id,
        reason="ok",
    )
    written = bus_written_ids(writ)
    bus_relay()
    messages = {m.routing_key: orjson.loads(m.body) for m in bus_tap.wait_for(len(written))}
    requested, approved = messages["acme.Approval.Requested"], messages["acme.Approval.Approved"]
    assert requested["data"]["approval_id"] == parked.approval_id and requested["actor"] == "carol"
    assert (
        requested["data"]["model"] == "Order"
        and requested["data"]["preview"]["after"]["total"] == "50000"
    )
    assert approved["actor"] == "maria" and approved["data"]["reason"] == "ok"
    assert approved["audit"] == {"agent": "approve-bot"}, (
        "the agent beside the approver, as on a write's events"
    )
    assert messages["acme.Approval.Executed"]["data"]["results"][0]["version"] == 2
    assert messages["acme.Order.Patched"]["record_id"] == record


def _fail_once(writ: Writ, database_url: str, record_id: str) -> None:
    """A command that fails: every attempt is overtaken by a write of another service (a failed decision)."""
    from tests.application.test_concurrency import overtaken

    loser = overtaken(writ.catalog, database_url, writ, 2)
    try:
        with pytest.raises(WritError):
            loser.patch(
                MANAGER.model_copy(update={"tenant_id": "acme.x"}),
                "Order",
                record_id,
                {"note": "x"},
            )
    finally:
        loser.close()


def test_purged_record_data_is_never_published_but_the_tombstone_is(
    writ, bus_consumer, bus_relay
) -> None:
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


def test_a_purged_record_s_approval_requests_are_published_without_what_the_purge_erased(
    writ, bus_tap, bus_relay
) -> None:
    """The request's own key goes with the purge of a record it covers: its events then say which request, about
    what, and how many approvers, as a replayed dead letter does, and none of the change, the requester's details
    or the reasons (the envelope still names who acted, as every tombstone does); the record's failure comes
    without its reason."""
    clerk = Principal(
        user_id="carol", tenant_id="acme", roles=frozenset({"clerk"}), purpose="secret order"
    )
    record = writ.create(clerk, "Order", {"sku": "GONE-2", "total": "1"}).id
    parked = writ.patch(clerk, "Order", record, {"total": "73519", "note": "ring twice"})
    writ.reject(MANAGER, parked.approval_id, reason="no: 73519 is too much")
    live = writ.create(clerk, "Order", {"sku": "KEEP-2", "total": "1"}).id
    kept = writ.patch(clerk, "Order", live, {"total": "64827"})
    # a compound operation's parent marked failed, its reason quoting the record
    writ._commands.fail(MANAGER, "Order", record, "could not ring twice")
    writ.purge(MANAGER, "Order", record)
    written = bus_written_ids(writ)
    bus_relay()
    messages = [orjson.loads(m.body) for m in bus_tap.wait_for(len(written))]
    about = {m["data"]["approval_id"]: [] for m in messages if m["model"] == "Approval"}
    for message in messages:
        if message["model"] == "Approval":
            about[message["data"]["approval_id"]].append(message)
    erased = about[parked.approval_id]
    assert sorted(m["event_type"] for m in erased) == ["Rejected", "Requested"]
    for message in erased:
        assert message["redacted"] and set(message["data"]) <= {
            "approval_id",
            "model",
            "operation",
            "record_id",
            "record_version",
            "required",
        }, message
    seen = b"".join(orjson.dumps(m) for m in messages)
    assert b"73519" not in seen and b"ring twice" not in seen, "nor the failure's reason"
    (requested,) = about[kept.approval_id]
    assert not requested["redacted"] and requested["data"]["preview"]["after"]["total"] == "64827"
    (failed,) = [
        m for m in messages if m["record_id"] == str(record) and m["event_type"] == "Failed"
    ]
    assert failed["redacted"] and failed["reason"] is None, failed


def test_status_reports_position_lag_and_last_publish(
    writ, database_url, bus_exchange, bus_consumer, bus_relay
) -> None:
    write_orders(writ, 30)
    status = _status(database_url, bus_exchange)
    assert (status["position"], status["behind"], status["published_at"]) == (0, 30, None)

    consumer = bus_consumer()
    bus_relay()
    consumer.wait_for(30)  # delivered; the position is saved once the broker's confirms come back
    wait_until(
        lambda: _status(database_url, bus_exchange)["behind"] == 0,
        30,
        "the relay to save its position",
    )
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
    result = CliRunner().invoke(
        main, ["relay", "--status", "--json", "--database", database_url, "--exchange", exchange]
    )
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


PUBLIC_TOPICS = ("writ.record:", "writ.approval:", "writ.decision:Created")
"""What the contract publishes, spelled out here (not read from the relay's own list)."""
BOOKKEEPING = ("writ.idempotency:", "writ.counter:", "writ.unique:", "writ.family:")


def test_bookkeeping_never_reaches_the_bus(sales, database_url, bus_tap, bus_relay) -> None:
    """Idempotency keys (they hold a command's fingerprint and result), counters, unique claims (HMACs of
    unique values) and families are Writ's own bookkeeping: the bus carries record events, decisions and
    approval events only, every one of them, in log order."""
    clerk = MANAGER.model_copy(update={"roles": frozenset({"clerk"})})
    lamp = {"title": "Desk lamp", "total": "40", "items": [{"sku": "LAMP", "serial": "S-1"}]}
    sale = sales.create(clerk, "Sale", lamp, idempotency_key="sale-1")
    # a repeat: replayed, nothing appended
    sales.create(clerk, "Sale", lamp, idempotency_key="sale-1")
    with pytest.raises(WritError):
        sales.create(clerk, "Sale", {"title": "Unlucky", "total": "13"})  # refused: a decision
    sales.delete(MANAGER, "Sale", sale.id)
    rows = stored_rows(database_url)
    assert {
        prefix for prefix in BOOKKEEPING for row in rows if row.topic.startswith(prefix)
    } == set(BOOKKEEPING)
    public = [
        f"{row.originator_id}:{row.originator_version}"
        for row in rows
        if row.topic.startswith(PUBLIC_TOPICS)
    ]
    bus_relay()
    messages = bus_tap.wait_for(len(public))
    assert [message.message_id for message in messages] == public


def test_the_status_reads_a_position_an_earlier_release_kept_and_writes_nothing(
    writ: Writ, database_url: str
) -> None:
    """A store from before the positions' table: ``writ relay --status`` shows the position the earlier
    release's table kept, without making a table; the relay carries it over when it starts, once."""
    from infrastructure.bus.relay import Relay
    from infrastructure.positions import TABLE

    write_orders(writ, 3, chunk=3)
    relay = Relay(database_url, "amqp://guest:guest@127.0.0.1:5672/", "earlier.exchange")
    try:
        with relay.database.transaction() as tx:
            tx.execute(
                "CREATE TABLE writ_relay_position (exchange TEXT PRIMARY KEY, position BIGINT)"
            )
            tx.execute("INSERT INTO writ_relay_position VALUES (?, ?)", ("earlier.exchange", 2))
        head = relay.log.log.head()
        status = relay.status()
        assert (status["position"], status["behind"]) == (2, head - 2), status
        with relay.database.reading() as tx:
            assert not relay.backend.has_table(tx, TABLE), "the status made no table"
        relay.ensure()  # a relay of this release starting
        with relay.database.reading() as tx:
            assert relay.positions.read(tx, relay.name).position == 2, "carried over"
        assert relay.status()["position"] == 2
        relay.epoch = relay._claim()
        relay.save(head)
        relay.ensure()  # started again: the earlier release's row is carried over once only
        assert relay.status()["position"] == head
        with relay.database.transaction() as tx:
            relay.positions.follow(tx, relay.name, "a log dropped since")
        relay.epoch = relay._claim()  # on a new log: back at its start, under a later epoch
        relay.ensure()
        assert relay.status()["position"] == 0, "the earlier release's row not carried over it"
    finally:
        relay.close()

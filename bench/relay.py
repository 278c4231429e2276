"""Relay benchmark: backlog throughput vs raw aio-pika, and live write → consumer latency.

In one process, on a fresh PostgreSQL schema (or ``--database sqlite:///file``):

1. Writes a backlog of ``--events`` record events (``create_many``).
2. Relays it with ``Relay`` (confirms over a window of 256) to a fresh topic
   exchange with one durable queue bound, timing backlog → last confirm saved.
3. Publishes the same bodies (same properties and routing keys) with plain
   aio-pika, confirms pipelined over a window of 256, to the same exchange.
4. With the relay following live and a ``Subscriber`` consuming, issues single
   ``Writ.create`` calls and measures write start → handler latency.

Prints figures, then one JSON line:
{"bench": "relay", "relayed_per_s", "raw_publish_per_s", "ratio", "deliver_p50_ms"}.

    .venv/bin/python bench/relay.py [--events 20000] [--latency-samples 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import aio_pika
import orjson
import psycopg
from throwaway_keys import ensure as ensure_keys

from application.service import Writ
from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from infrastructure.bus.contract import IntegrationEvent
from infrastructure.bus.database import Tx, open_database
from infrastructure.bus.publish import Outgoing, as_message
from infrastructure.bus.relay import Relay
from infrastructure.bus.subscriber import Subscriber
from infrastructure.config import DEFAULT_AMQP_URL
from infrastructure.positions import Positions

ensure_keys()

PG_URL = os.environ.get("WRIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("WRIT_AMQP_URL", DEFAULT_AMQP_URL)
WINDOW = 256
CATALOG = """
[models.Order]
required = ["sku"]
[models.Order.fields]
sku = { type = "str", max_length = 40 }
quantity = { type = "int", default = 1 }
total = { type = "decimal", min = 0, nullable = true }
note = { type = "str", nullable = true }
[models.Order.policy]
create = "allow"
[models.Order.grants]
create = ["*"]
"""
PRINCIPAL = Principal(
    user_id="bench",
    tenant_id="acme",
    roles=frozenset({"clerk"}),
    purpose="benchmark",
    correlation_id="bench-run",
)


@contextmanager
def database(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}{'&' if '?' in PG_URL else '?'}schema={schema}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def write_backlog(writ: Writ, events: int) -> float:
    started = time.perf_counter()
    for start in range(0, events, 2500):
        rows = [
            {"sku": f"SKU-{i}", "total": "19.90", "note": "backlog event " * 3}
            for i in range(start, min(events, start + 2500))
        ]
        writ.create_many(PRINCIPAL, "Order", rows)
    return time.perf_counter() - started


async def declare(exchange_name: str) -> None:
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(f"{exchange_name}.sink", durable=True)
        await queue.bind(exchange, "#")


async def cleanup(exchange_name: str) -> None:
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        for queue in (
            f"{exchange_name}.sink",
            f"{exchange_name}.live",
            f"{exchange_name}.live.dead",
        ):
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange_name)


async def purge_sink(exchange_name: str) -> None:
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(f"{exchange_name}.sink", durable=True)
        await queue.purge()


async def time_relay(
    url: str, exchange: str, target: int, publisher: str
) -> tuple[float, Relay, asyncio.Event, asyncio.Task[None]]:
    relay = Relay(url, AMQP_URL, exchange, window=WINDOW, publisher=publisher)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(relay.run(stop))
    await asyncio.to_thread(relay.ensure)
    while (await asyncio.to_thread(relay_position, url, exchange)) < target:
        await asyncio.sleep(0.02)
    return time.perf_counter() - started, relay, stop, task


def relay_position(url: str, exchange: str) -> int:
    backend = open_backend(url)
    database = backend.database()
    try:
        with database.reading() as tx:
            return Positions(backend).read(tx, f"relay:{exchange}").position
    finally:
        database.close()


def all_outgoing(relay: Relay) -> list[Outgoing]:
    items: list[Outgoing] = []
    after = 0
    while (batch := relay.log.read(after, 5000)).count:
        items += batch.items
        after = batch.last
    return items


async def time_raw(exchange_name: str, items: list[Outgoing]) -> float:
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.declare_exchange(
            exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        slots = asyncio.Semaphore(WINDOW)
        tasks = []
        messages = [(as_message(item), item.routing_key) for item in items]
        started = time.perf_counter()
        for message, routing_key in messages:
            await slots.acquire()
            task = asyncio.ensure_future(exchange.publish(message, routing_key, mandatory=False))
            task.add_done_callback(lambda _: slots.release())
            tasks.append(task)
        await asyncio.gather(*tasks)
        return time.perf_counter() - started


async def measure_latency(url: str, writ: Writ, exchange: str, samples: int) -> list[float]:
    received: dict[str, float] = {}

    def handler(event: IntegrationEvent, tx: Tx) -> None:
        received[event.record_id] = time.perf_counter()

    subscriber = Subscriber(
        f"{exchange}.live",
        open_database(url),
        handler,
        amqp_url=AMQP_URL,
        exchange=exchange,
        patterns=("acme.Order.Created",),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(subscriber.run(stop, ready))
    await ready.wait()
    latencies = []
    for i in range(samples):
        started = time.perf_counter()
        result = await asyncio.to_thread(writ.create, PRINCIPAL, "Order", {"sku": f"LIVE-{i}"})
        while result.id not in received:
            await asyncio.sleep(0.0005)
        latencies.append((received[result.id] - started) * 1000)
        await asyncio.sleep(0.01)
    stop.set()
    await task
    subscriber.database.close()
    return latencies


async def run(url: str, events: int, samples: int, publisher: str) -> dict[str, object]:
    writ = open_writ(Catalog.from_toml(CATALOG, source="bench"), url)
    print(f"database: {url.rsplit('@', maxsplit=1)[-1]}")
    print(f"backlog: {events} events written in {write_backlog(writ, events):.1f}s")
    exchange = f"bench.relay.{uuid.uuid4().hex[:8]}"
    await declare(exchange)
    try:
        target = writ._core.store.recorder.max_notification_id() or 0
        relay_s, relay, stop, task = await time_relay(url, exchange, target, publisher)
        relayed = events / relay_s
        print(
            f"relay:  {events} events in {relay_s:.2f}s = {relayed:,.0f}/s (confirms, window {WINDOW}, "
            f"{publisher} publisher)"
        )
        items = await asyncio.to_thread(all_outgoing, relay)
        await purge_sink(exchange)
        raw_s = await time_raw(exchange, items)
        raw = len(items) / raw_s
        print(
            f"raw:    {len(items)} publishes in {raw_s:.2f}s = {raw:,.0f}/s (aio-pika, confirms, window {WINDOW})"
        )
        latencies = await measure_latency(url, writ, exchange, samples)
        stop.set()
        await task
    finally:
        await cleanup(exchange)
        writ.close()
    p50, p95 = statistics.median(latencies), statistics.quantiles(latencies, n=20)[18]
    print(
        f"latency write → subscriber handler: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms"
        f" ({len(latencies)} samples)"
    )
    print(f"ratio relay/raw: {relayed / raw:.2f} (targets: ≥3,000/s, ≥0.8, p50 ≤30 ms)")
    return {
        "bench": "relay",
        "publisher": publisher,
        "relayed_per_s": round(relayed),
        "raw_publish_per_s": round(raw),
        "ratio": round(relayed / raw, 3),
        "deliver_p50_ms": round(p50, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument(
        "--database", default=None, help="Database URL (default: a fresh PostgreSQL schema)"
    )
    parser.add_argument(
        "--publisher",
        choices=["fast", "public"],
        default="fast",
        help="the relay's publisher: the pipelined fast path or aio-pika's public API",
    )
    args = parser.parse_args()
    with database(args.database) as url:
        result = asyncio.run(run(url, args.events, args.latency_samples, args.publisher))
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()

"""Projection benchmark on PostgreSQL: catch-up throughput, a raw-insert baseline, live latency.

1. Appends N record events to a fresh schema: creates (``create_many``, 1,000
   per save) and ``--changed-share`` (default 5%) patches and deletes of those
   records; then times one worker catching up from zero
   (``run(until_caught_up=True)``, ``--batch-size`` events per transaction).
   ``--changed-share 0.8`` makes a patch-heavy log (each record patched ~4 times).
2. Baseline: the same work by plain psycopg ``executemany``: the view's final
   rows and the decision rows, into copies of the view table and the decisions
   table (same columns and indexes), in as many transactions as the worker's
   batches. ``ratio`` = catch-up events/s / baseline events/s (the events the
   baseline's rows stand for, over its seconds).
3. Live: a ``writ project`` subprocess follows the log; each write waits with
   ``Views.wait`` for its position; latency = write returned -> row visible.

Usage: ``python bench/projection.py [--events 100000] [--database URL]``. The
last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb, set_json_dumps
from throwaway_keys import ensure as ensure_keys

from application.service import Writ
from domain.catalog import Catalog
from domain.commands import Delete, Patch
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from projections import open_views, open_worker
from projections.runner import DEFAULT_BATCH_SIZE

ensure_keys()

ROOT = Path(__file__).resolve().parents[1]

CATALOG = """
[models.Order]
required = ["sku", "total"]
[models.Order.fields]
sku = { type = "str" }
quantity = { type = "int", default = 1 }
total = { type = "decimal", index = true }
status = { type = "str", choices = ["draft", "placed", "shipped"], default = "draft", index = true }
placed_at = { type = "datetime", nullable = true }
note = { type = "str", nullable = true }
tags = { type = "list", items = "str", nullable = true }
[models.Order.policy]
create = "allow"
update = "allow"
delete = "allow"
[models.Order.grants]
create = ["*"]
update = ["*"]
delete = ["*"]
"""
WHO = Principal(user_id="bench", tenant_id="t1", roles=frozenset({"clerk"}), purpose="benchmark")


def row(n: int) -> dict[str, object]:
    return {
        "sku": f"SKU-{n}",
        "quantity": 1 + n % 9,
        "total": f"{n % 997}.{n % 100:02d}",
        "status": ("draft", "placed", "shipped")[n % 3],
        "placed_at": "2024-05-01T12:00:00Z",
        "note": None if n % 4 else f"note {n}",
        "tags": ["a", "b"] if n % 2 else None,
    }


def append(writ: Writ, events: int, changed_share: float) -> tuple[int, float]:
    """Creates, then patches (4/5) and soft deletes (1/5) making up ``changed_share`` of the events.

    Patches go round the records, so a high share patches each record several times; deletes take
    the last records. Commands are saved 1,000 per transaction (``create_many``/``execute_many``).
    Returns (record events appended, seconds).
    """
    started = time.perf_counter()
    changes = int(events * changed_share)
    creates = events - changes
    ids: list[str] = []
    for start in range(0, creates, 1000):
        results = writ.create_many(
            WHO, "Order", [row(n) for n in range(start, min(creates, start + 1000))]
        )
        ids += [r.id for r in results]
    deletes = changes // 5
    commands: list[Patch | Delete] = [
        Patch(
            model="Order",
            id=ids[n % len(ids)],
            changes={"quantity": 2 + n % 40, "note": f"patch {n}"},
        )
        for n in range(changes - deletes)
    ]
    commands += [Delete(model="Order", id=record_id) for record_id in ids[len(ids) - deletes :]]
    for start in range(0, len(commands), 1000):
        batch = commands[start : start + 1000]
        touched = [c.id for c in batch]
        if len(set(touched)) < len(touched):  # one command per record per transaction
            for command in batch:
                writ.execute(WHO, command)
        else:
            writ.execute_many(WHO, batch)
    return creates + changes, time.perf_counter() - started


def settle(conninfo: str) -> None:
    """Flush the dirty pages the previous phase left, so no checkpoint lands inside a timed phase."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def catch_up(catalog: Catalog, url: str, batch: int) -> float:
    worker = open_worker(catalog, url, batch_size=batch)
    try:
        started = time.perf_counter()
        worker.run(until_caught_up=True)
        return time.perf_counter() - started
    finally:
        worker.close()


def raw_insert(conninfo: str, schema: str, batch: int, events: int) -> tuple[int, float]:
    """The same work the worker does, by plain executemany: the view's final rows and the decision rows, into
    identical tables (same columns, same indexes), in as many transactions as the worker's batches; returns
    (rows inserted, seconds)."""
    with psycopg.connect(conninfo) as conn:
        set_json_dumps(lambda obj: orjson.dumps(obj).decode(), context=conn)
        tables = [
            _copied(conn, schema, "writ_view_order", "raw_order"),
            _copied(conn, schema, "writ_decisions", "raw_decisions"),
        ]
        conn.commit()
        transactions = max(1, -(-events // batch))
        started = time.perf_counter()
        for part in range(transactions):
            with conn.transaction(), conn.cursor() as cur:
                for insert, rows in tables:
                    size = -(-len(rows) // transactions)
                    cur.executemany(insert, rows[part * size : (part + 1) * size])
        return sum(len(rows) for _, rows in tables), time.perf_counter() - started


def _copied(
    conn: psycopg.Connection[tuple[object, ...]], schema: str, table: str, copy: str
) -> tuple[sql.Composed, list[list[object]]]:
    """An empty copy of ``table`` and the INSERT and rows that fill it as the table is."""
    source, target = sql.Identifier(schema, table), sql.Identifier(schema, copy)
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(target, source))
    cursor = conn.execute(sql.SQL("SELECT * FROM {}").format(source))
    names = [d.name for d in cursor.description or ()]
    rows = [[Jsonb(v) if isinstance(v, list | dict) else v for v in r] for r in cursor.fetchall()]
    insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        target,
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    return insert, rows


def live_latency(catalog: Catalog, url: str, writes: int) -> tuple[list[float], list[float]]:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(CATALOG)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from entrypoints.cli import main; main()",
            "project",
            "--database",
            url,
            "--catalog",
            handle.name,
        ],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    writ, views = open_writ(catalog, url), open_views(catalog, url)
    visible, end_to_end = [], []
    try:
        warm = writ.create(WHO, "Order", row(0))
        views.wait(warm.position, timeout=30)
        for n in range(writes):
            started = time.perf_counter()
            result = writ.create(WHO, "Order", row(n))
            written = time.perf_counter()
            views.wait(result.position, timeout=5)
            done = time.perf_counter()
            visible.append((done - written) * 1000)
            end_to_end.append((done - started) * 1000)
    finally:
        worker.terminate()
        worker.wait(10)
        writ.close()
        views.close()
        os.unlink(handle.name)
    return visible, end_to_end


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument(
        "--changed-share",
        type=float,
        default=0.05,
        help="share of the events that patch or delete existing records (default 0.05)",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get(
            "WRIT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    conninfo = args.database
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = f"{args.database}{'&' if '?' in args.database else '?'}schema={schema}"
    catalog = Catalog.from_toml(CATALOG)
    try:
        writ = open_writ(catalog, url)
        events, append_s = append(writ, args.events, args.changed_share)
        writ.close()
        print(f"appended {events} record events in {append_s:.1f}s (command side, not measured)")
        settle(conninfo)
        seconds = catch_up(catalog, url, args.batch_size)
        events_per_s = events / seconds
        print(
            f"catch-up: {events} events in {seconds:.2f}s = {events_per_s:,.0f} events/s "
            f"(batch {args.batch_size})"
        )
        settle(conninfo)
        rows, raw_s = raw_insert(conninfo, schema, args.batch_size, events)
        raw_per_s = events / raw_s
        print(
            f"raw executemany of the same rows (current rows and decision rows): {rows} rows in {raw_s:.2f}s "
            f"= {raw_per_s:,.0f} events/s"
        )
        print(f"ratio (catch-up events/s / raw events/s): {events_per_s / raw_per_s:.2f}")
        visible, end_to_end = live_latency(catalog, url, args.writes)
        print(
            f"live: write->visible p50 {pct(visible, 50):.1f} ms, p99 {pct(visible, 99):.1f} ms; "
            f"including the write p50 {pct(end_to_end, 50):.1f} ms, p99 {pct(end_to_end, 99):.1f} ms "
            f"({args.writes} writes)"
        )
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    print(
        orjson.dumps(
            {
                "bench": "projection",
                "events_per_s": round(events_per_s),
                "raw_events_per_s": round(raw_per_s),
                "ratio": round(events_per_s / raw_per_s, 2),
                "visible_p50_ms": round(pct(visible, 50), 2),
                "visible_p99_ms": round(pct(visible, 99), 2),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()

"""Bulk update benchmark on PostgreSQL: one governed bulk_update over N records vs raw batched UPDATEs.

1. Creates N orders in a fresh schema (``create_many``, 1,000 per save) and
   projects them (the views find a bulk's candidates). With ``--events K``,
   K - 1 untimed bulk updates first give each order K events: records past
   their snapshot (every 20 events), whose loads replay and check them.
2. Times ONE ``bulk_update`` that patches every one of them: the views query,
   loading every record (its key, latest snapshot and events since: three
   queries per 2,000 records, sent together, the next 2,000's sent before
   these are checked), checking its hash chain, deciding it
   under the ``bulk_update`` policy, one ``Patched`` event each with its
   digests and hash, and one atomic save of all N events (one transaction,
   inserted 1,000 at a time while the next 1,000 are patched and encoded).
3. Baseline, same run: plain psycopg ``executemany`` of ``UPDATE`` on a copy
   of the same rows, in batches of 1,000, one transaction.

All three ``--runs`` times (3 by default), each on a fresh schema: a single
one-second run swings by a third on a shared machine, so the figures are the
medians (every run is printed too). Prints figures, then one JSON line:
``{"bench": "bulk", "records_per_s": ..., "raw_rows_per_s": ..., "ratio": ...}``.

    .venv/bin/python bench/bulk.py [--records 10000] [--events 1] [--runs 3]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)

Wall-clock rates swing with the load of a shared machine; instructions do not. ``--callgrind`` counts the
timed bulk update's alone (one run, no baseline; instrumentation switched on and off around it with
``callgrind_control``), divided by the records: run it under
``valgrind --tool=callgrind --instr-atstart=no .venv/bin/python bench/bulk.py --callgrind --records 1000``
and read the total it prints (``Collected``). Valgrind hides SHA-NI, so SHA-256 costs several times its real
share there (``callgrind_annotate`` names its block function).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
import psycopg
from bench_schema import PG_URL, fresh_schema
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.bootstrap import Runtime

ensure_keys()

CATALOG = """
[models.Order]
required = ["sku", "total"]
[models.Order.fields]
sku = { type = "str", max_length = 40 }
total = { type = "decimal", min = 0 }
status = { type = "str", choices = ["draft", "placed", "shipped"], default = "draft", index = true }
note = { type = "str", nullable = true }
[models.Order.policy]
create = "allow"
bulk_update = [{ action = "deny", when = { field = "before.status", op = "eq", value = "shipped" } }, "allow"]
max_affected = 100000
[models.Order.grants]
create = ["*"]
bulk_update = ["*"]
[limits]
rows = 100000
"""
WHO = Principal(user_id="bench", tenant_id="acme", roles=frozenset({"ops"}), purpose="bulk bench")


def raw_updates(name: str, ids: list[str]) -> float:
    """The same rows in a plain table, updated with executemany in batches of 1,000, one transaction."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f'CREATE TABLE "{name}".raw '
            "(id uuid PRIMARY KEY, sku text, total numeric, status text, note text)"
        )
        with (
            conn.cursor() as cursor,
            cursor.copy(f'COPY "{name}".raw (id, sku, total, status) FROM STDIN') as copy,
        ):
            for n, rid in enumerate(ids):
                copy.write_row((rid, f"SKU-{n}", "19.99", "placed"))
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cursor:
            for start in range(0, len(ids), 1000):
                cursor.executemany(
                    f'UPDATE "{name}".raw SET note = %s WHERE id = %s',
                    [("rush", rid) for rid in ids[start : start + 1000]],
                )
        return time.perf_counter() - started


def one_run(
    catalog: Catalog, records: int, events: int, callgrind: bool = False
) -> tuple[float, float]:
    """(seconds of the governed bulk update, seconds of the raw UPDATEs) on a fresh schema."""
    with fresh_schema("bench_bulk") as (name, url), Runtime(catalog, url) as runtime:
        writ, ids = runtime.writ, []
        for start in range(0, records, 1000):
            rows = [
                {"sku": f"SKU-{n}", "total": "19.99", "status": "placed"}
                for n in range(start, min(records, start + 1000))
            ]
            ids += [r.id for r in writ.create_many(WHO, "Order", rows)]
        for n in range(1, events):
            runtime.catch_up()
            writ.bulk_update(WHO, "Order", [("status", "eq", "placed")], {"note": f"earlier {n}"})
        runtime.catch_up()
        started = time.perf_counter()
        with instrumented(callgrind):
            done = writ.bulk_update(WHO, "Order", [("status", "eq", "placed")], {"note": "rush"})
        governed_s = time.perf_counter() - started
        assert done.updated_count == len(ids), done.updated_count
        return governed_s, 0.0 if callgrind else raw_updates(name, ids)


@contextmanager
def instrumented(callgrind: bool) -> Iterator[None]:
    """Callgrind's instrumentation on for the block (``--callgrind``: this process runs under it)."""
    if callgrind:
        subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True)
    try:
        yield
    finally:
        if callgrind:
            subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument(
        "--events", type=int, default=1, help="events each order has before the timed bulk"
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="fresh schemas measured; the medians are reported"
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="one run under callgrind, instrumented around the bulk update alone (see above)",
    )
    args = parser.parse_args()
    catalog = Catalog.from_toml(CATALOG, source="bench")
    if args.callgrind:
        one_run(catalog, args.records, args.events, callgrind=True)
        print(f"{args.records:,} records: divide callgrind's Collected total by them")
        return
    print(
        f"{args.records:,} orders, {args.events} event(s) each before the timed bulk update; {args.runs} runs"
    )
    governed_rates, raw_rates = [], []
    for run in range(1, args.runs + 1):
        governed_s, raw_s = one_run(catalog, args.records, args.events)
        governed_rates.append(args.records / governed_s)
        raw_rates.append(args.records / raw_s)
        print(
            f"run {run}: bulk_update {governed_s:.2f}s = {governed_rates[-1]:,.0f} records/s; "
            f"raw {raw_s:.2f}s = {raw_rates[-1]:,.0f} rows/s"
        )
    governed, raw = statistics.median(governed_rates), statistics.median(raw_rates)
    print(
        f"bulk_update: {governed:,.0f} records/s median (each its own governed Patched event, one save)"
    )
    print(f"raw:         {raw:,.0f} UPDATEs/s median (executemany, batches of 1,000)")
    print(f"ratio {governed / raw:.3f} (target: >= 10,000 records/s)")
    print(
        orjson.dumps(
            {
                "bench": "bulk",
                "records_per_s": round(governed),
                "raw_rows_per_s": round(raw),
                "ratio": round(governed / raw, 3),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()

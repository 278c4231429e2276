"""Verification benchmark on PostgreSQL: ``writ verify`` over N events vs a raw read of the same rows.

1. Writes N record events into a fresh schema (``create_many``, 1,000 per save).
2. Reads the rows once, untimed (so every timed read finds them in the database's cache).
3. Three rounds of: ``verify`` as ``writ verify`` runs it (worker processes: the CPU count, up to 4: the whole
   log read once, every event's bytes hashed and compared with the manifest, every save's chain recomputed and
   its tag checked, every record's hash chain checked link by link (versions, times, decisions), every data
   key unwrapped, every snapshot checked), then the baseline: a plain psycopg read of the same rows (binary,
   the same batch size), nothing checked. The round with the median ratio is reported.
4. ``verify`` in one process (``--workers 1``), whose report must be the same.

Prints figures, then one JSON line:
``{"bench": "verify", "events_per_s": ..., "raw_read_per_s": ..., "ratio": ..., "one_process_ratio": ...}``.
Target: ratio >= 0.4.

    .venv/bin/python bench/verify.py [--events 100000] [--workers N]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson
import psycopg
from bench_schema import PG_URL, fresh_schema
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.bootstrap import open_writ
from infrastructure.backend_choice import open_backend
from infrastructure.verification import BATCH, Report, verify

ensure_keys()

CATALOG = """
[models.Order]
required = ["sku", "total"]
[models.Order.fields]
sku = { type = "str", max_length = 40 }
total = { type = "decimal", min = 0 }
note = { type = "str", nullable = true }
[models.Order.policy]
create = "allow"
[models.Order.grants]
create = ["*"]
"""
ROUNDS = 3
WHO = Principal(user_id="bench", tenant_id="acme", roles=frozenset({"ops"}), purpose="verify bench")


def raw_read(name: str) -> tuple[int, float]:
    """Every event row, in position order, in batches, binary: what verification has to read at least."""
    rows, after = 0, 0
    started = time.perf_counter()
    with psycopg.connect(PG_URL, autocommit=True) as conn, conn.cursor(binary=True) as cursor:
        while True:
            cursor.execute(
                f'SELECT notification_id, originator_id, originator_version, topic, state FROM "{name}"'
                ".writ_events WHERE notification_id > %s ORDER BY notification_id LIMIT %s",
                (after, BATCH),
            )
            batch = cursor.fetchall()
            rows += len(batch)
            if len(batch) < BATCH:
                return rows, time.perf_counter() - started
            after = batch[-1][0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: as writ verify)"
    )
    args = parser.parse_args()
    with fresh_schema("bench_verify") as (name, url):
        backend = open_backend(url)
        writ = open_writ(Catalog.from_toml(CATALOG, source="bench"), backend)
        try:
            for start in range(0, args.events, 1000):
                writ.create_many(
                    WHO,
                    "Order",
                    [
                        {"sku": f"SKU-{n}", "total": "19.99", "note": "a note"}
                        for n in range(start, min(args.events, start + 1000))
                    ],
                )
        finally:
            writ.close()
        print(f"{args.events:,} events written")
        raw_read(name)  # untimed: every timed read below finds the rows in the database's cache
        rounds = [
            (timed(lambda: verify(backend, workers=args.workers)), raw_read(name)[1])
            for _ in range(ROUNDS)
        ]
        # the median ratio
        (verify_s, report), raw_s = sorted(rounds, key=lambda r: r[0][0] / r[1])[ROUNDS // 2]
        assert report.ok and report.events == args.events, report.findings[:3]
        alone_s, alone = timed(lambda: verify(backend, workers=1))
        assert alone.to_dict() == report.to_dict(), "one process or several: the same report"
    verified, raw, one = report.events / verify_s, args.events / raw_s, report.events / alone_s
    print(
        f"verify:   {report.events:,} events of {report.records:,} records in {verify_s:.2f}s = {verified:,.0f} "
        f"events/s ({args.workers or 'default'} workers: manifest, save chains and tags, record chains, keys)"
    )
    print(
        f"raw read: {args.events:,} rows in {raw_s:.2f}s = {raw:,.0f} rows/s (binary, batches of {BATCH:,})"
    )
    print(f"1 process: {alone_s:.2f}s = {one:,.0f} events/s, the same report")
    print(
        f"ratio {verified / raw:.2f} (median of {ROUNDS} rounds of verify then raw read; target: >= 0.4), "
        f"one process {one / raw:.2f}"
    )
    print(
        orjson.dumps(
            {
                "bench": "verify",
                "events_per_s": round(verified),
                "raw_read_per_s": round(raw),
                "ratio": round(verified / raw, 3),
                "one_process_ratio": round(one / raw, 3),
            }
        ).decode()
    )


def timed(run: Callable[[], Report]) -> tuple[float, Report]:
    started = time.perf_counter()
    report = run()
    return time.perf_counter() - started, report


if __name__ == "__main__":
    main()

"""Write-path benchmark: governed creates vs the library's own save, on PostgreSQL.

Runs, in one process and interleaved in rounds (so all see the same machine
state), N sequential ``Writ.create`` calls (decision pipeline, one record event
carrying its decision, one atomic save) and N sequential ``Application.save``
calls of a plain eventsourcing aggregate carrying the same payload — once with
the library's default mapper and once with Writ's orjson mapper. The ratio is
taken against the faster of the two baselines. The governed creates are of a
plain model (no generator, no unique field). ``--counter`` and ``--unique``
add, in the same rounds, creates of the same model numbered by a counter and
with a unique field, and report what each adds per create. Prints figures,
then one JSON line: {"bench": "write_path", "governed_per_s", "library_per_s",
"ratio"[, "counter_per_s", "counter_extra_ms", "unique_per_s", "unique_extra_ms"]}.

    .venv/bin/python bench/write_path.py [--rounds 9] [--per-round 400] [--counter] [--unique] [--async-commit]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from typing import Any

import orjson
from bench_catalog import CATALOG
from bench_schema import fresh_schema
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from throwaway_keys import ensure as ensure_keys

from application.store import Store
from domain.catalog import Catalog
from domain.principal import Principal
from domain.record import Record
from entrypoints.bootstrap import open_writ
from infrastructure.config import writ_env

ensure_keys()


class Item(Aggregate):
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data


class LibraryBaseline(Application[uuid.UUID]):
    name = "LibBaseline"


class LibraryOrjsonBaseline(Application[uuid.UUID]):
    name = "LibOrjson"


def payload(i: int) -> dict[str, Any]:
    return {
        "sku": f"SKU-{i}",
        "total": "19.99",
        "quantity": 2,
        "status": "draft",
        "note": "leave at door",
    }


def stored_payload(i: int) -> dict[str, Any]:
    """What a governed create stores: the caller's data plus defaults and stamps."""
    return {
        **payload(i),
        "created_by": "bench",
        "updated_at": "2026-01-01T00:00:00Z",
        "tenant_id": "acme",
    }


def time_governed(
    writ: Any, principal: Principal, start: int, count: int, model: str = "Order"
) -> float:
    began = time.perf_counter()
    for i in range(start, start + count):
        writ.create(principal, model, payload(i))
    return time.perf_counter() - began


def time_library(app: Application[uuid.UUID], start: int, count: int) -> float:
    began = time.perf_counter()
    for i in range(start, start + count):
        app.save(Item(stored_payload(i)))
    return time.perf_counter() - began


def load_times(writ: Any, principal: Principal, events: int = 3000, reads: int = 200) -> None:
    """Snapshots keep loading constant: a 1-event record vs a record with thousands of events."""
    fresh = writ.create(principal, "Order", payload(-1)).id
    long_lived = uuid.UUID(writ.create(principal, "Order", payload(-2)).id)
    record = writ._core.store.repository.get(long_lived)
    for n in range(1, events):
        record.patch(
            {"quantity": n % 50 + 1}, {"actor": "bench"}, writ._core.clock(), writ._core.keys.digest
        )
        if n % 100 == 0 or n == events - 1:
            writ._core.save(record)
    timings = {}
    for label, record_id in (("1 event", fresh), (f"{events} events", long_lived)):
        began = time.perf_counter()
        for _ in range(reads):
            writ.get(principal, "Order", record_id)
        timings[label] = (time.perf_counter() - began) / reads * 1e3
    print(
        "load (get) per record: "
        + ", ".join(f"{k}: {v:.3f} ms" for k, v in timings.items())
        + f" (snapshot every {Store.snapshotting_intervals[Record]} events)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--per-round", type=int, default=400)
    parser.add_argument("--counter", action="store_true", help="also creates numbered by a counter")
    parser.add_argument("--unique", action="store_true", help="also creates with a unique field")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="commits of both sides do not wait for the WAL flush (synchronous_commit=off): on a slow "
        "disk, the flush hides what each side costs",
    )
    args = parser.parse_args()
    # libpq reads it for every connection of this process: Writ's and the library's alike
    if args.async_commit:
        os.environ["PGOPTIONS"] = (
            f"{os.environ.get('PGOPTIONS', '')} -c synchronous_commit=off".strip()
        )
    with fresh_schema() as (_, url):
        run(
            url,
            args.rounds,
            args.per_round,
            [m for m, on in (("Counted", args.counter), ("Unique", args.unique)) if on],
        )


def run(url: str, rounds: int, per_round: int, extra: list[str]) -> None:
    catalog = Catalog.from_toml(CATALOG)
    writ = open_writ(catalog, url)
    env = {k: v for k, v in writ_env(url).items() if k != "APPLICATION_RECORDER_TOPIC"}
    default_env = {
        k: v for k, v in env.items() if k.startswith(("POSTGRES_", "PERSISTENCE_", "CREATE_"))
    }
    library, library_orjson = LibraryBaseline(env=default_env), LibraryOrjsonBaseline(env=env)
    principal = Principal(
        user_id="bench", tenant_id="acme", roles=frozenset({"clerk"}), purpose="benchmark"
    )
    time_governed(writ, principal, 0, 100)  # warm up connections, prepared statements, caches
    time_library(library, 0, 100)
    time_library(library_orjson, 0, 100)
    for model in extra:
        time_governed(writ, principal, 0, 100, model)
    runs = [
        lambda start: time_governed(writ, principal, start, per_round),
        lambda start: time_library(library, start, per_round),
        lambda start: time_library(library_orjson, start, per_round),
        *[
            lambda start, m=model: time_governed(writ, principal, start, per_round, m)
            for model in extra
        ],
    ]
    totals = [0.0] * len(runs)
    for r in range(rounds):  # rotate who goes first, so drift in the machine hits every run alike
        for index in [*range(r % len(runs), len(runs)), *range(r % len(runs))]:
            totals[index] += runs[index](1000 + r * per_round)
    governed, library_s, orjson_s = totals[:3]
    total = rounds * per_round
    governed_per_s = total / governed
    default_per_s, orjson_per_s = total / library_s, total / orjson_s
    library_per_s = max(default_per_s, orjson_per_s)
    print(
        f"PostgreSQL {url.rsplit('@', maxsplit=1)[-1]}: {rounds} interleaved rounds x {per_round} sequential writes"
        f"{' (PGOPTIONS ' + os.environ['PGOPTIONS'] + ')' if os.environ.get('PGOPTIONS') else ''}"
    )
    print(
        f"governed creates/s (decision pipeline + record event, one atomic save): {governed_per_s:,.0f}"
    )
    print(
        f"library saves/s, plain Aggregate, same payload, default JSON mapper:   {default_per_s:,.0f}"
    )
    print(
        f"library saves/s, plain Aggregate, same payload, Writ's orjson mapper:  {orjson_per_s:,.0f}"
    )
    print(
        f"per write: governed {1e3 / governed_per_s:.3f} ms, library {1e3 / library_per_s:.3f} ms "
        f"(governance overhead {1e3 / governed_per_s - 1e3 / library_per_s:+.3f} ms)"
    )
    result: dict[str, Any] = {}
    for model, seconds in zip(extra, totals[3:], strict=True):
        per_s, label = total / seconds, {"Counted": "counter", "Unique": "unique"}[model]
        extra_ms = 1e3 / per_s - 1e3 / governed_per_s
        print(
            f"governed creates/s with a {label:7} ({model}): {per_s:,.0f}  ({extra_ms:+.3f} ms per create)"
        )
        result.update({f"{label}_per_s": round(per_s, 1), f"{label}_extra_ms": round(extra_ms, 3)})
    load_times(writ, principal)
    for app in (writ, library, library_orjson):
        app.close()
    result = {
        "bench": "write_path",
        "governed_per_s": round(governed_per_s, 1),
        "library_per_s": round(library_per_s, 1),
        "ratio": round(governed_per_s / library_per_s, 3),
        **result,
    }
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()

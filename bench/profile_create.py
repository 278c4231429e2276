"""CPU per governed create: this process's CPU time (``time.process_time``, every thread) per ``Writ.create``.

N sequential creates of the benchmarks' plain Order (five fields given, two stamped: a decision, one record
event, one atomic save), each with an idempotency key, on SQLite (a temporary file) and on PostgreSQL (a fresh
schema). ``--command patch`` times patches instead: N orders created first (untimed), then each patched once
(one field, an idempotency key): a load of the record, a decision, one record event, one save (counted with
callgrind as below, the difference also holds the 200 creates made first: take the creates' figure off).
``--command repeat`` times each create sent again under its idempotency key (a client's retry), the creates
made first (the same holds for callgrind). CPU time
leaves out the waits for the database (and the database server's own work), so it is the figure Python pays
per command whatever else the machine runs. ``--profile`` runs the timed commands under cProfile and prints
the top entries by own time (the CPU figure then includes the profiler's overhead). The commands are timed
in ten parts, and the least part's CPU per command is reported too (the steadier figure when other processes
share the cores). Prints figures, then one JSON line: {"bench": "profile_create", "command", "n",
"<db>_cpu_ms", "<db>_least_cpu_ms", "<db>_wall_ms", ...}.

    .venv/bin/python bench/profile_create.py [-n 2000] [--db sqlite,postgresql] [--command create|patch|repeat]
        [--profile] [--top 30] [--sort tottime|cumulative] [--warmup 200]

Instructions per create, steady however busy the machine is: run it under ``valgrind --tool=callgrind`` with two
values of ``-n`` (say 20 and 220) and divide the difference of the instructions collected by 200.
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from bench_catalog import CATALOG
from bench_schema import fresh_schema
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.principal import Principal
from entrypoints.bootstrap import open_writ

ensure_keys()

PLURAL = {"create": "creates", "patch": "patches", "repeat": "repeated creates"}
WHO = Principal(user_id="bench", tenant_id="acme", roles=frozenset({"clerk"}), purpose="benchmark")


def payload(i: int) -> dict[str, Any]:
    return {
        "sku": f"SKU-{i}",
        "total": "19.99",
        "quantity": 2,
        "status": "draft",
        "note": "leave at door",
    }


@contextmanager
def database(name: str) -> Iterator[str]:
    if name == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'writ.db'}"
    else:
        with fresh_schema("bench_cpu") as (_, url):
            yield url


def creates(writ: Any, start: int, count: int) -> None:
    for i in range(start, start + count):
        writ.create(WHO, "Order", payload(i), idempotency_key=f"key-{i}")


class Repeats:
    """``--command repeat``: creates made up front (untimed), each sent again under its idempotency key: what a
    client's retry costs (the first attempt loses its race on the key's claim; the stored result answers)."""

    def __init__(self, writ: Any, n: int, warmup: int) -> None:
        creates(writ, -warmup, n + warmup)

    def __call__(self, writ: Any, start: int, count: int) -> None:
        for i in range(start, start + count):
            assert writ.create(WHO, "Order", payload(i), idempotency_key=f"key-{i}").replayed


class Patches:
    """``--command patch``: the orders to patch, created up front (untimed)."""

    def __init__(self, writ: Any, n: int, warmup: int) -> None:
        self.ids = [writ.create(WHO, "Order", payload(i)).id for i in range(-warmup, n)]
        self.warmup = warmup

    def __call__(self, writ: Any, start: int, count: int) -> None:
        for i in range(start, start + count):
            record_id = self.ids[i + self.warmup]
            writ.patch(WHO, "Order", record_id, {"note": f"n{i}"}, idempotency_key=f"patch-{i}")


COMMANDS = {"patch": Patches, "repeat": Repeats}


def measure(
    name: str,
    n: int,
    profile: bool,
    top: int,
    warmup: int = 200,
    sort: str = "tottime",
    command: str = "create",
) -> tuple[float, float, float]:
    """(CPU ms, wall ms, least CPU ms of a tenth of the creates) per create: on a busy machine the least is the
    steadier figure."""
    with database(name) as url:
        writ = open_writ(Catalog.from_toml(CATALOG), url)
        try:
            run = creates if command == "create" else COMMANDS[command](writ, n, warmup)
            run(writ, -warmup, warmup)  # warm up: connections, prepared statements, caches
            profiler = cProfile.Profile(time.process_time) if profile else None  # CPU, not waits
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            least, tenth = float("inf"), max(1, n // 10)
            for start in range(0, n, tenth):
                began = time.process_time()
                run(writ, start, min(tenth, n - start))
                least = min(least, (time.process_time() - began) / min(tenth, n - start))
            if profiler is not None:
                profiler.disable()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            writ.close()
    if profiler is not None:
        print(f"-- {name}: top {top} by {'own time' if sort == 'tottime' else sort}")
        pstats.Stats(profiler).sort_stats(sort).print_stats(top)
    return cpu / n * 1e3, wall / n * 1e3, least * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--sort", default="tottime", help="the profile's order: tottime (own time) or cumulative"
    )
    parser.add_argument("--warmup", type=int, default=200, help="commands before the timed ones")
    parser.add_argument("--command", choices=("create", *COMMANDS), default="create")
    args = parser.parse_args()
    result: dict[str, Any] = {
        "bench": "profile_create",
        "command": args.command,
        "n": args.n,
        "profiled": args.profile,
    }
    for name in args.db.split(","):
        cpu_ms, wall_ms, least_ms = measure(
            name, args.n, args.profile, args.top, args.warmup, args.sort, args.command
        )
        print(
            f"{name}: {args.n} {PLURAL[args.command]} with an idempotency key: CPU {cpu_ms:.3f} ms (least of ten parts "
            f"{least_ms:.3f} ms), wall {wall_ms:.3f} ms each"
        )
        result.update(
            {
                f"{name}_cpu_ms": round(cpu_ms, 3),
                f"{name}_least_cpu_ms": round(least_ms, 3),
                f"{name}_wall_ms": round(wall_ms, 3),
            }
        )
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()

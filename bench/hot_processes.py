"""One hot record written from several processes: how often a write still fails after Writ's retries.

Inside one process, writes to the same record take turns before they decide (nothing to retry). Across
processes nothing makes them take turns: a write that loses its race to another process's save is decided
again on the fresh record, after a jittered backoff, up to ``application.retry.ATTEMPTS`` times; only then does
it fail ``VERSION_CONFLICT``. This measures how rare that is: ``--processes`` processes (each its own ``Writ``,
as separate ``writ serve`` workers or services are), ``--threads`` threads in each, patching ONE record without
``expected_version`` for ``--seconds``. Each process counts its writes, its failures and every lost race (the
backoffs: each child wraps ``application.retry.back_off`` to count them, by the attempt they came before).

The record's final version is checked against the writes acknowledged (1 + every successful patch: no lost
update, no write counted twice). Prints each layout's figures, then one JSON line: {"bench": "hot_processes",
"layouts": [{"processes", "threads", "attempts", "writes", "per_s", "failed", "lost_races", "most_attempts",
"p99_ms"}, ...], "failed": <Writ's budget, all layouts>, "writes": <the same>}. ``--compare N`` runs each
layout first with a budget of N attempts (``attempts``: N; None is Writ's own), then with Writ's.

    .venv/bin/python bench/hot_processes.py [--layouts 2x8,4x4,8x2] [--seconds 10] [--compare 12]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import time
from collections import Counter
from typing import Any

import orjson
from bench_catalog import HOT_CATALOG
from bench_schema import fresh_schema
from throwaway_keys import ensure as ensure_keys

from domain.catalog import Catalog
from domain.errors import WritError
from domain.principal import Principal

CLERK = Principal(
    user_id="bench", tenant_id="acme", roles=frozenset({"clerk"}), purpose="hot bench"
)


def writer_process(
    url: str,
    record_id: str,
    threads: int,
    seconds: float,
    attempts: int | None,
    start: Any,
    out: Any,
) -> None:
    """One process: ``threads`` threads patching the record for ``seconds`` once every process is ready
    (``start``, a barrier of all of them and the parent)."""
    from application import retry
    from entrypoints.bootstrap import open_writ

    lost: Counter[int] = Counter()
    counting = threading.Lock()
    back_off = retry.back_off

    def counted(attempt: int) -> None:
        with counting:
            lost[attempt] += 1
        back_off(attempt)

    retry.back_off = (
        counted  # the retry loop calls the module's function: each lost race passes here
    )
    writ = open_writ(Catalog.from_toml(HOT_CATALOG, source="bench"), url)
    if attempts is not None:  # another budget than Writ's own, to compare
        writ._core.retry = retry.Retry(writ._core.record_refusal, attempts=attempts)
    writ.get(CLERK, "Hot", record_id)  # connected and warm before the clock starts
    done, failed, waits = [0] * threads, [0] * threads, [list[float]() for _ in range(threads)]
    start.wait()
    until = time.monotonic() + seconds

    def work(n: int) -> None:
        i = 0
        while time.monotonic() < until:
            began = time.perf_counter()
            try:
                writ.patch(CLERK, "Hot", record_id, {"quantity": (n * 1_000_003 + i) % 1000})
                done[n] += 1
            except WritError as error:
                if error.code != "VERSION_CONFLICT":
                    raise
                failed[n] += 1
            waits[n].append(time.perf_counter() - began)
            i += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    writ.close()
    out.put(
        {
            "done": sum(done),
            "failed": sum(failed),
            "lost": dict(lost),
            "waits": [w for each in waits for w in each],
        }
    )


def layout(processes: int, threads: int, seconds: float, attempts: int | None) -> dict[str, Any]:
    from entrypoints.bootstrap import open_writ

    context = multiprocessing.get_context("spawn")
    with fresh_schema("bench_hot") as (_, url):
        writ = open_writ(Catalog.from_toml(HOT_CATALOG, source="bench"), url)
        record_id = writ.create(CLERK, "Hot", {"quantity": 0}).id
        start, out = context.Barrier(processes + 1), context.Queue()
        children = [
            context.Process(
                target=writer_process,
                args=(url, record_id, threads, seconds, attempts, start, out),
            )
            for _ in range(processes)
        ]
        for child in children:
            child.start()
        start.wait(timeout=120)  # every child has opened its store: all start together
        reports = [out.get(timeout=seconds + 300) for _ in children]
        for child in children:
            child.join()
            assert child.exitcode == 0, f"a writer process ended with status {child.exitcode}"
        version = writ.get(CLERK, "Hot", record_id)["_version"]
        writ.close()
    done = sum(r["done"] for r in reports)
    assert version == 1 + done, f"the record is at version {version}, {done} patches acknowledged"
    lost = Counter[int]()
    for report in reports:
        lost.update({int(k): v for k, v in report["lost"].items()})
    waits = sorted(w for r in reports for w in r["waits"])
    return {
        "processes": processes,
        "threads": threads,
        "attempts": attempts,
        "writes": done,
        "per_s": round(done / seconds, 1),
        "failed": sum(r["failed"] for r in reports),
        "lost_races": sum(lost.values()),
        "most_attempts": 1 + max(lost, default=0),
        "p99_ms": round(waits[int(len(waits) * 0.99)] * 1000, 1) if waits else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--layouts", default="2x8,4x4,8x2", help="PROCESSESxTHREADS, comma-separated"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--compare",
        type=int,
        default=None,
        help="also run each layout with this retry budget (attempts), alternating with Writ's own",
    )
    args = parser.parse_args()
    ensure_keys()
    results = []
    for text in args.layouts.split(","):
        processes, threads = (int(n) for n in text.split("x"))
        for attempts in [None] if args.compare is None else [args.compare, None]:
            found = layout(processes, threads, args.seconds, attempts)
            results.append(found)
            budget = "Writ's budget" if attempts is None else f"{attempts} attempts"
            print(
                f"{processes} processes x {threads} threads, {budget}: {found['writes']:,} patches "
                f"({found['per_s']:,.0f}/s), {found['failed']} failed, {found['lost_races']:,} races lost "
                f"and retried, at most {found['most_attempts']} attempts for one write, "
                f"p99 {found['p99_ms']} ms"
            )
    print(
        orjson.dumps(
            {
                "bench": "hot_processes",
                "layouts": results,
                "failed": sum(r["failed"] for r in results if r["attempts"] is None),
                "writes": sum(r["writes"] for r in results if r["attempts"] is None),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()

"""Merkle proof benchmark on PostgreSQL: inclusion and consistency proofs for a 1,000,000-event log.

Building a million events through Writ would take most of an hour here, and proofs never read the events:
they read the manifest and the stored tree. So this bench fills the log manifest (``writ_log_manifest``)
directly with N synthetic rows (position, record id, version, SHA-256), one position in a thousand skipped
as a rolled-back save would leave it, and a ``writ.checkpoint/1`` row at its head signed with a throwaway
key; the log itself is not verified (there are no events to verify). Then, on the backend's own tables:

1. ``sign_tree``: the tree built from the manifest (tiles of 256 hashes), its root signed as a checkpoint;
2. inclusion proofs for random events (``LogProofs.inclusion``, one at a time, one connection): p50 and p99
   latency, proofs/s; the same for consistency proofs from random earlier sizes;
3. ``check``: the offline verification of those proofs, per second (no database);
4. 10,000 more rows and a new checkpoint: what extending the tree costs a ``writ checkpoint``.

Nothing here runs on the save path: Writ's saves write the manifest row they always wrote, and the tree is
extended by ``writ checkpoint``. Prints figures, then one JSON line:
``{"bench": "proofs", "events": ..., "inclusion_p99_ms": ..., "proofs_per_s": ..., ...}``.

    .venv/bin/python bench/proofs.py [--events 1000000] [--proofs 2000]
    WRIT_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test (default)
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from bench_schema import PG_URL, fresh_schema
from throwaway_keys import ensure as ensure_keys

from infrastructure.backend_choice import open_backend
from infrastructure.checkpoints import CheckpointTable, load_signer
from infrastructure.log import open_log_of
from infrastructure.log_notes import sign_tree
from infrastructure.log_proofs import LogProofs
from infrastructure.proof_check import check

ensure_keys()
GAP_EVERY = 1000


def fill(schema: str, first: int, count: int) -> int:
    """``count`` synthetic manifest rows from position ``first`` (one in GAP_EVERY skipped); the last position."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{schema}".writ_log_manifest (position, originator_id, originator_version, '
            "event_hash) SELECT g + g / %s, md5(g::text)::uuid, 1 + g %% 7, sha256(int8send(g)) "
            "FROM generate_series(%s, %s) AS g",
            (GAP_EVERY - 1, first, first + count - 1),
        )
        (last,) = conn.execute(
            f'SELECT max(position) FROM "{schema}".writ_log_manifest'
        ).fetchone() or (0,)
    return int(last)


def positions(schema: str, head: int, sample: int) -> list[int]:
    """``sample`` positions of the manifest, drawn uniformly (a gap drawn is dropped)."""
    candidates = random.sample(range(1, head + 1), min(head, sample + sample // 100 + 10))
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT position FROM "{schema}".writ_log_manifest WHERE position = ANY(%s)',
            (candidates,),
        ).fetchall()
    chosen = [int(row[0]) for row in rows]
    random.shuffle(chosen)
    return chosen[:sample]


def timed(
    calls: list[int], run: Callable[[int], dict[str, Any]]
) -> tuple[list[float], list[dict[str, Any]]]:
    """Each call's latency (s) and result, one after the other."""
    latencies, made = [], []
    for argument in calls:
        started = time.perf_counter()
        made.append(run(argument))
        latencies.append(time.perf_counter() - started)
    return latencies, made


def p(values: list[float], share: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * share))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    args = parser.parse_args()
    with fresh_schema("bench_proofs") as (schema, url):
        backend = open_backend(url)
        open_log_of(backend).close()  # the event store's tables, the manifest among them
        signer = load_signer(beside=None)
        database = backend.database()

        def checkpoint_at(position: int) -> float:
            with database.transaction() as tx:
                CheckpointTable(backend).add(tx, signer.sign(position, bytes(32)))
            started = time.perf_counter()
            assert sign_tree(backend, signer) is not None
            return time.perf_counter() - started

        started = time.perf_counter()
        head = fill(schema, 1, args.events)
        filled = time.perf_counter() - started
        built = checkpoint_at(head)
        print(
            f"{args.events:,} synthetic manifest rows (last position {head:,}) in {filled:.1f}s; tree built and "
            f"signed in {built:.1f}s = {args.events / built:,.0f} leaves/s"
        )

        proofs = LogProofs(backend)
        inclusion, made = timed(positions(schema, head, args.proofs), proofs.inclusion)
        size = int(made[0]["tree_size"])
        olds = [random.randint(1, size) for _ in range(args.proofs)]
        consistency, grown = timed(olds, proofs.consistency)
        public = signer.public_raw
        started = time.perf_counter()
        for proof in [*made, *grown]:
            check(proof, public)
        checked = len(made) + len(grown)
        check_rate = checked / (time.perf_counter() - started)
        hashes = len(made[0]["path"])
        print(
            f"inclusion proofs:   {len(inclusion):,}, p50 {p(inclusion, 0.5):.2f} ms, "
            f"p99 {p(inclusion, 0.99):.2f} ms, {len(inclusion) / sum(inclusion):,.0f} proofs/s "
            f"(one connection, {hashes} hashes each)"
        )
        print(
            f"consistency proofs: {len(consistency):,}, p50 {p(consistency, 0.5):.2f} ms, "
            f"p99 {p(consistency, 0.99):.2f} ms, {len(consistency) / sum(consistency):,.0f} proofs/s"
        )
        print(
            f"offline checks:     {checked:,} proofs at {check_rate:,.0f}/s (signature, path; no database)"
        )

        extended = checkpoint_at(fill(schema, args.events + 1, 10_000))
        print(f"10,000 more events: tree extended and signed in {extended * 1000:.0f} ms")
        print(
            "save path: unchanged (the manifest row each save wrote already; the tree grows at `writ checkpoint`)"
        )
        proofs.close()
        database.close()
        backend.close()
    print(
        orjson.dumps(
            {
                "bench": "proofs",
                "events": args.events,
                "synthetic_manifest": True,
                "inclusion_p50_ms": round(p(inclusion, 0.5), 3),
                "inclusion_p99_ms": round(p(inclusion, 0.99), 3),
                "proofs_per_s": round(len(inclusion) / sum(inclusion)),
                "consistency_p99_ms": round(p(consistency, 0.99), 3),
                "consistency_per_s": round(len(consistency) / sum(consistency)),
                "offline_checks_per_s": round(check_rate),
                "tree_build_leaves_per_s": round(args.events / built),
                "extend_10000_ms": round(extended * 1000),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()

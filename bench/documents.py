"""Kept JSON documents: ``orjson.dumps`` vs ``infrastructure.documents.kept_json`` (no database).

Encodes N stored-event-like documents (the state of a ``Patched`` event: audit
metadata, digests, a sealed payload) and keeps every one alive, as a save keeps
its stored events until the insert: first with ``orjson.dumps``, then with
``kept_json`` (the same bytes, copied into an object of their own size), each in
a fresh process so neither inherits the other's heap. Prints microseconds and
page faults per document and the heap each kept document cost, then one JSON line:
``{"bench": "documents", "dumps_us": ..., "kept_us": ..., "ratio": ...}`` (ratio: dumps / kept).

    .venv/bin/python bench/documents.py [--documents 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import orjson

MEASURE = r"""
import datetime, resource, sys, time, uuid
import orjson
from infrastructure.documents import kept_json
encode = kept_json if sys.argv[1] == "kept" else orjson.dumps
meta = {"actor": "bench", "roles": ["ops"], "tenant": "acme", "model": "Order", "operation": "bulk_update",
        "purpose": "bulk bench", "correlation_id": str(uuid.uuid4()), "causation_id": None,
        "decision_id": str(uuid.uuid4()), "policy_version": "bb0ca97b91b99caf",
        "reasons": ["policy bulk_update: allow"], "idempotency_key": None, "audit": {}, "bulk": {"count": 10}}
now = datetime.datetime.now(datetime.timezone.utc)
states = [{"timestamp": now, "meta": meta, "hash": uuid.uuid4().hex * 2, "body_digest": uuid.uuid4().hex * 2,
           "state_digest": uuid.uuid4().hex * 2, "changes": {"$sealed": uuid.uuid4().hex}}
          for _ in range(int(sys.argv[2]))]
before = resource.getrusage(resource.RUSAGE_SELF)
started = time.perf_counter()
kept = [encode(state) for state in states]
seconds = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF)
print(seconds, after.ru_minflt - before.ru_minflt, after.ru_maxrss - before.ru_maxrss, sum(map(len, kept)))
"""


def measure(how: str, documents: int) -> tuple[float, float, float, int]:
    """(us per document, page faults per document, KB of peak heap per document, bytes encoded) in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, how, str(documents)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    seconds, faults, rss_kb, encoded = float(out[0]), int(out[1]), int(out[2]), int(out[3])
    return seconds / documents * 1e6, faults / documents, rss_kb / documents, encoded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=10_000)
    args = parser.parse_args()
    figures = {how: measure(how, args.documents) for how in ("dumps", "kept")}
    assert figures["dumps"][3] == figures["kept"][3], "the same documents, byte for byte in length"
    for how, (us, faults, kb, encoded) in figures.items():
        print(
            f"{how:5s}: {us:.2f} us/document, {faults:.2f} page faults/document, {kb:.1f} KB peak RSS/document "
            f"({encoded / args.documents:.0f} bytes each)"
        )
    ratio = figures["dumps"][0] / figures["kept"][0]
    print(f"kept_json is {ratio:.1f}x faster per kept document")
    print(
        orjson.dumps(
            {
                "bench": "documents",
                "dumps_us": round(figures["dumps"][0], 2),
                "kept_us": round(figures["kept"][0], 2),
                "ratio": round(ratio, 1),
            }
        ).decode()
    )


if __name__ == "__main__":
    main()
